//! Stages: a name bound to one deployment of a REST API, plus its settings.

use sqlx::{AnyConnection, AssertSqlSafe, Row};

use super::StoreResult;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StageRow {
    pub api_id: String,
    pub stage_name: String,
    pub account_id: String,
    pub deployment_id: String,
    pub created_at: i64,
    /// Bumped by every update; an update names the version it read.
    pub version: i64,
    pub doc: String,
}

const COLUMNS: &str = "api_id, stage_name, account_id, deployment_id, created_at, version, doc";

fn row(r: sqlx::any::AnyRow) -> StageRow {
    StageRow {
        api_id: r.get(0),
        stage_name: r.get(1),
        account_id: r.get(2),
        deployment_id: r.get(3),
        created_at: r.get(4),
        version: r.get(5),
        doc: r.get(6),
    }
}

pub async fn insert(conn: &mut AnyConnection, s: &StageRow) -> StoreResult<()> {
    sqlx::query(AssertSqlSafe(format!(
        "INSERT INTO stages ({COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7)"
    )))
    .bind(&s.api_id)
    .bind(&s.stage_name)
    .bind(&s.account_id)
    .bind(&s.deployment_id)
    .bind(s.created_at)
    .bind(s.version)
    .bind(&s.doc)
    .execute(conn)
    .await?;
    Ok(())
}

pub async fn get(
    conn: &mut AnyConnection,
    account_id: &str,
    api_id: &str,
    stage_name: &str,
) -> StoreResult<Option<StageRow>> {
    let r = sqlx::query(AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM stages WHERE account_id = $1 AND api_id = $2 AND stage_name = $3"
    )))
    .bind(account_id)
    .bind(api_id)
    .bind(stage_name)
    .fetch_optional(conn)
    .await?;
    Ok(r.map(row))
}

/// Stages of one API; with `deployment_id`, only those serving that deployment.
pub async fn list(
    conn: &mut AnyConnection,
    account_id: &str,
    api_id: &str,
    deployment_id: Option<&str>,
) -> StoreResult<Vec<StageRow>> {
    let rows = sqlx::query(AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM stages WHERE account_id = $1 AND api_id = $2 \
         AND ($3 = '' OR deployment_id = $3) ORDER BY created_at, stage_name"
    )))
    .bind(account_id)
    .bind(api_id)
    .bind(deployment_id.unwrap_or(""))
    .fetch_all(conn)
    .await?;
    Ok(rows.into_iter().map(row).collect())
}

/// Writes `s` if the stored row is still at `s.version` (the version read), bumping it.
pub async fn update(conn: &mut AnyConnection, s: &StageRow) -> StoreResult<()> {
    let done = sqlx::query(
        "UPDATE stages SET deployment_id = $1, doc = $2, version = version + 1 \
         WHERE account_id = $3 AND api_id = $4 AND stage_name = $5 AND version = $6",
    )
    .bind(&s.deployment_id)
    .bind(&s.doc)
    .bind(&s.account_id)
    .bind(&s.api_id)
    .bind(&s.stage_name)
    .bind(s.version)
    .execute(conn)
    .await?;
    super::swapped(done.rows_affected())
}

pub async fn delete(
    conn: &mut AnyConnection,
    account_id: &str,
    api_id: &str,
    stage_name: &str,
) -> StoreResult<bool> {
    let done =
        sqlx::query("DELETE FROM stages WHERE account_id = $1 AND api_id = $2 AND stage_name = $3")
            .bind(account_id)
            .bind(api_id)
            .bind(stage_name)
            .execute(conn)
            .await?;
    Ok(done.rows_affected() > 0)
}
