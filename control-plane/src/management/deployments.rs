//! CreateDeployment, GetDeployment(s), UpdateDeployment, DeleteDeployment.
//! A deployment is compiled into an immutable snapshot when it is created.

use std::collections::BTreeMap;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Extension, Path, Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::get;
use serde::Deserialize;

use super::auth::Caller;
use super::input::{Paging, PatchRequest, json, list_body, page};
use super::stages::{self, NewStage};
use super::{AppState, LoadedApi, ids, no_content, reply};
use crate::error::{ApiError, ApiResult};
use crate::model::Deployment;
use crate::snapshot;
use crate::store::deployments::{self, DeploymentRow};
use crate::store::{StoreError, Tx, now_epoch};

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/restapis/{restapi_id}/deployments", get(list).post(create))
        .route(
            "/restapis/{restapi_id}/deployments/{deployment_id}",
            get(fetch).patch(update).delete(delete),
        )
}

pub(crate) fn invalid_deployment() -> ApiError {
    ApiError::not_found("Invalid Deployment identifier specified")
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct CreateInput {
    stage_name: Option<String>,
    stage_description: Option<String>,
    description: Option<String>,
    #[serde(default)]
    cache_cluster_enabled: bool,
    cache_cluster_size: Option<String>,
    #[serde(default)]
    variables: BTreeMap<String, String>,
    canary_settings: Option<serde_json::Value>,
    #[serde(default)]
    tracing_enabled: bool,
}

async fn create(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(api_id): Path<String>,
    body: Bytes,
) -> ApiResult<Response> {
    let input: CreateInput = json(&body)?;
    let mut tx = state.store.begin().await?;
    let api = LoadedApi::load(&mut tx, &caller, &api_id).await?;
    let id = ids::short();
    let created = now_epoch();
    let compiled = snapshot::compile(&caller.account_id, &api.doc, &id, created)
        .map_err(|e| ApiError::bad_request(e.to_string()))?;
    let deployment = Deployment {
        id: id.clone(),
        description: input.description,
        created_date: created,
        api_summary: None,
    };
    let row = DeploymentRow {
        api_id: api.id().to_owned(),
        deployment_id: id.clone(),
        account_id: caller.account_id.clone(),
        created_at: created,
        doc: serde_json::to_string(&deployment).map_err(StoreError::from)?,
        snapshot: serde_json::to_string(&compiled).map_err(StoreError::from)?,
    };
    deployments::insert(&mut tx, &row).await?;
    let mut published = None;
    if let Some(stage_name) = input.stage_name.filter(|s| !s.is_empty()) {
        let stage = NewStage {
            stage_name,
            deployment_id: id,
            description: input.stage_description,
            cache_cluster_enabled: input.cache_cluster_enabled,
            cache_cluster_size: input.cache_cluster_size,
            variables: input.variables,
            canary_settings: input.canary_settings,
            tracing_enabled: input.tracing_enabled,
            ..Default::default()
        };
        published = stages::create_or_point(&mut tx, &caller, api.id(), stage).await?;
    }
    tx.commit().await.map_err(StoreError::from)?;
    state.feed.published_opt(published);
    Ok(reply(StatusCode::CREATED, &deployment))
}

#[derive(Debug, Default, Deserialize)]
struct EmbedQuery {
    embed: Option<String>,
}

async fn load(
    tx: &mut Tx,
    caller: &Caller,
    api_id: &str,
    deployment_id: &str,
) -> ApiResult<DeploymentRow> {
    let api = LoadedApi::load(tx, caller, api_id).await?;
    deployments::get(tx, &caller.account_id, api.id(), deployment_id)
        .await?
        .ok_or_else(invalid_deployment)
}

fn view(row: &DeploymentRow, with_summary: bool) -> ApiResult<Deployment> {
    let mut deployment: Deployment = serde_json::from_str(&row.doc).map_err(StoreError::from)?;
    if with_summary {
        let compiled = serde_json::from_str(&row.snapshot).map_err(StoreError::from)?;
        deployment.api_summary = Some(snapshot::api_summary(&compiled));
    }
    Ok(deployment)
}

async fn fetch(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path((api_id, deployment_id)): Path<(String, String)>,
    Query(query): Query<EmbedQuery>,
) -> ApiResult<Response> {
    let mut tx = state.store.begin().await?;
    let row = load(&mut tx, &caller, &api_id, &deployment_id).await?;
    let with_summary = query
        .embed
        .as_deref()
        .is_some_and(|e| e.split(',').any(|p| p.trim() == "apisummary"));
    Ok(reply(StatusCode::OK, &view(&row, with_summary)?))
}

async fn list(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(api_id): Path<String>,
    Query(paging): Query<Paging>,
) -> ApiResult<Response> {
    let mut tx = state.store.begin().await?;
    let api = LoadedApi::load(&mut tx, &caller, &api_id).await?;
    let rows = deployments::list(&mut tx, &caller.account_id, api.id()).await?;
    let all = rows
        .iter()
        .map(|r| view(r, false))
        .collect::<ApiResult<Vec<_>>>()?;
    let (items, position) = page(all, |d| d.id.as_str(), &paging)?;
    Ok(reply(StatusCode::OK, &list_body(&items, position)))
}

async fn update(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path((api_id, deployment_id)): Path<(String, String)>,
    body: Bytes,
) -> ApiResult<Response> {
    let patch: PatchRequest = json(&body)?;
    let mut tx = state.store.begin().await?;
    let row = load(&mut tx, &caller, &api_id, &deployment_id).await?;
    let mut deployment = view(&row, false)?;
    for op in &patch.patch_operations {
        match op.path.as_str() {
            "/description" => deployment.description = op.set_or_remove()?.map(str::to_owned),
            _ => return Err(op.invalid_path(&["/description"])),
        }
    }
    let doc = serde_json::to_string(&deployment).map_err(StoreError::from)?;
    deployments::update_doc(
        &mut tx,
        &caller.account_id,
        &row.api_id,
        &row.deployment_id,
        &doc,
    )
    .await?;
    tx.commit().await.map_err(StoreError::from)?;
    Ok(reply(StatusCode::OK, &deployment))
}

async fn delete(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path((api_id, deployment_id)): Path<(String, String)>,
) -> ApiResult<Response> {
    let mut tx = state.store.begin().await?;
    let row = load(&mut tx, &caller, &api_id, &deployment_id).await?;
    let users = crate::store::stages::list(
        &mut tx,
        &caller.account_id,
        &row.api_id,
        Some(&row.deployment_id),
    )
    .await?;
    if !users.is_empty() {
        return Err(ApiError::bad_request(
            "Active stages pointing to this deployment must be moved or deleted",
        ));
    }
    deployments::delete(&mut tx, &caller.account_id, &row.api_id, &row.deployment_id).await?;
    tx.commit().await.map_err(StoreError::from)?;
    Ok(no_content(StatusCode::ACCEPTED))
}
