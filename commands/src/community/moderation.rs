//! Moderation commands: members report writing, moderators resolve reports (hiding what they
//! report, or dismissing them) and suspend members from writing.

use chrono::{DateTime, Utc};
use domain::aggregate::Guarded;
use domain::community::{
    CommentCommand, CommunityError, Member, MemberCommand, PostCommand, Reason, Report,
    ReportCommand, Resolution, Target,
};
use domain::identity::{StreamId, TenantId};
use uuid::Uuid;

use super::{rejected, CommunityCommands};

/// A failure to read another context's stream, as this context's store failure.
fn store<E: std::error::Error + Send + Sync + 'static>(
    error: CommandError<E>,
) -> CommandError<CommunityError> {
    CommandError::Store(Box::new(error))
}
use crate::bus::{CommandError, CommandOutcome};
use crate::metadata::CommandContext;

impl CommunityCommands {
    /// Whether `account` may write in `tenant` at `now` (not suspended).
    ///
    /// # Errors
    /// [`CommunityError::Suspended`], or a store failure.
    pub(super) async fn may_write(
        &self,
        tenant: &TenantId,
        account: Uuid,
        now: DateTime<Utc>,
    ) -> Result<(), CommandError<CommunityError>> {
        self.members
            .load(&StreamId::new(tenant.clone(), account))
            .await?
            .state()
            .may_write(now)
            .map_err(rejected)
    }

    /// Files `reporter`'s report of `target` (a post or comment still there to read), once per
    /// reporter and target.
    ///
    /// # Errors
    /// See [`crate::bus::CommandBus::execute`]; the target's `…NotFound`, `…Removed` or
    /// `…Hidden`; [`CommunityError::AlreadyReported`].
    pub async fn report(
        &self,
        context: &CommandContext,
        target: Target,
        reporter: Uuid,
        reason: Reason,
        now: DateTime<Utc>,
    ) -> Result<CommandOutcome, CommandError<CommunityError>> {
        let attempt = || self.checked_report(context, target, reporter, reason.clone(), now);
        self.reports.idempotent(context, attempt).await
    }

    async fn checked_report(
        &self,
        context: &CommandContext,
        target: Target,
        reporter: Uuid,
        reason: Reason,
        now: DateTime<Utc>,
    ) -> Result<CommandOutcome, CommandError<CommunityError>> {
        self.target(&context.tenant, target)
            .await?
            .map_err(rejected)?;
        let command = ReportCommand::File {
            target,
            reporter,
            reason,
            at: now,
        };
        let stream = StreamId::new(context.tenant.clone(), Report::stream_id(target, reporter));
        let name = command.name();
        self.reports
            .append(context, &stream, Guarded::new(command), name, now)
            .await
    }

    /// Whether `target` of `tenant` is there to react to or report: written, neither removed
    /// nor hidden, and for a comment, on a post that is neither either. A store failure, or a
    /// missing target, outside.
    pub(super) async fn target(
        &self,
        tenant: &TenantId,
        target: Target,
    ) -> Result<Result<(), CommunityError>, CommandError<CommunityError>> {
        Ok(match target {
            Target::Post(post) => self.written_post(tenant, post).await?.changeable(),
            Target::Comment(comment) => {
                let comment = self.written_comment(tenant, comment).await?;
                match comment.changeable() {
                    Ok(()) => self.written_post(tenant, comment.post).await?.changeable(),
                    gone => gone,
                }
            }
        })
    }

    /// Resolves report `report`, then, with [`Resolution::Hide`], hides its post or comment
    /// (unless it is already removed or hidden).
    ///
    /// The decision is recorded first, guarded by the report's version: of two moderators
    /// deciding at once, one wins and the other is told so before touching the writing, and an
    /// idempotency key reused for another report is refused before anything is hidden. Hiding
    /// follows; should it not happen (a crash, a failure), any later attempt to resolve the
    /// report hides the writing before answering that the report is resolved, and a retry with
    /// the same key then answers with the recorded outcome.
    ///
    /// # Errors
    /// See [`crate::bus::CommandBus::execute`]; [`CommunityError::ReportNotFound`],
    /// [`CommunityError::ReportResolved`].
    pub async fn resolve_report(
        &self,
        context: &CommandContext,
        report: Uuid,
        resolution: Resolution,
        now: DateTime<Utc>,
    ) -> Result<CommandOutcome, CommandError<CommunityError>> {
        let attempt = || self.checked_resolve(context, report, resolution, now);
        self.reports.idempotent(context, attempt).await
    }

    async fn checked_resolve(
        &self,
        context: &CommandContext,
        report: Uuid,
        resolution: Resolution,
        now: DateTime<Utc>,
    ) -> Result<CommandOutcome, CommandError<CommunityError>> {
        let stream = StreamId::new(context.tenant.clone(), report);
        let loaded = self.reports.load(&stream).await?;
        let target = match loaded.state() {
            Report::Filed {
                resolution: None,
                target,
            } => *target,
            Report::Filed {
                resolution: Some(decided),
                target,
            } => {
                // Finish what an earlier resolution may have left undone.
                if *decided == Resolution::Hide {
                    self.hide(context, *target, report, now).await?;
                }
                return Err(rejected(CommunityError::ReportResolved));
            }
            Report::Unfiled => return Err(rejected(CommunityError::ReportNotFound)),
        };
        let command = ReportCommand::Resolve {
            resolution,
            by: context.actor.clone(),
            at: now,
        };
        let name = command.name();
        let guarded = Guarded::expecting(Some(loaded.version()), command);
        let outcome = self
            .reports
            .append(context, &stream, guarded, name, now)
            .await?;
        if resolution == Resolution::Hide {
            self.hide(context, target, report, now).await?;
        }
        Ok(outcome)
    }

    /// Hides `target` over `report`; writing already removed or hidden stays as it is. A
    /// concurrent change to the writing (its author editing or removing it) is tried again.
    async fn hide(
        &self,
        context: &CommandContext,
        target: Target,
        report: Uuid,
        now: DateTime<Utc>,
    ) -> Result<(), CommandError<CommunityError>> {
        // The client's idempotency key belongs to the report's resolution, recorded with it.
        let inner = CommandContext {
            idempotency: None,
            ..context.clone()
        };
        let mut tries = 0;
        let hidden = loop {
            tries += 1;
            let by = context.actor.clone();
            let hidden = match target {
                Target::Post(post) => {
                    let command = PostCommand::Hide {
                        by,
                        report,
                        at: now,
                    };
                    self.post(&inner, post, None, command, now).await
                }
                Target::Comment(comment) => {
                    let command = CommentCommand::Hide {
                        by,
                        report,
                        at: now,
                    };
                    self.comment(&inner, comment, None, command, now).await
                }
            };
            match hidden {
                Err(CommandError::Conflict) if tries < 3 => continue,
                hidden => break hidden,
            }
        };
        match hidden {
            Ok(_) => Ok(()),
            Err(CommandError::Rejected(domain::aggregate::Rejection::Domain(
                CommunityError::PostRemoved
                | CommunityError::PostHidden
                | CommunityError::CommentRemoved
                | CommunityError::CommentHidden,
            ))) => Ok(()),
            Err(error) => Err(error),
        }
    }

    /// Suspends member `member` of the context's tenant (a user or an API key of it), or lifts
    /// their suspension.
    ///
    /// # Errors
    /// See [`crate::bus::CommandBus::execute`]; [`CommunityError::MemberNotFound`],
    /// [`CommunityError::SuspensionInPast`], [`CommunityError::NotSuspended`].
    pub async fn member(
        &self,
        context: &CommandContext,
        member: Uuid,
        command: MemberCommand,
        now: DateTime<Utc>,
    ) -> Result<CommandOutcome, CommandError<CommunityError>> {
        let stream = StreamId::new(context.tenant.clone(), member);
        let exists = self.users.load(&stream).await.map_err(store)?.version() > 0
            || self.keys.load(&stream).await.map_err(store)?.version() > 0;
        if !exists {
            return Err(rejected(CommunityError::MemberNotFound));
        }
        let name = command.name();
        self.members
            .execute(context, &stream, Guarded::new(command), name, now)
            .await
    }

    /// Member `member`'s standing in `tenant`.
    ///
    /// # Errors
    /// A store failure.
    pub async fn standing(
        &self,
        tenant: &TenantId,
        member: Uuid,
    ) -> Result<Member, CommandError<CommunityError>> {
        Ok(self
            .members
            .load(&StreamId::new(tenant.clone(), member))
            .await?
            .state()
            .clone())
    }
}
