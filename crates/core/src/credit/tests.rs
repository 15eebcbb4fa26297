use super::*;
use proptest::prelude::*;

/// 2026-12-06 12:00:00 UTC
const NOON_UTC: i64 = 1_796_558_400_000_000;
const MINUTE_RATE: i64 = 10_000_000; // 1.00 per minute

fn prepaid(balance: i64) -> (Account, Standing) {
    (
        Account {
            mode: BillingMode::Prepaid,
            credit_limit_e7: 0,
            daily_spend_limit_e7: None,
            monthly_minutes: None,
            per_call_cost_cap_e7: None,
            at_limit: AtLimit::Reject,
            tz: chrono_tz::UTC,
            blocked: false,
            spend_alarm: None,
        },
        Standing {
            balance_e7: balance,
            ..Default::default()
        },
    )
}

fn tariff(rate: i64, min: u32, inc: u32) -> Tariff {
    Tariff {
        rate_e7: rate,
        min,
        inc,
    }
}

#[test]
fn credit_for_30_seconds_grants_30() {
    // 0.50 at 1.00/min on 1/1: 30 s
    let (a, s) = prepaid(5_000_000);
    let t = [tariff(MINUTE_RATE, 1, 1)];
    let g = grant(&a, &s, &Reserved::default(), &t, NOON_UTC, 7200).unwrap();
    assert_eq!(g.max_duration_s, 30);
    assert_eq!(g.reserve_e7, 5_000_000);
    // on 6/6 the same money buys 30 s too; on 60/60 it buys nothing
    let g = grant(
        &a,
        &s,
        &Reserved::default(),
        &[tariff(MINUTE_RATE, 6, 6)],
        NOON_UTC,
        7200,
    );
    assert_eq!(g.unwrap().max_duration_s, 30);
    let g = grant(
        &a,
        &s,
        &Reserved::default(),
        &[tariff(MINUTE_RATE, 60, 60)],
        NOON_UTC,
        7200,
    );
    assert_eq!(g, Err(Refusal::NoCredit));
}

#[test]
fn the_global_cap_and_the_grids_agree() {
    // money for ~100 s; cap 45 s; routes on 30/6 and 1/1: a 45 s call bills 48 on 30/6
    let (a, s) = prepaid(100 * MINUTE_RATE / 60);
    let t = [tariff(MINUTE_RATE, 30, 6), tariff(MINUTE_RATE, 1, 1)];
    let g = grant(&a, &s, &Reserved::default(), &t, NOON_UTC, 45).unwrap();
    assert_eq!(g.max_duration_s, 45);
    assert_eq!(g.reserve_s, 48);
    assert_eq!(g.reserve_e7, t[0].cost(48));
}

#[test]
fn an_unaffordable_route_is_unusable_and_the_others_stay() {
    let (a, s) = prepaid(MINUTE_RATE / 2);
    let t = [tariff(MINUTE_RATE, 60, 60), tariff(MINUTE_RATE, 6, 6)];
    let g = grant(&a, &s, &Reserved::default(), &t, NOON_UTC, 7200).unwrap();
    assert_eq!(g.usable, vec![false, true]);
    assert_eq!(g.max_duration_s, 30);
}

#[test]
fn refusals_name_the_binding_limit() {
    let (mut a, mut s) = prepaid(MINUTE_RATE);
    let t = [tariff(MINUTE_RATE, 6, 6)];
    let none = Reserved::default();
    a.blocked = true;
    assert_eq!(
        grant(&a, &s, &none, &t, NOON_UTC, 60),
        Err(Refusal::Blocked)
    );
    assert_eq!(Refusal::Blocked.sip_code(), 403);
    a.blocked = false;
    a.daily_spend_limit_e7 = Some(MINUTE_RATE);
    s.spend_day = Some(local_day(chrono_tz::UTC, NOON_UTC).0);
    s.day_spend_e7 = MINUTE_RATE;
    assert_eq!(
        grant(&a, &s, &none, &t, NOON_UTC, 60),
        Err(Refusal::DailyLimit)
    );
    assert_eq!(Refusal::DailyLimit.sip_code(), 402);
    a.daily_spend_limit_e7 = None;
    a.per_call_cost_cap_e7 = Some(1);
    assert_eq!(
        grant(&a, &s, &none, &t, NOON_UTC, 60),
        Err(Refusal::PerCallCap)
    );
    a.per_call_cost_cap_e7 = None;
    a.monthly_minutes = Some(1);
    s.spend_month = Some(local_day(chrono_tz::UTC, NOON_UTC).1);
    s.month_billed_s = 57;
    assert_eq!(
        grant(&a, &s, &none, &t, NOON_UTC, 60),
        Err(Refusal::MonthlyMinutes)
    );
    s.month_billed_s = 54;
    assert_eq!(
        grant(&a, &s, &none, &t, NOON_UTC, 60)
            .unwrap()
            .max_duration_s,
        6
    );
    s.balance_e7 = 0;
    assert_eq!(
        grant(&a, &s, &none, &t, NOON_UTC, 60),
        Err(Refusal::NoCredit)
    );
}

#[test]
fn postpaid_spends_down_to_the_credit_limit() {
    let (mut a, mut s) = prepaid(-MINUTE_RATE);
    a.mode = BillingMode::Postpaid;
    a.credit_limit_e7 = 2 * MINUTE_RATE;
    s.balance_e7 = -MINUTE_RATE;
    let g = grant(
        &a,
        &s,
        &Reserved::default(),
        &[tariff(MINUTE_RATE, 1, 1)],
        NOON_UTC,
        7200,
    );
    assert_eq!(g.unwrap().max_duration_s, 60);
}

#[test]
fn a_free_route_is_capped_by_the_global_limit_only() {
    let (a, s) = prepaid(0);
    let g = grant(
        &a,
        &s,
        &Reserved::default(),
        &[tariff(0, 6, 6)],
        NOON_UTC,
        3600,
    )
    .unwrap();
    assert_eq!((g.max_duration_s, g.reserve_e7), (3600, 0));
}

#[test]
fn the_daily_counter_rolls_over_at_local_midnight() {
    // 04:59:59 UTC = 23:59:59 in New York (EST, UTC-5): still the 5th there
    let ny: chrono_tz::Tz = "America/New_York".parse().unwrap();
    let before = 1_796_533_199_000_000; // 2026-12-06 04:59:59 UTC
    let after = before + 1_000_000; // 05:00:00 UTC = 00:00 EST on the 6th
    let (d1, _) = local_day(ny, before);
    let (d2, m2) = local_day(ny, after);
    assert_eq!(d1.to_string(), "2026-12-05");
    assert_eq!(d2.to_string(), "2026-12-06");
    assert_eq!(m2.to_string(), "2026-12-01");
    let (mut a, mut s) = prepaid(100 * MINUTE_RATE);
    a.tz = ny;
    a.daily_spend_limit_e7 = Some(MINUTE_RATE);
    s.spend_day = Some(d1);
    s.day_spend_e7 = MINUTE_RATE;
    let t = [tariff(MINUTE_RATE, 1, 1)];
    let none = Reserved::default();
    assert_eq!(
        grant(&a, &s, &none, &t, before, 7200),
        Err(Refusal::DailyLimit)
    );
    assert_eq!(
        grant(&a, &s, &none, &t, after, 7200)
            .unwrap()
            .max_duration_s,
        60
    );
    // in UTC the same instant is well past midnight: the counter of the 5th is stale already
    a.tz = chrono_tz::UTC;
    assert_eq!(
        grant(&a, &s, &none, &t, before, 7200)
            .unwrap()
            .max_duration_s,
        60
    );
}

fn arb_tariff() -> impl Strategy<Value = Tariff> {
    (1i64..50_000_000, 0u32..90, 1u32..90).prop_map(|(r, m, i)| tariff(r, m, i))
}

proptest! {
    /// What `max_billed` grants is affordable, and the next grid point is not.
    #[test]
    fn max_billed_is_the_largest_affordable(money in 0i64..10_000_000_000, t in arb_tariff()) {
        match max_billed(money, &t) {
            Some(b) => {
                prop_assert!(t.cost(b) <= money);
                prop_assert_eq!(billed_seconds(i64::from(b) * 1000, t.min, t.inc), b);
                let next = if b < t.min.max(1) { t.min } else { b + t.inc };
                prop_assert!(t.cost(next) > money);
            }
            None => prop_assert!(t.cost(t.first_increment()) > money),
        }
    }

    /// More money never buys a shorter call.
    #[test]
    fn more_money_is_never_shorter(m in 0i64..1_000_000_000, extra in 0i64..1_000_000_000, t in arb_tariff()) {
        let a = max_billed(m, &t).unwrap_or(0);
        let b = max_billed(m + extra, &t).unwrap_or(0);
        prop_assert!(b >= a);
    }

    /// Calls admitted one after another, each reserving its grant, never reserve more than the
    /// account has, whatever the routes; and a call that bills its whole grant costs at most its
    /// reservation.
    #[test]
    fn concurrent_calls_share_the_balance(
        balance in 0i64..500_000_000,
        limit in 0i64..200_000_000,
        cap in proptest::option::of(1i64..100_000_000),
        calls in proptest::collection::vec(proptest::collection::vec(arb_tariff(), 1..4), 1..20),
        global in 1u32..20_000,
    ) {
        let (mut a, s) = prepaid(balance);
        a.mode = BillingMode::Postpaid;
        a.credit_limit_e7 = limit;
        a.per_call_cost_cap_e7 = cap;
        let mut r = Reserved::default();
        for ts in &calls {
            if let Ok(g) = grant(&a, &s, &r, ts, NOON_UTC, global) {
                prop_assert!(g.max_duration_s <= global);
                for (t, u) in ts.iter().zip(&g.usable) {
                    if *u {
                        let billed = billed_seconds(i64::from(g.max_duration_s) * 1000, t.min, t.inc);
                        prop_assert!(t.cost(billed) <= g.reserve_e7);
                    }
                }
                if let Some(c) = cap {
                    prop_assert!(g.reserve_e7 <= c);
                }
                r.money_e7 += g.reserve_e7;
                r.seconds += i64::from(g.reserve_s);
                r.calls += 1;
            }
            prop_assert!(r.money_e7 <= balance + limit);
        }
    }

    /// The monthly minutes: reserved seconds of live calls and billed ones never pass the cap.
    #[test]
    fn monthly_minutes_hold(minutes in 0u32..100, used in 0i64..6000,
        calls in proptest::collection::vec(arb_tariff(), 1..20)) {
        let (mut a, mut s) = prepaid(i64::MAX / 4);
        a.monthly_minutes = Some(minutes);
        s.spend_month = Some(local_day(a.tz, NOON_UTC).1);
        s.month_billed_s = used;
        let mut r = Reserved::default();
        for t in &calls {
            if let Ok(g) = grant(&a, &s, &r, std::slice::from_ref(t), NOON_UTC, 7200) {
                r.seconds += i64::from(g.reserve_s);
                prop_assert!(used + r.seconds <= i64::from(minutes) * 60);
            }
        }
    }
}

fn held(reserve_e7: i64, reserve_s: u32) -> CreditHold {
    CreditHold {
        reserve_e7,
        reserve_s,
    }
}

#[test]
fn calls_to_cut_ends_the_newest_calls_until_the_rest_fit() {
    let (mut a, s) = prepaid(10 * MINUTE_RATE);
    a.at_limit = AtLimit::Cut;
    let three = [
        held(3 * MINUTE_RATE, 180),
        held(3 * MINUTE_RATE, 180),
        held(3 * MINUTE_RATE, 180),
    ];
    /// (balance, daily limit, today's spend, monthly minutes, calls to cut)
    type Case = (i64, Option<i64>, i64, Option<u32>, usize);
    let cases: &[Case] = &[
        // 9.00 reserved of 10.00: everything fits
        (10 * MINUTE_RATE, None, 0, None, 0),
        // exactly 9.00: fits
        (9 * MINUTE_RATE, None, 0, None, 0),
        // an adjustment took 5.00 away: 5.00 left holds one call (3.00), not two (6.00)
        (5 * MINUTE_RATE, None, 0, None, 2),
        // nothing left: every call ends
        (0, None, 0, None, 3),
        (-MINUTE_RATE, None, 0, None, 3),
        // the daily limit binds: 7.00 of which 1.00 is spent today leaves 6.00, two calls
        (
            10 * MINUTE_RATE,
            Some(7 * MINUTE_RATE),
            MINUTE_RATE,
            None,
            1,
        ),
        // monthly minutes: 7 minutes left hold two 3-minute calls
        (10 * MINUTE_RATE, None, 0, Some(7), 1),
    ];
    for &(balance, daily, spent_today, minutes, want) in cases {
        let mut a = a.clone();
        a.daily_spend_limit_e7 = daily;
        a.monthly_minutes = minutes;
        let (day, _) = local_day(a.tz, NOON_UTC);
        let s = Standing {
            balance_e7: balance,
            spend_day: Some(day),
            day_spend_e7: spent_today,
            ..s.clone()
        };
        assert_eq!(
            calls_to_cut(&a, &s, &three, NOON_UTC),
            want,
            "balance {balance}, daily {daily:?}, spent {spent_today}, minutes {minutes:?}"
        );
    }
    // no live calls: nothing to cut, however negative the balance
    let s = Standing {
        balance_e7: -MINUTE_RATE,
        ..Default::default()
    };
    assert_eq!(calls_to_cut(&a, &s, &[], NOON_UTC), 0);
}

proptest! {
    /// What the calls left up reserve fits in what the account has, and no fewer calls could
    /// end for that (cutting one call less would not fit).
    #[test]
    fn calls_to_cut_is_the_fewest_that_fit(
        balance in -100_000_000i64..1_000_000_000,
        holds in proptest::collection::vec((0i64..200_000_000, 0u32..3600), 0..20),
    ) {
        let (a, s) = prepaid(balance);
        let holds: Vec<CreditHold> = holds.into_iter().map(|(m, s)| held(m, s)).collect();
        let n = calls_to_cut(&a, &s, &holds, NOON_UTC);
        let kept: i64 = holds[..holds.len() - n].iter().map(|h| h.reserve_e7).sum();
        prop_assert!(n == holds.len() || kept <= balance);
        if n > 0 {
            let one_more: i64 = holds[..holds.len() - n + 1].iter().map(|h| h.reserve_e7).sum();
            prop_assert!(one_more > balance);
        }
    }
}
