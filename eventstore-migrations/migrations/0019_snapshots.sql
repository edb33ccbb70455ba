-- Aggregate snapshots (commands::snapshots): the state of a stream after `version` events,
-- written after the events' commit every `snapshots.every_events` events. Derived data: a row
-- may be deleted at any time (the next load replays the stream), and one whose `schema` is not
-- the aggregate's current snapshot schema is never used.
CREATE SCHEMA snapshots;

CREATE TABLE snapshots.aggregates
(
    aggregate_type text        NOT NULL,
    aggregate_id   text        NOT NULL,
    version        bigint      NOT NULL CHECK (version > 0),
    schema         bigint      NOT NULL,
    state          jsonb       NOT NULL,
    taken_at       timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (aggregate_type, aggregate_id)
);
