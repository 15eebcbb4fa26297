-- warpd schema: tighter checks on routing data, so a bad value is refused when it is written
-- (with the constraint's name in the error) instead of surfacing later as a snapshot warning.

-- Money: warpd prices in units of 1e-7 per minute held in 32 bits, so the largest representable
-- per-minute rate is 429.4967295. numeric(12,7) would accept up to 99999.9999999.
ALTER TABLE vendor_rates
    ADD CONSTRAINT vendor_rates_rate_range CHECK (
        coalesce(rate_inter, 0) <= 429.4967295 AND coalesce(rate_intra, 0) <= 429.4967295
        AND coalesce(rate_local, 0) <= 429.4967295);
ALTER TABLE customer_rates
    ADD CONSTRAINT customer_rates_rate_range CHECK (
        coalesce(rate_inter, 0) <= 429.4967295 AND coalesce(rate_intra, 0) <= 429.4967295
        AND coalesce(rate_local, 0) <= 429.4967295);
ALTER TABLE customers
    ADD CONSTRAINT customers_max_rate_range CHECK (max_rate IS NULL OR max_rate <= 429.4967295),
    ADD CONSTRAINT customers_fixed_fee_range CHECK (fixed_fee >= 0 AND fixed_fee <= 429.4967295),
    -- blocked prefixes are E.164 digits without '+', e.g. 1900
    ADD CONSTRAINT customers_blocked_prefixes_digits CHECK (
        array_to_string(blocked_prefixes, ',') ~ '^([0-9]+(,[0-9]+)*)?$');
ALTER TABLE customer_margin_rules
    ADD CONSTRAINT customer_margin_rules_fee_range CHECK (fixed_fee >= 0 AND fixed_fee <= 429.4967295);
ALTER TABLE overrides
    ADD CONSTRAINT overrides_rate_range CHECK (rate IS NULL OR rate <= 429.4967295),
    -- ISO weekday numbers 1=Mon..7=Sun
    ADD CONSTRAINT overrides_days_iso CHECK (days <@ '{1,2,3,4,5,6,7}'::smallint[]),
    ADD CONSTRAINT overrides_valid_window CHECK (valid_until > valid_from);
ALTER TABLE customer_partitions
    ADD CONSTRAINT customer_partitions_days_iso CHECK (days <@ '{1,2,3,4,5,6,7}'::smallint[]);

-- DNO numbers: NANP 11 digits (1 + NPA-NXX-XXXX) or international E.164 (up to 15 digits)
ALTER TABLE dno DROP CONSTRAINT IF EXISTS dno_number_check;
ALTER TABLE dno ADD CONSTRAINT dno_number_e164 CHECK (number ~ '^[1-9][0-9]{6,14}$');
