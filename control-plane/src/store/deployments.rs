//! Deployments: immutable compiled snapshots of a REST API; only the
//! description (in `doc`) may change.

use sqlx::{AnyConnection, AssertSqlSafe, Row};

use super::StoreResult;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeploymentRow {
    pub api_id: String,
    pub deployment_id: String,
    pub account_id: String,
    pub created_at: i64,
    pub doc: String,
    pub snapshot: String,
}

const COLUMNS: &str = "api_id, deployment_id, account_id, created_at, doc, snapshot";

fn row(r: sqlx::any::AnyRow) -> DeploymentRow {
    DeploymentRow {
        api_id: r.get(0),
        deployment_id: r.get(1),
        account_id: r.get(2),
        created_at: r.get(3),
        doc: r.get(4),
        snapshot: r.get(5),
    }
}

pub async fn insert(conn: &mut AnyConnection, d: &DeploymentRow) -> StoreResult<()> {
    sqlx::query(AssertSqlSafe(format!(
        "INSERT INTO deployments ({COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6)"
    )))
    .bind(&d.api_id)
    .bind(&d.deployment_id)
    .bind(&d.account_id)
    .bind(d.created_at)
    .bind(&d.doc)
    .bind(&d.snapshot)
    .execute(conn)
    .await?;
    Ok(())
}

pub async fn get(
    conn: &mut AnyConnection,
    account_id: &str,
    api_id: &str,
    deployment_id: &str,
) -> StoreResult<Option<DeploymentRow>> {
    let r = sqlx::query(AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM deployments WHERE account_id = $1 AND api_id = $2 AND deployment_id = $3"
    )))
    .bind(account_id)
    .bind(api_id)
    .bind(deployment_id)
    .fetch_optional(conn)
    .await?;
    Ok(r.map(row))
}

pub async fn list(
    conn: &mut AnyConnection,
    account_id: &str,
    api_id: &str,
) -> StoreResult<Vec<DeploymentRow>> {
    let rows = sqlx::query(AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM deployments WHERE account_id = $1 AND api_id = $2 ORDER BY created_at, deployment_id"
    )))
    .bind(account_id)
    .bind(api_id)
    .fetch_all(conn)
    .await?;
    Ok(rows.into_iter().map(row).collect())
}

pub async fn update_doc(
    conn: &mut AnyConnection,
    account_id: &str,
    api_id: &str,
    deployment_id: &str,
    doc: &str,
) -> StoreResult<()> {
    sqlx::query("UPDATE deployments SET doc = $1 WHERE account_id = $2 AND api_id = $3 AND deployment_id = $4")
        .bind(doc)
        .bind(account_id)
        .bind(api_id)
        .bind(deployment_id)
        .execute(conn)
        .await?;
    Ok(())
}

pub async fn delete(
    conn: &mut AnyConnection,
    account_id: &str,
    api_id: &str,
    deployment_id: &str,
) -> StoreResult<bool> {
    let done = sqlx::query(
        "DELETE FROM deployments WHERE account_id = $1 AND api_id = $2 AND deployment_id = $3",
    )
    .bind(account_id)
    .bind(api_id)
    .bind(deployment_id)
    .execute(conn)
    .await?;
    Ok(done.rows_affected() > 0)
}
