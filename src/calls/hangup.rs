//! `call.hangup` (admin JSON-RPC, issue 21): ends a live call through Kamailio's own RPC —
//! `dlg.list_match callid eq <call_id>` for the dialog's `h_entry`/`h_id`, then `dlg.end_dlg`
//! (BYE to both sides) — over jsonrpcs on HTTP (`calls.kamailio_rpc_url`, kamailio.cfg's
//! `RPC_IP:RPC_PORT`). Kamailio sends no event for a BYE it generates this way, so warpd records
//! the end itself (`hangup=system`, `cause=call.hangup`).
//!
//! Owns: the Kamailio RPC client. Must not touch: the call table (the caller submits the end).

use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use serde_json::{json, Value};

/// Longest one RPC round trip to Kamailio may take.
const RPC_TIMEOUT: Duration = Duration::from_secs(3);
/// Largest RPC answer read (a dialog listing of one call is well under this).
const MAX_ANSWER_BYTES: usize = 256 * 1024;

/// Why a hang-up did not happen.
#[derive(Debug, thiserror::Error)]
pub enum HangupError {
    #[error("no Kamailio RPC configured (calls.kamailio_rpc_url)")]
    NotConfigured,
    #[error("Kamailio RPC {url}: {source}")]
    Transport {
        url: String,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    #[error("Kamailio RPC {url}: no answer within {} s", RPC_TIMEOUT.as_secs())]
    Timeout { url: String },
    #[error("Kamailio RPC {method}: {message}")]
    Rpc {
        method: &'static str,
        message: String,
    },
    #[error("Kamailio has no live dialog with this call_id")]
    NoDialog,
}

/// One JSON-RPC call to Kamailio; its `result`.
async fn rpc(url: &str, method: &'static str, params: Value) -> Result<Value, HangupError> {
    let transport = |e: Box<dyn std::error::Error + Send + Sync>| HangupError::Transport {
        url: url.to_string(),
        source: e,
    };
    let body = json!({"jsonrpc": "2.0", "method": method, "params": params, "id": 1}).to_string();
    let req = hyper::Request::post(url)
        .header(hyper::header::CONTENT_TYPE, "application/json")
        .body(Full::new(Bytes::from(body)))
        .map_err(|e| transport(Box::new(e)))?;
    let client: Client<_, Full<Bytes>> = Client::builder(TokioExecutor::new()).build_http();
    let answer = tokio::time::timeout(RPC_TIMEOUT, async {
        let resp = client
            .request(req)
            .await
            .map_err(|e| transport(Box::new(e)))?;
        let body = http_body_util::Limited::new(resp.into_body(), MAX_ANSWER_BYTES)
            .collect()
            .await
            .map_err(transport)?
            .to_bytes();
        Ok::<_, HangupError>(body)
    })
    .await
    .map_err(|_| HangupError::Timeout {
        url: url.to_string(),
    })??;
    let v: Value = serde_json::from_slice(&answer).map_err(|e| transport(Box::new(e)))?;
    if let Some(e) = v.get("error") {
        let message = e["message"]
            .as_str()
            .unwrap_or("error")
            .chars()
            .take(200)
            .collect();
        return Err(HangupError::Rpc { method, message });
    }
    Ok(v.get("result").cloned().unwrap_or(Value::Null))
}

/// Ends the dialog of `call_id` in Kamailio (BYE to both sides).
pub async fn end_dialog(url: Option<&str>, call_id: &str) -> Result<(), HangupError> {
    let url = url.ok_or(HangupError::NotConfigured)?;
    let listed = rpc(url, "dlg.list_match", json!(["callid", "eq", call_id])).await;
    let found = match &listed {
        Ok(Value::Array(a)) => a.first(),
        Ok(v @ Value::Object(_)) => Some(v),
        // dlg.list_match answers an error when nothing matches
        Ok(_) | Err(HangupError::Rpc { .. }) => None,
        Err(_) => return listed.map(|_| ()),
    };
    let Some(d) = found else {
        return Err(HangupError::NoDialog);
    };
    let (Some(he), Some(hi)) = (d["h_entry"].as_u64(), d["h_id"].as_u64()) else {
        return Err(HangupError::Rpc {
            method: "dlg.list_match",
            message: "dialog without h_entry/h_id".into(),
        });
    };
    rpc(url, "dlg.end_dlg", json!([he, hi])).await.map(|_| ())
}
