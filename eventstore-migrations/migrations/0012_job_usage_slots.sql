-- An account's usage was one row, written by every partition of the jobs projection: one busy
-- account serialised all of them (the bench measured 47 ms per usage upsert under load, and
-- seconds of projection lag). Usage is now spread over slots chosen by job id, so partitions
-- rarely meet on a row, and read as the sum of an account's slots.
ALTER TABLE read_models.job_usage ADD COLUMN slot smallint NOT NULL DEFAULT 0;
ALTER TABLE read_models.job_usage DROP CONSTRAINT job_usage_pkey;
ALTER TABLE read_models.job_usage ADD CONSTRAINT job_usage_pkey PRIMARY KEY (tenant_id, user_id, slot);
