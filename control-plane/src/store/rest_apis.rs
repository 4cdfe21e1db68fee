//! REST API aggregates: one row per API holding its whole editable tree as a
//! JSON document, guarded by an optimistic `version`.

use sqlx::{AnyConnection, AssertSqlSafe, Row};

use super::StoreResult;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RestApiRow {
    pub api_id: String,
    pub account_id: String,
    pub created_at: i64,
    pub version: i64,
    pub doc: String,
}

fn row(r: sqlx::any::AnyRow) -> RestApiRow {
    RestApiRow {
        api_id: r.get(0),
        account_id: r.get(1),
        created_at: r.get(2),
        version: r.get(3),
        doc: r.get(4),
    }
}

pub async fn insert(conn: &mut AnyConnection, api: &RestApiRow) -> StoreResult<()> {
    sqlx::query(
        "INSERT INTO rest_apis (api_id, account_id, created_at, version, doc) VALUES ($1, $2, $3, $4, $5)",
    )
    .bind(&api.api_id)
    .bind(&api.account_id)
    .bind(api.created_at)
    .bind(api.version)
    .bind(&api.doc)
    .execute(conn)
    .await?;
    Ok(())
}

/// Looks an API up within one tenant: another tenant's id is simply absent.
pub async fn get(
    conn: &mut AnyConnection,
    account_id: &str,
    api_id: &str,
) -> StoreResult<Option<RestApiRow>> {
    let r = sqlx::query(
        "SELECT api_id, account_id, created_at, version, doc FROM rest_apis WHERE account_id = $1 AND api_id = $2",
    )
    .bind(account_id)
    .bind(api_id)
    .fetch_optional(conn)
    .await?;
    Ok(r.map(row))
}

pub async fn list(conn: &mut AnyConnection, account_id: &str) -> StoreResult<Vec<RestApiRow>> {
    let rows = sqlx::query(
        "SELECT api_id, account_id, created_at, version, doc FROM rest_apis WHERE account_id = $1 \
         ORDER BY created_at, api_id",
    )
    .bind(account_id)
    .fetch_all(conn)
    .await?;
    Ok(rows.into_iter().map(row).collect())
}

/// Replaces the document if nobody changed it since `expected_version` was read.
pub async fn update(
    conn: &mut AnyConnection,
    account_id: &str,
    api_id: &str,
    expected_version: i64,
    doc: &str,
) -> StoreResult<()> {
    let done = sqlx::query(
        "UPDATE rest_apis SET doc = $1, version = version + 1 \
         WHERE account_id = $2 AND api_id = $3 AND version = $4",
    )
    .bind(doc)
    .bind(account_id)
    .bind(api_id)
    .bind(expected_version)
    .execute(conn)
    .await?;
    super::swapped(done.rows_affected())
}

/// Deletes the API with its stages and deployments; returns whether it existed.
pub async fn delete(conn: &mut AnyConnection, account_id: &str, api_id: &str) -> StoreResult<bool> {
    for table in ["stages", "deployments"] {
        sqlx::query(AssertSqlSafe(format!(
            "DELETE FROM {table} WHERE account_id = $1 AND api_id = $2"
        )))
        .bind(account_id)
        .bind(api_id)
        .execute(&mut *conn)
        .await?;
    }
    let done = sqlx::query("DELETE FROM rest_apis WHERE account_id = $1 AND api_id = $2")
        .bind(account_id)
        .bind(api_id)
        .execute(conn)
        .await?;
    Ok(done.rows_affected() > 0)
}
