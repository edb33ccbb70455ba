//! `roles`: which parts of the backend this process runs.
//!
//! One binary serves every role so each side scales on its own: run several `commands`
//! processes behind a load balancer, `queries` processes next to read replicas, and `workers`
//! (relay, projection builders, scheduler) where they are cheapest. The default runs all three.
//! Health, metrics and the OpenAPI document and docs UI are served by every role, so each
//! process can be probed and explored alike.
//!
//! From a file: `roles = ["commands", "queries"]`; from the environment:
//! `APP_ROLES=commands,queries` (a comma-separated list; `APP_ROLES='["commands"]'` works too).

use std::fmt;

use serde::de::{self, SeqAccess, Visitor};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// One part of the backend a process can run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Role {
    /// The command routes (requests that append events).
    Commands,
    /// The query routes (requests that read projections).
    Queries,
    /// The background workers: the relay, the projection builders and the job scheduler.
    Workers,
}

impl Role {
    /// Every role, in the order they are printed.
    pub const ALL: &'static [Role] = &[Role::Commands, Role::Queries, Role::Workers];

    /// The role's configuration name.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Commands => "commands",
            Role::Queries => "queries",
            Role::Workers => "workers",
        }
    }

    /// The role named `name` (exact, lowercase), if any.
    pub fn by_name(name: &str) -> Option<Role> {
        Role::ALL.iter().copied().find(|role| role.as_str() == name)
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A non-empty set of [`Role`]s; the default is all of them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Roles {
    commands: bool,
    queries: bool,
    workers: bool,
}

/// Why a list of roles was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RolesError {
    /// A name that is not a role.
    #[error("unknown role {0:?} (accepted values: commands, queries, workers)")]
    Unknown(String),
    /// No role at all: the process would do nothing.
    #[error("no role given (accepted values: commands, queries, workers)")]
    Empty,
}

impl Roles {
    /// Every role: the whole backend in one process.
    pub const fn all() -> Self {
        Self {
            commands: true,
            queries: true,
            workers: true,
        }
    }

    /// Exactly the given roles (duplicates are harmless).
    ///
    /// # Errors
    /// [`RolesError::Empty`] when `roles` is empty.
    pub fn new(roles: impl IntoIterator<Item = Role>) -> Result<Self, RolesError> {
        let mut set = Self {
            commands: false,
            queries: false,
            workers: false,
        };
        for role in roles {
            *set.slot(role) = true;
        }
        if set.iter().next().is_none() {
            return Err(RolesError::Empty);
        }
        Ok(set)
    }

    /// Parses a comma-separated list such as `commands,queries` (spaces around names are
    /// ignored).
    ///
    /// # Errors
    /// [`RolesError`] for an unknown name or an empty list.
    pub fn parse(list: &str) -> Result<Self, RolesError> {
        Self::from_names(list.split(','))
    }

    fn from_names<'a>(names: impl IntoIterator<Item = &'a str>) -> Result<Self, RolesError> {
        let roles = names
            .into_iter()
            .map(str::trim)
            .filter(|name| !name.is_empty())
            .map(|name| Role::by_name(name).ok_or_else(|| RolesError::Unknown(name.to_owned())))
            .collect::<Result<Vec<_>, _>>()?;
        Self::new(roles)
    }

    fn slot(&mut self, role: Role) -> &mut bool {
        match role {
            Role::Commands => &mut self.commands,
            Role::Queries => &mut self.queries,
            Role::Workers => &mut self.workers,
        }
    }

    /// Whether this process runs `role`.
    pub fn contains(&self, role: Role) -> bool {
        match role {
            Role::Commands => self.commands,
            Role::Queries => self.queries,
            Role::Workers => self.workers,
        }
    }

    /// Whether this process serves the command routes.
    pub fn serves_commands(&self) -> bool {
        self.commands
    }

    /// Whether this process serves the query routes.
    pub fn serves_queries(&self) -> bool {
        self.queries
    }

    /// Whether this process runs the background workers (each still subject to its own
    /// `enabled` setting; see [`Settings::runs_relay`](super::Settings::runs_relay)).
    pub fn runs_workers(&self) -> bool {
        self.workers
    }

    /// The roles in this set, in [`Role::ALL`] order.
    pub fn iter(&self) -> impl Iterator<Item = Role> + '_ {
        Role::ALL
            .iter()
            .copied()
            .filter(|role| self.contains(*role))
    }
}

impl Default for Roles {
    fn default() -> Self {
        Self::all()
    }
}

impl fmt::Display for Roles {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (index, role) in self.iter().enumerate() {
            if index > 0 {
                f.write_str(",")?;
            }
            f.write_str(role.as_str())?;
        }
        Ok(())
    }
}

impl Serialize for Roles {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_seq(self.iter().map(Role::as_str))
    }
}

impl<'de> Deserialize<'de> for Roles {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(RolesVisitor)
    }
}

/// Accepts a list of names (TOML, JSON-ish environment values) or one comma-separated string
/// (the natural form of an environment variable).
struct RolesVisitor;

impl<'de> Visitor<'de> for RolesVisitor {
    type Value = Roles;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a list of roles (commands, queries, workers) or a comma-separated string")
    }

    fn visit_str<E: de::Error>(self, list: &str) -> Result<Roles, E> {
        Roles::parse(list).map_err(E::custom)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Roles, A::Error> {
        let mut names = Vec::new();
        while let Some(name) = seq.next_element::<String>()? {
            names.push(name);
        }
        Roles::from_names(names.iter().map(String::as_str)).map_err(de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_is_every_role() {
        let roles = Roles::default();
        assert!(roles.serves_commands() && roles.serves_queries() && roles.runs_workers());
        assert_eq!(roles.to_string(), "commands,queries,workers");
    }

    #[test]
    fn a_comma_separated_list_parses_with_spaces_and_duplicates() {
        let roles = Roles::parse(" queries , commands,queries").expect("parses");
        assert!(roles.serves_commands() && roles.serves_queries());
        assert!(!roles.runs_workers());
        assert_eq!(roles.to_string(), "commands,queries");
        assert_eq!(
            Roles::parse("workers"),
            Roles::new([Role::Workers]),
            "a single role"
        );
    }

    #[test]
    fn unknown_and_empty_lists_are_refused() {
        assert_eq!(
            Roles::parse("commands,reads"),
            Err(RolesError::Unknown("reads".to_owned()))
        );
        assert_eq!(
            Roles::parse("Commands"),
            Err(RolesError::Unknown("Commands".to_owned()))
        );
        assert_eq!(Roles::parse(""), Err(RolesError::Empty));
        assert_eq!(Roles::parse(" , "), Err(RolesError::Empty));
        assert_eq!(Roles::new([]), Err(RolesError::Empty));
    }

    #[test]
    fn every_role_round_trips_through_its_name() {
        for role in Role::ALL {
            assert_eq!(Role::by_name(role.as_str()), Some(*role));
        }
    }
}
