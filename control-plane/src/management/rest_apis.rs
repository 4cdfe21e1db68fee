//! CreateRestApi, GetRestApi(s), UpdateRestApi, DeleteRestApi.

use std::collections::BTreeMap;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Extension, Path, Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::get;
use serde::Deserialize;

use super::auth::Caller;
use super::input::{self, Op, Paging, PatchRequest, json, list_body, one_of, page};
use super::{AppState, LoadedApi, ids, invalid_api, no_content, read_api, reply};
use crate::error::{ApiError, ApiResult};
use crate::model::{EndpointConfiguration, Resource, RestApi, RestApiDoc, Tags};
use crate::publish;
use crate::store::rest_apis::{self, RestApiRow};
use crate::store::{StoreError, now_epoch};

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/restapis", get(list).post(create))
        .route(
            "/restapis/{restapi_id}",
            get(fetch).patch(update).delete(delete).put(put_rest_api),
        )
}

pub const MAX_COMPRESSION_SIZE: i64 = 10_485_760;
const ENDPOINT_TYPES: [&str; 3] = ["EDGE", "REGIONAL", "PRIVATE"];
pub(crate) const API_KEY_SOURCES: [&str; 2] = ["HEADER", "AUTHORIZER"];

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct CreateInput {
    name: Option<String>,
    description: Option<String>,
    version: Option<String>,
    clone_from: Option<String>,
    #[serde(default)]
    binary_media_types: Vec<String>,
    minimum_compression_size: Option<i64>,
    api_key_source: Option<String>,
    endpoint_configuration: Option<EndpointConfiguration>,
    policy: Option<String>,
    #[serde(default)]
    tags: Tags,
    #[serde(default)]
    disable_execute_api_endpoint: bool,
}

async fn create(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Query(query): Query<std::collections::HashMap<String, String>>,
    body: Bytes,
) -> ApiResult<Response> {
    match query.get("mode").map(String::as_str) {
        None => {}
        Some("import") => {
            return super::openapi::import_rest_api(&state, &caller, &query, &body).await;
        }
        Some(other) => {
            return Err(ApiError::bad_request(format!(
                "Invalid mode '{other}': ImportRestApi takes mode=import"
            )));
        }
    }
    let input: CreateInput = json(&body)?;
    let name = input.name.filter(|n| !n.trim().is_empty()).ok_or_else(|| {
        ApiError::bad_request(
            "Invalid REST API name specified: 'name' is required and must not be empty",
        )
    })?;
    if let Some(size) = input.minimum_compression_size {
        check_compression_size(size)?;
    }
    let api_key_source = input.api_key_source.unwrap_or_else(|| "HEADER".into());
    one_of(
        &api_key_source,
        "createRestApiInput.apiKeySource",
        &API_KEY_SOURCES,
    )?;
    let mut endpoint = input.endpoint_configuration.unwrap_or_default();
    if endpoint.types.is_empty() {
        endpoint.types.push("EDGE".into());
    }
    check_endpoint_types(&endpoint.types)?;
    check_tags(&input.tags)?;
    if let Some(policy) = input.policy.as_deref().filter(|p| !p.is_empty()) {
        super::resource_policy::check(policy)?;
    }

    let mut tx = state.store.begin().await?;
    let id = ids::rest_api();
    let root_id = ids::resource();
    let api = RestApi {
        id: id.clone(),
        name,
        description: input.description,
        created_date: now_epoch(),
        version: input.version,
        binary_media_types: input.binary_media_types,
        minimum_compression_size: input.minimum_compression_size,
        api_key_source,
        endpoint_configuration: endpoint,
        policy: input.policy,
        tags: input.tags,
        disable_execute_api_endpoint: input.disable_execute_api_endpoint,
        root_resource_id: root_id.clone(),
    };
    let mut doc = RestApiDoc {
        api,
        ..Default::default()
    };
    match input.clone_from {
        Some(source) => {
            let source = LoadedApi::load(&mut tx, &caller, &source).await?;
            clone_tree(&source.doc, &mut doc);
        }
        None => {
            doc.resources.insert(
                root_id.clone(),
                Resource {
                    id: root_id,
                    ..Default::default()
                },
            );
            doc.models = super::models::default_models();
        }
    }
    let row = RestApiRow {
        api_id: id,
        account_id: caller.account_id.clone(),
        created_at: doc.api.created_date,
        version: 1,
        doc: serde_json::to_string(&doc).map_err(StoreError::from)?,
    };
    rest_apis::insert(&mut tx, &row).await?;
    tx.commit().await.map_err(StoreError::from)?;
    Ok(reply(StatusCode::CREATED, &doc.api))
}

/// Copies another API's resources, models, validators and gateway responses
/// under fresh ids (CreateRestApi's `cloneFrom`).
fn clone_tree(source: &RestApiDoc, target: &mut RestApiDoc) {
    let mut new_ids: BTreeMap<&str, String> = source
        .resources
        .keys()
        .map(|k| (k.as_str(), ids::resource()))
        .collect();
    new_ids.insert(
        source.api.root_resource_id.as_str(),
        target.api.root_resource_id.clone(),
    );
    for resource in source.resources.values() {
        let mut copy = resource.clone();
        copy.id = new_ids[resource.id.as_str()].clone();
        copy.parent_id = resource.parent_id.as_deref().map(|p| new_ids[p].clone());
        target.resources.insert(copy.id.clone(), copy);
    }
    target.models = source.models.clone();
    target.request_validators = source.request_validators.clone();
    target.gateway_responses = source.gateway_responses.clone();
}

async fn list(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Query(paging): Query<Paging>,
) -> ApiResult<Response> {
    let mut tx = state.store.begin().await?;
    let rows = rest_apis::list(&mut tx, &caller.account_id).await?;
    let apis = rows
        .iter()
        .map(|r| serde_json::from_str::<RestApiDoc>(&r.doc).map(|d| d.api))
        .collect::<Result<Vec<_>, _>>()
        .map_err(StoreError::from)?;
    let (items, position) = page(apis, |a| a.id.as_str(), &paging)?;
    Ok(reply(StatusCode::OK, &list_body(&items, position)))
}

async fn fetch(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(api_id): Path<String>,
) -> ApiResult<Response> {
    let api = read_api(&state, &caller, &api_id, |doc| Ok(doc.api.clone())).await?;
    Ok(reply(StatusCode::OK, &api))
}

async fn update(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(api_id): Path<String>,
    body: Bytes,
) -> ApiResult<Response> {
    let patch: PatchRequest = json(&body)?;
    let mut tx = state.store.begin().await?;
    let mut api = LoadedApi::load(&mut tx, &caller, &api_id).await?;
    let endpoint_types = api.doc.api.endpoint_configuration.types.clone();
    for op in &patch.patch_operations {
        apply(&mut api.doc.api, op)?;
    }
    api.save(&mut tx).await?;
    // The endpoint type decides which data-plane nodes serve the stages; the
    // rest of the API's settings reach them with the next deployment.
    let published = if api.doc.api.endpoint_configuration.types == endpoint_types {
        None
    } else {
        publish::publish_api_stages(&mut tx, &caller.account_id, api.id()).await?
    };
    tx.commit().await.map_err(StoreError::from)?;
    state.feed.published_opt(published);
    Ok(reply(StatusCode::OK, &api.doc.api))
}

const PATCH_PATHS: [&str; 9] = [
    "/name",
    "/description",
    "/version",
    "/apiKeySource",
    "/policy",
    "/minimumCompressionSize",
    "/binaryMediaTypes/{type}",
    "/endpointConfiguration/types/{type}",
    "/disableExecuteApiEndpoint",
];

fn apply(api: &mut RestApi, op: &input::PatchOp) -> ApiResult<()> {
    let segments = op.segments();
    let segments: Vec<&str> = segments.iter().map(String::as_str).collect();
    match segments.as_slice() {
        ["name"] => {
            let name = op.replacement()?;
            if name.trim().is_empty() {
                return Err(ApiError::bad_request(
                    "Invalid REST API name specified: must not be empty",
                ));
            }
            api.name = name.to_owned();
        }
        ["description"] => api.description = op.set_or_remove()?.map(str::to_owned),
        ["version"] => api.version = op.set_or_remove()?.map(str::to_owned),
        ["policy"] => {
            api.policy = op
                .set_or_remove()?
                .filter(|p| !p.is_empty())
                .map(str::to_owned);
            if let Some(policy) = &api.policy {
                super::resource_policy::check(policy)?;
            }
        }
        ["apiKeySource"] => {
            let source = op.replacement()?;
            one_of(source, "updateRestApiInput.apiKeySource", &API_KEY_SOURCES)?;
            api.api_key_source = source.to_owned();
        }
        ["minimumCompressionSize"] => {
            if op.op != Op::Replace {
                return Err(op.invalid_op(&["replace"]));
            }
            api.minimum_compression_size = match op.value.as_deref() {
                None | Some("") => None,
                Some(_) => {
                    let size = op.int_value().map_err(|_| compression_size_error())?;
                    check_compression_size(size)?;
                    Some(size)
                }
            };
        }
        ["binaryMediaTypes", media_type] => match op.op {
            Op::Add => {
                if !api.binary_media_types.iter().any(|t| t == media_type) {
                    api.binary_media_types.push((*media_type).to_owned());
                }
            }
            Op::Remove => api.binary_media_types.retain(|t| t != media_type),
            _ => return Err(op.invalid_op(&["add", "remove"])),
        },
        ["endpointConfiguration", "types", old] => {
            if op.op != Op::Replace {
                return Err(op.invalid_op(&["replace"]));
            }
            if !api.endpoint_configuration.types.iter().any(|t| t == old) {
                return Err(ApiError::bad_request(format!(
                    "Invalid endpoint configuration type '{old}': the API's type is {}",
                    api.endpoint_configuration.types.join(", ")
                )));
            }
            let new = op.value()?;
            one_of(
                new,
                "updateRestApiInput.endpointConfiguration.types",
                &ENDPOINT_TYPES,
            )?;
            api.endpoint_configuration.types = vec![new.to_owned()];
        }
        ["disableExecuteApiEndpoint"] => api.disable_execute_api_endpoint = op.bool_value()?,
        _ => return Err(op.invalid_path(&PATCH_PATHS)),
    }
    Ok(())
}

async fn delete(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(api_id): Path<String>,
) -> ApiResult<Response> {
    let api_id = api_id.to_ascii_lowercase();
    let mut tx = state.store.begin().await?;
    if !rest_apis::delete(&mut tx, &caller.account_id, &api_id).await? {
        return Err(invalid_api(&caller, &api_id));
    }
    // After the rows are gone (it reads only config_resources): taking the
    // config version lock last, like every other writer, avoids lock-order
    // deadlocks with a concurrent stage update.
    let published = publish::retract_api(&mut tx, &caller.account_id, &api_id).await?;
    tx.commit().await.map_err(StoreError::from)?;
    state.feed.published_opt(published);
    Ok(no_content(StatusCode::ACCEPTED))
}

async fn put_rest_api(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(api_id): Path<String>,
    Query(query): Query<std::collections::HashMap<String, String>>,
    body: Bytes,
) -> ApiResult<Response> {
    super::openapi::put_rest_api(&state, &caller, &api_id, &query, &body).await
}

fn compression_size_error() -> ApiError {
    ApiError::bad_request(format!(
        "Invalid minimum compression size, must be between 0 and {MAX_COMPRESSION_SIZE}"
    ))
}

pub(crate) fn check_compression_size(size: i64) -> ApiResult<()> {
    if (0..=MAX_COMPRESSION_SIZE).contains(&size) {
        Ok(())
    } else {
        Err(compression_size_error())
    }
}

fn check_endpoint_types(types: &[String]) -> ApiResult<()> {
    if types.len() > 1 {
        return Err(ApiError::bad_request(
            "Cannot create an api with multiple Endpoint Types.",
        ));
    }
    for t in types {
        one_of(
            t,
            "createRestApiInput.endpointConfiguration.types",
            &ENDPOINT_TYPES,
        )?;
    }
    Ok(())
}

/// AWS's tag rules: keys 1–128 characters, values at most 256, no `aws:` prefix.
pub(crate) fn check_tags(tags: &Tags) -> ApiResult<()> {
    if tags.len() > 50 {
        return Err(ApiError::bad_request(
            "Too many tags: at most 50 are allowed",
        ));
    }
    for (k, v) in tags {
        if k.is_empty() || k.chars().count() > 128 {
            return Err(ApiError::bad_request(format!(
                "Invalid tag key '{k}': must be 1 to 128 characters"
            )));
        }
        if k.to_ascii_lowercase().starts_with("aws:") {
            return Err(ApiError::bad_request(format!(
                "Invalid tag key '{k}': the prefix 'aws:' is reserved"
            )));
        }
        if v.chars().count() > 256 {
            return Err(ApiError::bad_request(format!(
                "Invalid value for tag '{k}': at most 256 characters"
            )));
        }
    }
    Ok(())
}
