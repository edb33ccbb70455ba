-- The verifiable audit log: per tenant, an RFC 6962 Merkle tree whose leaves are the tenant's
-- events in feed order (commands::audit). The tree is stored as Go sumdb/tlog "stored hashes"
-- (every complete subtree's hash, at its stored-hash index), so appending a leaf writes
-- O(log n) rows and any inclusion or consistency proof reads O(log n) of them.
CREATE SCHEMA audit;

-- Where the sealer is in the global feed; one row. Moved in the same transaction as the leaves
-- it covers, so a crash anywhere resumes without a gap or a double leaf.
CREATE TABLE audit.sealer
(
    id              boolean PRIMARY KEY DEFAULT true CHECK (id),
    transaction_id  xid8   NOT NULL,
    global_position bigint NOT NULL
);

-- Each tenant's tree size.
CREATE TABLE audit.trees
(
    tenant_id text PRIMARY KEY,
    size      bigint NOT NULL CHECK (size >= 0)
);

-- Each leaf: the event at that position of the tenant's log, and its leaf hash.
CREATE TABLE audit.leaves
(
    tenant_id text   NOT NULL,
    position  bigint NOT NULL CHECK (position >= 0),
    event_id  uuid   NOT NULL UNIQUE,
    hash      bytea  NOT NULL CHECK (length(hash) = 32),
    PRIMARY KEY (tenant_id, position)
);

CREATE TABLE audit.hashes
(
    tenant_id text   NOT NULL,
    index     bigint NOT NULL CHECK (index >= 0),
    hash      bytea  NOT NULL CHECK (length(hash) = 32),
    PRIMARY KEY (tenant_id, index)
);

-- Signed checkpoints (C2SP tlog-checkpoint notes), kept forever.
CREATE TABLE audit.checkpoints
(
    tenant_id  text        NOT NULL,
    size       bigint      NOT NULL CHECK (size > 0),
    root       bytea       NOT NULL CHECK (length(root) = 32),
    note       text        NOT NULL,
    created_at timestamptz NOT NULL DEFAULT clock_timestamp(),
    PRIMARY KEY (tenant_id, size)
);
