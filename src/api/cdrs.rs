//! The calls/CDR surface: JSON-RPC `call.attempt`, `call.answer`, `call.end` (each answers
//! `{"ok":true}` once the event is durable), `POST /v1/events` (the same events as form lines,
//! several per request: Kamailio's cheap path), `GET /v1/cdrs` (filters + cursor pagination),
//! `GET /v1/cdrs/export` (streamed CSV / NDJSON) and `GET /v1/routes/quality`.
//!
//! Owns: these paths and methods, their parameter syntax. Must not touch: call rules and
//! persistence (see `crate::calls`, `crate::cdr`), the dip (see `http.rs`).

use std::sync::Arc;

use bytes::Bytes;
use http_body_util::{Either, StreamBody};
use hyper::body::{Frame, Incoming};
use hyper::header::{HeaderValue, AUTHORIZATION, CONTENT_TYPE};
use hyper::{Request, Response};
use jsonrpsee::server::RegisterMethodError;
use jsonrpsee::types::{ErrorObjectOwned, Params};
use jsonrpsee::RpcModule;
use serde::Serialize;
use tokio::sync::mpsc;

use super::context::{Api, Body, Surface};
use super::error::ApiError;
use crate::calls::auth_failure;
use crate::calls::events::{
    answer_event, attempt_event, check_undipped_age, end_event, form_events, Event, EventData,
    EventError,
};
use crate::calls::{now_us, CallService, CallsError};
use crate::cdr::query::{self, CdrFilter, Format};
use crate::db::DbError;
use crate::http_body::read_body;

#[derive(Clone, Serialize)]
struct Ok {
    ok: bool,
}

async fn event(
    api: &Api,
    params: &Params<'_>,
    parse: fn(&[u8], i64) -> Result<Event, EventError>,
) -> Result<Ok, ApiError> {
    let Some(raw) = params.as_str() else {
        return Err(ApiError::invalid("params", "missing; expected an object"));
    };
    submit(api, |now| parse(raw.as_bytes(), now).map(|e| vec![e])).await?;
    Result::Ok(Ok { ok: true })
}

/// Parses events (all or none), adds the media node's figures to an end, queues them as one job
/// and waits until they are durable. Returns how many.
async fn submit(
    api: &Api,
    parse: impl FnOnce(i64) -> Result<Vec<Event>, EventError>,
) -> Result<usize, ApiError> {
    let Some(calls) = api.state.calls.as_ref() else {
        return Err(ApiError::Internal(
            "call tracking is disabled (calls.enabled)".into(),
        ));
    };
    let now = now_us();
    let parsed = parse(now).and_then(|evs| {
        // a call warpd never saw dipped: its events are no older than the longest call allows
        let table = calls.shared().table();
        let max_s = calls.max_call_duration_s();
        for ev in &evs {
            let dipped = table.get(&ev.call_id).is_some_and(|c| c.start.is_some())
                || table.is_finished(&ev.call_id);
            if !dipped {
                check_undipped_age(ev, now, max_s)?;
            }
        }
        Result::Ok(evs)
    });
    let mut events = match parsed {
        Result::Ok(evs) => evs,
        Err(e) => {
            calls
                .shared()
                .metrics
                .events
                .with_label_values(&["any", "invalid"])
                .inc();
            tracing::info!(error = %e, "call event refused");
            return Err(CallsError::from(e).into());
        }
    };
    // the media node's statistics of the call (taken when its `delete` went through warpd's ng
    // proxy) go into the CDR with the end event
    if let Some(media) = api.state.media.as_ref() {
        for ev in &mut events {
            if let EventData::End(end) = &mut ev.data {
                if let Some(q) = media.take_quality(&ev.call_id) {
                    end.media.fill_from(&q);
                }
                // where its recording is, when warpd's media control saw it start
                if let Some(r) = media.take_recording(&ev.call_id) {
                    if end.media.recording.is_none() && !r.files.is_empty() {
                        end.media.recording = Some(r.files.join(" "));
                    }
                    end.media.recording_node = Some(r.node);
                }
            }
        }
    }
    let n = events.len();
    calls.submit_all(events).await?;
    Result::Ok(n)
}

#[derive(Serialize)]
struct Submitted {
    ok: bool,
    events: usize,
}

/// `application/x-www-form-urlencoded`, or no content type (curl without -H).
fn check_form_content_type(req: &Request<Incoming>) -> Result<(), ApiError> {
    let Some(v) = req.headers().get(CONTENT_TYPE) else {
        return Result::Ok(());
    };
    let s = v.to_str().unwrap_or("");
    let media = s.split(';').next().unwrap_or("").trim();
    if media.eq_ignore_ascii_case("application/x-www-form-urlencoded") {
        Result::Ok(())
    } else {
        Err(ApiError::UnsupportedMediaType {
            expected: "application/x-www-form-urlencoded",
            got: s.chars().take(64).collect(),
        })
    }
}

/// Registers `call.attempt`, `call.answer`, `call.end`.
pub(crate) fn register(m: &mut RpcModule<Arc<Api>>) -> Result<(), RegisterMethodError> {
    type Parse = fn(&[u8], i64) -> Result<Event, EventError>;
    let methods: [(&'static str, Parse); 3] = [
        ("call.attempt", attempt_event),
        ("call.answer", answer_event),
        ("call.end", end_event),
    ];
    for (name, parse) in methods {
        m.register_async_method(name, move |params, api, _| async move {
            event(&api, &params, parse)
                .await
                .map_err(ErrorObjectOwned::from)
        })?;
    }
    Result::Ok(())
}

/// Constant-time comparison of the bearer token.
fn token_ok(req: &Request<Incoming>, want: &str) -> bool {
    let Some(got) = req
        .headers()
        .get(AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
    else {
        return false;
    };
    let (a, b) = (got.trim().as_bytes(), want.as_bytes());
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Parses the query string of /v1/cdrs and /v1/cdrs/export.
fn filter_from_query(q: Option<&str>, export: bool) -> Result<(CdrFilter, i64, Format), ApiError> {
    let mut f = CdrFilter::default();
    let mut limit = 100i64;
    let mut format = Format::Json;
    let bad = |e: query::FilterError| ApiError::invalid(e.field, e.why);
    for (k, v) in url::form_urlencoded::parse(q.unwrap_or("").as_bytes()) {
        let v = v.trim().to_string();
        match k.as_ref() {
            "from" => f.from = Some(query::parse_time("from", &v).map_err(bad)?),
            "to" => f.to = Some(query::parse_time("to", &v).map_err(bad)?),
            "ban" => f.ban = Some(v),
            "route" | "route_id" => f.route = Some(v),
            "vendor" => f.vendor = Some(v),
            "disposition" => f.disposition = Some(v),
            "direction" => f.direction = Some(query::parse_direction(&v).map_err(bad)?),
            "trunk" => f.trunk = Some(v),
            "ani_prefix" => f.ani_prefix = Some(v.trim_start_matches('+').to_string()),
            "dnis_prefix" => f.dnis_prefix = Some(v.trim_start_matches('+').to_string()),
            "cursor" if !export => f.after = Some(query::decode_cursor(&v).map_err(bad)?),
            "limit" if !export => {
                limit = v
                    .parse::<i64>()
                    .ok()
                    .filter(|n| (1..=query::MAX_LIMIT).contains(n))
                    .ok_or_else(|| {
                        ApiError::invalid("limit", format!("expected 1..{}", query::MAX_LIMIT))
                    })?
            }
            "format" if export => format = Format::parse(&v).map_err(bad)?,
            other => return Err(ApiError::UnknownParam(other.chars().take(64).collect())),
        }
    }
    if let (Some(a), Some(b)) = (f.from, f.to) {
        if b <= a {
            return Err(ApiError::invalid("to", "must be after from"));
        }
    }
    Result::Ok((f, limit, format))
}

#[derive(Serialize)]
struct CdrPage {
    cdrs: Vec<serde_json::Value>,
    next_cursor: Option<String>,
}

impl Api {
    fn calls_or_err(&self) -> Result<&Arc<CallService>, ApiError> {
        self.state
            .calls
            .as_ref()
            .ok_or_else(|| ApiError::Internal("call tracking is disabled (calls.enabled)".into()))
    }

    /// CDRs carry numbers and money: a caller needs the static `cdr.api_token` (for exporters)
    /// or an admin API token with at least the `readonly` role. Only a warpd serving neither
    /// (no admin API, no token configured: tests and embedded uses) answers without one.
    async fn authorize_cdrs(
        &self,
        req: &Request<Incoming>,
        calls: &CallService,
    ) -> Result<(), ApiError> {
        if let Some(t) = calls.api_token() {
            if token_ok(req, t) {
                return Result::Ok(());
            }
        }
        match &self.state.admin {
            Some(admin) => crate::admin::authorize(admin, req, crate::admin::Role::Readonly)
                .await
                .map(|_| ())
                .map_err(ApiError::from),
            None if calls.api_token().is_some() => Err(ApiError::Unauthorized(
                "a valid bearer token is required".into(),
            )),
            None => Result::Ok(()),
        }
    }

    /// `POST /v1/events`: call events as form lines (`crate::calls::events::form_events`),
    /// applied in order and answered `{"ok":true,"events":N}` once all are durable; a bad line
    /// refuses the whole body (400, naming the line and field). `event=auth_failure` lines
    /// (`crate::calls::auth_failure`) are counted and logged, not call events.
    pub(super) async fn http_events(&self, req: Request<Incoming>) -> Response<Body> {
        let res = async {
            check_form_content_type(&req)?;
            let limits = &self.state.limits;
            let body = read_body(req, limits.max_body_bytes, limits.body_read_timeout).await?;
            let (failures, calls) = auth_failure::split_form_body(&body)
                .map_err(|e| ApiError::from(CallsError::from(e)))?;
            let n = if auth_failure::has_lines(&calls) {
                submit(self, |now| form_events(&calls, now)).await?
            } else {
                0
            };
            self.count_auth_failures(&failures);
            Result::Ok(n + failures.len())
        }
        .await;
        match res {
            Result::Ok(events) => self.json_ok(Surface::Http, &Submitted { ok: true, events }),
            Err(e) => self.error(Surface::Http, e),
        }
    }

    /// `warpd_auth_failures_total` and a log line per failure (the source address, the user and
    /// realm the caller gave, clipped; never a credential).
    fn count_auth_failures(&self, failures: &[auth_failure::AuthFailure]) {
        for f in failures {
            self.state
                .metrics
                .auth_failures
                .with_label_values(&[if f.blocked { "true" } else { "false" }])
                .inc();
            tracing::warn!(source = %f.src_ip, user = %warpd_core::excerpt::excerpt(&f.user),
                realm = %warpd_core::excerpt::excerpt(&f.realm), blocked = f.blocked,
                "SIP digest authentication failed");
        }
    }

    /// `GET /v1/cdrs`.
    pub(super) async fn http_cdrs(&self, req: Request<Incoming>) -> Response<Body> {
        let res = async {
            let calls = self.calls_or_err()?;
            self.authorize_cdrs(&req, calls).await?;
            let (f, limit, _) = filter_from_query(req.uri().query(), false)?;
            let client = calls.pool().get().await.map_err(DbError::Pool)?;
            let p = query::page(&client, &f, limit)
                .await
                .map_err(DbError::query("reading CDRs"))?;
            Result::Ok(CdrPage {
                cdrs: p.rows,
                next_cursor: p.next,
            })
        }
        .await;
        match res {
            Result::Ok(p) => self.json_ok(Surface::Http, &p),
            Err(e) => self.error(Surface::Http, e),
        }
    }

    /// `GET /v1/cdrs/export?format=csv|json&…`: streamed page by page.
    pub(super) async fn http_cdrs_export(&self, req: Request<Incoming>) -> Response<Body> {
        let calls = match self.calls_or_err() {
            Result::Ok(c) => c.clone(),
            Err(e) => return self.error(Surface::Http, e),
        };
        if let Err(e) = self.authorize_cdrs(&req, &calls).await {
            return self.error(Surface::Http, e);
        }
        let (f, _, format) = match filter_from_query(req.uri().query(), true) {
            Result::Ok(x) => x,
            Err(e) => return self.error(Surface::Http, e),
        };
        let client = match calls.pool().get().await {
            Result::Ok(c) => c,
            Err(e) => return self.error(Surface::Http, DbError::Pool(e).into()),
        };
        let (tx, rx) = mpsc::channel::<Vec<u8>>(4);
        tokio::spawn(async move {
            if let Err(e) = query::export(&client, &f, format, tx).await {
                tracing::warn!(error = %crate::db::pg_detail(&e), "CDR export ended early");
            }
        });
        let stream = futures_util::stream::unfold(rx, |mut rx| async move {
            rx.recv().await.map(|b| {
                (
                    Result::<_, std::io::Error>::Ok(Frame::data(Bytes::from(b))),
                    rx,
                )
            })
        });
        let body = jsonrpsee::server::HttpBody::new(StreamBody::new(stream));
        let mut resp = Response::new(Either::Right(body));
        let ct = match format {
            Format::Csv => HeaderValue::from_static("text/csv; charset=utf-8"),
            Format::Json => HeaderValue::from_static("application/x-ndjson"),
        };
        resp.headers_mut().insert(CONTENT_TYPE, ct);
        resp
    }

    /// `GET /v1/routes/quality[?by=prefix]`: rolling ASR / ACD / PDD per route (or per route ×
    /// destination group).
    pub(super) fn http_route_quality(&self, query: Option<&str>) -> Response<Body> {
        let mut by_prefix = false;
        for (k, v) in url::form_urlencoded::parse(query.unwrap_or("").as_bytes()) {
            match (k.as_ref(), v.as_ref()) {
                ("by", "prefix") => by_prefix = true,
                ("by", "route") => by_prefix = false,
                ("by", _) => {
                    return self.error(
                        Surface::Http,
                        ApiError::invalid("by", "expected route or prefix"),
                    )
                }
                (other, _) => {
                    return self.error(
                        Surface::Http,
                        ApiError::UnknownParam(other.chars().take(64).collect()),
                    )
                }
            }
        }
        match self.calls_or_err() {
            Result::Ok(c) => self.json_ok(Surface::Http, &c.route_quality(by_prefix)),
            Err(e) => self.error(Surface::Http, e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_params() {
        let (f, limit, _) = filter_from_query(
            Some("ban=10001&from=1700000000&limit=5&dnis_prefix=%2B1212"),
            false,
        )
        .unwrap();
        assert_eq!(f.ban.as_deref(), Some("10001"));
        assert_eq!(f.dnis_prefix.as_deref(), Some("1212"));
        assert_eq!(limit, 5);
        let e = filter_from_query(Some("limit=0"), false).unwrap_err();
        assert!(e.to_string().starts_with("limit:"), "{e}");
        let e = filter_from_query(Some("bogus=1"), false).unwrap_err();
        assert!(e.to_string().starts_with("bogus:"), "{e}");
        let e = filter_from_query(Some("format=csv"), false).unwrap_err();
        assert!(e.to_string().starts_with("format:"), "{e}");
        let (_, _, fmt) = filter_from_query(Some("format=csv"), true).unwrap();
        assert_eq!(fmt, Format::Csv);
        let e = filter_from_query(Some("from=1700000010&to=1700000000"), false).unwrap_err();
        assert!(e.to_string().starts_with("to:"), "{e}");
    }
}
