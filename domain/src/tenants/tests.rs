//! Given/when/then for every tenant command in every state, and the settings' bounds.

use chrono::{DateTime, TimeZone, Utc};
use cqrs_es::test::TestFramework;
use uuid::Uuid;

use super::*;
use crate::aggregate::{Guarded, Rejection, Versioned};
use crate::documents::ContentType;
use crate::identity::TenantId;

type Given = TestFramework<Versioned<Tenant>>;

fn at() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 12, 1, 9, 0, 0).unwrap()
}
fn key() -> Uuid {
    Uuid::from_u128(7)
}
fn name() -> TenantName {
    TenantName::parse("Acme").unwrap()
}
fn reason() -> SuspensionReason {
    SuspensionReason::parse("invoice overdue").unwrap()
}
fn quota(jobs: u64) -> TenantSettings {
    TenantSettings {
        quota_jobs_per_day: Some(jobs),
        ..TenantSettings::default()
    }
}
fn provision() -> TenantCommand {
    TenantCommand::Provision {
        display_name: name(),
        settings: quota(10),
        first_admin_key: key(),
        at: at(),
    }
}
fn provisioned() -> TenantEvent {
    TenantEvent::TenantProvisioned {
        display_name: name(),
        settings: quota(10),
        first_admin_key: key(),
        at: at(),
    }
}
fn suspended() -> TenantEvent {
    TenantEvent::TenantSuspended {
        reason: reason(),
        at: at(),
    }
}
fn when(command: TenantCommand) -> Guarded<TenantCommand> {
    Guarded::new(command)
}
fn refused(error: TenantError) -> Rejection<TenantError> {
    Rejection::Domain(error)
}

/// The three states: unprovisioned, active and suspended.
fn active() -> Vec<TenantEvent> {
    vec![provisioned()]
}
fn suspended_tenant() -> Vec<TenantEvent> {
    vec![provisioned(), suspended()]
}

#[test]
fn provision_an_unprovisioned_tenant() {
    Given::with(())
        .given_no_previous_events()
        .when(when(provision()))
        .then_expect_events(vec![provisioned()]);
}

#[test]
fn provisioning_twice_is_a_conflict_active_or_suspended() {
    for history in [active(), suspended_tenant()] {
        Given::with(())
            .given(history)
            .when(when(provision()))
            .then_expect_error(refused(TenantError::AlreadyProvisioned));
    }
}

#[test]
fn every_other_command_on_an_unprovisioned_tenant_is_not_found() {
    let commands = [
        TenantCommand::ChangeSettings {
            settings: quota(1),
            at: at(),
        },
        TenantCommand::Suspend {
            reason: reason(),
            at: at(),
        },
        TenantCommand::Reactivate { at: at() },
    ];
    for command in commands {
        Given::with(())
            .given_no_previous_events()
            .when(when(command))
            .then_expect_error(refused(TenantError::NotFound));
    }
}

#[test]
fn change_settings_when_active_or_suspended() {
    for history in [active(), suspended_tenant()] {
        Given::with(())
            .given(history)
            .when(when(TenantCommand::ChangeSettings {
                settings: quota(20),
                at: at(),
            }))
            .then_expect_events(vec![TenantEvent::TenantSettingsChanged {
                settings: quota(20),
                at: at(),
            }]);
    }
}

#[test]
fn unchanged_settings_are_refused() {
    Given::with(())
        .given(active())
        .when(when(TenantCommand::ChangeSettings {
            settings: quota(10),
            at: at(),
        }))
        .then_expect_error(refused(TenantError::SettingsUnchanged));
}

#[test]
fn suspend_an_active_tenant() {
    Given::with(())
        .given(active())
        .when(when(TenantCommand::Suspend {
            reason: reason(),
            at: at(),
        }))
        .then_expect_events(vec![suspended()]);
}

#[test]
fn suspending_a_suspended_tenant_is_refused() {
    Given::with(())
        .given(suspended_tenant())
        .when(when(TenantCommand::Suspend {
            reason: reason(),
            at: at(),
        }))
        .then_expect_error(refused(TenantError::AlreadySuspended));
}

#[test]
fn reactivate_a_suspended_tenant() {
    Given::with(())
        .given(suspended_tenant())
        .when(when(TenantCommand::Reactivate { at: at() }))
        .then_expect_events(vec![TenantEvent::TenantReactivated { at: at() }]);
}

#[test]
fn reactivating_an_active_tenant_is_refused() {
    Given::with(())
        .given(active())
        .when(when(TenantCommand::Reactivate { at: at() }))
        .then_expect_error(refused(TenantError::NotSuspended));
}

#[test]
fn state_follows_history_and_keeps_settings_through_suspension() {
    use crate::aggregate::{replay, Decider};
    let history = [
        provisioned(),
        suspended(),
        TenantEvent::TenantSettingsChanged {
            settings: quota(3),
            at: at(),
        },
    ];
    let tenant = replay::<Tenant>(&history).state().clone();
    assert_eq!(tenant.suspension(), Some(&reason()));
    assert_eq!(tenant.settings(), quota(3));
    let mut restored = tenant.clone();
    restored.evolve(&TenantEvent::TenantReactivated { at: at() });
    assert_eq!(restored.suspension(), None);
    assert_eq!(restored.settings(), quota(3));
    assert_eq!(Tenant::Unprovisioned.settings(), TenantSettings::default());
}

#[test]
fn stream_ids_are_stable_and_distinct_per_tenant() {
    let acme = TenantId::parse("acme").unwrap();
    let globex = TenantId::parse("globex").unwrap();
    assert_eq!(Tenant::stream_id(&acme), Tenant::stream_id(&acme));
    assert_ne!(Tenant::stream_id(&acme), Tenant::stream_id(&globex));
}

#[test]
fn settings_out_of_bounds_are_named() {
    let settings = TenantSettings {
        commands_per_minute: Some(0),
        job_max_attempts: Some(101),
        job_lease_secs: Some(4),
        quota_jobs_per_day: Some(0),
        ..TenantSettings::default()
    };
    let refused = settings.validated().unwrap_err();
    let names: Vec<&str> = refused.iter().map(|r| r.setting).collect();
    assert_eq!(
        names,
        ["commands_per_minute", "job_max_attempts", "job_lease_secs"]
    );
    let edges = TenantSettings {
        commands_per_minute: Some(1),
        queries_per_minute: Some(1_000_000),
        document_max_bytes: Some(1),
        job_max_attempts: Some(100),
        job_lease_secs: Some(5),
        quota_jobs_per_day: Some(0),
        quota_stored_bytes: Some(0),
        document_types: Some(vec![ContentType::Pdf]),
        public_community_pages: Some(false),
    };
    assert_eq!(edges.clone().validated(), Ok(edges));
    for types in [vec![], vec![ContentType::Pdf, ContentType::Pdf]] {
        let settings = TenantSettings {
            document_types: Some(types),
            ..TenantSettings::default()
        };
        assert_eq!(
            settings.validated().unwrap_err()[0].setting,
            "document_types"
        );
    }
}

#[test]
fn settings_stored_by_a_newer_version_still_read() {
    let read = serde_json::from_str::<TenantSettings>(r#"{"job_max_attempts": 3, "later": 1}"#);
    assert_eq!(
        read.unwrap(),
        TenantSettings {
            job_max_attempts: Some(3),
            ..TenantSettings::default()
        }
    );
}

#[test]
fn names_and_reasons_follow_the_rules_of_names() {
    assert!(TenantName::parse(" Acme ").is_ok());
    assert!(TenantName::parse("").is_err());
    assert!(TenantName::parse(&"a".repeat(101)).is_err());
    assert!(TenantName::parse("Ac\u{202E}me").is_err());
    assert!(SuspensionReason::parse("line\nbreak").is_err());
    assert!(SuspensionReason::parse(&"a".repeat(500)).is_ok());
}

#[test]
fn quotas_admit_up_to_their_limit() {
    assert_eq!(TenantSettings::default().admit_job(u64::MAX), Ok(()));
    let settings = TenantSettings {
        quota_jobs_per_day: Some(2),
        quota_stored_bytes: Some(100),
        ..TenantSettings::default()
    };
    assert_eq!(settings.admit_job(1), Ok(()));
    let refused = settings.admit_job(2).unwrap_err();
    assert_eq!(
        (refused.quota, refused.limit, refused.used),
        ("quota_jobs_per_day", 2, 2)
    );
    assert_eq!(settings.storage_left(40), Ok(Some(60)));
    assert_eq!(
        settings.storage_left(100).unwrap_err().quota,
        "quota_stored_bytes"
    );
    assert_eq!(TenantSettings::default().storage_left(1 << 60), Ok(None));
    let none = TenantSettings {
        quota_jobs_per_day: Some(0),
        ..TenantSettings::default()
    };
    assert!(none.admit_job(0).is_err());
}
