-- Issue 19: CDRs carry the call's direction, the customer trunk and (inbound) the number called.
-- Outbound CDRs written before this migration read as direction 'outbound'.
ALTER TABLE cdrs
    ADD COLUMN direction text NOT NULL DEFAULT 'outbound' CHECK (direction IN ('outbound', 'inbound')),
    ADD COLUMN trunk text,
    ADD COLUMN number text;
CREATE INDEX cdrs_direction_trunk ON cdrs (direction, trunk, started_at);
