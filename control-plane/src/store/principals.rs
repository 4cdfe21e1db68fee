//! IAM-style principals of a tenant (migration 0005): an access key with an
//! identity policy.

use sqlx::{AnyConnection, Row};

use super::StoreResult;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PrincipalRow {
    pub access_key_id: String,
    pub account_id: String,
    /// `user` or `role`.
    pub kind: String,
    pub name: String,
    pub unique_id: String,
    pub secret_sealed: String,
    pub policy: String,
    pub created_at: i64,
}

/// The column list, for `concat!` (sqlx takes only literal SQL).
macro_rules! columns {
    () => {
        "access_key_id, account_id, kind, name, unique_id, secret_sealed, policy, created_at"
    };
}

fn row(r: sqlx::any::AnyRow) -> PrincipalRow {
    PrincipalRow {
        access_key_id: r.get(0),
        account_id: r.get(1),
        kind: r.get(2),
        name: r.get(3),
        unique_id: r.get(4),
        secret_sealed: r.get(5),
        policy: r.get(6),
        created_at: r.get(7),
    }
}

pub async fn insert(conn: &mut AnyConnection, p: &PrincipalRow) -> StoreResult<()> {
    sqlx::query(concat!(
        "INSERT INTO principals (",
        columns!(),
        ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8)"
    ))
    .bind(&p.access_key_id)
    .bind(&p.account_id)
    .bind(&p.kind)
    .bind(&p.name)
    .bind(&p.unique_id)
    .bind(&p.secret_sealed)
    .bind(&p.policy)
    .bind(p.created_at)
    .execute(conn)
    .await?;
    Ok(())
}

pub async fn get(
    conn: &mut AnyConnection,
    access_key_id: &str,
) -> StoreResult<Option<PrincipalRow>> {
    let r = sqlx::query(concat!(
        "SELECT ",
        columns!(),
        " FROM principals WHERE access_key_id = $1"
    ))
    .bind(access_key_id)
    .fetch_optional(conn)
    .await?;
    Ok(r.map(row))
}

pub async fn find_by_name(
    conn: &mut AnyConnection,
    account_id: &str,
    kind: &str,
    name: &str,
) -> StoreResult<Option<PrincipalRow>> {
    let r = sqlx::query(concat!(
        "SELECT ",
        columns!(),
        " FROM principals WHERE account_id = $1 AND kind = $2 AND name = $3"
    ))
    .bind(account_id)
    .bind(kind)
    .bind(name)
    .fetch_optional(conn)
    .await?;
    Ok(r.map(row))
}

pub async fn list(conn: &mut AnyConnection, account_id: &str) -> StoreResult<Vec<PrincipalRow>> {
    let rows = sqlx::query(concat!(
        "SELECT ",
        columns!(),
        " FROM principals WHERE account_id = $1 ORDER BY kind, name"
    ))
    .bind(account_id)
    .fetch_all(conn)
    .await?;
    Ok(rows.into_iter().map(row).collect())
}

pub async fn list_all(conn: &mut AnyConnection) -> StoreResult<Vec<PrincipalRow>> {
    let rows = sqlx::query(concat!(
        "SELECT ",
        columns!(),
        " FROM principals ORDER BY access_key_id"
    ))
    .fetch_all(conn)
    .await?;
    Ok(rows.into_iter().map(row).collect())
}

/// `(access_key_id, secret_sealed)` of every key that signs `execute-api`
/// calls: tenants' access keys and principals'.
pub async fn all_sealed_secrets(conn: &mut AnyConnection) -> StoreResult<Vec<(String, String)>> {
    Ok(sqlx::query_as(
        "SELECT access_key_id, secret_sealed FROM access_keys \
         UNION ALL SELECT access_key_id, secret_sealed FROM principals",
    )
    .fetch_all(conn)
    .await?)
}

/// Returns whether the principal existed.
pub async fn set_policy(
    conn: &mut AnyConnection,
    access_key_id: &str,
    policy: &str,
) -> StoreResult<bool> {
    let done = sqlx::query("UPDATE principals SET policy = $1 WHERE access_key_id = $2")
        .bind(policy)
        .bind(access_key_id)
        .execute(conn)
        .await?;
    Ok(done.rows_affected() > 0)
}

/// Returns whether the principal existed.
pub async fn delete(conn: &mut AnyConnection, access_key_id: &str) -> StoreResult<bool> {
    let done = sqlx::query("DELETE FROM principals WHERE access_key_id = $1")
        .bind(access_key_id)
        .execute(conn)
        .await?;
    Ok(done.rows_affected() > 0)
}
