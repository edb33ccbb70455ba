-- Which process builds which partition of which projection (for status; the advisory lock held
-- by the owner is what guarantees one active worker per partition).
CREATE TABLE projection.partition_owners
(
    projection   text        NOT NULL,
    partitions   integer     NOT NULL,
    partition    integer     NOT NULL,
    owner        text        NOT NULL,
    since        timestamptz NOT NULL DEFAULT clock_timestamp(),
    heartbeat_at timestamptz NOT NULL DEFAULT clock_timestamp(),
    PRIMARY KEY (projection, partitions, partition)
);
