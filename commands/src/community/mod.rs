//! Community commands, with the checks no single aggregate can make: a post's category takes
//! posts; a comment's post takes comments and its parent is a top-level comment of that post;
//! a reaction's post or comment is there to react to.
//!
//! What is checked is read before the append, not locked: a lock or an archive that commits
//! between the two lets that one comment or post in, as if it had been written a moment
//! earlier. Nothing depends on the checked state after the append, so no rule is broken by it.

use chrono::{DateTime, Utc};
use domain::aggregate::{Guarded, Rejection};
use domain::api_keys::ApiKey;
use domain::community::{
    Announcement, Body, Category, CategoryCommand, Comment, CommentCommand, CommunityError, Member,
    Post, PostCommand, PublicPages, ReactionCommand, Reactions, Readings, Report, SetPublicPages,
    WrittenComment, WrittenPost,
};
use domain::identity::{StreamId, TenantId};
use domain::users::User;
use uuid::Uuid;

use crate::bus::{CommandBus, CommandError, CommandOutcome};
use crate::metadata::CommandContext;

/// A comment as a member asked for it; its post's category is looked up.
#[derive(Debug, Clone, PartialEq)]
pub struct NewComment {
    /// The post to comment on.
    pub post: Uuid,
    /// The top-level comment of that post replied to, if any.
    pub parent: Option<Uuid>,
    /// The writing account.
    pub author: Uuid,
    /// The markdown.
    pub body: Body,
    /// When.
    pub at: DateTime<Utc>,
}

/// Issues community commands.
#[derive(Debug)]
pub struct CommunityCommands {
    categories: CommandBus<Category>,
    posts: CommandBus<Post>,
    comments: CommandBus<Comment>,
    reactions: CommandBus<Reactions>,
    reports: CommandBus<Report>,
    members: CommandBus<Member>,
    users: CommandBus<User>,
    keys: CommandBus<ApiKey>,
    announcements: CommandBus<Announcement>,
    readings: CommandBus<Readings>,
    public_pages: CommandBus<PublicPages>,
}

/// One bus per community aggregate.
#[derive(Debug)]
pub struct CommunityBuses {
    /// Categories.
    pub categories: CommandBus<Category>,
    /// Posts.
    pub posts: CommandBus<Post>,
    /// Comments.
    pub comments: CommandBus<Comment>,
    /// Reactions.
    pub reactions: CommandBus<Reactions>,
    /// Reports.
    pub reports: CommandBus<Report>,
    /// Members' standing.
    pub members: CommandBus<Member>,
    /// Users, read to tell a member exists.
    pub users: CommandBus<User>,
    /// API keys, read to tell a member exists.
    pub keys: CommandBus<ApiKey>,
    /// Announcements.
    pub announcements: CommandBus<Announcement>,
    /// Members' readings of announcements.
    pub readings: CommandBus<Readings>,
    /// Each tenant's public-pages switch.
    pub public_pages: CommandBus<PublicPages>,
}

mod announcements;
mod moderation;

fn rejected(error: CommunityError) -> CommandError<CommunityError> {
    CommandError::Rejected(Rejection::Domain(error))
}

impl CommunityCommands {
    /// Community commands over one bus per aggregate.
    pub fn new(buses: CommunityBuses) -> Self {
        let CommunityBuses {
            categories,
            posts,
            comments,
            reactions,
            reports,
            members,
            users,
            keys,
            announcements,
            readings,
            public_pages,
        } = buses;
        Self {
            categories,
            posts,
            comments,
            reactions,
            reports,
            members,
            users,
            keys,
            announcements,
            readings,
            public_pages,
        }
    }

    /// Opens the context's tenant's community to anonymous readers, or closes it; asking for
    /// the state it is in changes nothing.
    ///
    /// # Errors
    /// See [`CommandBus::execute`].
    pub async fn set_public_pages(
        &self,
        context: &CommandContext,
        enabled: bool,
        now: DateTime<Utc>,
    ) -> Result<CommandOutcome, CommandError<CommunityError>> {
        let stream = StreamId::new(
            context.tenant.clone(),
            PublicPages::stream_id(&context.tenant),
        );
        let command = SetPublicPages { enabled, at: now };
        self.public_pages
            .execute(
                context,
                &stream,
                Guarded::new(command),
                "SetPublicPages",
                now,
            )
            .await
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
        if let PostCommand::Write {
            category, author, ..
        } = &command
        {
            self.may_write(&context.tenant, *author, now).await?;
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

    /// Runs any other command on post `post` of the context's tenant; an edit only while its
    /// author is not suspended.
    ///
    /// # Errors
    /// See [`CommandBus::execute`]; [`CommunityError::Suspended`].
    pub async fn post(
        &self,
        context: &CommandContext,
        post: Uuid,
        expected_version: Option<u64>,
        command: PostCommand,
        now: DateTime<Utc>,
    ) -> Result<CommandOutcome, CommandError<CommunityError>> {
        let attempt = || self.checked_post(context, post, expected_version, command.clone(), now);
        self.posts.idempotent(context, attempt).await
    }

    async fn checked_post(
        &self,
        context: &CommandContext,
        post: Uuid,
        expected_version: Option<u64>,
        command: PostCommand,
        now: DateTime<Utc>,
    ) -> Result<CommandOutcome, CommandError<CommunityError>> {
        if let PostCommand::Edit { .. } = command {
            let author = self.written_post(&context.tenant, post).await?.author;
            self.may_write(&context.tenant, author, now).await?;
        }
        let stream = StreamId::new(context.tenant.clone(), post);
        let name = command.name();
        let guarded = Guarded::expecting(expected_version, command);
        self.posts
            .append(context, &stream, guarded, name, now)
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

    /// Writes comment `comment` in the context's tenant, on a post that takes comments,
    /// replying (if it does) to a top-level comment of that post.
    ///
    /// # Errors
    /// See [`CommandBus::execute`]; [`CommunityError::PostNotFound`],
    /// [`CommunityError::PostRemoved`], [`CommunityError::PostLocked`],
    /// [`CommunityError::ParentNotFound`], [`CommunityError::ReplyToReply`],
    /// [`CommunityError::CommentRemoved`].
    pub async fn write_comment(
        &self,
        context: &CommandContext,
        comment: Uuid,
        new: NewComment,
        now: DateTime<Utc>,
    ) -> Result<CommandOutcome, CommandError<CommunityError>> {
        let attempt = || self.checked_comment(context, comment, new.clone(), now);
        self.comments.idempotent(context, attempt).await
    }

    async fn checked_comment(
        &self,
        context: &CommandContext,
        comment: Uuid,
        new: NewComment,
        now: DateTime<Utc>,
    ) -> Result<CommandOutcome, CommandError<CommunityError>> {
        self.may_write(&context.tenant, new.author, now).await?;
        let post = self.written_post(&context.tenant, new.post).await?;
        post.takes(true).map_err(rejected)?;
        if let Some(parent) = new.parent {
            let parent = match self.written_comment(&context.tenant, parent).await {
                Err(CommandError::Rejected(Rejection::Domain(CommunityError::CommentNotFound))) => {
                    Err(rejected(CommunityError::ParentNotFound))
                }
                other => other,
            }?;
            parent.takes_replies_on(new.post).map_err(rejected)?;
        }
        let command = CommentCommand::Write {
            post: new.post,
            category: post.category,
            parent: new.parent,
            author: new.author,
            body: new.body,
            at: new.at,
        };
        let stream = StreamId::new(context.tenant.clone(), comment);
        let name = command.name();
        self.comments
            .append(context, &stream, Guarded::new(command), name, now)
            .await
    }

    /// Runs any other command on comment `comment` of the context's tenant; an edit only
    /// while its author is not suspended.
    ///
    /// # Errors
    /// See [`CommandBus::execute`]; [`CommunityError::Suspended`].
    pub async fn comment(
        &self,
        context: &CommandContext,
        comment: Uuid,
        expected_version: Option<u64>,
        command: CommentCommand,
        now: DateTime<Utc>,
    ) -> Result<CommandOutcome, CommandError<CommunityError>> {
        let attempt = || {
            self.checked_comment_change(context, comment, expected_version, command.clone(), now)
        };
        self.comments.idempotent(context, attempt).await
    }

    async fn checked_comment_change(
        &self,
        context: &CommandContext,
        comment: Uuid,
        expected_version: Option<u64>,
        command: CommentCommand,
        now: DateTime<Utc>,
    ) -> Result<CommandOutcome, CommandError<CommunityError>> {
        if let CommentCommand::Edit { .. } = command {
            let written = self.written_comment(&context.tenant, comment).await?;
            // A comment lives on with its post: under a removed or hidden post it is frozen.
            self.written_post(&context.tenant, written.post)
                .await?
                .changeable()
                .map_err(rejected)?;
            self.may_write(&context.tenant, written.author, now).await?;
        }
        let stream = StreamId::new(context.tenant.clone(), comment);
        let name = command.name();
        let guarded = Guarded::expecting(expected_version, command);
        self.comments
            .append(context, &stream, guarded, name, now)
            .await
    }

    /// Comment `comment` of `tenant` as written (whose author the API authorizes against).
    ///
    /// # Errors
    /// [`CommunityError::CommentNotFound`], or a store failure.
    pub async fn written_comment(
        &self,
        tenant: &TenantId,
        comment: Uuid,
    ) -> Result<WrittenComment, CommandError<CommunityError>> {
        match self
            .comments
            .load(&StreamId::new(tenant.clone(), comment))
            .await?
            .state()
        {
            Comment::Written(written) => Ok(written.clone()),
            Comment::Unwritten => Err(rejected(CommunityError::CommentNotFound)),
        }
    }

    /// Adds or withdraws the member's reaction to a post or comment that is there to react to
    /// (written, not removed). A repeat changes nothing and answers with the current version.
    ///
    /// # Errors
    /// See [`CommandBus::execute`]; the target's `…NotFound` or `…Removed`.
    pub async fn react(
        &self,
        context: &CommandContext,
        command: ReactionCommand,
        now: DateTime<Utc>,
    ) -> Result<CommandOutcome, CommandError<CommunityError>> {
        self.target(&context.tenant, command.target)
            .await?
            .map_err(rejected)?;
        let id = Reactions::stream_id(command.target, command.member);
        let stream = StreamId::new(context.tenant.clone(), id);
        let name = command.name();
        self.reactions
            .execute(context, &stream, Guarded::new(command), name, now)
            .await
    }
}
