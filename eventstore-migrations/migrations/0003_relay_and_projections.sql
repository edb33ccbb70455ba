-- Bookkeeping of the relay (event store -> JetStream) and of the projection builders.
CREATE SCHEMA projection;

-- Where the relay is in the global feed, per JetStream stream. The cursor is the row value
-- (transaction_id, global_position) of the last event whose publish was acknowledged.
CREATE TABLE projection.relay_checkpoints
(
    stream          text PRIMARY KEY,
    transaction_id  xid8        NOT NULL,
    global_position bigint      NOT NULL,
    events_relayed  bigint      NOT NULL DEFAULT 0,
    updated_at      timestamptz NOT NULL DEFAULT clock_timestamp()
);

-- One row per projection: what it has applied, for lag and for proofs of exactly-once.
CREATE TABLE projection.checkpoints
(
    projection            text PRIMARY KEY,
    last_stream_sequence  bigint      NOT NULL DEFAULT 0,
    last_global_position  bigint      NOT NULL DEFAULT 0,
    events_applied        bigint      NOT NULL DEFAULT 0,
    duplicates_skipped    bigint      NOT NULL DEFAULT 0,
    updated_at            timestamptz NOT NULL DEFAULT clock_timestamp()
);

-- The per-stream guard: the last sequence of each aggregate a projection has applied. The next
-- sequence applies, an older one is a duplicate, a newer one is a gap to retry later.
CREATE TABLE projection.stream_positions
(
    projection     text   NOT NULL,
    aggregate_type text   NOT NULL,
    aggregate_id   text   NOT NULL,
    last_sequence  bigint NOT NULL,
    PRIMARY KEY (projection, aggregate_type, aggregate_id)
);
