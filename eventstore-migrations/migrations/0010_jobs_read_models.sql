-- The jobs projection: one row per job, one per attempt, the worker queue, and usage per user.
-- Only the `jobs` projection writes these tables (see projections/src/jobs.rs).

CREATE TABLE read_models.jobs
(
    tenant_id          text        NOT NULL,
    job_id             uuid        NOT NULL,
    owner_id           uuid        NOT NULL,
    kind               text        NOT NULL,
    source_language    text        NOT NULL,
    target_language    text        NOT NULL,
    priority           smallint    NOT NULL,
    options            jsonb       NOT NULL,
    parent_job_id      uuid,
    source_document_id uuid        NOT NULL,
    status             text        NOT NULL,
    chain              integer     NOT NULL,
    attempt            integer     NOT NULL,
    max_attempts       integer     NOT NULL,
    retries            integer     NOT NULL DEFAULT 0,
    worker             text,
    lease_expires_at   timestamptz,
    retry_due_at       timestamptz,
    progress_done      bigint,
    progress_total     bigint,
    result_document_id uuid,
    characters         bigint,
    segments           bigint,
    last_error_code    text,
    last_error_message text,
    cancel_reason      text,
    submitted_at       timestamptz NOT NULL,
    finished_at        timestamptz,
    updated_at         timestamptz NOT NULL,
    version            bigint      NOT NULL,
    PRIMARY KEY (tenant_id, job_id)
);

-- Lists: newest first per tenant, and per owner; children of a parent.
CREATE INDEX jobs_by_submission ON read_models.jobs (tenant_id, submitted_at DESC, job_id DESC);
CREATE INDEX jobs_by_owner ON read_models.jobs (tenant_id, owner_id, submitted_at DESC, job_id DESC);
CREATE INDEX jobs_by_parent ON read_models.jobs (tenant_id, parent_job_id) WHERE parent_job_id IS NOT NULL;
-- Dashboard: finished jobs by time.
CREATE INDEX jobs_by_finish ON read_models.jobs (tenant_id, finished_at) WHERE finished_at IS NOT NULL;

CREATE TABLE read_models.job_attempts
(
    tenant_id     text        NOT NULL,
    job_id        uuid        NOT NULL,
    chain         integer     NOT NULL,
    attempt       integer     NOT NULL,
    lease_id      uuid        NOT NULL,
    worker        text        NOT NULL,
    claimed_at    timestamptz NOT NULL,
    ended_at      timestamptz,
    -- succeeded | failed | lease_expired | cancelled; NULL while running
    outcome       text,
    error_code    text,
    error_message text,
    retryable     boolean,
    PRIMARY KEY (tenant_id, job_id, chain, attempt)
);

-- The worker queue: exactly the queued jobs, in claim order.
CREATE TABLE read_models.job_queue
(
    tenant_id       text        NOT NULL,
    job_id          uuid        NOT NULL,
    kind            text        NOT NULL,
    source_language text        NOT NULL,
    target_language text        NOT NULL,
    priority        smallint    NOT NULL,
    queued_at       timestamptz NOT NULL,
    PRIMARY KEY (tenant_id, job_id)
);
CREATE INDEX job_queue_claim_order
    ON read_models.job_queue (tenant_id, kind, priority DESC, queued_at, job_id);

CREATE TABLE read_models.job_usage
(
    tenant_id            text    NOT NULL,
    user_id              uuid    NOT NULL,
    jobs_submitted       bigint  NOT NULL DEFAULT 0,
    jobs_succeeded       bigint  NOT NULL DEFAULT 0,
    characters_processed bigint  NOT NULL DEFAULT 0,
    -- characters of succeeded translation jobs only (what translation quotas count)
    characters_translated bigint NOT NULL DEFAULT 0,
    PRIMARY KEY (tenant_id, user_id)
);
