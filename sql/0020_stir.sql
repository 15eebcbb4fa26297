-- Issue 20: STIR/SHAKEN. warpd decides the attestation of each outbound call (Kamailio signs);
-- Kamailio verifies the Identity of inbound calls and warpd records the outcome.
--
-- stir_policies: a customer's (trunk_id NULL) or one of its trunks' settings: the highest
-- attestation its calls get (max_attest 'A' = no cap, 'off' = never signed), whether its calls are
-- transit traffic re-originated from peers ('C', gateway attestation), and (customer rows only)
-- the SIP code its inbound calls that fail verification are refused with (NULL: delivered with
-- verstat=TN-Validation-Failed). No row: A at most, not transit, failed calls delivered.
--
-- stir_tn_ranges: numbers a customer owns elsewhere (e.g. its DIDs at another carrier), as
-- inclusive ranges of E.164 numbers of one length: an ANI in one of them is the customer's, like
-- one of its `numbers`. A number belongs to one customer: ranges never overlap.
--
-- Both feed the snapshot's inbound part (routing-change trigger of 0011, change log of 0017).

CREATE TABLE stir_policies (
    id                 bigserial PRIMARY KEY,
    customer_id        bigint NOT NULL REFERENCES customers(id) ON DELETE CASCADE,
    -- the trunk must be the customer's (composite key of trunks (id, customer_id))
    trunk_id           bigint,
    max_attest         text NOT NULL DEFAULT 'A' CHECK (max_attest IN ('A', 'B', 'C', 'off')),
    transit            boolean NOT NULL DEFAULT false,
    verify_reject_code smallint CHECK (verify_reject_code IN (436, 437, 438)),
    updated_at         timestamptz NOT NULL DEFAULT now(),
    FOREIGN KEY (trunk_id, customer_id) REFERENCES trunks(id, customer_id) ON DELETE CASCADE,
    CONSTRAINT stir_policies_scope UNIQUE NULLS NOT DISTINCT (customer_id, trunk_id),
    -- the reject policy is the customer's: inbound calls reach a customer, not a trunk's setting
    CHECK (trunk_id IS NULL OR verify_reject_code IS NULL)
);

CREATE TABLE stir_tn_ranges (
    id          bigserial PRIMARY KEY,
    customer_id bigint NOT NULL REFERENCES customers(id) ON DELETE CASCADE,
    first_tn    text NOT NULL CHECK (first_tn ~ '^\+[1-9][0-9]{6,14}$'),
    last_tn     text NOT NULL CHECK (last_tn ~ '^\+[1-9][0-9]{6,14}$'),
    CHECK (length(first_tn) = length(last_tn) AND first_tn <= last_tn),
    CONSTRAINT stir_tn_ranges_no_overlap EXCLUDE USING gist (
        int8range(substr(first_tn, 2)::bigint, substr(last_tn, 2)::bigint, '[]') WITH &&)
);
CREATE INDEX stir_tn_ranges_customer ON stir_tn_ranges (customer_id);

CREATE TRIGGER stir_policies_notify AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON stir_policies
    FOR EACH STATEMENT EXECUTE FUNCTION warpd_notify_routing_change();
CREATE TRIGGER stir_tn_ranges_notify AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON stir_tn_ranges
    FOR EACH STATEMENT EXECUTE FUNCTION warpd_notify_routing_change();

-- what a call's CDR says about STIR/SHAKEN: outbound, the attestation warpd gave and its origid
-- ('keep': a valid upstream Identity passed on); inbound, the verification outcome
-- (TN-Validation-Passed / -Failed / No-TN-Validation), the PASSporT's attestation and origid,
-- and the failure reason
ALTER TABLE cdrs
    ADD COLUMN stir_attest text,
    ADD COLUMN stir_origid text,
    ADD COLUMN stir_verstat text,
    ADD COLUMN stir_reason text;
