//! Usage plans, the keys attached to them, and persisted daily usage.

use sqlx::{AnyConnection, AssertSqlSafe, Row};

use super::StoreResult;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UsagePlanRow {
    pub account_id: String,
    pub plan_id: String,
    pub created_at: i64,
    pub version: i64,
    /// AWS's `UsagePlan`, as JSON.
    pub doc: String,
}

const COLUMNS: &str = "account_id, plan_id, created_at, version, doc";

fn row(r: sqlx::any::AnyRow) -> UsagePlanRow {
    UsagePlanRow {
        account_id: r.get(0),
        plan_id: r.get(1),
        created_at: r.get(2),
        version: r.get(3),
        doc: r.get(4),
    }
}

pub async fn insert(conn: &mut AnyConnection, p: &UsagePlanRow) -> StoreResult<()> {
    sqlx::query(AssertSqlSafe(format!(
        "INSERT INTO usage_plans ({COLUMNS}) VALUES ($1, $2, $3, $4, $5)"
    )))
    .bind(&p.account_id)
    .bind(&p.plan_id)
    .bind(p.created_at)
    .bind(p.version)
    .bind(&p.doc)
    .execute(conn)
    .await?;
    Ok(())
}

pub async fn get(
    conn: &mut AnyConnection,
    account_id: &str,
    plan_id: &str,
) -> StoreResult<Option<UsagePlanRow>> {
    let r = sqlx::query(AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM usage_plans WHERE account_id = $1 AND plan_id = $2"
    )))
    .bind(account_id)
    .bind(plan_id)
    .fetch_optional(conn)
    .await?;
    Ok(r.map(row))
}

/// A tenant's plans, oldest first.
pub async fn list(conn: &mut AnyConnection, account_id: &str) -> StoreResult<Vec<UsagePlanRow>> {
    let rows = sqlx::query(AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM usage_plans WHERE account_id = $1 ORDER BY created_at, plan_id"
    )))
    .bind(account_id)
    .fetch_all(conn)
    .await?;
    Ok(rows.into_iter().map(row).collect())
}

pub async fn update(conn: &mut AnyConnection, p: &UsagePlanRow) -> StoreResult<()> {
    let done = sqlx::query(
        "UPDATE usage_plans SET doc = $1, version = version + 1 \
         WHERE account_id = $2 AND plan_id = $3 AND version = $4",
    )
    .bind(&p.doc)
    .bind(&p.account_id)
    .bind(&p.plan_id)
    .bind(p.version)
    .execute(conn)
    .await?;
    super::swapped(done.rows_affected())
}

pub async fn delete(
    conn: &mut AnyConnection,
    account_id: &str,
    plan_id: &str,
) -> StoreResult<bool> {
    let done = sqlx::query("DELETE FROM usage_plans WHERE account_id = $1 AND plan_id = $2")
        .bind(account_id)
        .bind(plan_id)
        .execute(conn)
        .await?;
    Ok(done.rows_affected() > 0)
}

/// Attaches a key; `Ok(false)` when it already was.
pub async fn add_key(
    conn: &mut AnyConnection,
    account_id: &str,
    plan_id: &str,
    key_id: &str,
) -> StoreResult<bool> {
    if has_key(conn, account_id, plan_id, key_id).await? {
        return Ok(false);
    }
    sqlx::query("INSERT INTO usage_plan_keys (account_id, plan_id, key_id) VALUES ($1, $2, $3)")
        .bind(account_id)
        .bind(plan_id)
        .bind(key_id)
        .execute(conn)
        .await?;
    Ok(true)
}

pub async fn has_key(
    conn: &mut AnyConnection,
    account_id: &str,
    plan_id: &str,
    key_id: &str,
) -> StoreResult<bool> {
    let r = sqlx::query(
        "SELECT 1 FROM usage_plan_keys WHERE account_id = $1 AND plan_id = $2 AND key_id = $3",
    )
    .bind(account_id)
    .bind(plan_id)
    .bind(key_id)
    .fetch_optional(conn)
    .await?;
    Ok(r.is_some())
}

pub async fn remove_key(
    conn: &mut AnyConnection,
    account_id: &str,
    plan_id: &str,
    key_id: &str,
) -> StoreResult<bool> {
    let done = sqlx::query(
        "DELETE FROM usage_plan_keys WHERE account_id = $1 AND plan_id = $2 AND key_id = $3",
    )
    .bind(account_id)
    .bind(plan_id)
    .bind(key_id)
    .execute(conn)
    .await?;
    Ok(done.rows_affected() > 0)
}

/// Key ids attached to a plan, sorted.
pub async fn keys_of_plan(
    conn: &mut AnyConnection,
    account_id: &str,
    plan_id: &str,
) -> StoreResult<Vec<String>> {
    let rows: Vec<(String,)> = sqlx::query_as(
        "SELECT key_id FROM usage_plan_keys WHERE account_id = $1 AND plan_id = $2 ORDER BY key_id",
    )
    .bind(account_id)
    .bind(plan_id)
    .fetch_all(conn)
    .await?;
    Ok(rows.into_iter().map(|(k,)| k).collect())
}

/// Plan ids a key is attached to, sorted.
pub async fn plans_of_key(
    conn: &mut AnyConnection,
    account_id: &str,
    key_id: &str,
) -> StoreResult<Vec<String>> {
    let rows: Vec<(String,)> = sqlx::query_as(
        "SELECT plan_id FROM usage_plan_keys WHERE account_id = $1 AND key_id = $2 ORDER BY plan_id",
    )
    .bind(account_id)
    .bind(key_id)
    .fetch_all(conn)
    .await?;
    Ok(rows.into_iter().map(|(p,)| p).collect())
}

/// Records a day's count for a key, keeping the larger of stored and given:
/// counters only grow within a day, so a stale reading never lowers it.
pub async fn record_usage(
    conn: &mut AnyConnection,
    account_id: &str,
    plan_id: &str,
    key_id: &str,
    day: &str,
    used: i64,
) -> StoreResult<()> {
    sqlx::query(
        "INSERT INTO usage_daily (account_id, plan_id, key_id, day, used) VALUES ($1, $2, $3, $4, $5) \
         ON CONFLICT (account_id, plan_id, key_id, day) DO UPDATE SET used = \
         CASE WHEN usage_daily.used > excluded.used THEN usage_daily.used ELSE excluded.used END",
    )
    .bind(account_id)
    .bind(plan_id)
    .bind(key_id)
    .bind(day)
    .bind(used)
    .execute(conn)
    .await?;
    Ok(())
}

/// Sets a day's count outright (UpdateUsage).
pub async fn set_usage(
    conn: &mut AnyConnection,
    account_id: &str,
    plan_id: &str,
    key_id: &str,
    day: &str,
    used: i64,
) -> StoreResult<()> {
    sqlx::query(
        "INSERT INTO usage_daily (account_id, plan_id, key_id, day, used) VALUES ($1, $2, $3, $4, $5) \
         ON CONFLICT (account_id, plan_id, key_id, day) DO UPDATE SET used = excluded.used",
    )
    .bind(account_id)
    .bind(plan_id)
    .bind(key_id)
    .bind(day)
    .bind(used)
    .execute(conn)
    .await?;
    Ok(())
}

/// `(key_id, day, used)` of a plan between two `YYYY-MM-DD` days inclusive.
pub async fn usage(
    conn: &mut AnyConnection,
    account_id: &str,
    plan_id: &str,
    start_day: &str,
    end_day: &str,
) -> StoreResult<Vec<(String, String, i64)>> {
    let rows: Vec<(String, String, i64)> = sqlx::query_as(
        "SELECT key_id, day, used FROM usage_daily WHERE account_id = $1 AND plan_id = $2 \
         AND day >= $3 AND day <= $4 ORDER BY key_id, day",
    )
    .bind(account_id)
    .bind(plan_id)
    .bind(start_day)
    .bind(end_day)
    .fetch_all(conn)
    .await?;
    Ok(rows)
}

/// The plans that include `{api_id}:{stage}`, as that stage enforces them:
/// limits, per-method overrides and the digests of their enabled keys.
pub async fn stage_plans(
    conn: &mut AnyConnection,
    account_id: &str,
    api_id: &str,
    stage: &str,
) -> StoreResult<Vec<apigw_proto::snapshot::StageUsagePlan>> {
    use apigw_proto::snapshot::{StageApiKey, StageUsagePlan};
    use serde_json::Value;
    let mut out = Vec::new();
    for plan in list(conn, account_id).await? {
        let doc: Value = serde_json::from_str(&plan.doc)?;
        let Some(api_stage) = doc["apiStages"].as_array().and_then(|stages| {
            stages
                .iter()
                .find(|s| s["apiId"] == api_id && s["stage"] == stage)
        }) else {
            continue;
        };
        let method_throttle = match api_stage.get("throttle") {
            Some(t) if !t.is_null() => serde_json::from_value(t.clone())?,
            _ => Default::default(),
        };
        let keys: Vec<(String, String, String)> = sqlx::query_as(
            "SELECT k.key_id, k.value_sha256, k.doc FROM usage_plan_keys u JOIN api_keys k \
             ON k.account_id = u.account_id AND k.key_id = u.key_id \
             WHERE u.account_id = $1 AND u.plan_id = $2 ORDER BY k.key_id",
        )
        .bind(account_id)
        .bind(&plan.plan_id)
        .fetch_all(&mut *conn)
        .await?;
        let mut enabled = Vec::new();
        for (id, sha256, key_doc) in keys {
            let key_doc: Value = serde_json::from_str(&key_doc)?;
            if key_doc["enabled"].as_bool().unwrap_or(false) {
                enabled.push(StageApiKey { id, sha256 });
            }
        }
        out.push(StageUsagePlan {
            id: plan.plan_id.clone(),
            created_day: apigw_proto::usage::Day::from_epoch_seconds(plan.created_at).0,
            throttle: optional(&doc["throttle"])?,
            quota: optional(&doc["quota"])?,
            method_throttle,
            keys: enabled,
        });
    }
    Ok(out)
}

fn optional<T: serde::de::DeserializeOwned>(v: &serde_json::Value) -> StoreResult<Option<T>> {
    if v.is_null() {
        Ok(None)
    } else {
        Ok(Some(serde_json::from_value(v.clone())?))
    }
}

/// `(api_id, stage)` pairs a plan covers, from its stored document.
pub fn plan_stages(doc: &str) -> StoreResult<Vec<(String, String)>> {
    let doc: serde_json::Value = serde_json::from_str(doc)?;
    Ok(doc["apiStages"]
        .as_array()
        .map(|stages| {
            stages
                .iter()
                .filter_map(|s| {
                    Some((
                        s["apiId"].as_str()?.to_owned(),
                        s["stage"].as_str()?.to_owned(),
                    ))
                })
                .collect()
        })
        .unwrap_or_default())
}

/// Every `(account_id, plan_id, key_id)` attachment, for persisting usage.
pub async fn all_plan_keys(conn: &mut AnyConnection) -> StoreResult<Vec<(String, String, String)>> {
    Ok(sqlx::query_as(
        "SELECT account_id, plan_id, key_id FROM usage_plan_keys ORDER BY account_id, plan_id, key_id",
    )
    .fetch_all(conn)
    .await?)
}
