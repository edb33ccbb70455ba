-- Users carry roles (admin, moderator, user, worker, auditor).
ALTER TABLE read_models.users ADD COLUMN roles text[] NOT NULL DEFAULT '{}';
