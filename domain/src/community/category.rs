//! A category: a named place for posts, kept by admins.

use chrono::{DateTime, Utc};
use cqrs_es::DomainEvent;
use serde::{Deserialize, Serialize};

use super::{Body, CommunityError, Title};
use crate::aggregate::Decider;

/// The category aggregate's state.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub enum Category {
    /// Not created yet: the only command accepted is `Create`.
    #[default]
    Absent,
    /// A category.
    Created {
        /// Its name.
        name: Title,
        /// What belongs in it (markdown), if said.
        description: Option<Body>,
        /// Whether it no longer takes posts or changes.
        archived: bool,
    },
}

impl Category {
    /// Whether a post may be written in this category now.
    ///
    /// # Errors
    /// [`CommunityError::CategoryNotFound`] or [`CommunityError::CategoryArchived`].
    pub fn takes_posts(&self) -> Result<(), CommunityError> {
        match self {
            Self::Absent => Err(CommunityError::CategoryNotFound),
            Self::Created { archived: true, .. } => Err(CommunityError::CategoryArchived),
            Self::Created { .. } => Ok(()),
        }
    }
}

/// What an admin can ask of a category. Times are supplied by the caller.
#[derive(Debug, Clone, PartialEq)]
pub enum CategoryCommand {
    /// Create the category under the aggregate's id.
    Create {
        /// Its name.
        name: Title,
        /// What belongs in it.
        description: Option<Body>,
        /// When.
        at: DateTime<Utc>,
    },
    /// Rename it.
    Rename {
        /// The new name.
        name: Title,
        /// When.
        at: DateTime<Utc>,
    },
    /// Replace (or clear, with `None`) its description.
    Describe {
        /// The new description.
        description: Option<Body>,
        /// When.
        at: DateTime<Utc>,
    },
    /// Archive it: no new posts, no changes; its posts stay readable.
    Archive {
        /// When.
        at: DateTime<Utc>,
    },
}

impl CategoryCommand {
    /// The command's name as recorded in event metadata.
    pub fn name(&self) -> &'static str {
        match self {
            Self::Create { .. } => "CreateCategory",
            Self::Rename { .. } => "RenameCategory",
            Self::Describe { .. } => "DescribeCategory",
            Self::Archive { .. } => "ArchiveCategory",
        }
    }
}

/// What happened to a category. Stored forever: add variants, never change existing ones
/// without an upcaster and a new `event_version`. The serde tag is the `event_type()`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum CategoryEvent {
    /// A category was created.
    CategoryCreated {
        /// Its name.
        name: Title,
        /// Its description.
        description: Option<Body>,
        /// When.
        at: DateTime<Utc>,
    },
    /// A category was renamed.
    CategoryRenamed {
        /// The new name.
        name: Title,
        /// When.
        at: DateTime<Utc>,
    },
    /// A category's description was replaced or cleared.
    CategoryDescribed {
        /// The new description.
        description: Option<Body>,
        /// When.
        at: DateTime<Utc>,
    },
    /// A category was archived.
    CategoryArchived {
        /// When.
        at: DateTime<Utc>,
    },
}

impl CategoryEvent {
    /// When the change was accepted.
    pub fn at(&self) -> DateTime<Utc> {
        match self {
            Self::CategoryCreated { at, .. }
            | Self::CategoryRenamed { at, .. }
            | Self::CategoryDescribed { at, .. }
            | Self::CategoryArchived { at } => *at,
        }
    }
}

impl DomainEvent for CategoryEvent {
    /// The stored event type. These strings are part of the stored data: never change one.
    fn event_type(&self) -> String {
        match self {
            Self::CategoryCreated { .. } => "CategoryCreated",
            Self::CategoryRenamed { .. } => "CategoryRenamed",
            Self::CategoryDescribed { .. } => "CategoryDescribed",
            Self::CategoryArchived { .. } => "CategoryArchived",
        }
        .to_owned()
    }

    /// Changes only together with an upcaster for the previous version.
    fn event_version(&self) -> String {
        "1".to_owned()
    }
}

impl Decider for Category {
    const TYPE: &'static str = "Category";
    const SNAPSHOT_SCHEMA: u32 = 1;
    type Command = CategoryCommand;
    type Event = CategoryEvent;
    type Error = CommunityError;

    fn decide(&self, command: CategoryCommand) -> Result<Vec<CategoryEvent>, CommunityError> {
        let (name_now, description_now) = match (self, &command) {
            (Self::Absent, CategoryCommand::Create { .. }) => (None, None),
            (Self::Absent, _) => return Err(CommunityError::CategoryNotFound),
            (Self::Created { .. }, CategoryCommand::Create { .. }) => {
                return Err(CommunityError::CategoryExists)
            }
            (Self::Created { archived: true, .. }, _) => {
                return Err(CommunityError::CategoryArchived)
            }
            (
                Self::Created {
                    name, description, ..
                },
                _,
            ) => (Some(name), Some(description)),
        };
        let event = match command {
            CategoryCommand::Create {
                name,
                description,
                at,
            } => CategoryEvent::CategoryCreated {
                name,
                description,
                at,
            },
            CategoryCommand::Rename { name, at } => {
                if name_now == Some(&name) {
                    return Err(CommunityError::CategoryUnchanged);
                }
                CategoryEvent::CategoryRenamed { name, at }
            }
            CategoryCommand::Describe { description, at } => {
                if description_now == Some(&description) {
                    return Err(CommunityError::CategoryUnchanged);
                }
                CategoryEvent::CategoryDescribed { description, at }
            }
            CategoryCommand::Archive { at } => CategoryEvent::CategoryArchived { at },
        };
        Ok(vec![event])
    }

    fn evolve(&mut self, event: &CategoryEvent) {
        match (self, event) {
            (
                this @ Self::Absent,
                CategoryEvent::CategoryCreated {
                    name, description, ..
                },
            ) => {
                *this = Self::Created {
                    name: name.clone(),
                    description: description.clone(),
                    archived: false,
                };
            }
            (Self::Created { name, .. }, CategoryEvent::CategoryRenamed { name: new, .. }) => {
                *name = new.clone();
            }
            (
                Self::Created { description, .. },
                CategoryEvent::CategoryDescribed {
                    description: new, ..
                },
            ) => *description = new.clone(),
            (Self::Created { archived, .. }, CategoryEvent::CategoryArchived { .. }) => {
                *archived = true;
            }
            // `decide` never produces any other pairing; history is applied as recorded.
            _ => {}
        }
    }
}
