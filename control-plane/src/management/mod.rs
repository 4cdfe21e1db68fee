//! The AWS-compatible management API (`apigateway` v1, rest-json), one module
//! per resource family. Requests pass SigV4 authentication, then each handler
//! runs in one transaction; errors become AWS's shape in [`crate::error`].

mod api_keys;
pub mod auth;
mod authorizers;
mod deployments;
mod gateway_responses;
mod ids;
pub mod input;
mod integrations;
pub mod lambda;
mod methods;
mod models;
mod openapi;
#[cfg(test)]
mod publish_tests;
mod request_validators;
pub(crate) mod resource_policy;
mod resources;
mod rest_apis;
mod stages;
mod tags;
mod test_invoke_authorizer;
mod usage_plans;

use std::sync::Arc;

use axum::Router;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde::Serialize;

use crate::config::ManagementConfig;
use crate::error::{ApiError, ApiResult};
use crate::feed::ConfigFeed;
use crate::model::RestApiDoc;
use crate::store::rest_apis::{self as api_store, RestApiRow};
use crate::store::{Store, Tx};
use crate::tenancy::Tenancy;
use auth::Caller;

#[derive(Clone)]
pub struct AppState {
    pub store: Store,
    pub tenancy: Tenancy,
    pub config: Arc<ManagementConfig>,
    /// Woken after a commit that published configuration for data-plane nodes.
    pub feed: ConfigFeed,
    /// Usage counters, the usage clock and management throttling.
    pub usage: crate::usage::UsageState,
}

pub fn router(state: AppState) -> Router {
    let authenticated = Router::new()
        .merge(rest_apis::routes())
        .merge(resources::routes())
        .merge(methods::routes())
        .merge(integrations::routes())
        .merge(deployments::routes())
        .merge(stages::routes())
        .merge(gateway_responses::routes())
        .merge(models::routes())
        .merge(request_validators::routes())
        .merge(tags::routes())
        .merge(lambda::routes())
        .merge(openapi::routes())
        .merge(authorizers::routes())
        .merge(api_keys::routes())
        .merge(usage_plans::routes())
        .fallback(unknown_operation)
        .method_not_allowed_fallback(unknown_operation)
        // Inside `authenticate`: it needs the caller's tenant.
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            crate::usage::throttle_management,
        ))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            auth::authenticate,
        ))
        // Bodies are bounded in `auth`; axum's own default limit would cut imports short.
        .layer(axum::extract::DefaultBodyLimit::disable())
        .with_state(state);
    Router::new()
        .route("/healthz", get(|| async { "ok" }))
        .merge(authenticated)
        .layer(axum::middleware::map_response(with_request_id))
}

/// Every answer carries `x-amzn-RequestId`, which SDKs report as `RequestId`.
async fn with_request_id(mut response: Response) -> Response {
    if let Ok(id) = axum::http::HeaderValue::from_str(&uuid::Uuid::new_v4().to_string()) {
        response.headers_mut().insert("x-amzn-requestid", id);
    }
    response
}

async fn unknown_operation() -> ApiError {
    ApiError::UnknownOperation("The requested operation is not recognized by this service.".into())
}

/// A JSON answer with a status.
pub(crate) fn reply<T: Serialize>(status: StatusCode, body: &T) -> Response {
    (
        status,
        [("content-type", "application/json")],
        serde_json::to_string(body).unwrap_or_default(),
    )
        .into_response()
}

pub(crate) fn no_content(status: StatusCode) -> Response {
    status.into_response()
}

pub(crate) fn invalid_api(caller: &Caller, api_id: &str) -> ApiError {
    ApiError::not_found(format!(
        "Invalid API identifier specified {}:{}",
        caller.account_id, api_id
    ))
}

/// A REST API aggregate read inside a transaction, to be changed and saved.
pub(crate) struct LoadedApi {
    row: RestApiRow,
    pub doc: RestApiDoc,
}

impl LoadedApi {
    pub async fn load(tx: &mut Tx, caller: &Caller, api_id: &str) -> ApiResult<Self> {
        let api_id = api_id.to_ascii_lowercase();
        let row = api_store::get(tx, &caller.account_id, &api_id)
            .await?
            .ok_or_else(|| invalid_api(caller, &api_id))?;
        let doc = serde_json::from_str(&row.doc)
            .map_err(|e| ApiError::Internal(format!("corrupt API {api_id}: {e}")))?;
        Ok(Self { row, doc })
    }

    pub fn id(&self) -> &str {
        &self.row.api_id
    }

    pub async fn save(&self, tx: &mut Tx) -> ApiResult<()> {
        let doc =
            serde_json::to_string(&self.doc).map_err(|e| ApiError::Internal(e.to_string()))?;
        api_store::update(
            tx,
            &self.row.account_id,
            &self.row.api_id,
            self.row.version,
            &doc,
        )
        .await?;
        Ok(())
    }
}

/// Runs `change` on an API's aggregate and saves it, all in one transaction.
pub(crate) async fn modify_api<R>(
    state: &AppState,
    caller: &Caller,
    api_id: &str,
    change: impl FnOnce(&mut RestApiDoc) -> ApiResult<R>,
) -> ApiResult<R> {
    let mut tx = state.store.begin().await?;
    let mut api = LoadedApi::load(&mut tx, caller, api_id).await?;
    let out = change(&mut api.doc)?;
    api.save(&mut tx).await?;
    tx.commit().await.map_err(crate::store::StoreError::from)?;
    Ok(out)
}

/// Reads an API's aggregate.
pub(crate) async fn read_api<R>(
    state: &AppState,
    caller: &Caller,
    api_id: &str,
    read: impl FnOnce(&RestApiDoc) -> ApiResult<R>,
) -> ApiResult<R> {
    let mut tx = state.store.begin().await?;
    let api = LoadedApi::load(&mut tx, caller, api_id).await?;
    read(&api.doc)
}
