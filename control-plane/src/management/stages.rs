//! CreateStage, GetStage(s), UpdateStage, DeleteStage. Pointing a stage at an
//! older deployment (`replace /deploymentId`) is how a rollback is done.

use std::collections::BTreeMap;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Extension, Path, Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::get;
use serde::Deserialize;
use serde_json::{Value, json};

use super::auth::Caller;
use super::deployments::invalid_deployment;
use super::input::{Op, PatchOp, PatchRequest, json, list_body, one_of};
use super::rest_apis::check_tags;
use super::{AppState, LoadedApi, no_content, reply};
use crate::error::{ApiError, ApiResult};
use crate::model::{MethodSetting, Stage, Tags};
use crate::publish;
use crate::store::stages::{self as stage_store, StageRow};
use crate::store::{StoreError, Tx, deployments, now_epoch};

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/restapis/{restapi_id}/stages", get(list).post(create))
        .route(
            "/restapis/{restapi_id}/stages/{stage_name}",
            get(fetch).patch(update).delete(delete),
        )
        .route(
            "/restapis/{restapi_id}/stages/{stage_name}/cache/authorizers",
            axum::routing::delete(flush_authorizers),
        )
}

/// AWS's per-API stage limit.
const MAX_STAGES: usize = 10;
const CACHE_SIZES: [&str; 8] = ["0.5", "1.6", "6.1", "13.5", "28.4", "58.2", "118", "237"];

pub(crate) fn invalid_stage() -> ApiError {
    ApiError::not_found("Invalid stage identifier specified")
}

/// What CreateStage (or CreateDeployment with a `stageName`) asks for.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct NewStage {
    #[serde(default)]
    pub stage_name: String,
    #[serde(default)]
    pub deployment_id: String,
    pub description: Option<String>,
    #[serde(default)]
    pub cache_cluster_enabled: bool,
    pub cache_cluster_size: Option<String>,
    #[serde(default)]
    pub variables: BTreeMap<String, String>,
    pub documentation_version: Option<String>,
    pub canary_settings: Option<Value>,
    #[serde(default)]
    pub tracing_enabled: bool,
    #[serde(default)]
    pub tags: Tags,
}

fn check_stage_name(name: &str) -> ApiResult<()> {
    let ok = !name.is_empty()
        && name.len() <= 128
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
    if ok {
        Ok(())
    } else {
        Err(ApiError::bad_request(format!(
            "Stage name only allows a-zA-Z0-9_- and must be 1 to 128 characters: '{name}'"
        )))
    }
}

/// AWS's stage-variable rules: ≤100 variables, names `[A-Za-z0-9_]{1,64}`,
/// values ≤512 characters of `[A-Za-z0-9-._~:/?#&=,]`.
fn check_variable(name: &str, value: &str) -> ApiResult<()> {
    if name.is_empty()
        || name.len() > 64
        || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
    {
        return Err(ApiError::bad_request(format!(
            "Stage variable name '{name}' must be 1 to 64 characters of a-zA-Z0-9_"
        )));
    }
    if value.len() > 512
        || !value
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-._~:/?#&=,".contains(c))
    {
        return Err(ApiError::bad_request(format!(
            "Stage variable value for '{name}' must be at most 512 characters of a-zA-Z0-9-._~:/?#&=,"
        )));
    }
    Ok(())
}

fn check_variables(variables: &BTreeMap<String, String>) -> ApiResult<()> {
    if variables.len() > 100 {
        return Err(ApiError::bad_request(
            "A stage can have at most 100 variables",
        ));
    }
    variables.iter().try_for_each(|(k, v)| check_variable(k, v))
}

fn check_cache_size(size: &str) -> ApiResult<()> {
    one_of(size, "createStageInput.cacheClusterSize", &CACHE_SIZES)
}

async fn require_deployment(
    tx: &mut Tx,
    caller: &Caller,
    api_id: &str,
    deployment_id: &str,
) -> ApiResult<()> {
    deployments::get(tx, &caller.account_id, api_id, deployment_id)
        .await?
        .ok_or_else(invalid_deployment)?;
    Ok(())
}

/// The row for `stage`; `version` is the one read (1 for a new stage).
fn to_row(caller: &Caller, api_id: &str, stage: &Stage, version: i64) -> ApiResult<StageRow> {
    Ok(StageRow {
        api_id: api_id.to_owned(),
        stage_name: stage.stage_name.clone(),
        account_id: caller.account_id.clone(),
        deployment_id: stage.deployment_id.clone(),
        created_at: stage.created_date,
        version,
        doc: serde_json::to_string(stage).map_err(StoreError::from)?,
    })
}

fn from_row(row: &StageRow) -> ApiResult<Stage> {
    Ok(serde_json::from_str(&row.doc).map_err(StoreError::from)?)
}

async fn insert(tx: &mut Tx, caller: &Caller, api_id: &str, input: NewStage) -> ApiResult<Stage> {
    check_stage_name(&input.stage_name)?;
    check_variables(&input.variables)?;
    check_tags(&input.tags)?;
    if let Some(size) = &input.cache_cluster_size {
        check_cache_size(size)?;
    }
    require_deployment(tx, caller, api_id, &input.deployment_id).await?;
    if stage_store::get(tx, &caller.account_id, api_id, &input.stage_name)
        .await?
        .is_some()
    {
        return Err(ApiError::conflict("Stage already exists"));
    }
    if stage_store::list(tx, &caller.account_id, api_id, None)
        .await?
        .len()
        >= MAX_STAGES
    {
        return Err(ApiError::LimitExceeded(format!(
            "A REST API can have at most {MAX_STAGES} stages"
        )));
    }
    let now = now_epoch();
    let stage = Stage {
        deployment_id: input.deployment_id,
        stage_name: input.stage_name,
        description: input.description,
        cache_cluster_enabled: input.cache_cluster_enabled,
        cache_cluster_size: input
            .cache_cluster_size
            .or_else(|| input.cache_cluster_enabled.then(|| "0.5".into())),
        cache_cluster_status: if input.cache_cluster_enabled {
            "AVAILABLE"
        } else {
            "NOT_AVAILABLE"
        }
        .into(),
        variables: input.variables,
        documentation_version: input.documentation_version,
        canary_settings: input.canary_settings,
        tracing_enabled: input.tracing_enabled,
        tags: input.tags,
        created_date: now,
        last_updated_date: now,
        ..Default::default()
    };
    stage_store::insert(tx, &to_row(caller, api_id, &stage, 1)?).await?;
    Ok(stage)
}

/// For CreateDeployment's `stageName`: creates the stage, or points an
/// existing one at the new deployment, and publishes it for the data plane.
/// Returns the published config version, for waking the feed after commit.
pub(crate) async fn create_or_point(
    tx: &mut Tx,
    caller: &Caller,
    api_id: &str,
    input: NewStage,
) -> ApiResult<Option<u64>> {
    let stage_name = input.stage_name.clone();
    let Some(row) = stage_store::get(tx, &caller.account_id, api_id, &input.stage_name).await?
    else {
        insert(tx, caller, api_id, input).await?;
        return Ok(publish::publish_stage(tx, &caller.account_id, api_id, &stage_name).await?);
    };
    check_variables(&input.variables)?;
    let mut stage = from_row(&row)?;
    stage.deployment_id = input.deployment_id;
    if input.description.is_some() {
        stage.description = input.description;
    }
    stage.variables.extend(input.variables);
    stage.last_updated_date = now_epoch();
    stage_store::update(tx, &to_row(caller, api_id, &stage, row.version)?).await?;
    Ok(publish::publish_stage(tx, &caller.account_id, api_id, &stage_name).await?)
}

async fn create(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(api_id): Path<String>,
    body: Bytes,
) -> ApiResult<Response> {
    let input: NewStage = json(&body)?;
    if input.stage_name.is_empty() {
        return Err(ApiError::bad_request("The 'stageName' member is required"));
    }
    if input.deployment_id.is_empty() {
        return Err(ApiError::bad_request(
            "The 'deploymentId' member is required",
        ));
    }
    let mut tx = state.store.begin().await?;
    let api = LoadedApi::load(&mut tx, &caller, &api_id).await?;
    let stage = insert(&mut tx, &caller, api.id(), input).await?;
    let published =
        publish::publish_stage(&mut tx, &caller.account_id, api.id(), &stage.stage_name).await?;
    tx.commit().await.map_err(StoreError::from)?;
    state.feed.published_opt(published);
    Ok(reply(StatusCode::CREATED, &stage))
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct ListQuery {
    deployment_id: Option<String>,
}

async fn list(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(api_id): Path<String>,
    Query(query): Query<ListQuery>,
) -> ApiResult<Response> {
    let mut tx = state.store.begin().await?;
    let api = LoadedApi::load(&mut tx, &caller, &api_id).await?;
    let rows = stage_store::list(
        &mut tx,
        &caller.account_id,
        api.id(),
        query.deployment_id.as_deref(),
    )
    .await?;
    let stages = rows.iter().map(from_row).collect::<ApiResult<Vec<_>>>()?;
    // GetStages is not paginated.
    Ok(reply(StatusCode::OK, &list_body(&stages, None)))
}

/// A stage with the API id it belongs to and the row version read.
async fn load(
    tx: &mut Tx,
    caller: &Caller,
    api_id: &str,
    stage_name: &str,
) -> ApiResult<(String, i64, Stage)> {
    let api = LoadedApi::load(tx, caller, api_id).await?;
    let row = stage_store::get(tx, &caller.account_id, api.id(), stage_name)
        .await?
        .ok_or_else(invalid_stage)?;
    Ok((api.id().to_owned(), row.version, from_row(&row)?))
}

async fn fetch(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path((api_id, stage_name)): Path<(String, String)>,
) -> ApiResult<Response> {
    let mut tx = state.store.begin().await?;
    let (_, _, stage) = load(&mut tx, &caller, &api_id, &stage_name).await?;
    Ok(reply(StatusCode::OK, &stage))
}

async fn update(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path((api_id, stage_name)): Path<(String, String)>,
    body: Bytes,
) -> ApiResult<Response> {
    let patch: PatchRequest = json(&body)?;
    let mut tx = state.store.begin().await?;
    let (api_id, version, mut stage) = load(&mut tx, &caller, &api_id, &stage_name).await?;
    for op in &patch.patch_operations {
        apply(&mut stage, op)?;
    }
    require_deployment(&mut tx, &caller, &api_id, &stage.deployment_id).await?;
    if let Some(id) = stage
        .canary_settings
        .as_ref()
        .and_then(|c| c["deploymentId"].as_str())
    {
        require_deployment(&mut tx, &caller, &api_id, id).await?;
    }
    stage.last_updated_date = now_epoch();
    stage_store::update(&mut tx, &to_row(&caller, &api_id, &stage, version)?).await?;
    let published =
        publish::publish_stage(&mut tx, &caller.account_id, &api_id, &stage.stage_name).await?;
    tx.commit().await.map_err(StoreError::from)?;
    state.feed.published_opt(published);
    Ok(reply(StatusCode::OK, &stage))
}

const STAGE_PATHS: [&str; 19] = [
    "/deploymentId",
    "/description",
    "/cacheClusterEnabled",
    "/cacheClusterSize",
    "/clientCertificateId",
    "/accessLogSettings",
    "/accessLogSettings/destinationArn",
    "/accessLogSettings/format",
    "/tracingEnabled",
    "/variables/{name}",
    "/documentationVersion",
    "/canarySettings",
    "/canarySettings/percentTraffic",
    "/canarySettings/deploymentId",
    "/canarySettings/stageVariableOverrides/{name}",
    "/canarySettings/useStageCache",
    "/{resourcePath}/{httpMethod}/metrics/enabled",
    "/{resourcePath}/{httpMethod}/throttling/burstLimit",
    "/{resourcePath}/{httpMethod}/caching/enabled",
];

fn invalid_stage_path(op: &PatchOp) -> ApiError {
    ApiError::bad_request(format!(
        "Invalid method setting path: {}. Must be one of: [{}]",
        op.path,
        STAGE_PATHS.join(", ")
    ))
}

fn apply(stage: &mut Stage, op: &PatchOp) -> ApiResult<()> {
    let segments = op.segments();
    let s: Vec<&str> = segments.iter().map(String::as_str).collect();
    if op.op == Op::Copy {
        return promote_canary(stage, op);
    }
    // Method-setting keys keep the resource path as the patch path spells it
    // (`/~1pets/GET/…` → `~1pets/GET`), as AWS does.
    let raw: Vec<&str> = op.raw_segments().collect();
    match s.as_slice() {
        ["deploymentId"] => stage.deployment_id = op.replacement()?.to_owned(),
        ["description"] => stage.description = op.set_or_remove()?.map(str::to_owned),
        ["cacheClusterEnabled"] => {
            stage.cache_cluster_enabled = op.bool_value()?;
            stage.cache_cluster_status = if stage.cache_cluster_enabled {
                "AVAILABLE"
            } else {
                "NOT_AVAILABLE"
            }
            .into();
            if stage.cache_cluster_enabled && stage.cache_cluster_size.is_none() {
                stage.cache_cluster_size = Some("0.5".into());
            }
        }
        ["cacheClusterSize"] => {
            let size = op.replacement()?;
            check_cache_size(size)?;
            stage.cache_cluster_size = Some(size.to_owned());
        }
        ["clientCertificateId"] => {
            stage.client_certificate_id = op.set_or_remove()?.map(str::to_owned)
        }
        ["documentationVersion"] => {
            stage.documentation_version = op.set_or_remove()?.map(str::to_owned)
        }
        ["tracingEnabled"] => stage.tracing_enabled = op.bool_value()?,
        ["accessLogSettings"] if op.op == Op::Remove => stage.access_log_settings = None,
        ["accessLogSettings", field @ ("destinationArn" | "format")] => {
            let settings = stage.access_log_settings.get_or_insert_with(|| json!({}));
            match op.set_or_remove()? {
                Some(v) => settings[*field] = json!(v),
                None => {
                    if let Some(m) = settings.as_object_mut() {
                        m.remove(*field);
                    }
                }
            }
        }
        ["variables", name] => match op.set_or_remove()? {
            Some(v) => {
                check_variable(name, v)?;
                stage.variables.insert((*name).to_owned(), v.to_owned());
                if stage.variables.len() > 100 {
                    return Err(ApiError::bad_request(
                        "A stage can have at most 100 variables",
                    ));
                }
            }
            None => {
                stage.variables.remove(*name);
            }
        },
        ["canarySettings"] if op.op == Op::Remove => stage.canary_settings = None,
        ["canarySettings", rest @ ..] => patch_canary(stage, rest, op)?,
        [_, _, _, ..] if raw.len() >= 4 => {
            let (resource, rest) = raw.split_at(raw.len() - 3);
            let key = format!("{}/{}", resource.join("/"), rest[0]);
            let entry = stage.method_settings.entry(key).or_default();
            patch_method_setting(entry, rest[1], rest[2], op)?;
        }
        [_, _] if op.op == Op::Remove => {
            stage.method_settings.remove(&raw.join("/"));
        }
        _ => return Err(invalid_stage_path(op)),
    }
    Ok(())
}

fn patch_method_setting(
    setting: &mut MethodSetting,
    group: &str,
    name: &str,
    op: &PatchOp,
) -> ApiResult<()> {
    match (group, name) {
        ("metrics", "enabled") => setting.metrics_enabled = op.bool_value()?,
        ("logging", "dataTrace") => setting.data_trace_enabled = op.bool_value()?,
        ("logging", "loglevel") => {
            let level = op.replacement()?;
            one_of(
                level,
                "updateStageInput.loggingLevel",
                &["OFF", "ERROR", "INFO"],
            )?;
            setting.logging_level = level.to_owned();
        }
        ("throttling", "burstLimit") => {
            let v = op.int_value()?;
            if v < 0 {
                return Err(ApiError::bad_request(
                    "throttling burstLimit must not be negative",
                ));
            }
            setting.throttling_burst_limit = v;
        }
        ("throttling", "rateLimit") => {
            let v = op.float_value()?;
            if v < 0.0 {
                return Err(ApiError::bad_request(
                    "throttling rateLimit must not be negative",
                ));
            }
            setting.throttling_rate_limit = v;
        }
        ("caching", "ttlInSeconds") => {
            let v = op.int_value()?;
            if !(0..=3600).contains(&v) {
                return Err(ApiError::bad_request(
                    "caching ttlInSeconds must be between 0 and 3600",
                ));
            }
            setting.cache_ttl_in_seconds = v;
        }
        ("caching", "enabled") => setting.caching_enabled = op.bool_value()?,
        ("caching", "dataEncrypted") => setting.cache_data_encrypted = op.bool_value()?,
        ("caching", "requireAuthorizationForCacheControl") => {
            setting.require_authorization_for_cache_control = op.bool_value()?
        }
        ("caching", "unauthorizedCacheControlHeaderStrategy") => {
            let v = op.replacement()?;
            one_of(
                v,
                "updateStageInput.unauthorizedCacheControlHeaderStrategy",
                &[
                    "FAIL_WITH_403",
                    "SUCCEED_WITH_RESPONSE_HEADER",
                    "SUCCEED_WITHOUT_RESPONSE_HEADER",
                ],
            )?;
            setting.unauthorized_cache_control_header_strategy = v.to_owned();
        }
        _ => return Err(invalid_stage_path(op)),
    }
    Ok(())
}

fn patch_canary(stage: &mut Stage, path: &[&str], op: &PatchOp) -> ApiResult<()> {
    let canary = stage.canary_settings.get_or_insert_with(|| json!({}));
    match path {
        ["percentTraffic"] => {
            let pct = op.float_value()?;
            if !(0.0..=100.0).contains(&pct) {
                return Err(ApiError::bad_request(
                    "canarySettings percentTraffic must be between 0.0 and 100.0",
                ));
            }
            canary["percentTraffic"] = json!(pct);
        }
        ["deploymentId"] => canary["deploymentId"] = json!(op.replacement()?),
        ["useStageCache"] => canary["useStageCache"] = json!(op.bool_value()?),
        ["stageVariableOverrides", name] => {
            let overrides = canary
                .as_object_mut()
                .map(|c| {
                    c.entry("stageVariableOverrides")
                        .or_insert_with(|| json!({}))
                })
                .ok_or_else(|| ApiError::Internal("canary settings are not an object".into()))?;
            match op.set_or_remove()? {
                Some(v) => {
                    check_variable(name, v)?;
                    overrides[*name] = json!(v);
                }
                None => {
                    if let Some(m) = overrides.as_object_mut() {
                        m.remove(*name);
                    }
                }
            }
        }
        _ => return Err(invalid_stage_path(op)),
    }
    Ok(())
}

/// `copy` promotes a canary: its deployment or its variable overrides move to the stage.
fn promote_canary(stage: &mut Stage, op: &PatchOp) -> ApiResult<()> {
    let no_canary = || ApiError::bad_request("Promotion not available. Canary does not exist.");
    let canary = stage.canary_settings.as_ref().ok_or_else(no_canary)?;
    match (op.from.as_deref(), op.path.as_str()) {
        (Some("/canarySettings/deploymentId"), "/deploymentId") => {
            stage.deployment_id = canary["deploymentId"]
                .as_str()
                .ok_or_else(no_canary)?
                .to_owned();
        }
        (Some("/canarySettings/stageVariableOverrides"), "/variables") => {
            if let Some(overrides) = canary["stageVariableOverrides"].as_object() {
                for (k, v) in overrides {
                    stage
                        .variables
                        .insert(k.clone(), v.as_str().unwrap_or_default().to_owned());
                }
            }
        }
        _ => return Err(no_canary()),
    }
    Ok(())
}

async fn delete(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path((api_id, stage_name)): Path<(String, String)>,
) -> ApiResult<Response> {
    let mut tx = state.store.begin().await?;
    let (api_id, _, _) = load(&mut tx, &caller, &api_id, &stage_name).await?;
    stage_store::delete(&mut tx, &caller.account_id, &api_id, &stage_name).await?;
    let published =
        publish::retract_stage(&mut tx, &caller.account_id, &api_id, &stage_name).await?;
    tx.commit().await.map_err(StoreError::from)?;
    state.feed.published_opt(published);
    Ok(no_content(StatusCode::ACCEPTED))
}

/// FlushStageAuthorizersCache: every node serving the stage drops its
/// Lambda authorizer answers (see `publish::flush_stage_authorizers`).
async fn flush_authorizers(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path((api_id, stage_name)): Path<(String, String)>,
) -> ApiResult<Response> {
    let mut tx = state.store.begin().await?;
    let (api_id, _, _) = load(&mut tx, &caller, &api_id, &stage_name).await?;
    let published =
        publish::flush_stage_authorizers(&mut tx, &caller.account_id, &api_id, &stage_name).await?;
    tx.commit().await.map_err(StoreError::from)?;
    state.feed.published_opt(published);
    Ok(no_content(StatusCode::ACCEPTED))
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

    #[test]
    fn method_settings_keys_follow_aws() {
        let mut stage = Stage::default();
        apply(
            &mut stage,
            &op(Op::Replace, "/*/*/throttling/burstLimit", Some("123")),
        )
        .unwrap();
        apply(
            &mut stage,
            &op(Op::Replace, "/*/*/caching/enabled", Some("true")),
        )
        .unwrap();
        apply(
            &mut stage,
            &op(
                Op::Replace,
                "/~1test/GET/throttling/burstLimit",
                Some("124"),
            ),
        )
        .unwrap();
        apply(
            &mut stage,
            &op(
                Op::Replace,
                "/~1pets~1{id}/GET/throttling/rateLimit",
                Some("5"),
            ),
        )
        .unwrap();
        apply(
            &mut stage,
            &op(Op::Replace, "/test/GET/throttling/rateLimit", Some("6")),
        )
        .unwrap();
        let all = &stage.method_settings["*/*"];
        assert_eq!(all.throttling_burst_limit, 123);
        assert!(all.caching_enabled);
        assert_eq!(all.throttling_rate_limit, 10000.0);
        assert_eq!(
            stage.method_settings["~1test/GET"].throttling_burst_limit,
            124
        );
        assert_eq!(
            stage.method_settings["~1pets~1{id}/GET"].throttling_rate_limit,
            5.0
        );
        assert_eq!(stage.method_settings["test/GET"].throttling_rate_limit, 6.0);
        apply(&mut stage, &op(Op::Remove, "/*/*", None)).unwrap();
        assert!(!stage.method_settings.contains_key("*/*"));
    }

    #[test]
    fn unknown_paths_and_values_are_refused() {
        let mut stage = Stage::default();
        let e = apply(
            &mut stage,
            &op(Op::Replace, "/documentation_version", Some("1")),
        )
        .unwrap_err();
        assert!(e.to_string().starts_with(
            "Invalid method setting path: /documentation_version. Must be one of: [/deploymentId"
        ));
        assert!(
            apply(
                &mut stage,
                &op(Op::Replace, "/*/*/throttling/burstLimit", Some("x"))
            )
            .is_err()
        );
        assert!(
            apply(
                &mut stage,
                &op(Op::Replace, "/variables/bad name", Some("v"))
            )
            .is_err()
        );
        assert!(
            apply(
                &mut stage,
                &op(Op::Replace, "/variables/ok", Some("has space"))
            )
            .is_err()
        );
        assert!(apply(&mut stage, &op(Op::Copy, "/deploymentId", None)).is_err());
    }

    #[test]
    fn stage_names() {
        assert!(check_stage_name("prod_1-a").is_ok());
        assert!(check_stage_name("").is_err());
        assert!(check_stage_name("a b").is_err());
        assert!(check_stage_name(&"a".repeat(129)).is_err());
    }
}
