use super::*;

#[test]
fn every_role_but_operator_can_be_granted_under_its_own_name() {
    for role in Role::GRANTABLE {
        let granted: GrantableRole =
            serde_json::from_value(serde_json::json!(role.as_str())).unwrap();
        assert_eq!(Role::from(granted), role);
    }
    assert!(serde_json::from_value::<GrantableRole>(serde_json::json!("operator")).is_err());
}

#[derive(Debug, Deserialize)]
struct Sets {
    #[serde(deserialize_with = "unique")]
    kinds: BTreeSet<GrantableRole>,
    #[serde(default, deserialize_with = "unique_or_none")]
    roles: Option<BTreeSet<GrantableRole>>,
}

#[test]
fn a_set_refuses_a_repeated_element_and_an_optional_one_reads_null_as_absent() {
    let read = |value| serde_json::from_value::<Sets>(value);
    let sets = read(serde_json::json!({"kinds": ["user", "admin"]})).unwrap();
    assert_eq!(sets.kinds.len(), 2);
    assert_eq!(sets.roles, None);
    let sets = read(serde_json::json!({"kinds": [], "roles": null})).unwrap();
    assert_eq!(sets.roles, None);
    let sets = read(serde_json::json!({"kinds": [], "roles": ["user"]})).unwrap();
    assert_eq!(sets.roles, Some(BTreeSet::from([GrantableRole::User])));
    assert!(read(serde_json::json!({"kinds": ["user", "user"]})).is_err());
    assert!(read(serde_json::json!({"kinds": [], "roles": ["user", "user"]})).is_err());
}

#[derive(Debug, Deserialize)]
struct Numbers {
    #[serde(deserialize_with = "whole_number::u64")]
    count: u64,
    #[serde(default, deserialize_with = "whole_number::option_i64")]
    priority: Option<i64>,
}

#[test]
fn integers_written_with_a_zero_fraction_or_an_exponent_are_integers() {
    let read = |json: &str| serde_json::from_str::<Numbers>(json).map(|n| (n.count, n.priority));
    assert_eq!(read(r#"{"count": 1000001.0}"#).unwrap(), (1_000_001, None));
    assert_eq!(
        read(r#"{"count": 1e3, "priority": 5.0}"#).unwrap(),
        (1000, Some(5))
    );
    assert_eq!(
        read(r#"{"count": 7, "priority": null}"#).unwrap(),
        (7, None)
    );
    assert_eq!(
        read(r#"{"count": 0, "priority": -3}"#).unwrap(),
        (0, Some(-3))
    );
    assert_eq!(
        read(r#"{"count": 18446744073709551615}"#).unwrap(),
        (u64::MAX, None)
    );
    for refused in [
        r#"{"count": 1.5}"#,
        r#"{"count": -1}"#,
        r#"{"count": -1.0}"#,
        r#"{"count": 1e300}"#,
        r#"{"count": "1"}"#,
        r#"{"count": 1, "priority": 0.5}"#,
        r#"{"count": 1, "priority": 9223372036854775808}"#,
    ] {
        assert!(read(refused).is_err(), "{refused} was accepted");
    }
}

fn pattern<T: PartialSchema>() -> String {
    match T::schema() {
        RefOr::T(Schema::Object(object)) => object.pattern.expect("a pattern"),
        _ => panic!("not an object schema"),
    }
}

#[test]
fn classes_are_spelled_out_from_the_predicates_the_parsers_use() {
    assert_eq!(
        *WHITESPACE,
        "\\u0009-\\u000D\\u0020\\u0085\\u00A0\\u1680\\u2000-\\u200A\\u2028\\u2029\\u202F\\u205F\\u3000"
    );
    assert!(INVISIBLE.starts_with("\\u0000-\\u001F\\u007F-\\u009F\\u00AD\\u0600-\\u0605"));
    // Beyond the BMP a character stands for itself (no escape reads alike in every engine),
    // one by one.
    assert!(INVISIBLE.contains("\u{E0001}\u{E0020}\u{E0021}"));
    assert!(INVISIBLE.ends_with("\u{E007E}\u{E007F}"));
    assert!(!INVISIBLE.contains("\\u{"));
    for pattern in [
        pattern::<DisplayName>(),
        pattern::<KeyName>(),
        pattern::<Text>(),
    ] {
        assert!(
            pattern.starts_with('^') && pattern.ends_with('$'),
            "{pattern}"
        );
        assert!(
            pattern.contains("{0,62}") || pattern.contains("{0,998}"),
            "{pattern}"
        );
    }
}
