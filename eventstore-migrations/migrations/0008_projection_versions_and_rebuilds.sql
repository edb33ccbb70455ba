-- Projections declare a version; a changed version rebuilds the projection at start-up.
ALTER TABLE projection.checkpoints
    ADD COLUMN version    integer NOT NULL DEFAULT 0,
    ADD COLUMN rebuilt_at timestamptz;

-- Rebuilds in progress and done, for the admin overview and the CLI.
CREATE TABLE projection.rebuilds
(
    projection     text PRIMARY KEY,
    version        integer     NOT NULL,
    started_at     timestamptz NOT NULL DEFAULT clock_timestamp(),
    finished_at    timestamptz,
    events_total   bigint      NOT NULL DEFAULT 0,
    events_done    bigint      NOT NULL DEFAULT 0,
    error          text
);
