-- The job process manager's durable schedule: at most one timer per job, derived from the
-- job's stream (never from memory alone), so a restart loses no lease expiry or retry.
CREATE SCHEMA scheduler;

CREATE TABLE scheduler.job_timers
(
    -- the job's stream id, `{tenant}:{uuid}`
    aggregate_id   text PRIMARY KEY,
    tenant_id      text        NOT NULL,
    -- the stream version this row was derived from; older derivations never overwrite it
    version        bigint      NOT NULL,
    -- lease_expiry | retry; NULL when nothing is scheduled
    kind           text CHECK (kind IN ('lease_expiry', 'retry')),
    due_at         timestamptz,
    lease_id       uuid,
    -- the event that set the timer, and its business operation: the command fired is caused by it
    cause_event_id uuid,
    correlation_id text,
    CHECK ((kind IS NULL) = (due_at IS NULL))
);

CREATE INDEX job_timers_due ON scheduler.job_timers (due_at) WHERE due_at IS NOT NULL;
