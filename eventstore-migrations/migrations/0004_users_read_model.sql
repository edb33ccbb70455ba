-- Read models live in their own schema; only projection builders write here.
CREATE SCHEMA read_models;

CREATE TABLE read_models.users
(
    tenant_id     text        NOT NULL,
    user_id       uuid        NOT NULL,
    email         text        NOT NULL,
    display_name  text        NOT NULL,
    status        text        NOT NULL CHECK (status IN ('active', 'deactivated')),
    version       bigint      NOT NULL,
    registered_at timestamptz NOT NULL,
    updated_at    timestamptz NOT NULL,
    PRIMARY KEY (tenant_id, user_id)
);
