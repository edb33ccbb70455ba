-- A projection seen for the first time is built from the event store, never from what JetStream
-- still retains (its retention is bounded). Its durable consumers then start at the first
-- JetStream message published after that build began: every earlier message carries an event
-- the build read from the store, so nothing is skipped, and the consumers do not wade through
-- the whole retained stream only for the guard to drop it.
--
-- NULL when the projection was first recorded before this column existed, or first built by an
-- operator's rebuild: its consumers, if they must be created, start at the stream's beginning
-- and the guard drops what was already applied.
ALTER TABLE projection.checkpoints
    ADD COLUMN consumer_start_sequence bigint;
