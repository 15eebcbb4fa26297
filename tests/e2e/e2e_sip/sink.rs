//! The recording event sink in front of warpd's `POST /v1/events` (see [`event_sink`]).

use super::*;

/// Records every call event Kamailio posts (a form body, one event per line) and forwards the
/// body to warpd. Each event is kept as `{"method": "call.<event>", "params": {...}}`, the
/// numeric fields as numbers, so that the checks read like the JSON-RPC methods.
/// Kamailio's credentials are passed on to warpd.
/// While `down` is set the sink answers 503 without recording or forwarding (warpd unavailable).
pub(super) async fn event_sink(
    listener: tokio::net::TcpListener,
    warpd: String,
    seen: Arc<Mutex<Vec<Value>>>,
    down: Arc<AtomicBool>,
) {
    use http_body_util::{BodyExt, Full};
    use hyper::service::service_fn;
    let http = reqwest::Client::new();
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            return;
        };
        let (http, seen, warpd, down) = (http.clone(), seen.clone(), warpd.clone(), down.clone());
        tokio::spawn(async move {
            let svc = service_fn(move |req: hyper::Request<hyper::body::Incoming>| {
                let (http, seen, warpd, down) =
                    (http.clone(), seen.clone(), warpd.clone(), down.clone());
                async move {
                    if down.load(Ordering::SeqCst) {
                        let mut r = hyper::Response::new(Full::new(bytes::Bytes::new()));
                        *r.status_mut() = hyper::StatusCode::SERVICE_UNAVAILABLE;
                        return Ok::<_, std::convert::Infallible>(r);
                    }
                    // Kamailio's credentials (HTTP Basic from the httpcon URL) go on to warpd
                    let auth = req.headers().get(hyper::header::AUTHORIZATION).cloned();
                    let body = req
                        .into_body()
                        .collect()
                        .await
                        .map(|b| b.to_bytes())
                        .unwrap_or_default();
                    seen.lock().expect("lock").extend(form_lines(&body));
                    let answer = match http
                        .post(&warpd)
                        .headers(
                            auth.map(|a| {
                                let mut h = reqwest::header::HeaderMap::new();
                                h.insert(reqwest::header::AUTHORIZATION, a);
                                h
                            })
                            .unwrap_or_default(),
                        )
                        .header("content-type", "application/x-www-form-urlencoded")
                        .body(body.to_vec())
                        .send()
                        .await
                    {
                        Ok(r) => r.bytes().await.unwrap_or_default(),
                        Err(_) => bytes::Bytes::new(),
                    };
                    Ok::<_, std::convert::Infallible>(hyper::Response::new(Full::new(answer)))
                }
            });
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(hyper_util::rt::TokioIo::new(stream), svc)
                .await;
        });
    }
}

/// A `POST /v1/events` body as JSON-RPC-like values (see [`event_sink`]).
fn form_lines(body: &[u8]) -> Vec<Value> {
    const NUMERIC: [&str; 4] = ["attempt", "sip_code", "ts", "ring_ts"];
    body.split(|b| *b == b'\n')
        .filter(|l| !l.is_empty())
        .map(|line| {
            let mut method = Value::Null;
            let mut params = serde_json::Map::new();
            for (k, v) in url::form_urlencoded::parse(line) {
                if k == "event" {
                    method = Value::String(format!("call.{v}"));
                } else if NUMERIC.contains(&k.as_ref()) {
                    let n = v.parse::<serde_json::Number>().map(Value::Number);
                    params.insert(k.into_owned(), n.unwrap_or(Value::String(v.into_owned())));
                } else {
                    params.insert(k.into_owned(), Value::String(v.into_owned()));
                }
            }
            serde_json::json!({"method": method, "params": params})
        })
        .collect()
}
