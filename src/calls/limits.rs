//! Loads the limits view ([`LimitsView`], pure, in `warpd_core::calls::limits`) from PostgreSQL:
//! `customers` columns added by `sql/0003_cdr.sql` and `routes.capacity`.

use tokio_postgres::Client;

pub use warpd_core::calls::limits::*;

fn nonneg(v: Option<i32>) -> Option<u32> {
    v.and_then(|v| u32::try_from(v).ok())
}

/// Reads the view from the database.
pub async fn load(client: &Client) -> Result<LimitsView, tokio_postgres::Error> {
    let mut v = LimitsView::default();
    for r in client
        .query(
            "SELECT ban, max_concurrent_calls, max_cps, billing_min_seconds, billing_inc_seconds \
             FROM customers",
            &[],
        )
        .await?
    {
        let ban: String = r.try_get(0)?;
        v.customers.insert(
            ban,
            CustLimits {
                max_calls: nonneg(r.try_get(1)?),
                max_cps: nonneg(r.try_get(2)?),
                bill_min: nonneg(r.try_get(3)?),
                bill_inc: nonneg(r.try_get(4)?),
            },
        );
    }
    for r in client
        .query(
            "SELECT name, capacity FROM routes WHERE capacity IS NOT NULL",
            &[],
        )
        .await?
    {
        let name: String = r.try_get(0)?;
        if let Some(c) = nonneg(r.try_get(1)?) {
            v.route_capacity.insert(name, c);
        }
    }
    Ok(v)
}
