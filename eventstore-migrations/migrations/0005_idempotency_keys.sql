-- Idempotency keys, recorded in the same transaction as the events they produced.
--
-- A command carrying an `Idempotency-Key` stores the key and a hash of the request in its
-- events' metadata; this trigger records them here inside the appending transaction. So the key
-- exists exactly when the events do: a crash between the append and the response still
-- deduplicates the retry, and of two concurrent requests with one key only one can append (the
-- other's transaction fails on the primary key and it answers with the winner's result).
CREATE TABLE idempotency_keys
(
    tenant_id      text        NOT NULL,
    actor          text        NOT NULL,
    key            text        NOT NULL,
    request_hash   text        NOT NULL,
    aggregate_type text        NOT NULL,
    aggregate_id   text        NOT NULL,
    version        bigint      NOT NULL,
    transaction_id xid8        NOT NULL DEFAULT pg_current_xact_id(),
    created_at     timestamptz NOT NULL DEFAULT clock_timestamp(),
    CONSTRAINT idempotency_keys_pkey PRIMARY KEY (tenant_id, actor, key)
);

CREATE INDEX idempotency_keys_created_at_idx ON idempotency_keys (created_at);

CREATE FUNCTION record_idempotency_key() RETURNS trigger
    LANGUAGE plpgsql AS
$$
BEGIN
    INSERT INTO idempotency_keys (tenant_id, actor, key, request_hash, aggregate_type,
                                  aggregate_id, version)
    VALUES (NEW.tenant_id, NEW.metadata ->> 'actor', NEW.metadata ->> 'idempotency_key',
            NEW.metadata ->> 'request_hash', NEW.aggregate_type, NEW.aggregate_id, NEW.sequence)
    ON CONFLICT ON CONSTRAINT idempotency_keys_pkey DO UPDATE
        SET version = greatest(idempotency_keys.version, EXCLUDED.version)
        -- Further events of the same command (same transaction) only move the version.
        WHERE idempotency_keys.transaction_id = pg_current_xact_id();
    IF NOT FOUND THEN
        RAISE EXCEPTION 'idempotency key already used'
            USING ERRCODE = 'integrity_constraint_violation',
                  CONSTRAINT = 'idempotency_keys_pkey';
    END IF;
    RETURN NULL;
END;
$$;

CREATE TRIGGER events_record_idempotency_key
    AFTER INSERT ON events
    FOR EACH ROW
    WHEN (NEW.metadata ->> 'idempotency_key' IS NOT NULL)
    EXECUTE FUNCTION record_idempotency_key();
