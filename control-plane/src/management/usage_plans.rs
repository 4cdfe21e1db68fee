//! CreateUsagePlan, GetUsagePlans, GetUsagePlan, UpdateUsagePlan,
//! DeleteUsagePlan; CreateUsagePlanKey, GetUsagePlanKeys, GetUsagePlanKey,
//! DeleteUsagePlanKey; GetUsage and UpdateUsage. Every change that alters
//! what a stage enforces republishes that stage in the same transaction.

use std::collections::BTreeMap;

use apigw_proto::snapshot::{QuotaLimits, ThrottleLimits};
use axum::Router;
use axum::body::Bytes;
use axum::extract::{Extension, Path, Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::{get, patch};
use chrono::NaiveDate;
use serde::{Deserialize, Serialize};
use sqlx::AnyConnection;

use super::api_keys::{self, invalid_key, keys_by_id};
use super::auth::Caller;
use super::input::{Op, Paging, PatchOp, PatchRequest, json, list_body, one_of, page};
use super::{AppState, ids, no_content, reply};
use crate::error::{ApiError, ApiResult};
use crate::model::Tags;
use crate::publish;
use crate::store::usage_plans::{self as store, UsagePlanRow};
use crate::store::{StoreError, Tx, api_keys as key_store, now_epoch, stages};
use crate::usage::{to_date, to_day};

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/usageplans", get(list).post(create))
        .route(
            "/usageplans/{usageplan_id}",
            get(fetch).patch(update).delete(delete),
        )
        .route(
            "/usageplans/{usageplan_id}/keys",
            get(list_keys).post(create_key),
        )
        .route(
            "/usageplans/{usageplan_id}/keys/{key_id}",
            get(fetch_key).delete(delete_key),
        )
        .route("/usageplans/{usageplan_id}/usage", get(get_usage))
        .route(
            "/usageplans/{usageplan_id}/keys/{key_id}/usage",
            patch(update_usage),
        )
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ApiStage {
    #[serde(default)]
    pub api_id: String,
    #[serde(default)]
    pub stage: String,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub throttle: BTreeMap<String, ThrottleLimits>,
}

/// AWS's `UsagePlan`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct UsagePlan {
    pub id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(default)]
    pub api_stages: Vec<ApiStage>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub throttle: Option<ThrottleLimits>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub quota: Option<QuotaLimits>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub product_code: Option<String>,
    #[serde(default, skip_serializing_if = "Tags::is_empty")]
    pub tags: Tags,
}

pub(crate) fn invalid_plan() -> ApiError {
    ApiError::not_found("Invalid Usage Plan ID specified")
}

const PERIODS: [&str; 3] = ["DAY", "WEEK", "MONTH"];

fn check_throttle(t: &ThrottleLimits) -> ApiResult<()> {
    if t.burst_limit < 0 || t.rate_limit < 0.0 || !t.rate_limit.is_finite() {
        return Err(ApiError::bad_request(
            "Throttle burstLimit and rateLimit must not be negative",
        ));
    }
    Ok(())
}

fn check_quota(q: &QuotaLimits) -> ApiResult<()> {
    one_of(&q.period, "quota.period", &PERIODS)?;
    if q.limit < 0 {
        return Err(ApiError::bad_request("Quota limit must not be negative"));
    }
    if q.offset < 0 || q.offset >= q.limit.max(1) {
        return Err(ApiError::bad_request(
            "Quota offset must be at least 0 and less than the quota limit",
        ));
    }
    Ok(())
}

/// Method override keys are `/{resourcePath}/{METHOD}` (root: `//GET`).
fn check_method_key(key: &str) -> ApiResult<()> {
    let ok = key.starts_with('/')
        && key
            .rsplit_once('/')
            .is_some_and(|(path, method)| !path.is_empty() && !method.is_empty());
    if ok {
        Ok(())
    } else {
        Err(ApiError::bad_request(format!(
            "Invalid method throttle key '{key}', expected /{{resourcePath}}/{{httpMethod}}"
        )))
    }
}

async fn check_stage(tx: &mut Tx, account_id: &str, s: &ApiStage) -> ApiResult<()> {
    if stages::get(tx, account_id, &s.api_id, &s.stage)
        .await?
        .is_none()
    {
        return Err(ApiError::bad_request(format!(
            "Invalid API Stage {{api: {}, stage: {}}} specified",
            s.api_id, s.stage
        )));
    }
    for (key, t) in &s.throttle {
        check_method_key(key)?;
        check_throttle(t)?;
    }
    Ok(())
}

fn parse(row: &UsagePlanRow) -> ApiResult<UsagePlan> {
    serde_json::from_str(&row.doc)
        .map_err(|e| ApiError::Internal(format!("corrupt usage plan {}: {e}", row.plan_id)))
}

fn to_doc(plan: &UsagePlan) -> ApiResult<String> {
    serde_json::to_string(plan).map_err(|e| ApiError::Internal(e.to_string()))
}

async fn load(tx: &mut Tx, caller: &Caller, plan_id: &str) -> ApiResult<(UsagePlanRow, UsagePlan)> {
    let row = store::get(tx, &caller.account_id, plan_id)
        .await?
        .ok_or_else(invalid_plan)?;
    let plan = parse(&row)?;
    Ok((row, plan))
}

/// Republishes every stage of the given plans (after their keys, limits or
/// stages changed); the highest new version, `None` when nothing changed.
pub(crate) async fn republish_plans(
    conn: &mut AnyConnection,
    account_id: &str,
    plan_ids: &[String],
) -> Result<Option<u64>, StoreError> {
    let mut stages_to_publish = Vec::new();
    for plan_id in plan_ids {
        if let Some(row) = store::get(conn, account_id, plan_id).await? {
            stages_to_publish.extend(store::plan_stages(&row.doc)?);
        }
    }
    republish_stages(conn, account_id, stages_to_publish).await
}

async fn republish_stages(
    conn: &mut AnyConnection,
    account_id: &str,
    mut pairs: Vec<(String, String)>,
) -> Result<Option<u64>, StoreError> {
    pairs.sort();
    pairs.dedup();
    let mut last = None;
    for (api, stage) in pairs {
        if let Some(v) = publish::publish_stage(conn, account_id, &api, &stage).await? {
            last = Some(v);
        }
    }
    Ok(last)
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct CreateInput {
    name: Option<String>,
    description: Option<String>,
    #[serde(default)]
    api_stages: Vec<ApiStage>,
    throttle: Option<ThrottleLimits>,
    quota: Option<QuotaLimits>,
    product_code: Option<String>,
    #[serde(default)]
    tags: Tags,
}

async fn create(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    body: Bytes,
) -> ApiResult<Response> {
    let input: CreateInput = json(&body)?;
    let Some(name) = input.name.filter(|n| !n.trim().is_empty()) else {
        return Err(ApiError::bad_request("Usage Plan name must be non-empty"));
    };
    if let Some(t) = &input.throttle {
        check_throttle(t)?;
    }
    if let Some(q) = &input.quota {
        check_quota(q)?;
    }
    let mut tx = state.store.begin().await?;
    for s in &input.api_stages {
        check_stage(&mut tx, &caller.account_id, s).await?;
    }
    let plan = UsagePlan {
        id: ids::short(),
        name: Some(name),
        description: input.description,
        api_stages: input.api_stages,
        throttle: input.throttle,
        quota: input.quota,
        product_code: input.product_code,
        tags: input.tags,
    };
    let now = now_epoch();
    store::insert(
        &mut tx,
        &UsagePlanRow {
            account_id: caller.account_id.clone(),
            plan_id: plan.id.clone(),
            created_at: now,
            version: 1,
            doc: to_doc(&plan)?,
        },
    )
    .await?;
    // A new plan has no keys, but a stage's published plans change anyway
    // (keys arrive later and the stage must already know the plan).
    let published =
        republish_plans(&mut tx, &caller.account_id, std::slice::from_ref(&plan.id)).await?;
    tx.commit().await.map_err(StoreError::from)?;
    state.feed.published_opt(published);
    Ok(reply(StatusCode::CREATED, &plan))
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct ListQuery {
    position: Option<String>,
    limit: Option<String>,
    key_id: Option<String>,
}

async fn list(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Query(query): Query<ListQuery>,
) -> ApiResult<Response> {
    let mut tx = state.store.begin().await?;
    let only: Option<Vec<String>> = match query.key_id.as_deref().filter(|k| !k.is_empty()) {
        Some(key) => Some(store::plans_of_key(&mut tx, &caller.account_id, key).await?),
        None => None,
    };
    let mut plans = Vec::new();
    for row in store::list(&mut tx, &caller.account_id).await? {
        if only.as_ref().is_some_and(|o| !o.contains(&row.plan_id)) {
            continue;
        }
        plans.push(parse(&row)?);
    }
    let paging = Paging {
        position: query.position,
        limit: query.limit,
    };
    let (items, position) = page(plans, |p| p.id.as_str(), &paging)?;
    Ok(reply(StatusCode::OK, &list_body(&items, position)))
}

async fn fetch(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(plan_id): Path<String>,
) -> ApiResult<Response> {
    let mut tx = state.store.begin().await?;
    let (_, plan) = load(&mut tx, &caller, &plan_id).await?;
    Ok(reply(StatusCode::OK, &plan))
}

const PATCH_PATHS: [&str; 10] = [
    "/name",
    "/description",
    "/productCode",
    "/throttle/rateLimit",
    "/throttle/burstLimit",
    "/quota/limit",
    "/quota/period",
    "/quota/offset",
    "/apiStages",
    "/apiStages/{apiId}:{stage}/throttle",
];

/// `{apiId}:{stage}` → its entry in the plan.
fn api_stage<'p>(plan: &'p mut UsagePlan, id: &str) -> ApiResult<&'p mut ApiStage> {
    let plan_id = plan.id.clone();
    let (api, stage) = id
        .split_once(':')
        .ok_or_else(|| ApiError::bad_request("Invalid API Stage specified"))?;
    plan.api_stages
        .iter_mut()
        .find(|s| s.api_id == api && s.stage == stage)
        .ok_or_else(|| {
            ApiError::not_found(format!(
                "Invalid API Stage {{api: {api}, stage: {stage}}} specified for usageplan {plan_id}"
            ))
        })
}

fn number<T: std::str::FromStr>(op: &PatchOp) -> ApiResult<T> {
    let v = op.replacement()?;
    v.parse().map_err(|_| {
        ApiError::bad_request(format!(
            "Invalid number value '{v}' for patch path '{}'",
            op.path
        ))
    })
}

/// Applies one operation; returns a stage it added, which the caller must check.
fn apply(plan: &mut UsagePlan, op: &PatchOp) -> ApiResult<Option<ApiStage>> {
    let segments = op.segments();
    let segs: Vec<&str> = segments.iter().map(String::as_str).collect();
    match segs.as_slice() {
        ["name"] => plan.name = Some(op.replacement()?.to_owned()),
        ["description"] => plan.description = op.set_or_remove()?.map(str::to_owned),
        ["productCode"] => plan.product_code = op.set_or_remove()?.map(str::to_owned),
        ["throttle"] if op.op == Op::Remove => plan.throttle = None,
        ["quota"] if op.op == Op::Remove => plan.quota = None,
        ["throttle", field] => {
            let t = plan.throttle.get_or_insert_default();
            match *field {
                "rateLimit" => t.rate_limit = number(op)?,
                "burstLimit" => t.burst_limit = number(op)?,
                _ => return Err(op.invalid_path(&PATCH_PATHS)),
            }
            check_throttle(t)?;
        }
        ["quota", field] => {
            let q = plan.quota.get_or_insert_with(|| QuotaLimits {
                period: "DAY".into(),
                ..Default::default()
            });
            match *field {
                "limit" => q.limit = number(op)?,
                "offset" => q.offset = number(op)?,
                "period" => q.period = op.replacement()?.to_owned(),
                _ => return Err(op.invalid_path(&PATCH_PATHS)),
            }
            check_quota(q)?;
        }
        ["apiStages"] => {
            let value = op.value()?;
            let (api, stage) = value
                .split_once(':')
                .ok_or_else(|| ApiError::bad_request("Invalid API Stage specified"))?;
            let exists = plan
                .api_stages
                .iter()
                .any(|s| s.api_id == api && s.stage == stage);
            match op.op {
                Op::Add if exists => {}
                Op::Add => {
                    let added = ApiStage {
                        api_id: api.to_owned(),
                        stage: stage.to_owned(),
                        throttle: BTreeMap::new(),
                    };
                    plan.api_stages.push(added.clone());
                    return Ok(Some(added));
                }
                Op::Remove if exists => plan
                    .api_stages
                    .retain(|s| !(s.api_id == api && s.stage == stage)),
                Op::Remove => {
                    return Err(ApiError::not_found(format!(
                        "Invalid API Stage {{api: {api}, stage: {stage}}} specified for usageplan {}",
                        plan.id
                    )));
                }
                _ => return Err(op.invalid_op(&["add", "remove"])),
            }
        }
        ["apiStages", id, "throttle"] => {
            let entry = api_stage(plan, id)?;
            match op.op {
                Op::Remove => entry.throttle.clear(),
                Op::Replace | Op::Add => {
                    let map: BTreeMap<String, ThrottleLimits> = serde_json::from_str(op.value()?)
                        .map_err(|e| {
                        ApiError::bad_request(format!("Invalid throttle map: {e}"))
                    })?;
                    for (k, t) in &map {
                        check_method_key(k)?;
                        check_throttle(t)?;
                    }
                    entry.throttle = map;
                }
                _ => return Err(op.invalid_op(&["replace", "remove"])),
            }
        }
        // `/apiStages/{apiId}:{stage}/throttle/{resourcePath…}/{METHOD}/rateLimit|burstLimit`:
        // the resource path may hold several segments (`~1` or plain slashes).
        ["apiStages", id, "throttle", rest @ ..] if rest.len() >= 2 => {
            let entry = api_stage(plan, id)?;
            let (field, method_path) = rest.split_last().expect("two or more");
            let (method, path) = method_path.split_last().expect("one or more");
            let mut resource = path.join("/");
            if !resource.starts_with('/') {
                resource.insert(0, '/');
            }
            let key = format!("{resource}/{method}");
            match (op.op, *field) {
                (Op::Remove, _) => {
                    entry.throttle.remove(&key);
                }
                (_, "rateLimit") => {
                    let t = entry.throttle.entry(key).or_default();
                    t.rate_limit = number(op)?;
                    check_throttle(t)?;
                }
                (_, "burstLimit") => {
                    let t = entry.throttle.entry(key).or_default();
                    t.burst_limit = number(op)?;
                    check_throttle(t)?;
                }
                (_, field) => {
                    return Err(ApiError::bad_request(format!(
                        "Invalid throttle field '{field}', must be rateLimit or burstLimit"
                    )));
                }
            }
        }
        _ => return Err(op.invalid_path(&PATCH_PATHS)),
    }
    Ok(None)
}

async fn update(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(plan_id): Path<String>,
    body: Bytes,
) -> ApiResult<Response> {
    let patch: PatchRequest = json(&body)?;
    let mut tx = state.store.begin().await?;
    let (mut row, mut plan) = load(&mut tx, &caller, &plan_id).await?;
    let before = store::plan_stages(&row.doc)?;
    for op in &patch.patch_operations {
        if let Some(added) = apply(&mut plan, op)? {
            check_stage(&mut tx, &caller.account_id, &added).await?;
        }
    }
    row.doc = to_doc(&plan)?;
    store::update(&mut tx, &row).await?;
    // Stages the plan left must forget it; the others learn its new limits.
    let mut affected = before;
    affected.extend(store::plan_stages(&row.doc)?);
    let published = republish_stages(&mut tx, &caller.account_id, affected).await?;
    tx.commit().await.map_err(StoreError::from)?;
    state.feed.published_opt(published);
    Ok(reply(StatusCode::OK, &plan))
}

async fn delete(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(plan_id): Path<String>,
) -> ApiResult<Response> {
    let mut tx = state.store.begin().await?;
    let (row, _) = load(&mut tx, &caller, &plan_id).await?;
    let affected = store::plan_stages(&row.doc)?;
    store::delete(&mut tx, &caller.account_id, &plan_id).await?;
    let published = republish_stages(&mut tx, &caller.account_id, affected).await?;
    tx.commit().await.map_err(StoreError::from)?;
    state.feed.published_opt(published);
    Ok(no_content(StatusCode::ACCEPTED))
}

/// AWS's `UsagePlanKey`.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct UsagePlanKey {
    id: String,
    #[serde(rename = "type")]
    key_type: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    value: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    name: Option<String>,
}

fn plan_key(state: &AppState, row: &key_store::ApiKeyRow) -> ApiResult<UsagePlanKey> {
    let key = api_keys::present(state, row, true)?;
    Ok(UsagePlanKey {
        id: key.id,
        key_type: "API_KEY",
        value: key.value,
        name: key.name,
    })
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct CreateKeyInput {
    key_id: Option<String>,
    key_type: Option<String>,
}

async fn create_key(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(plan_id): Path<String>,
    body: Bytes,
) -> ApiResult<Response> {
    let input: CreateKeyInput = json(&body)?;
    let key_id = input
        .key_id
        .filter(|k| !k.is_empty())
        .ok_or_else(|| ApiError::bad_request("Invalid API Key identifier specified"))?;
    one_of(
        input.key_type.as_deref().unwrap_or(""),
        "keyType",
        &["API_KEY"],
    )?;
    let mut tx = state.store.begin().await?;
    let (_, plan) = load(&mut tx, &caller, &plan_id).await?;
    let key_row = key_store::get(&mut tx, &caller.account_id, &key_id)
        .await?
        .ok_or_else(invalid_key)?;
    // One plan per API stage for a key, as on AWS: otherwise which quota counts?
    for other_id in store::plans_of_key(&mut tx, &caller.account_id, &key_id).await? {
        if other_id == plan_id {
            return Err(ApiError::conflict(format!(
                "Usage Plan {plan_id} already contains API Key {key_id}"
            )));
        }
        if let Some(other) = store::get(&mut tx, &caller.account_id, &other_id).await? {
            let shared = store::plan_stages(&other.doc)?.into_iter().find(|s| {
                plan.api_stages
                    .iter()
                    .any(|p| p.api_id == s.0 && p.stage == s.1)
            });
            if let Some((api, stage)) = shared {
                return Err(ApiError::conflict(format!(
                    "API Key {key_id} is already associated with usage plan {other_id} \
                     for API stage {api}:{stage}"
                )));
            }
        }
    }
    store::add_key(&mut tx, &caller.account_id, &plan_id, &key_id).await?;
    let published =
        republish_plans(&mut tx, &caller.account_id, std::slice::from_ref(&plan_id)).await?;
    tx.commit().await.map_err(StoreError::from)?;
    state.feed.published_opt(published);
    Ok(reply(StatusCode::CREATED, &plan_key(&state, &key_row)?))
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct ListKeysQuery {
    position: Option<String>,
    limit: Option<String>,
    /// `nameQuery` travels as `name` (botocore's locationName).
    #[serde(rename = "name")]
    name_query: Option<String>,
}

async fn list_keys(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(plan_id): Path<String>,
    Query(query): Query<ListKeysQuery>,
) -> ApiResult<Response> {
    let mut tx = state.store.begin().await?;
    load(&mut tx, &caller, &plan_id).await?;
    let ids = store::keys_of_plan(&mut tx, &caller.account_id, &plan_id).await?;
    let mut keys = Vec::new();
    for row in keys_by_id(&mut tx, &caller.account_id, &ids)
        .await?
        .values()
    {
        let key = plan_key(&state, row)?;
        if let Some(q) = query.name_query.as_deref().filter(|q| !q.is_empty())
            && !key.name.as_deref().unwrap_or("").starts_with(q)
        {
            continue;
        }
        keys.push(key);
    }
    let paging = Paging {
        position: query.position,
        limit: query.limit,
    };
    let (items, position) = page(keys, |k| k.id.as_str(), &paging)?;
    Ok(reply(StatusCode::OK, &list_body(&items, position)))
}

async fn fetch_key(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path((plan_id, key_id)): Path<(String, String)>,
) -> ApiResult<Response> {
    let mut tx = state.store.begin().await?;
    load(&mut tx, &caller, &plan_id).await?;
    if !store::has_key(&mut tx, &caller.account_id, &plan_id, &key_id).await? {
        return Err(ApiError::not_found(
            "Invalid Usage Plan Key identifier specified",
        ));
    }
    let row = key_store::get(&mut tx, &caller.account_id, &key_id)
        .await?
        .ok_or_else(invalid_key)?;
    Ok(reply(StatusCode::OK, &plan_key(&state, &row)?))
}

async fn delete_key(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path((plan_id, key_id)): Path<(String, String)>,
) -> ApiResult<Response> {
    let mut tx = state.store.begin().await?;
    load(&mut tx, &caller, &plan_id).await?;
    if !store::remove_key(&mut tx, &caller.account_id, &plan_id, &key_id).await? {
        return Err(ApiError::not_found(
            "Invalid Usage Plan Key identifier specified",
        ));
    }
    let published =
        republish_plans(&mut tx, &caller.account_id, std::slice::from_ref(&plan_id)).await?;
    tx.commit().await.map_err(StoreError::from)?;
    state.feed.published_opt(published);
    Ok(no_content(StatusCode::ACCEPTED))
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct UsageQuery {
    start_date: Option<String>,
    end_date: Option<String>,
    key_id: Option<String>,
    position: Option<String>,
    limit: Option<String>,
}

fn date(value: Option<&str>, member: &str) -> ApiResult<NaiveDate> {
    let v = value
        .filter(|v| !v.is_empty())
        .ok_or_else(|| ApiError::bad_request(format!("The {member} parameter is required")))?;
    NaiveDate::parse_from_str(v, "%Y-%m-%d").map_err(|_| {
        ApiError::bad_request(format!(
            "Invalid {member} '{v}': expected a date in the form YYYY-MM-DD"
        ))
    })
}

/// The first day of the quota period containing `day` (UTC; weeks start on Monday).
pub fn period_start(period: &str, day: NaiveDate) -> NaiveDate {
    to_date(to_day(day).period_start(period))
}

/// AWS's `Usage` as it travels on the wire (`values`, which SDKs call `items`).
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct Usage {
    usage_plan_id: String,
    start_date: String,
    end_date: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    position: Option<String>,
    values: BTreeMap<String, Vec<[i64; 2]>>,
}

/// Each key's per-day counts over the range, from the counters when they
/// answer (persisted on the way) and from the store otherwise.
async fn daily_counts(
    state: &AppState,
    tx: &mut Tx,
    caller: &Caller,
    plan_id: &str,
    keys: &[String],
    days: &[NaiveDate],
) -> ApiResult<BTreeMap<String, BTreeMap<NaiveDate, i64>>> {
    let account_id = caller.account_id.as_str();
    let (first, last) = (days[0], days[days.len() - 1]);
    let mut out: BTreeMap<String, BTreeMap<NaiveDate, i64>> = BTreeMap::new();
    for (key, day, used) in store::usage(
        tx,
        account_id,
        plan_id,
        &first.to_string(),
        &last.to_string(),
    )
    .await?
    {
        if let Ok(d) = NaiveDate::parse_from_str(&day, "%Y-%m-%d") {
            out.entry(key).or_default().insert(d, used);
        }
    }
    if let Some(counters) = state.usage.counters() {
        let wanted: Vec<_> = days.iter().map(|d| to_day(*d)).collect();
        for key in keys {
            match counters
                .daily(account_id, &caller.region, plan_id, key, &wanted)
                .await
            {
                Ok(live) => {
                    for (day, used) in live {
                        let day = to_date(day);
                        let slot = out.entry(key.clone()).or_default().entry(day).or_insert(0);
                        if used > *slot {
                            *slot = used;
                            store::record_usage(
                                tx,
                                account_id,
                                plan_id,
                                key,
                                &day.to_string(),
                                used,
                            )
                            .await?;
                        }
                    }
                }
                Err(e) => {
                    tracing::warn!(error = %e, "usage counters unavailable; answering from the store")
                }
            }
        }
    }
    Ok(out)
}

async fn get_usage(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(plan_id): Path<String>,
    Query(query): Query<UsageQuery>,
) -> ApiResult<Response> {
    let start = date(query.start_date.as_deref(), "startDate")?;
    let end = date(query.end_date.as_deref(), "endDate")?;
    if end < start {
        return Err(ApiError::bad_request(
            "The endDate must not be before the startDate",
        ));
    }
    if (end - start).num_days() > 90 {
        return Err(ApiError::bad_request(
            "The usage range may span at most 90 days",
        ));
    }
    let mut tx = state.store.begin().await?;
    let (row, plan) = load(&mut tx, &caller, &plan_id).await?;
    let created = apigw_proto::usage::Day::from_epoch_seconds(row.created_at);
    let mut keys = store::keys_of_plan(&mut tx, &caller.account_id, &plan_id).await?;
    if let Some(k) = query.key_id.as_deref().filter(|k| !k.is_empty()) {
        if !keys.iter().any(|x| x == k) {
            return Err(ApiError::not_found(
                "Invalid Usage Plan Key identifier specified",
            ));
        }
        keys = vec![k.to_owned()];
    }
    let paging = Paging {
        position: query.position,
        limit: query.limit,
    };
    let (keys, position) = page(keys, |k| k.as_str(), &paging)?;
    let days: Vec<NaiveDate> = start.iter_days().take_while(|d| *d <= end).collect();
    let counts = daily_counts(&state, &mut tx, &caller, &plan_id, &keys, &days).await?;
    tx.commit().await.map_err(StoreError::from)?;
    let mut values = BTreeMap::new();
    for key in &keys {
        let per_day = counts.get(key);
        let used_on = |d: &NaiveDate| per_day.and_then(|m| m.get(d)).copied().unwrap_or(0);
        let series = days
            .iter()
            .map(|day| {
                let used = used_on(day);
                let remaining = match &plan.quota {
                    // Remaining: the period's limit less what the period used up to this day.
                    Some(q) => {
                        let from = period_start(&q.period, *day);
                        let used_in_period: i64 = from
                            .iter_days()
                            .take_while(|d| d <= day)
                            .map(|d| used_on(&d))
                            .sum();
                        (q.limit_on(to_day(*day), created) - used_in_period).max(0)
                    }
                    None => 0,
                };
                [used, remaining]
            })
            .collect();
        values.insert(key.clone(), series);
    }
    Ok(reply(
        StatusCode::OK,
        &Usage {
            usage_plan_id: plan_id,
            start_date: start.to_string(),
            end_date: end.to_string(),
            position,
            values,
        },
    ))
}

/// UpdateUsage: `replace /keys/{keyId}/remaining` (AWS also accepts
/// `/remaining`) sets how many requests the key has left in the current
/// quota period (the live quota counter). Counted usage is not rewritten:
/// GetUsage keeps reporting the requests actually admitted.
async fn update_usage(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path((plan_id, key_id)): Path<(String, String)>,
    body: Bytes,
) -> ApiResult<Response> {
    let patch: PatchRequest = json(&body)?;
    let mut tx = state.store.begin().await?;
    let (row, plan) = load(&mut tx, &caller, &plan_id).await?;
    if !store::has_key(&mut tx, &caller.account_id, &plan_id, &key_id).await? {
        return Err(ApiError::not_found(
            "Invalid Usage Plan Key identifier specified",
        ));
    }
    let Some(quota) = plan.quota.clone() else {
        return Err(ApiError::bad_request(format!(
            "Usage plan {plan_id} has no quota to update"
        )));
    };
    let remaining_path = format!("/keys/{key_id}/remaining");
    let mut remaining = None;
    for op in &patch.patch_operations {
        if op.path != remaining_path && op.path != "/remaining" {
            return Err(op.invalid_path(&["/keys/{keyId}/remaining"]));
        }
        let value = number::<i64>(op)?;
        if value < 0 {
            return Err(ApiError::bad_request(
                "The remaining value must not be negative",
            ));
        }
        remaining = Some(value);
    }
    let today = state.usage.today();
    // The limit in force today: the first period's is reduced by `offset`.
    let created = apigw_proto::usage::Day::from_epoch_seconds(row.created_at);
    let quota = QuotaLimits {
        limit: quota.limit_on(today, created),
        offset: 0,
        ..quota
    };
    if let Some(remaining) = remaining {
        let counters = state.usage.counters().ok_or_else(|| {
            ApiError::bad_request("Usage counters are not configured (no Redis and no data plane)")
        })?;
        counters
            .set_remaining(
                &caller.account_id,
                &caller.region,
                &plan_id,
                &key_id,
                &quota,
                today,
                remaining,
            )
            .await
            .map_err(|e| ApiError::Internal(format!("cannot update the quota counter: {e}")))?;
    }
    let day = to_date(today);
    let counts = daily_counts(
        &state,
        &mut tx,
        &caller,
        &plan_id,
        std::slice::from_ref(&key_id),
        &[day],
    )
    .await?;
    tx.commit().await.map_err(StoreError::from)?;
    let used = counts
        .get(&key_id)
        .and_then(|m| m.get(&day))
        .copied()
        .unwrap_or(0);
    let mut values = BTreeMap::new();
    values.insert(
        key_id,
        vec![[used, remaining.unwrap_or((quota.limit - used).max(0))]],
    );
    Ok(reply(
        StatusCode::OK,
        &Usage {
            usage_plan_id: plan_id,
            start_date: day.to_string(),
            end_date: day.to_string(),
            position: None,
            values,
        },
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn op(op: Op, path: &str, value: Option<&str>) -> PatchOp {
        PatchOp {
            op,
            path: path.into(),
            value: value.map(Into::into),
            from: None,
        }
    }

    fn plan() -> UsagePlan {
        UsagePlan {
            id: "p1".into(),
            api_stages: vec![ApiStage {
                api_id: "a1".into(),
                stage: "prod".into(),
                throttle: BTreeMap::new(),
            }],
            ..Default::default()
        }
    }

    #[test]
    fn method_throttle_patch_paths() {
        let mut p = plan();
        apply(
            &mut p,
            &op(
                Op::Replace,
                "/apiStages/a1:prod/throttle/~1pets/GET/rateLimit",
                Some("5"),
            ),
        )
        .unwrap();
        apply(
            &mut p,
            &op(
                Op::Replace,
                "/apiStages/a1:prod/throttle/pets/GET/burstLimit",
                Some("7"),
            ),
        )
        .unwrap();
        let t = &p.api_stages[0].throttle["/pets/GET"];
        assert_eq!((t.rate_limit, t.burst_limit), (5.0, 7));
        apply(
            &mut p,
            &op(
                Op::Replace,
                "/apiStages/a1:prod/throttle/~1/GET/rateLimit",
                Some("1"),
            ),
        )
        .unwrap();
        assert!(p.api_stages[0].throttle.contains_key("//GET"));
        let e = apply(
            &mut p,
            &op(
                Op::Replace,
                "/apiStages/a1:dev/throttle/pets/GET/rateLimit",
                Some("1"),
            ),
        )
        .unwrap_err();
        assert_eq!(
            e.to_string(),
            "Invalid API Stage {api: a1, stage: dev} specified for usageplan p1"
        );
    }

    #[test]
    fn quota_and_stage_ops() {
        let mut p = plan();
        apply(&mut p, &op(Op::Replace, "/quota/limit", Some("100"))).unwrap();
        apply(&mut p, &op(Op::Replace, "/quota/period", Some("WEEK"))).unwrap();
        assert_eq!(p.quota.as_ref().unwrap().limit, 100);
        assert!(apply(&mut p, &op(Op::Replace, "/quota/period", Some("YEAR"))).is_err());
        let added = apply(&mut p, &op(Op::Add, "/apiStages", Some("a2:dev"))).unwrap();
        assert_eq!(added.unwrap().api_id, "a2");
        apply(&mut p, &op(Op::Remove, "/apiStages", Some("a1:prod"))).unwrap();
        assert_eq!(p.api_stages.len(), 1);
        assert!(apply(&mut p, &op(Op::Replace, "/bogus", Some("1"))).is_err());
    }

    #[test]
    fn periods_start_on_utc_boundaries() {
        let d = NaiveDate::from_ymd_opt(2026, 11, 25).unwrap(); // a Wednesday
        assert_eq!(period_start("DAY", d), d);
        assert_eq!(
            period_start("WEEK", d),
            NaiveDate::from_ymd_opt(2026, 11, 23).unwrap()
        );
        assert_eq!(
            period_start("MONTH", d),
            NaiveDate::from_ymd_opt(2026, 11, 1).unwrap()
        );
    }
}
