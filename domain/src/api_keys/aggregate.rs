use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::{ApiKeyCommand, ApiKeyError, ApiKeyEvent, KeyName, SecretHash};
use crate::aggregate::Decider;
use crate::identity::Roles;

/// The API key aggregate's state.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub enum ApiKey {
    /// Not issued yet.
    #[default]
    Unissued,
    /// Issued (possibly revoked or expired since).
    Issued {
        /// What the key is for.
        name: KeyName,
        /// What the key may do.
        roles: Roles,
        /// When it stops working, if ever.
        expires_at: Option<DateTime<Utc>>,
        /// Hash of its secret.
        secret_hash: SecretHash,
        /// Whether it was revoked.
        revoked: bool,
    },
}

/// Why presented key credentials do not authenticate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum KeyRejected {
    /// No such key.
    #[error("unknown API key")]
    Unknown,
    /// The secret does not match.
    #[error("wrong API key secret")]
    WrongSecret,
    /// The key was revoked.
    #[error("the API key was revoked")]
    Revoked,
    /// The key expired.
    #[error("the API key expired")]
    Expired,
}

impl ApiKey {
    /// Checks presented credentials at `now`, returning the key's roles.
    ///
    /// # Errors
    /// [`KeyRejected`] saying why (for logs; clients only ever see "unauthenticated").
    pub fn authenticate(
        &self,
        presented: &SecretHash,
        now: DateTime<Utc>,
    ) -> Result<&Roles, KeyRejected> {
        let Self::Issued {
            roles,
            expires_at,
            secret_hash,
            revoked,
            ..
        } = self
        else {
            return Err(KeyRejected::Unknown);
        };
        if !secret_hash.matches(presented) {
            return Err(KeyRejected::WrongSecret);
        }
        if *revoked {
            return Err(KeyRejected::Revoked);
        }
        if expires_at.is_some_and(|expiry| expiry <= now) {
            return Err(KeyRejected::Expired);
        }
        Ok(roles)
    }
}

impl Decider for ApiKey {
    const TYPE: &'static str = "ApiKey";
    const SNAPSHOT_SCHEMA: u32 = 1;
    type Command = ApiKeyCommand;
    type Event = ApiKeyEvent;
    type Error = ApiKeyError;

    fn decide(&self, command: ApiKeyCommand) -> Result<Vec<ApiKeyEvent>, ApiKeyError> {
        let event = match (self, command) {
            (
                Self::Unissued,
                ApiKeyCommand::Issue {
                    name,
                    roles,
                    expires_at,
                    secret_hash,
                    at,
                },
            ) => {
                if roles.is_empty() {
                    return Err(ApiKeyError::NoRoles);
                }
                if expires_at.is_some_and(|expiry| expiry <= at) {
                    return Err(ApiKeyError::ExpiryInPast);
                }
                ApiKeyEvent::ApiKeyIssued {
                    name,
                    roles,
                    expires_at,
                    secret_hash,
                    at,
                }
            }
            (Self::Issued { .. }, ApiKeyCommand::Issue { .. }) => {
                return Err(ApiKeyError::AlreadyIssued)
            }
            (Self::Unissued, ApiKeyCommand::Revoke { .. }) => return Err(ApiKeyError::NotFound),
            (Self::Issued { revoked: true, .. }, ApiKeyCommand::Revoke { .. }) => {
                return Err(ApiKeyError::AlreadyRevoked)
            }
            (Self::Issued { .. }, ApiKeyCommand::Revoke { at }) => {
                ApiKeyEvent::ApiKeyRevoked { at }
            }
        };
        Ok(vec![event])
    }

    fn evolve(&mut self, event: &ApiKeyEvent) {
        match (self, event) {
            (
                this @ Self::Unissued,
                ApiKeyEvent::ApiKeyIssued {
                    name,
                    roles,
                    expires_at,
                    secret_hash,
                    ..
                },
            ) => {
                *this = Self::Issued {
                    name: name.clone(),
                    roles: roles.clone(),
                    expires_at: *expires_at,
                    secret_hash: secret_hash.clone(),
                    revoked: false,
                };
            }
            (Self::Issued { revoked, .. }, ApiKeyEvent::ApiKeyRevoked { .. }) => *revoked = true,
            // `decide` never produces any other pairing; history is applied as recorded.
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use chrono::{Duration, TimeZone};
    use cqrs_es::test::TestFramework;

    use super::*;
    use crate::aggregate::{replay, Guarded, Rejection, Versioned};
    use crate::identity::Role;
    use crate::names::CodePoint;

    type Given = TestFramework<Versioned<ApiKey>>;

    fn at() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 11, 22, 9, 0, 0).unwrap()
    }
    fn hash(digit: char) -> SecretHash {
        SecretHash::parse(&digit.to_string().repeat(64)).unwrap()
    }
    fn issue(roles: Roles, expires_at: Option<DateTime<Utc>>) -> Guarded<ApiKeyCommand> {
        Guarded::new(ApiKeyCommand::Issue {
            name: KeyName::parse("ci").unwrap(),
            roles,
            expires_at,
            secret_hash: hash('a'),
            at: at(),
        })
    }
    fn issued(expires_at: Option<DateTime<Utc>>) -> ApiKeyEvent {
        ApiKeyEvent::ApiKeyIssued {
            name: KeyName::parse("ci").unwrap(),
            roles: Roles::from([Role::Worker]),
            expires_at,
            secret_hash: hash('a'),
            at: at(),
        }
    }

    #[test]
    fn issue_a_key() {
        let expiry = Some(at() + Duration::days(30));
        Given::with(())
            .given_no_previous_events()
            .when(issue(Roles::from([Role::Worker]), expiry))
            .then_expect_events(vec![issued(expiry)]);
    }

    #[test]
    fn a_key_needs_a_role_and_a_future_expiry() {
        Given::with(())
            .given_no_previous_events()
            .when(issue(Roles::new(), None))
            .then_expect_error(Rejection::Domain(ApiKeyError::NoRoles));
        Given::with(())
            .given_no_previous_events()
            .when(issue(Roles::from([Role::Admin]), Some(at())))
            .then_expect_error(Rejection::Domain(ApiKeyError::ExpiryInPast));
    }

    #[test]
    fn a_key_is_issued_once() {
        Given::with(())
            .given(vec![issued(None)])
            .when(issue(Roles::from([Role::Worker]), None))
            .then_expect_error(Rejection::Domain(ApiKeyError::AlreadyIssued));
    }

    #[test]
    fn revoke_a_key_once() {
        Given::with(())
            .given(vec![issued(None)])
            .when(Guarded::new(ApiKeyCommand::Revoke { at: at() }))
            .then_expect_events(vec![ApiKeyEvent::ApiKeyRevoked { at: at() }]);
        Given::with(())
            .given(vec![issued(None), ApiKeyEvent::ApiKeyRevoked { at: at() }])
            .when(Guarded::new(ApiKeyCommand::Revoke { at: at() }))
            .then_expect_error(Rejection::Domain(ApiKeyError::AlreadyRevoked));
        Given::with(())
            .given_no_previous_events()
            .when(Guarded::new(ApiKeyCommand::Revoke { at: at() }))
            .then_expect_error(Rejection::Domain(ApiKeyError::NotFound));
    }

    #[test]
    fn authentication_refuses_wrong_revoked_and_expired_keys() {
        let expiry = at() + Duration::hours(1);
        let key = replay::<ApiKey>(&[issued(Some(expiry))]);
        let key = key.state();
        assert_eq!(
            key.authenticate(&hash('a'), at()),
            Ok(&Roles::from([Role::Worker]))
        );
        assert_eq!(
            key.authenticate(&hash('b'), at()),
            Err(KeyRejected::WrongSecret)
        );
        assert_eq!(
            key.authenticate(&hash('a'), expiry),
            Err(KeyRejected::Expired)
        );
        let revoked = replay::<ApiKey>(&[issued(None), ApiKeyEvent::ApiKeyRevoked { at: at() }]);
        assert_eq!(
            revoked.state().authenticate(&hash('a'), at()),
            Err(KeyRejected::Revoked)
        );
        assert_eq!(
            ApiKey::Unissued.authenticate(&hash('a'), at()),
            Err(KeyRejected::Unknown)
        );
    }

    #[test]
    fn names_and_hashes_are_validated() {
        assert_eq!(KeyName::parse(" "), Err(ApiKeyError::InvalidName));
        assert_eq!(
            KeyName::parse(&"k".repeat(65)),
            Err(ApiKeyError::InvalidName)
        );
        assert_eq!(
            KeyName::parse("nightly\u{202E}import"),
            Err(ApiKeyError::NameInvisibleCharacter {
                character: CodePoint::of('\u{202E}')
            })
        );
        assert_eq!(KeyName::parse("a\u{7}b"), Err(ApiKeyError::InvalidName));
        assert_eq!(
            KeyName::parse(&format!(" {} ", "k".repeat(62))).map(|name| name.as_str().len()),
            Ok(62)
        );
        assert!(KeyName::parse(&format!(" {} ", "k".repeat(63))).is_err());
        assert_eq!(
            SecretHash::parse("ABC"),
            Err(ApiKeyError::InvalidSecretHash)
        );
        assert_eq!(
            SecretHash::parse(&"A".repeat(64)),
            Err(ApiKeyError::InvalidSecretHash)
        );
    }

    #[test]
    fn commands_have_their_recorded_names() {
        let Guarded { command: issue, .. } = issue(Roles::from([Role::Admin]), None);
        assert_eq!(issue.name(), "IssueApiKey");
        assert_eq!(ApiKeyCommand::Revoke { at: at() }.name(), "RevokeApiKey");
    }

    #[test]
    fn error_codes_and_kinds_are_stable() {
        use crate::error::{DomainError, ErrorKind};
        let cases = [
            (
                ApiKeyError::InvalidName,
                "invalid_key_name",
                ErrorKind::Invalid,
            ),
            (
                ApiKeyError::NameInvisibleCharacter {
                    character: CodePoint::of('\u{200F}'),
                },
                "key_name_invisible_character",
                ErrorKind::Invalid,
            ),
            (
                ApiKeyError::InvalidSecretHash,
                "invalid_secret_hash",
                ErrorKind::Invalid,
            ),
            (
                ApiKeyError::NoRoles,
                "key_without_roles",
                ErrorKind::Invalid,
            ),
            (
                ApiKeyError::ExpiryInPast,
                "expiry_in_past",
                ErrorKind::Invalid,
            ),
            (
                ApiKeyError::AlreadyIssued,
                "api_key_already_issued",
                ErrorKind::Conflict,
            ),
            (
                ApiKeyError::NotFound,
                "api_key_not_found",
                ErrorKind::NotFound,
            ),
            (
                ApiKeyError::AlreadyRevoked,
                "api_key_revoked",
                ErrorKind::Rejected,
            ),
        ];
        for (error, code, kind) in cases {
            assert_eq!((error.code(), error.kind()), (code, kind), "{error:?}");
        }
        assert_eq!(
            ApiKeyError::NameInvisibleCharacter {
                character: CodePoint::of('\u{200F}')
            }
            .to_string(),
            "a key name must not contain invisible or bidirectional control characters (U+200F)"
        );
    }

    #[test]
    fn a_key_expiring_after_the_issue_time_is_issued_and_works_until_then() {
        let expiry = at() + Duration::seconds(1);
        Given::with(())
            .given_no_previous_events()
            .when(issue(Roles::from([Role::Worker]), Some(expiry)))
            .then_expect_events(vec![issued(Some(expiry))]);
        let key = replay::<ApiKey>(&[issued(Some(expiry))]);
        assert!(key.state().authenticate(&hash('a'), at()).is_ok());
        assert_eq!(
            key.state()
                .authenticate(&hash('a'), expiry + Duration::seconds(1)),
            Err(KeyRejected::Expired)
        );
    }

    fn any_command() -> impl proptest::strategy::Strategy<Value = ApiKeyCommand> {
        use proptest::prelude::*;
        prop_oneof![
            (0..3i64).prop_map(|minutes| ApiKeyCommand::Issue {
                name: KeyName::parse("ci").unwrap(),
                roles: Roles::from([Role::Worker]),
                expires_at: None,
                secret_hash: hash('a'),
                at: at() + Duration::minutes(minutes),
            }),
            (0..3i64).prop_map(|minutes| ApiKeyCommand::Revoke {
                at: at() + Duration::minutes(minutes)
            }),
        ]
    }

    proptest::proptest! {
        /// A snapshot after any event of any history, resumed with the rest, is the replay.
        #[test]
        fn snapshots_resume_to_the_replay(
            commands in proptest::collection::vec(any_command(), 0..6)
        ) {
            let history = crate::aggregate::history_of::<ApiKey>(commands);
            crate::aggregate::assert_snapshots_resume::<ApiKey>(&history);
        }
    }
}
