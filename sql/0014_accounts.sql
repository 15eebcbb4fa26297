-- warpd schema: credit accounts and their ledger (issue 21).
-- accounts: one per customer that has credit control (a customer without one is not limited).
--   mode prepaid: calls spend the balance (top-ups first); postpaid: the balance may go down to
--   -credit_limit. Money is bigint in 1e-7 currency units (the routing engine's unit).
--   balance_e7, seq and the day/month counters are maintained ONLY by the ledger trigger below,
--   in the same transaction as the ledger row that moved them: never an UPDATE of a balance
--   without a row saying why (a batch of call charges: account_charge_calls(), the same
--   transaction). seq orders an account's ledger rows (warpd keeps the newest (seq, balance) it
--   has seen in memory).
-- account_ledger: top-ups, adjustments and call charges (one per CDR, written in the CDR's
--   transaction; UNIQUE (call_id, call_started_at) like the CDR).

CREATE TABLE accounts (
    ban                   text PRIMARY KEY REFERENCES customers (ban) ON UPDATE CASCADE ON DELETE CASCADE,
    mode                  text NOT NULL DEFAULT 'postpaid' CHECK (mode IN ('prepaid', 'postpaid')),
    credit_limit_e7       bigint NOT NULL DEFAULT 0 CHECK (credit_limit_e7 >= 0),
    daily_spend_limit_e7  bigint CHECK (daily_spend_limit_e7 IS NULL OR daily_spend_limit_e7 >= 0),
    monthly_minutes       integer CHECK (monthly_minutes IS NULL OR monthly_minutes >= 0),
    per_call_cost_cap_e7  bigint CHECK (per_call_cost_cap_e7 IS NULL OR per_call_cost_cap_e7 > 0),
    at_limit              text NOT NULL DEFAULT 'reject' CHECK (at_limit IN ('reject', 'cut')),
    tz                    text NOT NULL DEFAULT 'UTC',
    blocked               boolean NOT NULL DEFAULT false,
    -- maintained by account_ledger_apply() only
    seq                   bigint NOT NULL DEFAULT 0,
    balance_e7            bigint NOT NULL DEFAULT 0,
    spend_day             date,
    day_spend_e7          bigint NOT NULL DEFAULT 0,
    spend_month           date,
    month_billed_s        bigint NOT NULL DEFAULT 0,
    CHECK (mode = 'postpaid' OR credit_limit_e7 = 0)
);

CREATE TABLE account_ledger (
    id               bigserial PRIMARY KEY,
    ban              text NOT NULL REFERENCES accounts (ban) ON UPDATE CASCADE ON DELETE CASCADE,
    at               timestamptz NOT NULL DEFAULT now(),
    kind             text NOT NULL CHECK (kind IN ('topup', 'adjustment', 'call')),
    amount_e7        bigint NOT NULL,          -- signed: + credit, - charge
    seq              bigint NOT NULL DEFAULT 0,            -- set by the trigger
    balance_after_e7 bigint NOT NULL DEFAULT 0,            -- set by the trigger
    call_id          text,
    call_started_at  timestamptz,
    billed_s         integer NOT NULL DEFAULT 0,
    actor            text,
    note             text NOT NULL DEFAULT '',
    CHECK (kind <> 'topup' OR amount_e7 > 0),
    CHECK ((kind = 'call') = (call_id IS NOT NULL)),
    UNIQUE (call_id, call_started_at)
);
CREATE INDEX account_ledger_ban ON account_ledger (ban, id);

-- Applies a ledger row to its account: balance, sequence, and the day/month counters in the
-- account's own time zone (a row of a later local day/month starts the counter afresh).
CREATE FUNCTION account_ledger_apply() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    a accounts%ROWTYPE;
    d date;
    m date;
BEGIN
    SELECT * INTO a FROM accounts WHERE ban = NEW.ban FOR UPDATE;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'account % does not exist', NEW.ban USING ERRCODE = 'foreign_key_violation';
    END IF;
    d := (NEW.at AT TIME ZONE a.tz)::date;
    m := date_trunc('month', d)::date;
    UPDATE accounts SET
        seq = a.seq + 1,
        balance_e7 = a.balance_e7 + NEW.amount_e7,
        spend_day = greatest(d, a.spend_day),
        day_spend_e7 = (CASE WHEN a.spend_day IS NULL OR d > a.spend_day THEN 0 ELSE a.day_spend_e7 END)
            + (CASE WHEN NEW.kind = 'call' THEN -NEW.amount_e7 ELSE 0 END),
        spend_month = greatest(m, a.spend_month),
        month_billed_s = (CASE WHEN a.spend_month IS NULL OR m > a.spend_month THEN 0 ELSE a.month_billed_s END)
            + NEW.billed_s
    WHERE ban = NEW.ban;
    NEW.seq := a.seq + 1;
    NEW.balance_after_e7 := a.balance_e7 + NEW.amount_e7;
    RETURN NEW;
END $$;

-- operators' rows (top-ups, adjustments) one at a time; call charges come in batches through
-- account_charge_calls() below, which applies a whole batch to each account once
CREATE TRIGGER account_ledger_apply BEFORE INSERT ON account_ledger
    FOR EACH ROW WHEN (NEW.kind <> 'call') EXECUTE FUNCTION account_ledger_apply();

-- The call charges of one CDR batch (parallel arrays: BAN, signed amount, call id, dip time in
-- unix microseconds, billed seconds), in the batch's transaction: one ledger row per call of a
-- customer with an account (seq and balance_after numbered in call order by window sums), then
-- each charged account updated once with the batch's totals (balance, seq, day and month counters
-- in its time zone, as account_ledger_apply() does row by row). Returns the charged accounts.
-- A 'call' row written any other way does not move its account: only this function writes them.
CREATE FUNCTION account_charge_calls(p_ban text[], p_amount bigint[], p_call text[],
                                     p_started bigint[], p_billed integer[])
RETURNS SETOF accounts LANGUAGE plpgsql AS $$
BEGIN
    PERFORM 1 FROM accounts WHERE ban = ANY (p_ban) ORDER BY ban FOR UPDATE;
    INSERT INTO account_ledger (ban, kind, amount_e7, seq, balance_after_e7, call_id, call_started_at, billed_s)
    SELECT u.ban, 'call', u.amount,
           a.seq + row_number() OVER w,
           a.balance_e7 + sum(u.amount) OVER w,
           u.call_id, to_timestamp(0) + u.started * interval '1 microsecond', u.billed
    FROM unnest(p_ban, p_amount, p_call, p_started, p_billed) AS u (ban, amount, call_id, started, billed)
    JOIN accounts a ON a.ban = u.ban
    WINDOW w AS (PARTITION BY u.ban ORDER BY u.call_id, u.started ROWS UNBOUNDED PRECEDING);
    RETURN QUERY
    WITH agg AS (
        SELECT u.ban, count(*) AS n, sum(u.amount) AS s, sum(u.billed) AS b
        FROM unnest(p_ban, p_amount, p_billed) AS u (ban, amount, billed)
        JOIN accounts a ON a.ban = u.ban
        GROUP BY u.ban
    )
    UPDATE accounts x SET
        seq = x.seq + agg.n,
        balance_e7 = x.balance_e7 + agg.s,
        spend_day = greatest((now() AT TIME ZONE x.tz)::date, x.spend_day),
        day_spend_e7 = (CASE WHEN x.spend_day IS NULL OR (now() AT TIME ZONE x.tz)::date > x.spend_day
                             THEN 0 ELSE x.day_spend_e7 END) - agg.s,
        spend_month = greatest(date_trunc('month', (now() AT TIME ZONE x.tz)::date)::date, x.spend_month),
        month_billed_s = (CASE WHEN x.spend_month IS NULL
                                    OR date_trunc('month', (now() AT TIME ZONE x.tz)::date)::date > x.spend_month
                               THEN 0 ELSE x.month_billed_s END) + agg.b
    FROM agg
    WHERE x.ban = agg.ban
    RETURNING x.*;
END $$;

-- the ledger is append-only
CREATE FUNCTION account_ledger_frozen() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    -- a BAN rename cascades into ban: allowed; nothing else changes
    IF (NEW.id, NEW.at, NEW.kind, NEW.amount_e7, NEW.seq, NEW.balance_after_e7, NEW.call_id, NEW.billed_s)
       IS DISTINCT FROM (OLD.id, OLD.at, OLD.kind, OLD.amount_e7, OLD.seq, OLD.balance_after_e7, OLD.call_id, OLD.billed_s) THEN
        RAISE EXCEPTION 'account_ledger is append-only';
    END IF;
    RETURN NEW;
END $$;
CREATE TRIGGER account_ledger_frozen BEFORE UPDATE ON account_ledger
    FOR EACH ROW EXECUTE FUNCTION account_ledger_frozen();
