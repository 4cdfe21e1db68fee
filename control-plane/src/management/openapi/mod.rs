//! OpenAPI import and export: ImportRestApi (`POST /restapis?mode=import`),
//! PutRestApi (`PUT /restapis/{id}?mode=overwrite|merge`) and GetExport
//! (`GET /restapis/{id}/stages/{stage}/exports/{oas30|swagger}`).
//!
//! A document is read and checked completely before the store is touched;
//! the change is then one transaction on the API's aggregate.

pub mod document;
pub mod export;
pub mod import;

use std::collections::HashMap;

use axum::Router;
use axum::extract::{Extension, Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;

use super::auth::Caller;
use super::{AppState, LoadedApi, ids, reply};
use crate::error::{ApiError, ApiResult};
use crate::model::{EndpointConfiguration, Resource, RestApi, RestApiDoc};
use crate::store::rest_apis::{self as api_store, RestApiRow};
use crate::store::{StoreError, now_epoch};
use import::{ImportOptions, Mode};

pub fn routes() -> Router<AppState> {
    Router::new().route(
        "/restapis/{restapi_id}/stages/{stage_name}/exports/{export_type}",
        get(get_export),
    )
}

/// AWS limits imported documents to 6 MB.
const MAX_DOCUMENT_BYTES: usize = 6 * 1024 * 1024;

fn flag(query: &HashMap<String, String>, name: &str) -> ApiResult<bool> {
    match query.get(name).map(|v| v.to_ascii_lowercase()).as_deref() {
        None | Some("false") => Ok(false),
        Some("true") => Ok(true),
        Some(other) => Err(ApiError::bad_request(format!(
            "Invalid value for {name}: '{other}' (expected true or false)"
        ))),
    }
}

fn options(query: &HashMap<String, String>) -> ApiResult<ImportOptions> {
    let prepend_base_path = match query.get("basepath").map(String::as_str) {
        None | Some("ignore") | Some("split") => false,
        Some("prepend") => true,
        Some(other) => {
            return Err(ApiError::bad_request(format!(
                "Invalid basepath '{other}': expected ignore, prepend or split"
            )));
        }
    };
    let ignore_documentation = match query.get("ignore").map(String::as_str) {
        None => false,
        Some("documentation") => true,
        Some(other) => {
            return Err(ApiError::bad_request(format!(
                "Invalid ignore '{other}': only 'documentation' can be ignored"
            )));
        }
    };
    Ok(ImportOptions {
        prepend_base_path,
        ignore_documentation,
    })
}

/// Reads the document, honouring `failonwarnings`.
fn read_document(
    body: &[u8],
    api_id: &str,
    query: &HashMap<String, String>,
) -> ApiResult<import::Imported> {
    if body.len() > MAX_DOCUMENT_BYTES {
        return Err(ApiError::bad_request(
            "Invalid OpenAPI input. The document is larger than the 6 MB API Gateway imports",
        ));
    }
    let fail_on_warnings = flag(query, "failonwarnings")?;
    let options = options(query)?;
    let imported = import::read(body, api_id, &options)
        .map_err(|problems| ApiError::bad_request(import::errors_message(&problems)))?;
    if fail_on_warnings && !imported.warnings.is_empty() {
        let mut message = String::from(
            "Invalid OpenAPI input. Warnings found during import (failonwarnings=true):",
        );
        for w in &imported.warnings {
            message.push_str(&format!("\n\t{w}"));
        }
        return Err(ApiError::bad_request(message));
    }
    Ok(imported)
}

/// `RestApi` with the import's `warnings`.
fn with_warnings(api: &RestApi, warnings: &[document::Problem]) -> serde_json::Value {
    let mut out = serde_json::to_value(api).unwrap_or_default();
    if !warnings.is_empty() {
        out["warnings"] = serde_json::json!(import::warning_lines(warnings));
    }
    out
}

/// ImportRestApi.
pub(crate) async fn import_rest_api(
    state: &AppState,
    caller: &Caller,
    query: &HashMap<String, String>,
    body: &[u8],
) -> ApiResult<Response> {
    let api_id = ids::rest_api();
    let imported = read_document(body, &api_id, query)?;
    let warnings = imported.warnings.clone();
    let endpoint_type = query
        .get("endpointConfigurationTypes")
        .cloned()
        .unwrap_or_else(|| "EDGE".into());
    super::input::one_of(
        &endpoint_type,
        "importRestApiInput.parameters.endpointConfigurationTypes",
        &["EDGE", "REGIONAL", "PRIVATE"],
    )?;
    let root_id = ids::resource();
    let mut doc = RestApiDoc {
        api: RestApi {
            id: api_id.clone(),
            created_date: now_epoch(),
            api_key_source: "HEADER".into(),
            endpoint_configuration: EndpointConfiguration {
                types: vec![endpoint_type],
                ..Default::default()
            },
            root_resource_id: root_id.clone(),
            ..Default::default()
        },
        models: super::models::default_models(),
        ..Default::default()
    };
    doc.resources.insert(
        root_id.clone(),
        Resource {
            id: root_id,
            ..Default::default()
        },
    );
    import::apply(&mut doc, imported, Mode::Import)?;
    let mut tx = state.store.begin().await?;
    let row = RestApiRow {
        api_id,
        account_id: caller.account_id.clone(),
        created_at: doc.api.created_date,
        version: 1,
        doc: serde_json::to_string(&doc).map_err(StoreError::from)?,
    };
    api_store::insert(&mut tx, &row).await?;
    tx.commit().await.map_err(StoreError::from)?;
    Ok(reply(
        StatusCode::CREATED,
        &with_warnings(&doc.api, &warnings),
    ))
}

/// PutRestApi: `mode=merge` (the default) or `overwrite`.
pub(crate) async fn put_rest_api(
    state: &AppState,
    caller: &Caller,
    api_id: &str,
    query: &HashMap<String, String>,
    body: &[u8],
) -> ApiResult<Response> {
    let mode = match query.get("mode").map(String::as_str) {
        None | Some("merge") => Mode::Merge,
        Some("overwrite") => Mode::Overwrite,
        Some(other) => {
            return Err(ApiError::bad_request(format!(
                "Invalid mode '{other}': expected merge or overwrite"
            )));
        }
    };
    let mut tx = state.store.begin().await?;
    let mut api = LoadedApi::load(&mut tx, caller, api_id).await?;
    let imported = read_document(body, api.id(), query)?;
    let warnings = imported.warnings.clone();
    import::apply(&mut api.doc, imported, mode)?;
    api.save(&mut tx).await?;
    tx.commit().await.map_err(StoreError::from)?;
    // Stages serve deployments: the change reaches them with the next deployment.
    Ok(reply(
        StatusCode::OK,
        &with_warnings(&api.doc.api, &warnings),
    ))
}

/// GetExport. The document describes the API as it is now, for the stage's
/// URL (deployments keep only the compiled form).
async fn get_export(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path((api_id, stage_name, export_type)): Path<(String, String, String)>,
    Query(query): Query<HashMap<String, String>>,
    headers: HeaderMap,
) -> ApiResult<Response> {
    let format = match export_type.as_str() {
        "oas30" => export::Format::Oas30,
        "swagger" => export::Format::Swagger2,
        other => {
            return Err(ApiError::bad_request(format!(
                "Invalid export type '{other}': expected oas30 or swagger"
            )));
        }
    };
    let extensions = export::Extensions::parse(query.get("extensions").map(String::as_str))
        .map_err(ApiError::bad_request)?;
    let accept = headers
        .get("accept")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("application/json")
        .to_ascii_lowercase();
    let yaml = accept.contains("yaml");
    if !yaml && !accept.contains("json") && !accept.contains("*/*") && !accept.is_empty() {
        return Err(ApiError::bad_request(format!(
            "Invalid Accept '{accept}': expected application/json or application/yaml"
        )));
    }
    let mut tx = state.store.begin().await?;
    let api = LoadedApi::load(&mut tx, &caller, &api_id).await?;
    let stage = crate::store::stages::get(&mut tx, &caller.account_id, api.id(), &stage_name)
        .await?
        .ok_or_else(super::stages::invalid_stage)?;
    // AWS exports what the stage serves: its deployment, not later edits.
    let deployment =
        crate::store::deployments::get(&mut tx, &caller.account_id, api.id(), &stage.deployment_id)
            .await?
            .ok_or_else(|| {
                ApiError::Internal(format!(
                    "stage {stage_name} names missing deployment {}",
                    stage.deployment_id
                ))
            })?;
    let snapshot: apigw_proto::snapshot::DeploymentSnapshot =
        serde_json::from_str(&deployment.snapshot).map_err(StoreError::from)?;
    let deployed = crate::snapshot::deployed_doc(&api.doc, &snapshot)
        .map_err(|e| ApiError::Internal(format!("cannot read deployment: {e}")))?;
    let value = export::export(
        &deployed,
        format,
        extensions,
        &export::Target {
            region: &caller.region,
            stage: &stage_name,
        },
    );
    let (body, content_type, extension) = if yaml {
        (export::to_yaml(&value), "application/yaml", "yaml")
    } else {
        (
            serde_json::to_string_pretty(&value).map_err(StoreError::from)?,
            "application/json",
            "json",
        )
    };
    let disposition = format!(
        "attachment; filename=\"{export_type}_{}.{extension}\"",
        api.doc.api.id
    );
    let mut response = (StatusCode::OK, body).into_response();
    let h = response.headers_mut();
    h.insert("content-type", HeaderValue::from_static(content_type));
    if let Ok(v) = HeaderValue::from_str(&disposition) {
        h.insert("content-disposition", v);
    }
    Ok(response)
}
