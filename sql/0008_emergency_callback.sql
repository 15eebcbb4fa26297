-- Issue 17: a customer's emergency callback number, answered with its emergency calls (911/933)
-- for Kamailio's P-Asserted-Identity. E.164 digits without '+' (normalized by
-- warpd_core::rules::emergency_callback); NULL = none.
ALTER TABLE customers ADD COLUMN emergency_callback text
    CHECK (emergency_callback ~ '^[1-9][0-9]{6,14}$');
