//! Community commands: categories, and posts with the one check no single aggregate can make
//! (the post's category exists and takes posts).
//!
//! The category is read before the post is appended, not locked: an archive that commits
//! between the two lets that one post in, as if it had been written a moment earlier. Nothing
//! depends on the category's state after the post exists, so no rule is broken by it.

use chrono::{DateTime, Utc};
use domain::aggregate::{Guarded, Rejection};
use domain::community::{
    Category, CategoryCommand, CommunityError, Post, PostCommand, WrittenPost,
};
use domain::identity::{StreamId, TenantId};
use uuid::Uuid;

use crate::bus::{CommandBus, CommandError, CommandOutcome};
use crate::metadata::CommandContext;

/// Issues community commands.
#[derive(Debug)]
pub struct CommunityCommands {
    categories: CommandBus<Category>,
    posts: CommandBus<Post>,
}

fn rejected(error: CommunityError) -> CommandError<CommunityError> {
    CommandError::Rejected(Rejection::Domain(error))
}

impl CommunityCommands {
    /// Community commands over one bus per aggregate.
    pub fn new(categories: CommandBus<Category>, posts: CommandBus<Post>) -> Self {
        Self { categories, posts }
    }

    /// Runs a command on category `category` of the context's tenant.
    ///
    /// # Errors
    /// See [`CommandBus::execute`].
    pub async fn category(
        &self,
        context: &CommandContext,
        category: Uuid,
        expected_version: Option<u64>,
        command: CategoryCommand,
        now: DateTime<Utc>,
    ) -> Result<CommandOutcome, CommandError<CommunityError>> {
        let stream = StreamId::new(context.tenant.clone(), category);
        let name = command.name();
        let guarded = Guarded::expecting(expected_version, command);
        self.categories
            .execute(context, &stream, guarded, name, now)
            .await
    }

    /// Writes post `post` (a [`PostCommand::Write`]) in the context's tenant, in a category
    /// that exists and is not archived.
    ///
    /// # Errors
    /// See [`CommandBus::execute`]; [`CommunityError::CategoryNotFound`],
    /// [`CommunityError::CategoryArchived`].
    pub async fn write_post(
        &self,
        context: &CommandContext,
        post: Uuid,
        command: PostCommand,
        now: DateTime<Utc>,
    ) -> Result<CommandOutcome, CommandError<CommunityError>> {
        let attempt = || self.checked_write(context, post, command.clone(), now);
        self.posts.idempotent(context, attempt).await
    }

    async fn checked_write(
        &self,
        context: &CommandContext,
        post: Uuid,
        command: PostCommand,
        now: DateTime<Utc>,
    ) -> Result<CommandOutcome, CommandError<CommunityError>> {
        if let PostCommand::Write { category, .. } = &command {
            let category = self
                .categories
                .load(&StreamId::new(context.tenant.clone(), *category))
                .await?;
            category.state().takes_posts().map_err(rejected)?;
        }
        let stream = StreamId::new(context.tenant.clone(), post);
        let name = command.name();
        self.posts
            .append(context, &stream, Guarded::new(command), name, now)
            .await
    }

    /// Runs any other command on post `post` of the context's tenant.
    ///
    /// # Errors
    /// See [`CommandBus::execute`].
    pub async fn post(
        &self,
        context: &CommandContext,
        post: Uuid,
        expected_version: Option<u64>,
        command: PostCommand,
        now: DateTime<Utc>,
    ) -> Result<CommandOutcome, CommandError<CommunityError>> {
        let stream = StreamId::new(context.tenant.clone(), post);
        let name = command.name();
        let guarded = Guarded::expecting(expected_version, command);
        self.posts
            .execute(context, &stream, guarded, name, now)
            .await
    }

    /// Post `post` of `tenant` as written (whose author the API authorizes against).
    ///
    /// # Errors
    /// [`CommunityError::PostNotFound`], or a store failure.
    pub async fn written_post(
        &self,
        tenant: &TenantId,
        post: Uuid,
    ) -> Result<WrittenPost, CommandError<CommunityError>> {
        match self
            .posts
            .load(&StreamId::new(tenant.clone(), post))
            .await?
            .state()
        {
            Post::Written(written) => Ok(written.clone()),
            Post::Unwritten => Err(rejected(CommunityError::PostNotFound)),
        }
    }
}
