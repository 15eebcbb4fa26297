//! Media policy: what warpd adds to an `offer` for a call, from the customer (BAN) and the route
//! chosen by the dip.
//!
//! - recording (`record call: yes` + `metadata` naming BAN and route) for customers and/or routes
//!   that have it;
//! - T.38 per route: `none` (default, nothing done), `passthrough` (T.38 passes as is; any `T.38`
//!   options the Kamailio script added are removed), `gateway` (an offer carrying a T.38
//!   `m=image … udptl` stream gets `T.38: [decode]`, so RTPEngine answers the T.38 side itself
//!   and offers G.711 audio to the other side — the FAX fallback to G.711 case);
//! - codecs per route: `codec_allow` (only these: `codec: {strip: [all], except: [...]}`) and
//!   `codec_strip` (`codec: {strip: [...]}`).
//!
//! Rows live in `media_policies` (sql/0004_media.sql): a row names a customer BAN, a route name
//! or both, or a customer trunk (sql/0021: `trunk_name`, alone); for each setting the most
//! specific row that sets it wins: the trunk of an inbound call (a call a vendor delivers to one
//! of the trunk's numbers), then BAN+route, route, BAN. [`PolicyTable::load`] reads them;
//! [`watch`] reloads on `NOTIFY warpd_routing`.
//!
//! Owns: `media_policies` reads and the pure [`apply`]. Must not touch: routing data, sockets.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwap;
use serde::Serialize;
use tokio_util::sync::CancellationToken;

use super::codec::{Bencode, Command, Dict, NgRequest};
use super::context::CallContext;
use super::metrics::MediaMetrics;
use super::MediaError;

pub use warpd_core::rules::media::T38Mode;

/// One `media_policies` row; `None` settings are inherited from less specific rows.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct PolicyRow {
    pub ban: Option<String>,
    pub route: Option<String>,
    /// a customer trunk: its inbound calls (then no BAN or route)
    pub trunk: Option<String>,
    pub record: Option<bool>,
    pub t38: Option<T38Mode>,
    pub codec_allow: Option<Vec<String>>,
    pub codec_strip: Option<Vec<String>>,
}

/// The effective policy of one call.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct MediaPolicy {
    pub record: bool,
    pub t38: T38Mode,
    pub codec_allow: Vec<String>,
    pub codec_strip: Vec<String>,
}

/// All policy rows, indexed.
#[derive(Debug, Default)]
pub struct PolicyTable {
    by_ban: HashMap<String, PolicyRow>,
    by_route: HashMap<String, PolicyRow>,
    by_pair: HashMap<(String, String), PolicyRow>,
    by_trunk: HashMap<String, PolicyRow>,
}

impl PolicyTable {
    pub fn from_rows(rows: Vec<PolicyRow>) -> PolicyTable {
        let mut t = PolicyTable::default();
        for r in rows {
            if let Some(name) = r.trunk.clone() {
                t.by_trunk.insert(name, r);
                continue;
            }
            match (r.ban.clone(), r.route.clone()) {
                (Some(b), Some(ro)) => {
                    t.by_pair.insert((b, ro), r);
                }
                (Some(b), None) => {
                    t.by_ban.insert(b, r);
                }
                (None, Some(ro)) => {
                    t.by_route.insert(ro, r);
                }
                (None, None) => {}
            }
        }
        t
    }

    pub fn len(&self) -> usize {
        self.by_ban.len() + self.by_route.len() + self.by_pair.len() + self.by_trunk.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The effective policy for a customer and route (either may be unknown).
    pub fn resolve(&self, ban: Option<&str>, route: Option<&str>) -> MediaPolicy {
        self.resolve_call(ban, route, None)
    }

    /// The effective policy of a call: its customer trunk's row first (an inbound call to the
    /// trunk), then the customer and route rows as [`resolve`](Self::resolve).
    pub fn resolve_call(
        &self,
        ban: Option<&str>,
        route: Option<&str>,
        trunk: Option<&str>,
    ) -> MediaPolicy {
        let pair = match (ban, route) {
            (Some(b), Some(r)) => self.by_pair.get(&(b.to_string(), r.to_string())),
            _ => None,
        };
        let rows: Vec<&PolicyRow> = [
            trunk.and_then(|t| self.by_trunk.get(t)),
            pair,
            route.and_then(|r| self.by_route.get(r)),
            ban.and_then(|b| self.by_ban.get(b)),
        ]
        .into_iter()
        .flatten()
        .collect();
        MediaPolicy {
            record: rows.iter().find_map(|r| r.record).unwrap_or(false),
            t38: rows.iter().find_map(|r| r.t38).unwrap_or_default(),
            codec_allow: rows
                .iter()
                .find_map(|r| r.codec_allow.clone())
                .unwrap_or_default(),
            codec_strip: rows
                .iter()
                .find_map(|r| r.codec_strip.clone())
                .unwrap_or_default(),
        }
    }

    /// Reads every `media_policies` row.
    pub async fn load(client: &tokio_postgres::Client) -> Result<PolicyTable, MediaError> {
        let rows = client
            .query(
                "SELECT customer_ban, route_name, record, t38_mode, codec_allow, codec_strip, \
                        trunk_name FROM media_policies ORDER BY id",
                &[],
            )
            .await
            .map_err(|e| MediaError::Policy(format!("reading media_policies: {e}")))?;
        let mut out = Vec::with_capacity(rows.len());
        for row in rows {
            let t38: Option<String> = row
                .try_get(3)
                .map_err(|e| MediaError::Policy(format!("media_policies.t38_mode: {e}")))?;
            let t38 = match t38 {
                None => None,
                Some(s) => Some(T38Mode::parse(&s).ok_or_else(|| {
                    MediaError::Policy(format!("media_policies.t38_mode: unknown mode {s:?}"))
                })?),
            };
            let get = |i: usize| -> Result<Option<String>, MediaError> {
                row.try_get(i)
                    .map_err(|e| MediaError::Policy(format!("media_policies column {i}: {e}")))
            };
            let list = |i: usize| -> Result<Option<Vec<String>>, MediaError> {
                row.try_get(i)
                    .map_err(|e| MediaError::Policy(format!("media_policies column {i}: {e}")))
            };
            out.push(PolicyRow {
                ban: get(0)?,
                route: get(1)?,
                trunk: get(6)?,
                record: row
                    .try_get(2)
                    .map_err(|e| MediaError::Policy(format!("media_policies.record: {e}")))?,
                t38,
                codec_allow: list(4)?,
                codec_strip: list(5)?,
            });
        }
        Ok(PolicyTable::from_rows(out))
    }
}

/// Flag Kamailio may add to name the route it is trying: `warpd-route=<route name>`. It wins over
/// the dip's first route and is removed before the command goes to RTPEngine.
pub const ROUTE_FLAG: &str = "warpd-route=";

/// The dictionary key Kamailio's `rtpengine` module turns the flag into: it sends any flag of the
/// form `key=value` it does not know as a `key: value` entry of the command (seen from Kamailio
/// 5.6: RTPEngine logs "Unknown dictionary key encountered: 'warpd-route'" when it gets through).
pub const ROUTE_KEY: &str = "warpd-route";

/// Takes the route Kamailio named out of the command — the `warpd-route` key (what Kamailio's
/// module sends) or a `warpd-route=…` entry of `flags` (other ng clients) — and returns it. Both
/// are removed, so RTPEngine never sees them.
pub fn take_route_flag(req: &mut NgRequest) -> Option<String> {
    let keyed = req
        .dict
        .remove(ROUTE_KEY)
        .and_then(|v| v.as_str().map(str::to_string))
        .filter(|s| !s.is_empty());
    let flagged = take_route_list_flag(req);
    keyed.or(flagged)
}

fn take_route_list_flag(req: &mut NgRequest) -> Option<String> {
    let Some(Bencode::List(flags)) = req.dict.get_mut("flags") else {
        return None;
    };
    let i = flags
        .iter()
        .position(|f| f.as_str().is_some_and(|s| s.starts_with(ROUTE_FLAG)))?;
    let f = flags.remove(i);
    f.as_str()
        .map(|s| s[ROUTE_FLAG.len()..].to_string())
        .filter(|s| !s.is_empty())
}

fn sdp_has_t38(sdp: &[u8]) -> bool {
    sdp.split(|&b| b == b'\n').any(|line| {
        line.starts_with(b"m=image") && line.windows(5).any(|w| w.eq_ignore_ascii_case(b"udptl"))
    })
}

/// Applies `policy` to an `offer` (other commands are left alone). Pure.
pub fn apply(policy: &MediaPolicy, ctx: &CallContext, route: Option<&str>, req: &mut NgRequest) {
    if req.command != Command::Offer {
        return;
    }
    if policy.record {
        req.dict.set("record call", Bencode::str("yes"));
        let mut meta = format!(
            "ban:{}|route:{}",
            ctx.ban.as_deref().unwrap_or("-"),
            route.unwrap_or("-")
        );
        if let Some(t) = &ctx.trunk {
            meta.push_str("|trunk:");
            meta.push_str(t);
        }
        req.dict.set("metadata", Bencode::str(&meta));
    }
    match policy.t38 {
        T38Mode::None => {}
        T38Mode::Passthrough => {
            req.dict.remove("T.38");
        }
        T38Mode::Gateway => {
            if req.sdp().is_some_and(sdp_has_t38) {
                req.dict.set("T.38", Bencode::str_list(&["decode"]));
            }
        }
    }
    if !policy.codec_allow.is_empty() || !policy.codec_strip.is_empty() {
        let mut codec = match req.dict.remove("codec") {
            Some(Bencode::Dict(d)) => d,
            _ => Dict::new(),
        };
        let mut strip: Vec<Bencode> = match codec.remove("strip") {
            Some(Bencode::List(l)) => l,
            _ => Vec::new(),
        };
        if !policy.codec_allow.is_empty() {
            strip.push(Bencode::str("all"));
            let mut except: Vec<Bencode> = match codec.remove("except") {
                Some(Bencode::List(l)) => l,
                _ => Vec::new(),
            };
            except.extend(policy.codec_allow.iter().map(|c| Bencode::str(c)));
            codec.set("except", Bencode::List(except));
        }
        strip.extend(policy.codec_strip.iter().map(|c| Bencode::str(c)));
        codec.set("strip", Bencode::List(strip));
        req.dict.set("codec", Bencode::Dict(codec));
    }
}

/// Loads the policies now and again after every `NOTIFY warpd_routing` (debounced), keeping the
/// last good table when a load fails. Reconnects with backoff.
pub async fn watch(
    db_url: String,
    table: Arc<ArcSwap<PolicyTable>>,
    metrics: Arc<MediaMetrics>,
    debounce: Duration,
    shutdown: CancellationToken,
) {
    let mut backoff = Duration::from_millis(200);
    loop {
        let r = tokio::select! {
            r = watch_once(&db_url, &table, &metrics, debounce) => r,
            _ = shutdown.cancelled() => return,
        };
        if let Err(e) = r {
            tracing::warn!(error = %e, retry_ms = backoff.as_millis() as u64, "media policy watcher failed; reconnecting");
        }
        tokio::select! {
            _ = tokio::time::sleep(backoff) => {}
            _ = shutdown.cancelled() => return,
        }
        backoff = (backoff * 2).min(Duration::from_secs(10));
    }
}

async fn watch_once(
    db_url: &str,
    table: &ArcSwap<PolicyTable>,
    metrics: &MediaMetrics,
    debounce: Duration,
) -> Result<(), MediaError> {
    use futures_util::StreamExt;
    let target =
        crate::db::target(db_url).map_err(|e| MediaError::Policy(format!("database url: {e}")))?;
    let (client, mut conn) = target
        .connect()
        .await
        .map_err(|e| MediaError::Policy(format!("connecting: {e}")))?;
    let (tx, mut rx) = tokio::sync::mpsc::channel::<()>(16);
    let driver = tokio::spawn(async move {
        let mut stream = futures_util::stream::poll_fn(move |cx| conn.poll_message(cx));
        while let Some(msg) = stream.next().await {
            match msg {
                Ok(tokio_postgres::AsyncMessage::Notification(_)) => {
                    let _ = tx.try_send(());
                }
                Ok(_) => {}
                Err(_) => break,
            }
        }
    });
    let result = async {
        client
            .batch_execute("LISTEN warpd_routing")
            .await
            .map_err(|e| MediaError::Policy(format!("LISTEN warpd_routing: {e}")))?;
        loop {
            let t = PolicyTable::load(&client).await?;
            tracing::info!(policies = t.len(), "media policies loaded");
            metrics.policies.set(t.len() as i64);
            metrics.policy_loads.inc();
            table.store(Arc::new(t));
            if rx.recv().await.is_none() {
                return Err(MediaError::Policy("LISTEN connection closed".into()));
            }
            // debounce a burst of notifications
            loop {
                match tokio::time::timeout(debounce, rx.recv()).await {
                    Ok(Some(())) => continue,
                    Ok(None) => return Err(MediaError::Policy("LISTEN connection closed".into())),
                    Err(_) => break,
                }
            }
        }
    }
    .await;
    driver.abort();
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(ban: Option<&str>, route: Option<&str>) -> PolicyRow {
        PolicyRow {
            ban: ban.map(String::from),
            route: route.map(String::from),
            ..PolicyRow::default()
        }
    }

    #[test]
    fn t38_mode_text_round_trips() {
        for m in [T38Mode::None, T38Mode::Passthrough, T38Mode::Gateway] {
            assert_eq!(T38Mode::parse(m.as_str()), Some(m));
        }
        assert_eq!(T38Mode::parse("fax"), None);
    }

    #[test]
    fn most_specific_row_wins_per_setting() {
        let t = PolicyTable::from_rows(vec![
            PolicyRow {
                record: Some(true),
                codec_strip: Some(vec!["G729".into()]),
                ..row(Some("10001"), None)
            },
            PolicyRow {
                t38: Some(T38Mode::Gateway),
                codec_strip: Some(vec!["opus".into()]),
                ..row(None, Some("lrn-east"))
            },
            PolicyRow {
                record: Some(false),
                ..row(Some("10001"), Some("lrn-west"))
            },
        ]);
        let p = t.resolve(Some("10001"), Some("lrn-east"));
        assert!(p.record);
        assert_eq!(p.t38, T38Mode::Gateway);
        assert_eq!(p.codec_strip, vec!["opus"]);
        let p = t.resolve(Some("10001"), Some("lrn-west"));
        assert!(!p.record, "pair row turns recording off");
        assert_eq!(p.codec_strip, vec!["G729"]);
        assert_eq!(t.resolve(None, None), MediaPolicy::default());
        assert_eq!(t.resolve(Some("999"), Some("x")), MediaPolicy::default());
    }

    /// An inbound call to a trunk: the trunk's row wins per setting, the customer's fills in.
    #[test]
    fn a_trunk_row_wins_for_its_inbound_calls() {
        let t = PolicyTable::from_rows(vec![
            PolicyRow {
                record: Some(true),
                codec_strip: Some(vec!["G729".into()]),
                ..row(Some("10001"), None)
            },
            PolicyRow {
                trunk: Some("acme-main".into()),
                t38: Some(T38Mode::Gateway),
                codec_allow: Some(vec!["PCMA".into()]),
                record: Some(false),
                ..PolicyRow::default()
            },
        ]);
        /// (trunk, record, T.38, codec_allow, codec_strip)
        type Want<'a> = (Option<&'a str>, bool, T38Mode, &'a [&'a str], &'a [&'a str]);
        let table: &[Want] = &[
            (
                Some("acme-main"),
                false,
                T38Mode::Gateway,
                &["PCMA"],
                &["G729"],
            ),
            (Some("other"), true, T38Mode::None, &[], &["G729"]),
            (None, true, T38Mode::None, &[], &["G729"]),
        ];
        for (trunk, record, t38, allow, strip) in table {
            let p = t.resolve_call(Some("10001"), None, *trunk);
            assert_eq!(p.record, *record, "{trunk:?}");
            assert_eq!(p.t38, *t38, "{trunk:?}");
            assert_eq!(p.codec_allow, *allow, "{trunk:?}");
            assert_eq!(p.codec_strip, *strip, "{trunk:?}");
        }
        assert_eq!(t.len(), 2);
        // the recording's metadata names the trunk
        let mut r = NgRequest::new(Command::Offer)
            .with("call-id", "c1")
            .with("sdp", "v=0\r\n");
        let ctx = CallContext {
            ban: Some("10001".into()),
            routes: vec![],
            trunk: Some("acme-main".into()),
        };
        let on = MediaPolicy {
            record: true,
            ..MediaPolicy::default()
        };
        apply(&on, &ctx, None, &mut r);
        assert_eq!(
            r.dict.str("metadata"),
            Some("ban:10001|route:-|trunk:acme-main")
        );
    }

    fn offer(sdp: &str) -> NgRequest {
        let mut r = NgRequest::new(Command::Offer)
            .with("call-id", "c1")
            .with("sdp", sdp);
        r.dict.set(
            "flags",
            Bencode::str_list(&["trust-address", "warpd-route=lrn-east"]),
        );
        r
    }

    #[test]
    fn apply_recording_t38_codecs() {
        let ctx = CallContext {
            ban: Some("10001".into()),
            routes: vec!["a".into()],
            trunk: None,
        };
        let mut r = offer("v=0\r\nm=image 4000 udptl t38\r\n");
        assert_eq!(take_route_flag(&mut r).as_deref(), Some("lrn-east"));
        assert_eq!(r.flags(), vec!["trust-address"]);
        // Kamailio's rtpengine module sends `warpd-route=x` as a dictionary entry: taken too
        let mut k = offer("v=0\r\n");
        k.dict.remove("flags");
        k.dict.set(ROUTE_KEY, Bencode::str("intl-b"));
        assert_eq!(take_route_flag(&mut k).as_deref(), Some("intl-b"));
        assert!(
            k.dict.get(ROUTE_KEY).is_none(),
            "the key never reaches RTPEngine"
        );
        assert_eq!(take_route_flag(&mut k), None);
        let p = MediaPolicy {
            record: true,
            t38: T38Mode::Gateway,
            codec_allow: vec!["PCMU".into()],
            codec_strip: vec!["G722".into()],
        };
        apply(&p, &ctx, Some("lrn-east"), &mut r);
        assert_eq!(r.dict.str("record call"), Some("yes"));
        assert_eq!(r.dict.str("metadata"), Some("ban:10001|route:lrn-east"));
        assert_eq!(r.dict.get("T.38"), Some(&Bencode::str_list(&["decode"])));
        let codec = r.dict.dict("codec").unwrap();
        assert_eq!(
            codec.get("strip"),
            Some(&Bencode::str_list(&["all", "G722"]))
        );
        assert_eq!(codec.get("except"), Some(&Bencode::str_list(&["PCMU"])));

        // audio offer on a gateway route: no T.38 options; nothing for an answer
        let mut r = offer("v=0\r\nm=audio 4000 RTP/AVP 0\r\n");
        apply(&p, &ctx, None, &mut r);
        assert!(r.dict.get("T.38").is_none());
        let mut a = NgRequest::new(Command::Answer).with("call-id", "c1");
        let before = a.clone();
        apply(&p, &ctx, None, &mut a);
        assert_eq!(a, before);

        // passthrough removes script-added T.38 options; default adds nothing
        let mut r = offer("v=0\r\nm=image 4000 udptl t38\r\n");
        r.dict.set("T.38", Bencode::str_list(&["force"]));
        apply(
            &MediaPolicy {
                t38: T38Mode::Passthrough,
                ..MediaPolicy::default()
            },
            &ctx,
            None,
            &mut r,
        );
        assert!(r.dict.get("T.38").is_none());
        let mut r = offer("v=0\r\n");
        let before = r.clone();
        apply(&MediaPolicy::default(), &ctx, None, &mut r);
        assert_eq!(r, before);
    }
}
