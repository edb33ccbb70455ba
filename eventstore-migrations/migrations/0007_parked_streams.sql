-- Poison events park their stream, per projection, instead of stopping the projection.
--
-- The first row of a parked stream carries the error; the stream's later events wait here
-- behind it (error NULL) until a retry applies them in order. Events are kept as received, so a
-- retry needs neither the bus nor the event store.
CREATE TABLE projection.parked
(
    projection      text        NOT NULL,
    aggregate_type  text        NOT NULL,
    aggregate_id    text        NOT NULL,
    sequence        bigint      NOT NULL,
    event           jsonb       NOT NULL,
    error           text,
    attempts        integer     NOT NULL DEFAULT 1,
    first_failed_at timestamptz NOT NULL DEFAULT clock_timestamp(),
    last_failed_at  timestamptz NOT NULL DEFAULT clock_timestamp(),
    PRIMARY KEY (projection, aggregate_type, aggregate_id, sequence)
);
