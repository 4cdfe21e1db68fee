//! Functions of the built-in function host: configuration (JSON `doc`) and
//! the uploaded zip, per (account, name). Updates compare-and-swap `version`.

use sqlx::{AnyConnection, AssertSqlSafe, Row};

use super::{StoreError, StoreResult};

/// A function without its code (listing and reads never load the zip).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FunctionRow {
    pub account_id: String,
    pub function_name: String,
    pub created_at: i64,
    pub version: i64,
    pub doc: String,
    pub code_sha256: String,
}

const COLUMNS: &str = "account_id, function_name, created_at, version, doc, code_sha256";

fn row(r: sqlx::any::AnyRow) -> FunctionRow {
    FunctionRow {
        account_id: r.get(0),
        function_name: r.get(1),
        created_at: r.get(2),
        version: r.get(3),
        doc: r.get(4),
        code_sha256: r.get(5),
    }
}

/// Inserts a function; a duplicate name is a database error (callers check first).
pub async fn insert(conn: &mut AnyConnection, f: &FunctionRow, code: &[u8]) -> StoreResult<()> {
    sqlx::query(AssertSqlSafe(format!(
        "INSERT INTO functions ({COLUMNS}, code) VALUES ($1, $2, $3, $4, $5, $6, $7)"
    )))
    .bind(&f.account_id)
    .bind(&f.function_name)
    .bind(f.created_at)
    .bind(f.version)
    .bind(&f.doc)
    .bind(&f.code_sha256)
    .bind(code.to_vec())
    .execute(conn)
    .await?;
    Ok(())
}

pub async fn get(
    conn: &mut AnyConnection,
    account_id: &str,
    function_name: &str,
) -> StoreResult<Option<FunctionRow>> {
    let r = sqlx::query(AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM functions WHERE account_id = $1 AND function_name = $2"
    )))
    .bind(account_id)
    .bind(function_name)
    .fetch_optional(conn)
    .await?;
    Ok(r.map(row))
}

/// The zip of a function whose code has this digest (None when the
/// function is gone or its code has changed since).
pub async fn get_code(
    conn: &mut AnyConnection,
    account_id: &str,
    function_name: &str,
    code_sha256: &str,
) -> StoreResult<Option<Vec<u8>>> {
    let r = sqlx::query(
        "SELECT code FROM functions WHERE account_id = $1 AND function_name = $2 AND code_sha256 = $3",
    )
    .bind(account_id)
    .bind(function_name)
    .bind(code_sha256)
    .fetch_optional(conn)
    .await?;
    Ok(r.map(|r| r.get(0)))
}

/// A page of an account's functions ordered by name, after `after`.
pub async fn list(
    conn: &mut AnyConnection,
    account_id: &str,
    after: Option<&str>,
    limit: i64,
) -> StoreResult<Vec<FunctionRow>> {
    let rows = sqlx::query(AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM functions WHERE account_id = $1 AND function_name > $2 \
         ORDER BY function_name LIMIT $3"
    )))
    .bind(account_id)
    .bind(after.unwrap_or(""))
    .bind(limit)
    .fetch_all(conn)
    .await?;
    Ok(rows.into_iter().map(row).collect())
}

/// Replaces the configuration, if the row is still at `expected_version`.
pub async fn update_doc(
    conn: &mut AnyConnection,
    account_id: &str,
    function_name: &str,
    expected_version: i64,
    doc: &str,
) -> StoreResult<()> {
    let done = sqlx::query(
        "UPDATE functions SET doc = $1, version = version + 1 \
         WHERE account_id = $2 AND function_name = $3 AND version = $4",
    )
    .bind(doc)
    .bind(account_id)
    .bind(function_name)
    .bind(expected_version)
    .execute(conn)
    .await?;
    if done.rows_affected() == 0 {
        return Err(StoreError::ConcurrentModification);
    }
    Ok(())
}

/// Replaces the code and configuration, if the row is still at `expected_version`.
pub async fn update_code(
    conn: &mut AnyConnection,
    account_id: &str,
    function_name: &str,
    expected_version: i64,
    doc: &str,
    code_sha256: &str,
    code: &[u8],
) -> StoreResult<()> {
    let done = sqlx::query(
        "UPDATE functions SET doc = $1, code_sha256 = $2, code = $3, version = version + 1 \
         WHERE account_id = $4 AND function_name = $5 AND version = $6",
    )
    .bind(doc)
    .bind(code_sha256)
    .bind(code.to_vec())
    .bind(account_id)
    .bind(function_name)
    .bind(expected_version)
    .execute(conn)
    .await?;
    if done.rows_affected() == 0 {
        return Err(StoreError::ConcurrentModification);
    }
    Ok(())
}

/// Returns whether a function was deleted.
pub async fn delete(
    conn: &mut AnyConnection,
    account_id: &str,
    function_name: &str,
) -> StoreResult<bool> {
    let done = sqlx::query("DELETE FROM functions WHERE account_id = $1 AND function_name = $2")
        .bind(account_id)
        .bind(function_name)
        .execute(conn)
        .await?;
    Ok(done.rows_affected() > 0)
}
