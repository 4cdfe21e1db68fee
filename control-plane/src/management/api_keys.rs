//! CreateApiKey, GetApiKeys, GetApiKey, UpdateApiKey, DeleteApiKey and
//! ImportApiKeys (`POST /apikeys?mode=import&format=csv`). Values are sealed
//! at rest and returned only on create or with `includeValue(s)`; stages
//! learn only their SHA-256 (see `publish`).

use std::collections::BTreeMap;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Extension, Path, Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::get;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::auth::Caller;
use super::input::{Op, Paging, PatchOp, PatchRequest, json, list_body, page};
use super::usage_plans::republish_plans;
use super::{AppState, ids, no_content, reply};
use crate::error::{ApiError, ApiResult};
use crate::model::Tags;
use crate::store::api_keys::{self as store, ApiKeyRow};
use crate::store::{Tx, now_epoch, usage_plans as plan_store};
use crate::tenancy::random_string;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/apikeys", get(list).post(create_or_import))
        .route(
            "/apikeys/{api_key}",
            get(fetch).patch(update).delete(delete),
        )
}

/// AWS's `ApiKey`; `value` is filled in only when the caller may see it.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ApiKey {
    pub id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub customer_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    pub enabled: bool,
    pub created_date: i64,
    pub last_updated_date: i64,
    #[serde(default)]
    pub stage_keys: Vec<String>,
    #[serde(default, skip_serializing_if = "Tags::is_empty")]
    pub tags: Tags,
}

pub(crate) fn invalid_key() -> ApiError {
    ApiError::not_found("Invalid API Key identifier specified")
}

pub(crate) fn digest(value: &str) -> String {
    hex::encode(Sha256::digest(value.as_bytes()))
}

fn check_value(value: &str) -> ApiResult<()> {
    if value.len() < 20 {
        return Err(ApiError::bad_request(
            "API Key value should be at least 20 characters",
        ));
    }
    if value.len() > 128 {
        return Err(ApiError::bad_request(
            "API Key value exceeds maximum size of 128 characters",
        ));
    }
    if !value.chars().all(|c| c.is_ascii_graphic()) {
        return Err(ApiError::bad_request(
            "API Key value must contain only printable ASCII characters",
        ));
    }
    Ok(())
}

fn check_name(name: &str) -> ApiResult<()> {
    if name.chars().count() > 1024 {
        return Err(ApiError::bad_request(
            "Invalid API Key name, can be at most 1024 characters.",
        ));
    }
    Ok(())
}

pub(crate) fn parse(row: &ApiKeyRow) -> ApiResult<ApiKey> {
    serde_json::from_str(&row.doc)
        .map_err(|e| ApiError::Internal(format!("corrupt API key {}: {e}", row.key_id)))
}

/// The key as answered: with its value unsealed when `include_value`.
pub(crate) fn present(state: &AppState, row: &ApiKeyRow, include_value: bool) -> ApiResult<ApiKey> {
    let mut key = parse(row)?;
    key.value = if include_value {
        Some(
            state
                .tenancy
                .sealer()
                .open(&row.value_sealed)
                .map_err(|e| ApiError::Internal(format!("API key {}: {e}", row.key_id)))?,
        )
    } else {
        None
    };
    Ok(key)
}

fn to_row(state: &AppState, account_id: &str, key: &ApiKey, value: &str) -> ApiResult<ApiKeyRow> {
    let mut stored = key.clone();
    stored.value = None;
    Ok(ApiKeyRow {
        account_id: account_id.to_owned(),
        key_id: key.id.clone(),
        created_at: key.created_date,
        version: 1,
        doc: serde_json::to_string(&stored).map_err(|e| ApiError::Internal(e.to_string()))?,
        value_sealed: state.tenancy.sealer().seal(value),
        value_sha256: digest(value),
    })
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct CreateInput {
    name: Option<String>,
    description: Option<String>,
    #[serde(default)]
    enabled: bool,
    value: Option<String>,
    customer_id: Option<String>,
    #[serde(default)]
    stage_keys: Vec<StageKey>,
    #[serde(default)]
    tags: Tags,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct StageKey {
    rest_api_id: Option<String>,
    stage_name: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
struct CreateQuery {
    mode: Option<String>,
    format: Option<String>,
    failonwarnings: Option<String>,
}

/// Inserts a new key in `tx`; a duplicate value is a conflict, as on AWS.
async fn insert_key(
    state: &AppState,
    tx: &mut Tx,
    account_id: &str,
    key: &ApiKey,
    value: &str,
) -> ApiResult<()> {
    let row = to_row(state, account_id, key, value)?;
    if !store::insert(tx, &row).await? {
        return Err(ApiError::conflict("API Key already exists"));
    }
    Ok(())
}

fn new_key(name: Option<String>, description: Option<String>, enabled: bool) -> ApiKey {
    let now = now_epoch();
    ApiKey {
        id: ids::rest_api(),
        value: None,
        name,
        customer_id: None,
        description,
        enabled,
        created_date: now,
        last_updated_date: now,
        stage_keys: Vec::new(),
        tags: Tags::new(),
    }
}

async fn create_or_import(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Query(query): Query<CreateQuery>,
    body: Bytes,
) -> ApiResult<Response> {
    match query.mode.as_deref() {
        Some("import") => return import(&state, &caller, &query, &body).await,
        Some(other) if !other.is_empty() => {
            return Err(ApiError::bad_request(format!(
                "Invalid mode '{other}'; only 'import' is supported"
            )));
        }
        _ => {}
    }
    let input: CreateInput = json(&body)?;
    if let Some(name) = &input.name {
        check_name(name)?;
    }
    let value = match input.value {
        Some(v) => {
            check_value(&v)?;
            v
        }
        None => random_string(40),
    };
    let mut key = new_key(input.name, input.description, input.enabled);
    key.customer_id = input.customer_id;
    key.tags = input.tags;
    let mut tx = state.store.begin().await?;
    for sk in &input.stage_keys {
        let (Some(api), Some(stage)) = (&sk.rest_api_id, &sk.stage_name) else {
            return Err(ApiError::bad_request("Invalid stage key specified"));
        };
        if crate::store::stages::get(&mut tx, &caller.account_id, api, stage)
            .await?
            .is_none()
        {
            return Err(ApiError::bad_request(format!(
                "Invalid stage key specified: {api}/{stage}"
            )));
        }
        key.stage_keys.push(format!("{api}/{stage}"));
    }
    insert_key(&state, &mut tx, &caller.account_id, &key, &value).await?;
    tx.commit().await.map_err(crate::store::StoreError::from)?;
    key.value = Some(value);
    Ok(reply(StatusCode::CREATED, &key))
}

/// One CSV record; fields may be quoted (`"a,b"`), quotes doubled inside.
fn csv_record(line: &str) -> Vec<String> {
    let mut fields = Vec::new();
    let mut field = String::new();
    let mut quoted = false;
    let mut chars = line.chars().peekable();
    while let Some(c) = chars.next() {
        match (c, quoted) {
            ('"', true) if chars.peek() == Some(&'"') => {
                field.push('"');
                chars.next();
            }
            ('"', _) => quoted = !quoted,
            (',', false) => fields.push(std::mem::take(&mut field)),
            (c, _) => field.push(c),
        }
    }
    fields.push(field);
    fields
}

#[derive(Debug, Serialize)]
struct ImportResult {
    ids: Vec<String>,
    warnings: Vec<String>,
}

/// ImportApiKeys: a header row naming the columns (any order, any case:
/// `Name,key,description,Enabled,usageplanIds`), then one key per line.
async fn import(
    state: &AppState,
    caller: &Caller,
    query: &CreateQuery,
    body: &[u8],
) -> ApiResult<Response> {
    if !matches!(query.format.as_deref(), Some(f) if f.eq_ignore_ascii_case("csv")) {
        return Err(ApiError::bad_request(
            "Invalid format specified; only 'csv' is supported",
        ));
    }
    let fail_on_warnings = query.failonwarnings.as_deref() == Some("true");
    let text = std::str::from_utf8(body)
        .map_err(|_| ApiError::bad_request("The API keys file is not valid UTF-8"))?;
    let mut lines = text.lines().filter(|l| !l.trim().is_empty());
    let header: Vec<String> = lines
        .next()
        .map(csv_record)
        .ok_or_else(|| ApiError::bad_request("The API keys file is empty"))?
        .into_iter()
        .map(|h| h.trim().to_ascii_lowercase())
        .collect();
    let column = |name: &str| header.iter().position(|h| h == name);
    let Some(key_col) = column("key") else {
        return Err(ApiError::bad_request(
            "Invalid API keys file: the header must name a 'key' column",
        ));
    };
    let (name_col, desc_col, enabled_col, plans_col) = (
        column("name"),
        column("description"),
        column("enabled"),
        column("usageplanids"),
    );
    let mut tx = state.store.begin().await?;
    let mut ids = Vec::new();
    let mut warnings = Vec::new();
    let mut touched_plans = Vec::new();
    for (n, line) in lines.enumerate() {
        let record = csv_record(line);
        let get = |col: Option<usize>| {
            col.and_then(|i| record.get(i))
                .map(|v| v.trim().to_owned())
                .filter(|v| !v.is_empty())
        };
        let row_no = n + 2;
        let Some(value) = get(Some(key_col)) else {
            warnings.push(format!("Line {row_no}: missing API key value"));
            continue;
        };
        if let Err(e) = check_value(&value) {
            warnings.push(format!("Line {row_no}: {e}"));
            continue;
        }
        let enabled = get(enabled_col).is_some_and(|v| v.eq_ignore_ascii_case("true"));
        let key = new_key(get(name_col), get(desc_col), enabled);
        let row = to_row(state, &caller.account_id, &key, &value)?;
        if !store::insert(&mut tx, &row).await? {
            warnings.push(format!("Line {row_no}: API Key already exists"));
            continue;
        }
        for plan_id in get(plans_col)
            .unwrap_or_default()
            .split(',')
            .map(str::trim)
            .filter(|p| !p.is_empty())
        {
            if plan_store::get(&mut tx, &caller.account_id, plan_id)
                .await?
                .is_none()
            {
                warnings.push(format!("Line {row_no}: Invalid Usage Plan ID {plan_id}"));
                continue;
            }
            plan_store::add_key(&mut tx, &caller.account_id, plan_id, &key.id).await?;
            touched_plans.push(plan_id.to_owned());
        }
        ids.push(key.id);
    }
    if fail_on_warnings && !warnings.is_empty() {
        return Err(ApiError::bad_request(warnings.join("; ")));
    }
    let published = republish_plans(&mut tx, &caller.account_id, &touched_plans).await?;
    tx.commit().await.map_err(crate::store::StoreError::from)?;
    state.feed.published_opt(published);
    Ok(reply(StatusCode::CREATED, &ImportResult { ids, warnings }))
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct ListQuery {
    position: Option<String>,
    limit: Option<String>,
    /// `nameQuery` travels as `name` (botocore's locationName).
    #[serde(rename = "name")]
    name_query: Option<String>,
    customer_id: Option<String>,
    include_values: Option<String>,
}

async fn list(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Query(query): Query<ListQuery>,
) -> ApiResult<Response> {
    let include = query.include_values.as_deref() == Some("true");
    let mut tx = state.store.begin().await?;
    let mut keys = Vec::new();
    for row in store::list(&mut tx, &caller.account_id).await? {
        let key = present(&state, &row, include)?;
        // nameQuery matches names that begin with it, as on AWS.
        if let Some(q) = query.name_query.as_deref().filter(|q| !q.is_empty())
            && !key.name.as_deref().unwrap_or("").starts_with(q)
        {
            continue;
        }
        if let Some(c) = query.customer_id.as_deref().filter(|c| !c.is_empty())
            && key.customer_id.as_deref() != Some(c)
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

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct FetchQuery {
    include_value: Option<String>,
}

async fn fetch(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(key_id): Path<String>,
    Query(query): Query<FetchQuery>,
) -> ApiResult<Response> {
    let mut tx = state.store.begin().await?;
    let row = store::get(&mut tx, &caller.account_id, &key_id)
        .await?
        .ok_or_else(invalid_key)?;
    let key = present(&state, &row, query.include_value.as_deref() == Some("true"))?;
    Ok(reply(StatusCode::OK, &key))
}

const PATCH_PATHS: [&str; 4] = ["/description", "/enabled", "/name", "/customerId"];

fn apply(key: &mut ApiKey, op: &PatchOp) -> ApiResult<()> {
    if op.path == "/stages" {
        return apply_stage_key(key, op);
    }
    if op.op != Op::Replace {
        return Err(op.invalid_path(&PATCH_PATHS));
    }
    let text = || op.value.clone().filter(|v| !v.is_empty());
    match op.path.as_str() {
        "/name" => {
            let name = op.value()?;
            check_name(name)?;
            key.name = Some(name.to_owned());
        }
        "/description" => key.description = text(),
        "/customerId" => key.customer_id = text(),
        "/enabled" => key.enabled = op.bool_value()?,
        _ => return Err(op.invalid_path(&PATCH_PATHS)),
    }
    Ok(())
}

/// `add`/`remove` `/stages` with value `{restApiId}/{stageName}`.
fn apply_stage_key(key: &mut ApiKey, op: &PatchOp) -> ApiResult<()> {
    let value = op.value()?.to_owned();
    match op.op {
        Op::Add => {
            if !key.stage_keys.contains(&value) {
                key.stage_keys.push(value);
            }
        }
        Op::Remove => key.stage_keys.retain(|s| *s != value),
        _ => return Err(op.invalid_op(&["add", "remove"])),
    }
    Ok(())
}

async fn update(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(key_id): Path<String>,
    body: Bytes,
) -> ApiResult<Response> {
    let patch: PatchRequest = json(&body)?;
    let mut tx = state.store.begin().await?;
    let mut row = store::get(&mut tx, &caller.account_id, &key_id)
        .await?
        .ok_or_else(invalid_key)?;
    let mut key = parse(&row)?;
    let was_enabled = key.enabled;
    for op in &patch.patch_operations {
        apply(&mut key, op)?;
    }
    key.last_updated_date = now_epoch();
    row.doc = serde_json::to_string(&key).map_err(|e| ApiError::Internal(e.to_string()))?;
    store::update(&mut tx, &row).await?;
    // Enabling or disabling changes which digests the key's stages admit.
    let published = if was_enabled != key.enabled {
        let plans = plan_store::plans_of_key(&mut tx, &caller.account_id, &key_id).await?;
        republish_plans(&mut tx, &caller.account_id, &plans).await?
    } else {
        None
    };
    tx.commit().await.map_err(crate::store::StoreError::from)?;
    state.feed.published_opt(published);
    Ok(reply(StatusCode::OK, &key))
}

async fn delete(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(key_id): Path<String>,
) -> ApiResult<Response> {
    let mut tx = state.store.begin().await?;
    let plans = plan_store::plans_of_key(&mut tx, &caller.account_id, &key_id).await?;
    if !store::delete(&mut tx, &caller.account_id, &key_id).await? {
        return Err(invalid_key());
    }
    let published = republish_plans(&mut tx, &caller.account_id, &plans).await?;
    tx.commit().await.map_err(crate::store::StoreError::from)?;
    state.feed.published_opt(published);
    Ok(no_content(StatusCode::ACCEPTED))
}

/// Keys by id, for answering usage-plan-key calls.
pub(crate) async fn keys_by_id(
    tx: &mut Tx,
    account_id: &str,
    ids: &[String],
) -> ApiResult<BTreeMap<String, ApiKeyRow>> {
    let mut out = BTreeMap::new();
    for id in ids {
        if let Some(row) = store::get(tx, account_id, id).await? {
            out.insert(id.clone(), row);
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_records_follow_quoting() {
        assert_eq!(
            csv_record(r#"k1,"a, b","say ""hi""",true,"p1,p2""#),
            ["k1", "a, b", r#"say "hi""#, "true", "p1,p2"]
        );
        assert_eq!(csv_record("a,,c"), ["a", "", "c"]);
    }

    #[test]
    fn values_are_checked_like_aws() {
        assert!(check_value(&"a".repeat(19)).is_err());
        assert!(check_value(&"a".repeat(20)).is_ok());
        assert_eq!(
            check_value(&"a".repeat(129)).unwrap_err().to_string(),
            "API Key value exceeds maximum size of 128 characters"
        );
    }

    #[test]
    fn patch_paths_match_aws() {
        let mut key = ApiKey::default();
        let op = PatchOp {
            op: Op::Replace,
            path: "/id".into(),
            value: Some("x".into()),
            from: None,
        };
        assert_eq!(
            apply(&mut key, &op).unwrap_err().to_string(),
            "Invalid patch path  '/id' specified for op 'replace'. Must be one of: [/description, /enabled, /name, /customerId]"
        );
        let op = PatchOp {
            op: Op::Replace,
            path: "/enabled".into(),
            value: Some("true".into()),
            from: None,
        };
        apply(&mut key, &op).unwrap();
        assert!(key.enabled);
    }
}
