//! Versioned configuration resources (what data-plane nodes are sent) and the
//! one configuration version counter. See `crate::publish` for how rows are
//! computed and `crate::grpc::config` for how they are streamed.

use sqlx::{AnyConnection, Row};

use super::StoreResult;

/// One resource at its latest version; `body: None` is a removal (tombstone).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigResourceRow {
    pub resource_key: String,
    pub version: i64,
    pub account_id: String,
    /// `EDGE`, `REGIONAL` or `PRIVATE`: which nodes serve the resource.
    pub endpoint_type: String,
    pub body: Option<String>,
}

const COLUMNS: &str = "resource_key, version, account_id, endpoint_type, body";

fn row(r: sqlx::any::AnyRow) -> ConfigResourceRow {
    ConfigResourceRow {
        resource_key: r.get(0),
        version: r.get(1),
        account_id: r.get(2),
        endpoint_type: r.get(3),
        body: r.get(4),
    }
}

/// Bumps the configuration version and returns the new value. The row lock
/// taken here is held until the transaction ends, so config writers are
/// serialised and versions become visible in increasing order.
pub async fn next_version(conn: &mut AnyConnection) -> StoreResult<i64> {
    sqlx::query("UPDATE config_version SET version = version + 1 WHERE id = 1")
        .execute(&mut *conn)
        .await?;
    current_version(conn).await
}

pub async fn current_version(conn: &mut AnyConnection) -> StoreResult<i64> {
    let r = sqlx::query("SELECT version FROM config_version WHERE id = 1")
        .fetch_one(conn)
        .await?;
    Ok(r.get(0))
}

pub async fn get(conn: &mut AnyConnection, key: &str) -> StoreResult<Option<ConfigResourceRow>> {
    let r = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM config_resources WHERE resource_key = $1"
    )))
    .bind(key)
    .fetch_optional(conn)
    .await?;
    Ok(r.map(row))
}

/// Inserts or replaces the row with `r.resource_key`.
pub async fn upsert(conn: &mut AnyConnection, r: &ConfigResourceRow) -> StoreResult<()> {
    sqlx::query(
        "INSERT INTO config_resources (resource_key, version, account_id, endpoint_type, body) \
         VALUES ($1, $2, $3, $4, $5) \
         ON CONFLICT (resource_key) DO UPDATE SET version = excluded.version, \
         account_id = excluded.account_id, endpoint_type = excluded.endpoint_type, body = excluded.body",
    )
    .bind(&r.resource_key)
    .bind(r.version)
    .bind(&r.account_id)
    .bind(&r.endpoint_type)
    .bind(r.body.clone())
    .execute(conn)
    .await?;
    Ok(())
}

/// Every row, tombstones included, in version order.
pub async fn list_all(conn: &mut AnyConnection) -> StoreResult<Vec<ConfigResourceRow>> {
    list_since(conn, 0).await
}

/// Rows whose version is above `version` (tombstones included), in version order.
pub async fn list_since(
    conn: &mut AnyConnection,
    version: i64,
) -> StoreResult<Vec<ConfigResourceRow>> {
    let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM config_resources WHERE version > $1 ORDER BY version, resource_key"
    )))
    .bind(version)
    .fetch_all(conn)
    .await?;
    Ok(rows.into_iter().map(row).collect())
}

/// Live (not removed) rows whose key starts with `prefix`.
pub async fn list_live_with_prefix(
    conn: &mut AnyConnection,
    prefix: &str,
) -> StoreResult<Vec<ConfigResourceRow>> {
    // substr/length rather than LIKE: keys may hold `_`, a LIKE wildcard.
    let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM config_resources \
         WHERE substr(resource_key, 1, length($1)) = $1 AND body IS NOT NULL ORDER BY resource_key"
    )))
    .bind(prefix)
    .fetch_all(conn)
    .await?;
    Ok(rows.into_iter().map(row).collect())
}

/// Turns the live rows under `prefix` into tombstones at `version`; returns how many.
pub async fn tombstone_prefix(
    conn: &mut AnyConnection,
    prefix: &str,
    version: i64,
) -> StoreResult<u64> {
    let done = sqlx::query(
        "UPDATE config_resources SET version = $1, body = NULL \
         WHERE substr(resource_key, 1, length($2)) = $2 AND body IS NOT NULL",
    )
    .bind(version)
    .bind(prefix)
    .execute(conn)
    .await?;
    Ok(done.rows_affected())
}

/// Asks Postgres to tell every listening replica (`LISTEN apigw_config`)
/// about `version` when the transaction commits; nothing on SQLite, whose
/// only replica is this process.
pub async fn notify(conn: &mut AnyConnection, channel: &str, version: i64) -> StoreResult<()> {
    if conn.backend_name().eq_ignore_ascii_case("postgresql") {
        sqlx::query("SELECT pg_notify($1, $2)")
            .bind(channel)
            .bind(version.to_string())
            .execute(conn)
            .await?;
    }
    Ok(())
}
