-- Job streams the process manager cannot handle (a stored event that does not decode, a timer's
-- command that fails for good) are parked here with the reason, instead of being retried
-- forever while every other job waits behind them. A parked job keeps its history untouched; a
-- later event of the job derives its timer again, and `backend scheduler retry` retries it.
CREATE TABLE scheduler.parked
(
    -- the job's stream id, `{tenant}:{uuid}`
    aggregate_id    text PRIMARY KEY,
    tenant_id       text        NOT NULL,
    -- the stored event that does not decode, when that is the reason
    event_id        uuid,
    error           text        NOT NULL,
    attempts        integer     NOT NULL DEFAULT 1,
    first_failed_at timestamptz NOT NULL DEFAULT clock_timestamp(),
    last_failed_at  timestamptz NOT NULL DEFAULT clock_timestamp()
);
