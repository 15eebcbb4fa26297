//! The databases tests start from.

use std::path::{Path, PathBuf};

use super::TestPg;

/// Two international vendors and routes, customer 1001 selling 44 at 0.05, beta priced at 0.02.
pub const DECK_NETWORK: &str = include_str!("deck_network.sql");

/// `examples/demo/network.toml`.
pub fn demo_network() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/demo/network.toml")
}

/// A migrated database with the demo network applied.
pub async fn demo_db(pg: &TestPg) -> tokio_postgres::Client {
    let mut client = warpd::db::connect(&pg.url()).await.unwrap();
    warpd::db::migrate::migrate(&mut client).await.unwrap();
    warpd::provision::apply(&mut client, &demo_network(), false)
        .await
        .unwrap();
    client
}

/// A migrated database holding [`DECK_NETWORK`].
pub async fn deck_network_db(pg: &TestPg) -> tokio_postgres::Client {
    let mut client = warpd::db::connect(&pg.url()).await.unwrap();
    warpd::db::migrate(&mut client).await.unwrap();
    client.batch_execute(DECK_NETWORK).await.unwrap();
    client
}
