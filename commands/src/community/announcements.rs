//! Announcement commands: admins draft, edit, publish and retract; members mark published ones
//! read.

use chrono::{DateTime, Utc};
use domain::aggregate::Guarded;
use domain::community::{
    Announcement, AnnouncementCommand, AnnouncementStatus, CommunityError, MarkRead, Readings,
};
use domain::identity::StreamId;
use uuid::Uuid;

use super::{rejected, CommunityCommands};
use crate::bus::{CommandError, CommandOutcome};
use crate::metadata::CommandContext;

impl CommunityCommands {
    /// Runs a command on announcement `announcement` of the context's tenant.
    ///
    /// # Errors
    /// See [`crate::bus::CommandBus::execute`].
    pub async fn announcement(
        &self,
        context: &CommandContext,
        announcement: Uuid,
        expected_version: Option<u64>,
        command: AnnouncementCommand,
        now: DateTime<Utc>,
    ) -> Result<CommandOutcome, CommandError<CommunityError>> {
        let stream = StreamId::new(context.tenant.clone(), announcement);
        let name = command.name();
        let guarded = Guarded::expecting(expected_version, command);
        self.announcements
            .execute(context, &stream, guarded, name, now)
            .await
    }

    /// Marks announcement `announcement` read by `reader`, once; only a published one.
    ///
    /// # Errors
    /// See [`crate::bus::CommandBus::execute`]; [`CommunityError::AnnouncementNotFound`] (a
    /// draft is not found by readers either), [`CommunityError::NotPublished`].
    pub async fn mark_read(
        &self,
        context: &CommandContext,
        announcement: Uuid,
        reader: Uuid,
        now: DateTime<Utc>,
    ) -> Result<CommandOutcome, CommandError<CommunityError>> {
        let attempt = || self.checked_mark_read(context, announcement, reader, now);
        self.readings.idempotent(context, attempt).await
    }

    async fn checked_mark_read(
        &self,
        context: &CommandContext,
        announcement: Uuid,
        reader: Uuid,
        now: DateTime<Utc>,
    ) -> Result<CommandOutcome, CommandError<CommunityError>> {
        let stream = StreamId::new(context.tenant.clone(), announcement);
        match self.announcements.load(&stream).await?.state() {
            Announcement::Drafted {
                status: AnnouncementStatus::Published,
                ..
            } => {}
            Announcement::Drafted {
                status: AnnouncementStatus::Retracted,
                ..
            } => return Err(rejected(CommunityError::NotPublished)),
            _ => return Err(rejected(CommunityError::AnnouncementNotFound)),
        }
        let command = MarkRead {
            announcement,
            reader,
            at: now,
        };
        let stream = StreamId::new(
            context.tenant.clone(),
            Readings::stream_id(announcement, reader),
        );
        self.readings
            .append(
                context,
                &stream,
                Guarded::new(command),
                "MarkAnnouncementRead",
                now,
            )
            .await
    }
}
