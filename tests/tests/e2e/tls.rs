//! TLS to the dependencies (issue 6): NATS, Redis and PostgreSQL servers
//! that accept only TLS are reached when their certificate verifies against
//! the configured CA and refused when it does not; the project's PostgreSQL
//! is refused too, its certificate not being signed by the configured CA.

use std::time::Duration;

use gad_e2e::tls_servers::{Certificates, POSTGRES_USER, TlsServer};
use gad_shared::redis_conn::Redis;
use gad_shared::settings::{NatsSettings, PostgresSettings, RedisSettings};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nats_over_tls_is_verified_against_the_configured_ca() -> anyhow::Result<()> {
    let certs = Certificates::new().await?;
    let store = certs.dir.join("nats-store");
    let server = TlsServer::nats(&certs, &store).await?;
    let settings = |ca: &std::path::Path| NatsSettings {
        url: format!("nats://127.0.0.1:{}", server.port),
        stream_prefix: "TLS_".into(),
        tls_ca_file: Some(ca.to_path_buf()),
        ..NatsSettings::default()
    };

    let (client, js) = gad_shared::topology::connect(&settings(&certs.ca)).await?;
    tokio::time::timeout(Duration::from_secs(5), client.flush()).await??;
    // JetStream answers over TLS.
    js.query_account().await?;

    // The server's certificate does not chain to this CA: no connection,
    // whatever the retries (the client keeps trying in the background).
    let (client, _js) = gad_shared::topology::connect(&settings(&certs.other_ca)).await?;
    let flushed = tokio::time::timeout(Duration::from_secs(3), client.flush()).await;
    assert!(
        !matches!(flushed, Ok(Ok(()))),
        "connected to a server the CA did not vouch for"
    );
    assert_ne!(client.connection_state(), async_nats::connection::State::Connected);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_over_tls_is_verified_against_the_configured_ca() -> anyhow::Result<()> {
    let certs = Certificates::new().await?;
    let server = TlsServer::redis(&certs).await?;
    let redis = |ca: &std::path::Path| {
        Redis::new(&RedisSettings {
            url: format!("rediss://127.0.0.1:{}", server.port),
            tls_ca_file: Some(ca.to_path_buf()),
            ..RedisSettings::default()
        })
    };
    redis(&certs.ca).ping().await.map_err(anyhow::Error::msg)?;
    assert!(
        redis(&certs.other_ca).ping().await.is_err(),
        "answered by a server the CA did not vouch for"
    );
    // The plaintext scheme against the TLS-only port gets nothing either.
    let plain = Redis::new(&RedisSettings {
        url: format!("redis://127.0.0.1:{}", server.port),
        ..RedisSettings::default()
    });
    assert!(plain.ping().await.is_err());
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_over_tls_is_verified_against_the_configured_ca() -> anyhow::Result<()> {
    let certs = Certificates::new().await?;
    let server = TlsServer::postgres(&certs).await?;
    let url = format!("postgres://{POSTGRES_USER}@127.0.0.1:{}/postgres", server.port);
    let settings = |ca: &std::path::Path| PostgresSettings {
        url: url.clone(),
        tls_ca_file: Some(ca.to_path_buf()),
        pool_size: 1,
        ..PostgresSettings::default()
    };

    let pool = gad_shared::db::connect(&settings(&certs.ca), Duration::from_secs(5)).await?;
    let encrypted: Option<bool> = sqlx::query_scalar("SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()")
        .fetch_one(&pool)
        .await?;
    assert_eq!(encrypted, Some(true), "the session is not encrypted");
    pool.close().await;

    // The same server, its certificate not signed by this CA: refused for
    // the certificate.
    let pool = gad_shared::db::connect(&settings(&certs.other_ca), Duration::from_secs(5)).await?;
    let refused = sqlx::query("SELECT 1").execute(&pool).await;
    let refused = refused.err().map(|e| e.to_string()).unwrap_or_default();
    assert!(
        refused.contains("certificate"),
        "connected to a server the CA did not vouch for: {refused:?}"
    );

    // The server takes no plaintext over TCP either.
    let plain = gad_shared::db::connect(
        &PostgresSettings {
            url: format!("{url}?sslmode=disable"),
            pool_size: 1,
            ..PostgresSettings::default()
        },
        Duration::from_secs(5),
    )
    .await?;
    assert!(sqlx::query("SELECT 1").execute(&plain).await.is_err());
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_refuses_a_server_the_configured_ca_did_not_sign() -> anyhow::Result<()> {
    let certs = Certificates::new().await?;
    let url = gad_e2e::services::ServiceUrls::get()?.postgres.clone();
    let settings = PostgresSettings {
        url: url.clone(),
        tls_ca_file: Some(certs.ca.clone()),
        pool_size: 1,
        ..PostgresSettings::default()
    };
    let pool = gad_shared::db::connect(&settings, Duration::from_secs(5)).await?;
    let refused = sqlx::query("SELECT 1").execute(&pool).await;
    let refused = refused.err().map(|e| e.to_string()).unwrap_or_default();
    // Refused for the certificate itself, not for want of TLS on the server
    // (Debian's PostgreSQL serves TLS with its snakeoil certificate).
    assert!(
        refused.contains("certificate"),
        "connected without verifying the server: {refused:?}"
    );

    // And the spellings that would skip verification are refused up front.
    let unverified = PostgresSettings {
        url: format!("{url}{}sslmode=require", if url.contains('?') { '&' } else { '?' }),
        ..PostgresSettings::default()
    };
    let err = gad_shared::db::connect(&unverified, Duration::from_secs(5))
        .await
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
    assert!(err.contains("without verifying"), "{err}");
    Ok(())
}
