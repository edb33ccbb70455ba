//! Authorization: whether a principal may perform an action. Pure functions, one rule per action.
//!
//! Every command and query route names its action; the API refuses to run a handler until
//! [`authorize`] allowed it. Tenancy is not decided here: every stream id and read-model row
//! is scoped by the principal's tenant, so another tenant's resources are simply not found.
//!
//! Each bounded context declares its own actions in its `policy.rs`, with `context_actions!`:
//! the variants, their stable names and their [`Rule`]s are written there once, side by side,
//! and the context's list of actions is derived from them. The crate root's `bounded_contexts!`
//! names each context's module and action enum once; `register_contexts!` below derives the
//! crate-wide [`Action`] from that list (with [`Action::all`], [`Action::name`],
//! [`Action::by_name`]) and re-exports each context's enum here. Adding a context is one line
//! there; nothing else keeps a list of actions.

use std::fmt;

use uuid::Uuid;

use crate::identity::{Principal, Role};

/// Who may perform an action: principals holding one of some roles and, for some actions, the
/// subject the action concerns (the user itself, or the account that owns a job or document).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rule {
    roles: &'static [Role],
    subject: bool,
}

impl Rule {
    /// Principals holding any of `roles` (none: nobody).
    pub const fn roles(roles: &'static [Role]) -> Self {
        Self {
            roles,
            subject: false,
        }
    }

    /// The same rule, and also the subject of the action, whatever its roles.
    pub const fn or_subject(self) -> Self {
        Self {
            roles: self.roles,
            subject: true,
        }
    }

    /// The roles that grant the action on anyone's resource.
    pub const fn allowed_roles(self) -> &'static [Role] {
        self.roles
    }

    /// Whether the subject of the action may perform it on itself without any of the roles.
    pub const fn allows_subject(self) -> bool {
        self.subject
    }

    /// Whether `principal` may act on `subject` under this rule.
    pub fn allows(self, principal: &Principal, subject: Option<Uuid>) -> bool {
        // The user itself, or for resources a principal owns (jobs, documents) its account.
        let is_subject = subject == Some(principal.account);
        (self.subject && is_subject) || self.roles.iter().any(|role| principal.has(*role))
    }
}

/// Declares one bounded context's actions and their rules, once.
///
/// ```text
/// context_actions! {
///     /// What can be done with users.
///     pub enum UserAction in "users" {
///         /// Create a user in the tenant.
///         RegisterUser = "register_user" => Rule::roles(&[Role::Admin]),
///         /// Rename a user (the user itself, or an admin).
///         ChangeDisplayName = "change_display_name" => Rule::roles(&[Role::Admin]).or_subject(),
///     }
/// }
/// ```
///
/// generates the enum and, on it, `CONTEXT` (`"users"`), `ALL` (every variant, in order),
/// `name()` (`"users.register_user"`) and `rule()`. The names are written by hand because they
/// are an external contract (logs, the security walk, documentation): renaming a Rust variant
/// must not change them.
macro_rules! context_actions {
    (
        $(#[$meta:meta])*
        pub enum $enum:ident in $context:literal {
            $(
                $(#[$variant_meta:meta])*
                $variant:ident = $name:literal => $rule:expr
            ),+ $(,)?
        }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum $enum {
            $($(#[$variant_meta])* $variant,)+
        }

        impl $enum {
            /// The context's name: the first part of each of its actions' names.
            pub const CONTEXT: &'static str = $context;

            /// Every action of the context, in declaration order.
            pub const ALL: &'static [Self] = &[$(Self::$variant),+];

            /// The action's stable name, `context.action`.
            pub const fn name(self) -> &'static str {
                match self {
                    $(Self::$variant => concat!($context, ".", $name),)+
                }
            }

            /// Who may perform the action.
            pub const fn rule(self) -> $crate::policy::Rule {
                match self {
                    $(Self::$variant => $rule,)+
                }
            }
        }
    };
}
pub(crate) use context_actions;

/// Generates [`Action`] from the registered contexts' action enums (each named as
/// `module::Enum`, re-exported from this module): the enum with one variant per context, `From`
/// each context's enum, and the derived lookups.
macro_rules! register_contexts {
    ($($(#[$meta:meta])* $context:ident($module:ident::$actions:ident)),+ $(,)?) => {
        $(pub use crate::$module::$actions;)+

        /// Everything a principal can ask the system to do: one variant per bounded context,
        /// holding that context's action. Build one with `.into()` from a context's action.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum Action {
            $($(#[$meta])* $context($actions),)+
        }

        $(
            impl From<$actions> for Action {
                fn from(action: $actions) -> Self {
                    Self::$context(action)
                }
            }
        )+

        impl Action {
            /// Every action of every registered context, context by context.
            pub fn all() -> impl Iterator<Item = Action> {
                let all = std::iter::empty();
                $(let all = all.chain(<$actions>::ALL.iter().copied().map(Self::$context));)+
                all
            }

            /// The stable name of the action, `context.action` (e.g. `users.register_user`).
            pub const fn name(self) -> &'static str {
                match self {
                    $(Self::$context(action) => action.name(),)+
                }
            }

            /// Who may perform the action.
            pub const fn rule(self) -> Rule {
                match self {
                    $(Self::$context(action) => action.rule(),)+
                }
            }
        }
    };
}

bounded_contexts!(register_contexts);

impl Action {
    /// The action named `name` (as [`Action::name`] gives it), if there is one.
    pub fn by_name(name: &str) -> Option<Action> {
        Self::all().find(|action| action.name() == name)
    }
}

impl fmt::Display for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Why an action was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Denied {
    /// The principal lacks the role (and does not own the resource).
    #[error("your roles do not allow this action")]
    Forbidden,
}

/// Whether `principal` may perform `action`; `subject` is the user the action concerns, if
/// any, so that users may act on themselves where the action's [`Rule`] allows it.
///
/// # Errors
/// [`Denied::Forbidden`].
pub fn authorize(
    principal: &Principal,
    action: impl Into<Action>,
    subject: Option<Uuid>,
) -> Result<(), Denied> {
    if action.into().rule().allows(principal, subject) {
        Ok(())
    } else {
        Err(Denied::Forbidden)
    }
}

#[cfg(test)]
mod tests;
