//! Helpers shared by the integration tests: a store on SQLite (a temp file)
//! or on Postgres (a fresh database on `APIGW_TEST_POSTGRES_URL`, default
//! `postgres://postgres@127.0.0.1:5432/postgres`), and `both_backends!`.
//! Postgres being unreachable is a failure, not a skip.
#![allow(dead_code)]

use apigw_control_plane::store::Store;
use sqlx::Connection;

pub async fn sqlite() -> (Store, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&Store::sqlite_url(&dir.path().join("t.db")))
        .await
        .unwrap();
    (store, dir)
}

/// The URL of a fresh, empty Postgres database.
pub async fn postgres_url() -> String {
    let admin_url = std::env::var("APIGW_TEST_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into());
    let name = format!(
        "apigw_store_{}",
        apigw_control_plane::tenancy::random_string(12).to_lowercase()
    );
    let mut admin = sqlx::PgConnection::connect(&admin_url).await.unwrap_or_else(|e| {
        panic!("PostgreSQL is needed for the repository tests ({admin_url}): {e}. Start it or set APIGW_TEST_POSTGRES_URL.")
    });
    sqlx::raw_sql(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
        .execute(&mut admin)
        .await
        .unwrap();
    let (base, _) = admin_url.rsplit_once('/').unwrap();
    format!("{base}/{name}")
}

pub async fn postgres() -> Store {
    Store::open(&postgres_url().await).await.unwrap()
}

/// Defines `mod $name { on_sqlite(), on_postgres() }` running `$body(store)`.
#[macro_export]
macro_rules! both_backends {
    ($($name:ident => $body:expr;)*) => {$(
        mod $name {
            use super::*;
            #[tokio::test]
            async fn on_sqlite() {
                let (store, _dir) = $crate::common::sqlite().await;
                ($body)(store).await;
            }
            #[tokio::test]
            async fn on_postgres() {
                ($body)($crate::common::postgres().await).await;
            }
        }
    )*};
}
