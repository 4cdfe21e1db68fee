//! API keys: a tenant's keys, their sealed values and value digests.

use sqlx::{AnyConnection, AssertSqlSafe, Row};

use super::StoreResult;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiKeyRow {
    pub account_id: String,
    pub key_id: String,
    pub created_at: i64,
    /// Bumped by every update; an update names the version it read.
    pub version: i64,
    /// AWS's `ApiKey` without `value`, as JSON.
    pub doc: String,
    pub value_sealed: String,
    /// Hex SHA-256 of the value: what data-plane nodes match `x-api-key` against.
    pub value_sha256: String,
}

const COLUMNS: &str = "account_id, key_id, created_at, version, doc, value_sealed, value_sha256";

fn row(r: sqlx::any::AnyRow) -> ApiKeyRow {
    ApiKeyRow {
        account_id: r.get(0),
        key_id: r.get(1),
        created_at: r.get(2),
        version: r.get(3),
        doc: r.get(4),
        value_sealed: r.get(5),
        value_sha256: r.get(6),
    }
}

/// Inserts a key; `Ok(false)` when the tenant already has a key with this value.
pub async fn insert(conn: &mut AnyConnection, k: &ApiKeyRow) -> StoreResult<bool> {
    if find_by_hash(conn, &k.account_id, &k.value_sha256)
        .await?
        .is_some()
    {
        return Ok(false);
    }
    sqlx::query(AssertSqlSafe(format!(
        "INSERT INTO api_keys ({COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7)"
    )))
    .bind(&k.account_id)
    .bind(&k.key_id)
    .bind(k.created_at)
    .bind(k.version)
    .bind(&k.doc)
    .bind(&k.value_sealed)
    .bind(&k.value_sha256)
    .execute(conn)
    .await?;
    Ok(true)
}

pub async fn get(
    conn: &mut AnyConnection,
    account_id: &str,
    key_id: &str,
) -> StoreResult<Option<ApiKeyRow>> {
    let r = sqlx::query(AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM api_keys WHERE account_id = $1 AND key_id = $2"
    )))
    .bind(account_id)
    .bind(key_id)
    .fetch_optional(conn)
    .await?;
    Ok(r.map(row))
}

pub async fn find_by_hash(
    conn: &mut AnyConnection,
    account_id: &str,
    value_sha256: &str,
) -> StoreResult<Option<ApiKeyRow>> {
    let r = sqlx::query(AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM api_keys WHERE account_id = $1 AND value_sha256 = $2"
    )))
    .bind(account_id)
    .bind(value_sha256)
    .fetch_optional(conn)
    .await?;
    Ok(r.map(row))
}

/// A tenant's keys, oldest first (ties by id).
pub async fn list(conn: &mut AnyConnection, account_id: &str) -> StoreResult<Vec<ApiKeyRow>> {
    let rows = sqlx::query(AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM api_keys WHERE account_id = $1 ORDER BY created_at, key_id"
    )))
    .bind(account_id)
    .fetch_all(conn)
    .await?;
    Ok(rows.into_iter().map(row).collect())
}

/// Writes `k.doc` if the stored row is still at `k.version`, bumping it.
pub async fn update(conn: &mut AnyConnection, k: &ApiKeyRow) -> StoreResult<()> {
    let done = sqlx::query(
        "UPDATE api_keys SET doc = $1, version = version + 1 \
         WHERE account_id = $2 AND key_id = $3 AND version = $4",
    )
    .bind(&k.doc)
    .bind(&k.account_id)
    .bind(&k.key_id)
    .bind(k.version)
    .execute(conn)
    .await?;
    super::swapped(done.rows_affected())
}

pub async fn delete(conn: &mut AnyConnection, account_id: &str, key_id: &str) -> StoreResult<bool> {
    let done = sqlx::query("DELETE FROM api_keys WHERE account_id = $1 AND key_id = $2")
        .bind(account_id)
        .bind(key_id)
        .execute(conn)
        .await?;
    Ok(done.rows_affected() > 0)
}
