-- Email uniqueness across users, per tenant.
--
-- Uniqueness spans aggregates, so no single aggregate can decide it. A read-model check would
-- race (two registrations both see the address free). Instead every `UserRegistered` row claims
-- its address here from a trigger, inside the very transaction that appends the event: either
-- both commit or neither does, and the primary key settles any race.
--
-- A taken address raises an error naming the constraint `user_email_claims_pkey` with SQLSTATE
-- 23000 rather than 23505: postgres-es reads every 23505 as an optimistic-lock conflict, and the
-- command side must tell "someone else wrote this stream" from "this address is taken".
CREATE TABLE user_email_claims
(
    tenant_id  text NOT NULL,
    email      text NOT NULL,
    user_id    text NOT NULL,
    claimed_at timestamptz NOT NULL DEFAULT clock_timestamp(),
    CONSTRAINT user_email_claims_pkey PRIMARY KEY (tenant_id, email)
);

CREATE FUNCTION claim_user_email() RETURNS trigger
    LANGUAGE plpgsql AS
$$
BEGIN
    INSERT INTO user_email_claims (tenant_id, email, user_id)
    VALUES (NEW.tenant_id, NEW.payload -> 'UserRegistered' ->> 'email', NEW.aggregate_id)
    ON CONFLICT ON CONSTRAINT user_email_claims_pkey DO NOTHING;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'email address already claimed in this tenant'
            USING ERRCODE = 'integrity_constraint_violation',
                  CONSTRAINT = 'user_email_claims_pkey';
    END IF;
    RETURN NULL;
END;
$$;

CREATE TRIGGER events_claim_user_email
    AFTER INSERT ON events
    FOR EACH ROW
    WHEN (NEW.aggregate_type = 'User' AND NEW.event_type = 'UserRegistered')
    EXECUTE FUNCTION claim_user_email();
