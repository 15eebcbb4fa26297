-- warpd schema: an account's spend-rate alarm (issue 21 part 5, fraud signal).
--   spend_alarm_minutes / spend_alarm_threshold_e7: call charges committed in the last N minutes
--   plus the live calls' reservations at or over the threshold raise the alarm (metric, log);
--   auto_block: warpd then blocks the account itself (blocked_reason 'spend rate', an audit_log
--   row of actor 'warpd'; no ledger row: the balance does not move).
--   blocked_reason: why the account was blocked by warpd (NULL when set by an operator).

ALTER TABLE accounts
    ADD COLUMN spend_alarm_minutes integer CHECK (spend_alarm_minutes BETWEEN 1 AND 1440),
    ADD COLUMN spend_alarm_threshold_e7 bigint CHECK (spend_alarm_threshold_e7 > 0),
    ADD COLUMN auto_block boolean NOT NULL DEFAULT false,
    ADD COLUMN blocked_reason text,
    ADD CONSTRAINT accounts_spend_alarm_whole
        CHECK ((spend_alarm_minutes IS NULL) = (spend_alarm_threshold_e7 IS NULL)
               AND (NOT auto_block OR spend_alarm_minutes IS NOT NULL));

-- the window's call charges of an account (the alarm's sum)
CREATE INDEX account_ledger_calls_at ON account_ledger (ban, at) WHERE kind = 'call';
