//! The floor of any HTTP dip, for the peer benchmark (`scripts/bench-kamailio.sh`, mode
//! `static`): an HTTP/1.1 server built like warpd's (hyper, keep-alive, a tokio runtime with two
//! workers) that answers every request with the same saved body — warpd's own answer for the
//! benchmark call — and does nothing else. Kamailio dipping this server pays everything a dip
//! costs except warpd's routing and call tracking, so "static" against "dip" measures warpd's
//! share, and "static" against "lcr" what the http_async_client transport costs by itself.
//!
//!     cargo run --release --example static_dip -- 127.0.0.1:8090 answer.json

use std::convert::Infallible;
use std::sync::Arc;

use http_body_util::Full;
use hyper::body::Bytes;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;

fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let (Some(addr), Some(file)) = (args.next(), args.next()) else {
        anyhow::bail!("usage: static_dip <listen address> <answer file>");
    };
    let body = Bytes::from(std::fs::read(&file)?);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    rt.block_on(async move {
        let listener = tokio::net::TcpListener::bind(&addr).await?;
        let http = Arc::new(http1::Builder::new());
        loop {
            let (stream, _) = listener.accept().await?;
            let _ = stream.set_nodelay(true);
            let (http, body) = (http.clone(), body.clone());
            tokio::spawn(async move {
                let svc = service_fn(move |_req: Request<hyper::body::Incoming>| {
                    let body = body.clone();
                    async move {
                        let mut r = Response::new(Full::new(body));
                        r.headers_mut().insert(
                            hyper::header::CONTENT_TYPE,
                            hyper::header::HeaderValue::from_static("application/json"),
                        );
                        Ok::<_, Infallible>(r)
                    }
                });
                let _ = http.serve_connection(TokioIo::new(stream), svc).await;
            });
        }
    })
}
