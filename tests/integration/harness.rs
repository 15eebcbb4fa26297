use crate::support;

#[tokio::test]
async fn throwaway_cluster_starts_accepts_queries_and_restarts() {
    let pg = support::TestPg::start();
    let (client, conn) = tokio_postgres::connect(&pg.url(), tokio_postgres::NoTls)
        .await
        .unwrap();
    let h = tokio::spawn(conn);
    let row = client.query_one("SELECT 40 + 2", &[]).await.unwrap();
    assert_eq!(row.get::<_, i32>(0), 42);
    drop(client);
    let _ = h.await;
    pg.stop();
    assert!(tokio_postgres::connect(&pg.url(), tokio_postgres::NoTls)
        .await
        .is_err());
    pg.start_server();
    let (client, conn) = tokio_postgres::connect(&pg.url(), tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(conn);
    let row = client
        .query_one("SELECT current_user::text", &[])
        .await
        .unwrap();
    assert_eq!(row.get::<_, String>(0), "warpd");
}
