//! The JSON-RPC 2.0 surface (`POST /rpc`): the jsonrpsee [`RpcModule`] with `lcr.route`,
//! `lcr.simulate`, `warpd.reload`, `warpd.health`, the jsonrpsee tower-service builder that serves
//! it on our listener, and a tiny RPC middleware that counts the caller's mistakes.
//!
//! Owns: method names, their params/result shapes. Must not touch: HTTP routing (see `http.rs`),
//! routing logic (every dip goes through [`Api::dip`], shared with `GET /v1/route`).

use std::future::Future;
use std::sync::Arc;

use jsonrpsee::server::middleware::rpc::{
    Batch, Notification, Request, RpcServiceBuilder, RpcServiceT,
};
use jsonrpsee::server::{
    BatchRequestConfig, MethodResponse, Methods, Server, ServerConfig, TowerService,
    TowerServiceBuilder,
};
use jsonrpsee::types::error::{
    INVALID_PARAMS_CODE, INVALID_REQUEST_CODE, METHOD_NOT_FOUND_CODE, PARSE_ERROR_CODE,
};
use jsonrpsee::types::{ErrorObjectOwned, Params};
use jsonrpsee::RpcModule;
use serde::Serialize;
use tower::layer::util::{Identity, Stack};

use super::context::{Api, Surface};
use super::error::ApiError;
use super::params::dip_from_json;
use super::Side;
use crate::routing::{DipRequest, KamailioAnswerOwned, SnapshotStats};

/// Most JSON-RPC requests jsonrpsee processes at once (it holds a permit per in-flight request;
/// over the limit it answers 429).
const MAX_IN_FLIGHT: u32 = 10_000;
/// Most calls in one batch.
const MAX_BATCH: u32 = 100;

/// The jsonrpsee HTTP service type served at `/rpc`.
pub(crate) type RpcService = TowerService<Stack<ObserveLayer, Identity>, Identity>;
pub(crate) type RpcServiceFactory = TowerServiceBuilder<Stack<ObserveLayer, Identity>, Identity>;

/// Result of `warpd.health`.
#[derive(Clone, Debug, Serialize)]
pub struct Health {
    pub ready: bool,
    pub generation: u64,
    /// the routing data version of the live snapshot (None before the first load)
    pub data_version: Option<i64>,
    pub snapshot: SnapshotStats,
}

/// The peer address of a `/rpc` request, put into its extensions before jsonrpsee sees it.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Source(pub(crate) std::net::IpAddr);

/// Marker put into every response that went through jsonrpsee's method dispatch; a 200 response
/// without it is jsonrpsee's own parse / invalid-request error.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Dispatched;

fn dip_params(params: &Params<'_>) -> Result<DipRequest, ApiError> {
    match params.as_str() {
        None => Err(ApiError::invalid(
            "params",
            "missing; expected an object {ban|src_ip, ani, dnis, lrn?, call_id?, max_results?}",
        )),
        Some(raw) => dip_from_json(raw.as_bytes(), "params"),
    }
}

/// `warpd.reload` params: none, `[]`, `{}` or `{"force": true|false}`.
fn reload_force(params: &Params<'_>) -> Result<bool, ApiError> {
    const EXPECTED: &str = "expected none or {\"force\": true|false}";
    let Some(raw) = params.as_str() else {
        return Ok(false);
    };
    let v: serde_json::Value = serde_json::from_str(raw)
        .map_err(|_| ApiError::invalid("params", format!("malformed JSON; {EXPECTED}")))?;
    match v {
        serde_json::Value::Null => Ok(false),
        serde_json::Value::Array(a) if a.is_empty() => Ok(false),
        serde_json::Value::Object(o) => {
            let mut force = false;
            for (k, v) in o {
                match (k.as_str(), v) {
                    ("force", serde_json::Value::Bool(b)) => force = b,
                    ("force", _) => {
                        return Err(ApiError::invalid("force", "expected true or false"))
                    }
                    (k, _) => {
                        return Err(ApiError::invalid(
                            warpd_core::excerpt::excerpt(k),
                            format!("unknown parameter; {EXPECTED}"),
                        ))
                    }
                }
            }
            Ok(force)
        }
        _ => Err(ApiError::invalid("params", EXPECTED)),
    }
}

fn media_err(e: crate::media::MediaError) -> ErrorObjectOwned {
    ApiError::from(e).into()
}

/// `{"call_id": "…"}` params of the `media.*` call methods, and the controller.
fn media_call(
    api: &Api,
    params: &Params<'_>,
) -> Result<(Arc<crate::media::MediaController>, String), ErrorObjectOwned> {
    #[derive(serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    struct CallParams {
        call_id: String,
    }
    let media = api
        .state
        .media
        .clone()
        .ok_or_else(|| media_err(crate::media::MediaError::NotConfigured))?;
    let raw = params.as_str().ok_or_else(|| {
        ErrorObjectOwned::from(ApiError::invalid(
            "params",
            "missing; expected {\"call_id\": \"…\"}",
        ))
    })?;
    let p: CallParams = serde_json::from_str(raw)
        .map_err(|e| ErrorObjectOwned::from(ApiError::invalid("params", e.to_string())))?;
    if p.call_id.is_empty() {
        return Err(ApiError::invalid("call_id", "must not be empty").into());
    }
    Ok((media, p.call_id))
}

/// `call.hangup` parameters.
#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct HangupParams {
    call_id: String,
}

/// Methods served on the admin listener only: on the Kamailio listener they answer
/// [`ApiError::AdminOnly`] (they change media or reload state, or show vendors' buy rates,
/// names and gateway addresses).
const ADMIN_ONLY: [&str; 7] = [
    "call.hangup",
    "lcr.simulate",
    "warpd.reload",
    "media.record.start",
    "media.record.stop",
    "media.query",
    "media.nodes",
];

/// The methods of one listener, with `api` as their context: the Kamailio listener has
/// `lcr.route`, `call.*` and `warpd.health`; the admin listener `warpd.health` and the
/// [`ADMIN_ONLY`] methods.
pub(crate) fn methods(api: Arc<Api>, side: Side) -> Result<Methods, ApiError> {
    let mut m = RpcModule::new(api);
    m.register_method("warpd.health", |_, api, _| {
        let engine = &api.state.engine;
        let snap = engine.load();
        Ok::<_, ErrorObjectOwned>(Health {
            ready: engine.is_ready(),
            generation: snap.generation(),
            data_version: snap.data_version(),
            snapshot: snap.stats(),
        })
    })?;
    if side == Side::Kamailio {
        m.register_method("lcr.route", |params, api, ext| {
            let req = dip_params(&params).map_err(ErrorObjectOwned::from)?;
            let source = ext.get::<Source>().map(|s| s.0).ok_or_else(|| {
                ErrorObjectOwned::from(ApiError::Internal("request without its source".into()))
            })?;
            // the Kamailio surface's answer: no margin data (see README "Wire contract")
            api.dip(&req, Surface::Rpc, source)
                .map(KamailioAnswerOwned)
                .map_err(ErrorObjectOwned::from)
        })?;
        m.register_method("did.route", |params, api, ext| {
            let req = match params.as_str() {
                None => Err(ApiError::invalid(
                    "params",
                    "missing; expected an object {src_ip, ani, dnis, call_id?}",
                )),
                Some(raw) => {
                    crate::routing::inbound::params::inbound_from_json(raw.as_bytes(), "params")
                        .map_err(ApiError::from)
                }
            }
            .map_err(ErrorObjectOwned::from)?;
            let source = ext.get::<Source>().map(|s| s.0).ok_or_else(|| {
                ErrorObjectOwned::from(ApiError::Internal("request without its source".into()))
            })?;
            api.inbound(&req, Surface::Rpc, source)
                .map_err(ErrorObjectOwned::from)
        })?;
        super::cdrs::register(&mut m)?;
        for name in ADMIN_ONLY {
            m.register_method(name, move |_, _, _| {
                Err::<(), _>(ErrorObjectOwned::from(ApiError::AdminOnly(name)))
            })?;
        }
        return Ok(m.into());
    }
    m.register_method("lcr.simulate", |params, api, _| {
        let Some(raw) = params.as_str() else {
            // the outbound parser's message for missing params
            let req = dip_params(&params).map_err(ErrorObjectOwned::from)?;
            return api
                .simulate(&req)
                .and_then(|s| {
                    serde_json::to_value(s).map_err(|e| ApiError::Internal(e.to_string()))
                })
                .map_err(ErrorObjectOwned::from);
        };
        let result = match super::inbound::simulation_request(raw.as_bytes(), "params") {
            Ok(super::inbound::SimulationRequest::Inbound(r)) => {
                api.simulate_inbound(&r).and_then(|s| {
                    serde_json::to_value(s).map_err(|e| ApiError::Internal(e.to_string()))
                })
            }
            Ok(super::inbound::SimulationRequest::Outbound(r)) => api.simulate(&r).and_then(|s| {
                serde_json::to_value(s).map_err(|e| ApiError::Internal(e.to_string()))
            }),
            Err(e) => Err(e),
        };
        result.map_err(ErrorObjectOwned::from)
    })?;
    m.register_async_method("media.record.start", |params, api, _| async move {
        let (media, call_id) = media_call(&api, &params)?;
        media.record(&call_id, true).await.map_err(media_err)
    })?;
    m.register_async_method("media.record.stop", |params, api, _| async move {
        let (media, call_id) = media_call(&api, &params)?;
        media.record(&call_id, false).await.map_err(media_err)
    })?;
    m.register_async_method("media.query", |params, api, _| async move {
        let (media, call_id) = media_call(&api, &params)?;
        media.query(&call_id).await.map_err(media_err)
    })?;
    m.register_async_method("call.hangup", |params, api, _| async move {
        let raw = params.as_str().ok_or_else(|| {
            ErrorObjectOwned::from(ApiError::invalid(
                "params",
                "missing; expected {\"call_id\": \"…\"}",
            ))
        })?;
        let p: HangupParams = serde_json::from_str(raw)
            .map_err(|e| ErrorObjectOwned::from(ApiError::invalid("params", e.to_string())))?;
        if p.call_id.is_empty() || p.call_id.len() > 256 {
            return Err(ApiError::invalid("call_id", "1 to 256 bytes").into());
        }
        let calls = api.state.calls.clone().ok_or_else(|| {
            ErrorObjectOwned::from(ApiError::Internal("calls are off (calls.enabled)".into()))
        })?;
        calls
            .hangup(&p.call_id, "call.hangup")
            .await
            .map_err(|e| ErrorObjectOwned::from(ApiError::from(e)))?;
        tracing::info!(call_id = %warpd_core::excerpt::excerpt(&p.call_id), "call ended by call.hangup");
        Ok::<_, ErrorObjectOwned>(serde_json::json!({"ok": true}))
    })?;
    m.register_method("media.nodes", |_, api, _| {
        let media = api
            .state
            .media
            .as_ref()
            .ok_or_else(|| media_err(crate::media::MediaError::NotConfigured))?;
        Ok::<_, ErrorObjectOwned>(media.nodes())
    })?;
    m.register_async_method("warpd.reload", |params, api, _| async move {
        let force = reload_force(&params).map_err(ErrorObjectOwned::from)?;
        let reloader = &api.state.reloader;
        let result = if force {
            reloader.reload_full().await
        } else {
            reloader.reload().await
        };
        match result {
            Ok(report) => {
                tracing::info!(
                    generation = report.generation,
                    duration_ms = report.duration_ms,
                    unchanged = report.unchanged,
                    force,
                    "reload via API"
                );
                Ok(report)
            }
            Err(e) => {
                tracing::warn!(error = %e, "reload via API failed");
                Err(ErrorObjectOwned::from(ApiError::from(e)))
            }
        }
    })?;
    Ok(m.into())
}

/// The jsonrpsee service factory: HTTP only, body limit from [`super::ApiLimits`].
pub(crate) fn service_factory(api: &Arc<Api>) -> RpcServiceFactory {
    let max_body = u32::try_from(api.state.limits.max_body_bytes).unwrap_or(u32::MAX);
    let cfg = ServerConfig::builder()
        .http_only()
        .max_request_body_size(max_body)
        .max_connections(MAX_IN_FLIGHT)
        .set_batch_request_config(BatchRequestConfig::Limit(MAX_BATCH))
        .build();
    Server::builder()
        .set_config(cfg)
        .set_rpc_middleware(RpcServiceBuilder::new().layer(ObserveLayer { api: api.clone() }))
        .to_service_builder()
}

/// Layer of [`Observe`].
#[derive(Clone)]
pub(crate) struct ObserveLayer {
    api: Arc<Api>,
}

impl<S> tower::Layer<S> for ObserveLayer {
    type Service = Observe<S>;
    fn layer(&self, inner: S) -> Observe<S> {
        Observe {
            inner,
            api: self.api.clone(),
        }
    }
}

/// RPC middleware: counts error responses that are the caller's mistake and marks responses as
/// [`Dispatched`].
#[derive(Clone)]
pub(crate) struct Observe<S> {
    inner: S,
    api: Arc<Api>,
}

impl<S> Observe<S> {
    fn seen(api: &Api, mut rp: MethodResponse) -> MethodResponse {
        let kind = match rp.as_error_code() {
            Some(INVALID_PARAMS_CODE) => Some("invalid_params"),
            Some(METHOD_NOT_FOUND_CODE) => Some("unknown_method"),
            Some(INVALID_REQUEST_CODE) => Some("invalid_request"),
            Some(PARSE_ERROR_CODE) => Some("malformed_json"),
            _ => None,
        };
        if let Some(kind) = kind {
            api.bad_request(Surface::Rpc, kind);
        }
        rp.extensions_mut().insert(Dispatched);
        rp
    }
}

impl<S> RpcServiceT for Observe<S>
where
    S: RpcServiceT<
            MethodResponse = MethodResponse,
            BatchResponse = MethodResponse,
            NotificationResponse = MethodResponse,
        > + Send
        + Sync
        + Clone
        + 'static,
{
    type MethodResponse = MethodResponse;
    type BatchResponse = MethodResponse;
    type NotificationResponse = MethodResponse;

    fn call<'a>(&self, req: Request<'a>) -> impl Future<Output = MethodResponse> + Send + 'a {
        let fut = self.inner.call(req);
        let api = self.api.clone();
        async move { Self::seen(&api, fut.await) }
    }

    fn batch<'a>(&self, batch: Batch<'a>) -> impl Future<Output = MethodResponse> + Send + 'a {
        let fut = self.inner.batch(batch);
        let api = self.api.clone();
        async move { Self::seen(&api, fut.await) }
    }

    fn notification<'a>(
        &self,
        n: Notification<'a>,
    ) -> impl Future<Output = MethodResponse> + Send + 'a {
        let fut = self.inner.notification(n);
        let api = self.api.clone();
        async move { Self::seen(&api, fut.await) }
    }
}
