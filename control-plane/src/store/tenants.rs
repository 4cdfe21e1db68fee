//! Tenants (accounts), their access keys and operator admin tokens.

use sqlx::{AnyConnection, Row};

use super::StoreResult;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TenantRow {
    pub account_id: String,
    pub name: String,
    pub created_at: i64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccessKeyRow {
    pub access_key_id: String,
    pub account_id: String,
    pub secret_sealed: String,
    pub created_at: i64,
}

pub async fn insert_tenant(conn: &mut AnyConnection, tenant: &TenantRow) -> StoreResult<()> {
    sqlx::query("INSERT INTO tenants (account_id, name, created_at) VALUES ($1, $2, $3)")
        .bind(&tenant.account_id)
        .bind(&tenant.name)
        .bind(tenant.created_at)
        .execute(conn)
        .await?;
    Ok(())
}

pub async fn get_tenant(
    conn: &mut AnyConnection,
    account_id: &str,
) -> StoreResult<Option<TenantRow>> {
    let row = sqlx::query("SELECT account_id, name, created_at FROM tenants WHERE account_id = $1")
        .bind(account_id)
        .fetch_optional(conn)
        .await?;
    Ok(row.map(|r| TenantRow {
        account_id: r.get(0),
        name: r.get(1),
        created_at: r.get(2),
    }))
}

pub async fn list_tenants(conn: &mut AnyConnection) -> StoreResult<Vec<TenantRow>> {
    let rows = sqlx::query("SELECT account_id, name, created_at FROM tenants ORDER BY account_id")
        .fetch_all(conn)
        .await?;
    Ok(rows
        .into_iter()
        .map(|r| TenantRow {
            account_id: r.get(0),
            name: r.get(1),
            created_at: r.get(2),
        })
        .collect())
}

pub async fn insert_access_key(conn: &mut AnyConnection, key: &AccessKeyRow) -> StoreResult<()> {
    sqlx::query(
        "INSERT INTO access_keys (access_key_id, account_id, secret_sealed, created_at) VALUES ($1, $2, $3, $4)",
    )
    .bind(&key.access_key_id)
    .bind(&key.account_id)
    .bind(&key.secret_sealed)
    .bind(key.created_at)
    .execute(conn)
    .await?;
    Ok(())
}

fn key_row(r: sqlx::any::AnyRow) -> AccessKeyRow {
    AccessKeyRow {
        access_key_id: r.get(0),
        account_id: r.get(1),
        secret_sealed: r.get(2),
        created_at: r.get(3),
    }
}

pub async fn get_access_key(
    conn: &mut AnyConnection,
    access_key_id: &str,
) -> StoreResult<Option<AccessKeyRow>> {
    let row = sqlx::query(
        "SELECT access_key_id, account_id, secret_sealed, created_at FROM access_keys WHERE access_key_id = $1",
    )
    .bind(access_key_id)
    .fetch_optional(conn)
    .await?;
    Ok(row.map(key_row))
}

pub async fn list_access_keys(
    conn: &mut AnyConnection,
    account_id: &str,
) -> StoreResult<Vec<AccessKeyRow>> {
    let rows = sqlx::query(
        "SELECT access_key_id, account_id, secret_sealed, created_at FROM access_keys \
         WHERE account_id = $1 ORDER BY created_at, access_key_id",
    )
    .bind(account_id)
    .fetch_all(conn)
    .await?;
    Ok(rows.into_iter().map(key_row).collect())
}

/// Returns whether a key was deleted.
pub async fn delete_access_key(conn: &mut AnyConnection, access_key_id: &str) -> StoreResult<bool> {
    let done = sqlx::query("DELETE FROM access_keys WHERE access_key_id = $1")
        .bind(access_key_id)
        .execute(conn)
        .await?;
    Ok(done.rows_affected() > 0)
}

pub async fn insert_admin_token(
    conn: &mut AnyConnection,
    token_id: &str,
    hash: &str,
    created_at: i64,
) -> StoreResult<()> {
    sqlx::query("INSERT INTO admin_tokens (token_id, hash, created_at) VALUES ($1, $2, $3)")
        .bind(token_id)
        .bind(hash)
        .bind(created_at)
        .execute(conn)
        .await?;
    Ok(())
}

pub async fn get_admin_token_hash(
    conn: &mut AnyConnection,
    token_id: &str,
) -> StoreResult<Option<String>> {
    let row = sqlx::query("SELECT hash FROM admin_tokens WHERE token_id = $1")
        .bind(token_id)
        .fetch_optional(conn)
        .await?;
    Ok(row.map(|r| r.get(0)))
}

/// A key of the service principal (not of any tenant).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceKeyRow {
    pub access_key_id: String,
    pub secret_sealed: String,
    pub description: String,
    pub created_at: i64,
}

fn service_key_row(r: sqlx::any::AnyRow) -> ServiceKeyRow {
    ServiceKeyRow {
        access_key_id: r.get(0),
        secret_sealed: r.get(1),
        description: r.get(2),
        created_at: r.get(3),
    }
}

pub async fn insert_service_key(conn: &mut AnyConnection, key: &ServiceKeyRow) -> StoreResult<()> {
    sqlx::query(
        "INSERT INTO service_keys (access_key_id, secret_sealed, description, created_at) VALUES ($1, $2, $3, $4)",
    )
    .bind(&key.access_key_id)
    .bind(&key.secret_sealed)
    .bind(&key.description)
    .bind(key.created_at)
    .execute(conn)
    .await?;
    Ok(())
}

pub async fn get_service_key(
    conn: &mut AnyConnection,
    access_key_id: &str,
) -> StoreResult<Option<ServiceKeyRow>> {
    let row = sqlx::query(
        "SELECT access_key_id, secret_sealed, description, created_at FROM service_keys WHERE access_key_id = $1",
    )
    .bind(access_key_id)
    .fetch_optional(conn)
    .await?;
    Ok(row.map(service_key_row))
}

pub async fn list_service_keys(conn: &mut AnyConnection) -> StoreResult<Vec<ServiceKeyRow>> {
    let rows = sqlx::query(
        "SELECT access_key_id, secret_sealed, description, created_at FROM service_keys \
         ORDER BY created_at, access_key_id",
    )
    .fetch_all(conn)
    .await?;
    Ok(rows.into_iter().map(service_key_row).collect())
}

/// Returns whether a key was deleted.
pub async fn delete_service_key(
    conn: &mut AnyConnection,
    access_key_id: &str,
) -> StoreResult<bool> {
    let done = sqlx::query("DELETE FROM service_keys WHERE access_key_id = $1")
        .bind(access_key_id)
        .execute(conn)
        .await?;
    Ok(done.rows_affected() > 0)
}
