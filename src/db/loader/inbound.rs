//! The inbound part of the snapshot (issue 19): trunks (with their sources), destinations,
//! credentials and origination sources with SELECTs, numbers streamed with binary COPY (a
//! million rows are never collected first), all in the loader's transaction, compiled by their
//! own `InboundBuilder` into their own `Inbound`.
//!
//! Owns: those statements and the rows' conversion. Must not touch: the other tables — not
//! even `customers`, `vendors` or `gateways`: the part names customers and vendors by id, the
//! snapshot resolves them at answer time, so a change to those tables never rebuilds this part.

use std::net::IpAddr;

use ipnet::IpNet;
use tokio_postgres::Client;

use super::columns::{col, select};
use super::copy::{copy_binary, need};
use super::DbError;
use crate::routing::inbound::{
    CredentialRow, DestinationRow, Inbound, InboundBuilder, NumberRow, NumberStatus,
    OriginationRow, TrunkRow,
};
use crate::routing::stir::{AttestCap, StirPolicyRow, TnRangeRow};
use crate::routing::{Id, Rate, Transport};

fn parse_net(s: &str) -> Option<IpNet> {
    s.parse::<IpNet>()
        .ok()
        .or_else(|| s.parse::<IpAddr>().ok().map(IpNet::from))
}

fn nonneg(v: Option<i32>) -> Option<u32> {
    v.and_then(|v| u32::try_from(v).ok())
}

/// Reads and compiles the inbound part.
pub(super) async fn load_inbound(client: &Client) -> Result<Inbound, DbError> {
    let mut b = InboundBuilder::new();
    const T: &str = "trunks";
    let sql = "SELECT t.id, t.name, t.customer_id, t.max_concurrent_calls, t.max_cps, \
                      t.media_policy_id, t.enabled, \
                      coalesce((SELECT array_agg(s.cidr::text ORDER BY s.cidr) FROM trunk_sources s \
                                WHERE s.trunk_id = t.id), '{}') \
               FROM trunks t ORDER BY t.id";
    for row in select(client, T, sql).await? {
        let name: String = col(&row, 1, T)?;
        let cidrs: Vec<String> = col(&row, 7, T)?;
        let sources = cidrs
            .iter()
            .map(|c| {
                parse_net(c).ok_or_else(|| {
                    DbError::bad_row(
                        T,
                        format!("trunk {name:?}"),
                        format!("unparsable cidr {c:?}"),
                    )
                })
            })
            .collect::<Result<_, _>>()?;
        b.trunk(TrunkRow {
            id: col(&row, 0, T)?,
            customer_id: col(&row, 2, T)?,
            max_calls: nonneg(col(&row, 3, T)?),
            max_cps: nonneg(col(&row, 4, T)?),
            media_policy: col(&row, 5, T)?,
            enabled: col(&row, 6, T)?,
            sources,
            name,
        });
    }
    const TD: &str = "trunk_destinations";
    let sql = "SELECT id, trunk_id, uri, host, port, transport::text, priority, weight, enabled \
               FROM trunk_destinations ORDER BY id";
    for row in select(client, TD, sql).await? {
        let id: Id = col(&row, 0, TD)?;
        let transport: String = col(&row, 5, TD)?;
        let key = || format!("trunk destination id {id}");
        b.destination(DestinationRow {
            id,
            trunk_id: col(&row, 1, TD)?,
            uri: col(&row, 2, TD)?,
            host: col(&row, 3, TD)?,
            port: u16::try_from(col::<i32>(&row, 4, TD)?)
                .map_err(|_| DbError::bad_row(TD, key(), "port out of range"))?,
            transport: Transport::parse(&transport)
                .ok_or_else(|| DbError::bad_row(TD, key(), "unknown transport"))?,
            priority: col(&row, 6, TD)?,
            weight: u32::try_from(col::<i32>(&row, 7, TD)?).unwrap_or(0),
            enabled: col(&row, 8, TD)?,
        });
    }
    const TC: &str = "trunk_credentials";
    for row in select(
        client,
        TC,
        "SELECT trunk_id, username, realm, ha1 FROM trunk_credentials ORDER BY id",
    )
    .await?
    {
        b.credential(CredentialRow {
            trunk_id: col(&row, 0, TC)?,
            username: col(&row, 1, TC)?,
            realm: col(&row, 2, TC)?,
            ha1: col(&row, 3, TC)?,
        });
    }
    const TO: &str = "origination_sources";
    // the vendors' gateways count as sources too: the snapshot adds them from its topology
    let sql = "SELECT vendor_id, cidr::text FROM origination_sources ORDER BY 1, 2";
    for row in select(client, TO, sql).await? {
        let cidr: String = col(&row, 1, TO)?;
        let vendor_id: Id = col(&row, 0, TO)?;
        let net = parse_net(&cidr).ok_or_else(|| {
            DbError::bad_row(
                TO,
                format!("vendor id {vendor_id}"),
                format!("unparsable cidr {cidr:?}"),
            )
        })?;
        b.origination(OriginationRow { vendor_id, net });
    }
    load_stir(client, &mut b).await?;
    load_numbers(client, &mut b).await?;
    tokio::task::spawn_blocking(move || b.build())
        .await
        .map_err(|e| DbError::Task(e.to_string()))?
        .map_err(|e| DbError::bad_row("numbers", "inbound data", e.to_string()))
}

/// STIR/SHAKEN settings and TN ranges (issue 20, sql/0020), by customer id like the rest of
/// the part (no join with `customers`: a customers change never rebuilds this part).
async fn load_stir(client: &Client, b: &mut InboundBuilder) -> Result<(), DbError> {
    const SP: &str = "stir_policies";
    let sql = "SELECT customer_id, trunk_id, max_attest, transit, verify_reject_code::integer \
               FROM stir_policies ORDER BY id";
    for row in select(client, SP, sql).await? {
        let cap: String = col(&row, 2, SP)?;
        let customer_id: Id = col(&row, 0, SP)?;
        let max_attest = AttestCap::parse(&cap).ok_or_else(|| {
            DbError::bad_row(
                SP,
                format!("customer id {customer_id}"),
                format!("max_attest {cap:?}"),
            )
        })?;
        b.stir_policy(StirPolicyRow {
            customer_id,
            trunk_id: col(&row, 1, SP)?,
            max_attest,
            transit: col(&row, 3, SP)?,
            verify_reject_code: col::<Option<i32>>(&row, 4, SP)?
                .and_then(|c| u16::try_from(c).ok()),
        });
    }
    const TR: &str = "stir_tn_ranges";
    let sql = "SELECT customer_id, first_tn, last_tn FROM stir_tn_ranges ORDER BY id";
    for row in select(client, TR, sql).await? {
        b.tn_range(TnRangeRow {
            customer_id: col(&row, 0, TR)?,
            first: col(&row, 1, TR)?,
            last: col(&row, 2, TR)?,
        });
    }
    Ok(())
}

fn text(f: Option<&[u8]>) -> Option<&str> {
    f.and_then(|v| std::str::from_utf8(v).ok())
}

/// Numbers, streamed (every column as text: one decoding rule).
async fn load_numbers(client: &Client, b: &mut InboundBuilder) -> Result<u64, DbError> {
    const T: &str = "numbers";
    let q = "SELECT n.number, n.customer_id::text, n.trunk_id::text, n.status::text, n.voice::text, \
                    n.fax::text, n.destination, round(n.inbound_rate * 10000000)::bigint::text, n.cnam \
             FROM numbers n"
        .to_string();
    copy_binary::<9>(&[(client, q)], T, |f| {
        let number = need(text(f[0]), T, &|| "a number".into(), "number")?;
        let key = || format!("number {}", crate::numbering::mask(number));
        let status = need(text(f[3]), T, &key, "status")?;
        let rate: i64 = need(
            text(f[7]).and_then(|s| s.parse().ok()),
            T,
            &key,
            "inbound_rate",
        )?;
        b.number(NumberRow {
            number: number.to_string(),
            customer_id: need(
                text(f[1]).and_then(|s| s.parse::<Id>().ok()),
                T,
                &key,
                "customer_id",
            )?,
            trunk_id: match text(f[2]) {
                None => None,
                Some(s) => Some(need(s.parse::<Id>().ok(), T, &key, "trunk_id")?),
            },
            status: need(NumberStatus::parse(status), T, &key, "status")?,
            voice: text(f[4]) == Some("true"),
            fax: text(f[5]) == Some("true"),
            destination: text(f[6]).map(str::to_string),
            inbound_rate: need(Rate::from_scaled(rate), T, &key, "inbound_rate")?,
            cnam: text(f[8]).map(str::to_string),
        });
        Ok(())
    })
    .await
}
