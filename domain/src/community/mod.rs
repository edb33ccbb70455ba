//! Community: categories of posts that the tenant's users write for each other to read.
//!
//! Admins keep the categories; users write posts in open ones; authors edit their own posts
//! within a window and remove them; moderators remove, lock and pin. Nothing is ever deleted:
//! a removed post keeps its history, and only the read side decides who still sees it.
//!
//! A post names its category, and whether that category takes posts is not decidable inside
//! the post: the command side reads the category before it appends (see `commands`).

mod category;
mod error;
mod policy;
mod post;
mod values;

#[cfg(test)]
mod stored_events;
#[cfg(test)]
mod tests;

pub use category::{Category, CategoryCommand, CategoryEvent};
pub use error::CommunityError;
pub use policy::{sees_removed, CommunityAction};
pub use post::{Post, PostCommand, PostEvent, WrittenPost};
pub use values::{Body, Title};
