-- An account's usage was one row of counters, written by every partition of the jobs
-- projection: one busy account serialised all partitions on that row (the bench measured 47 ms
-- per upsert under load and seconds of projection lag), and spreading it over several rows
-- traded the waits for deadlocks between partitions' batches. Usage is now summed from
-- `read_models.jobs` when asked for (the jobs_by_owner index finds an account's jobs), so no
-- row is shared between streams.
DROP TABLE read_models.job_usage;
