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

-- Before this migration a projection seen for the first time only had its row recorded and was
-- fed from whatever JetStream still retained, so a row that no build ever wrote (`rebuilt_at`
-- NULL) may describe incomplete tables. Marking it as version 0 makes the next start-up rebuild
-- it from the event store in the background (queries keep reading the current tables until
-- the swap), like any projection whose version changed.
UPDATE projection.checkpoints
   SET version = 0
 WHERE rebuilt_at IS NULL;
