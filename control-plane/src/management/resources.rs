//! GetResources, GetResource, CreateResource, UpdateResource, DeleteResource:
//! the API's path tree with literal, `{param}` and greedy `{proxy+}` parts.

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Extension, Path, Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::get;
use serde::Deserialize;
use serde_json::{Value, json};

use super::auth::Caller;
use super::input::{Paging, PatchOp, PatchRequest, json, list_body, page};
use super::{AppState, ids, modify_api, no_content, read_api, reply};
use crate::error::{ApiError, ApiResult};
use crate::model::{Resource, RestApiDoc};

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/restapis/{restapi_id}/resources", get(list))
        .route(
            "/restapis/{restapi_id}/resources/{resource_id}",
            get(fetch).post(create).patch(update).delete(delete),
        )
}

/// AWS's per-API resource limit.
const MAX_RESOURCES: usize = 300;

#[derive(Debug, Default, Deserialize)]
pub(crate) struct EmbedQuery {
    #[serde(default)]
    embed: Option<String>,
    #[serde(flatten)]
    paging: Paging,
}

impl EmbedQuery {
    fn methods(&self) -> bool {
        self.embed
            .as_deref()
            .is_some_and(|e| e.split(',').any(|p| p.trim() == "methods"))
    }
}

pub(crate) fn invalid_resource() -> ApiError {
    ApiError::not_found("Invalid Resource identifier specified")
}

/// The wire form of a resource: methods in full with `embed=methods`, else only their names.
fn view(doc: &RestApiDoc, resource: &Resource, embed_methods: bool) -> Value {
    let mut v = json!({ "id": resource.id, "path": doc.path_of(&resource.id) });
    if let Some(parent) = &resource.parent_id {
        v["parentId"] = json!(parent);
    }
    if let Some(part) = &resource.path_part {
        v["pathPart"] = json!(part);
    }
    if !resource.resource_methods.is_empty() {
        v["resourceMethods"] = if embed_methods {
            json!(resource.resource_methods)
        } else {
            resource
                .resource_methods
                .keys()
                .map(|m| (m.clone(), json!({})))
                .collect::<serde_json::Map<_, _>>()
                .into()
        };
    }
    v
}

async fn list(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(api_id): Path<String>,
    Query(query): Query<EmbedQuery>,
) -> ApiResult<Response> {
    let body = read_api(&state, &caller, &api_id, |doc| {
        // Parents before children: sort by path.
        let mut all: Vec<&Resource> = doc.resources.values().collect();
        all.sort_by_cached_key(|r| doc.path_of(&r.id));
        let (items, position) = page(all, |r| r.id.as_str(), &query.paging)?;
        let views: Vec<Value> = items
            .iter()
            .map(|r| view(doc, r, query.methods()))
            .collect();
        Ok(list_body(&views, position))
    })
    .await?;
    Ok(reply(StatusCode::OK, &body))
}

async fn fetch(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path((api_id, resource_id)): Path<(String, String)>,
    Query(query): Query<EmbedQuery>,
) -> ApiResult<Response> {
    let body = read_api(&state, &caller, &api_id, |doc| {
        let resource = doc
            .resources
            .get(&resource_id)
            .ok_or_else(invalid_resource)?;
        Ok(view(doc, resource, query.methods()))
    })
    .await?;
    Ok(reply(StatusCode::OK, &body))
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct CreateInput {
    path_part: Option<String>,
}

async fn create(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path((api_id, parent_id)): Path<(String, String)>,
    body: Bytes,
) -> ApiResult<Response> {
    let input: CreateInput = json(&body)?;
    let path_part = input
        .path_part
        .ok_or_else(|| ApiError::bad_request("The 'pathPart' member is required"))?;
    let body = modify_api(&state, &caller, &api_id, |doc| {
        if !doc.resources.contains_key(&parent_id) {
            return Err(invalid_resource());
        }
        if doc.resources.len() >= MAX_RESOURCES {
            return Err(ApiError::LimitExceeded(format!(
                "Cannot create more than {MAX_RESOURCES} resources in a REST API"
            )));
        }
        check_placement(doc, &parent_id, &path_part, None)?;
        let resource = Resource {
            id: ids::resource(),
            parent_id: Some(parent_id.clone()),
            path_part: Some(path_part.clone()),
            ..Default::default()
        };
        let out = view(doc, &resource, false);
        doc.resources.insert(resource.id.clone(), resource);
        // `path` needs the resource in the tree.
        let mut out = out;
        out["path"] = json!(doc.path_of(out["id"].as_str().unwrap_or_default()));
        Ok(out)
    })
    .await?;
    Ok(reply(StatusCode::CREATED, &body))
}

/// Checks that `path_part` may live under `parent_id` (ignoring `moving`,
/// the resource being renamed or moved itself).
fn check_placement(
    doc: &RestApiDoc,
    parent_id: &str,
    path_part: &str,
    moving: Option<&str>,
) -> ApiResult<()> {
    check_path_part(path_part)?;
    let parent = doc.resources.get(parent_id).ok_or_else(invalid_resource)?;
    if let Some(part) = parent.path_part.as_deref().filter(|p| is_greedy(p)) {
        return Err(ApiError::bad_request(format!(
            "Cannot create a child of a resource with a greedy path variable: {part}"
        )));
    }
    for sibling in doc
        .children_of(parent_id)
        .filter(|s| Some(s.id.as_str()) != moving)
    {
        let Some(existing) = sibling.path_part.as_deref() else {
            continue;
        };
        if existing == path_part {
            return Err(ApiError::conflict(format!(
                "Another resource with the same parent already has this name: {path_part}"
            )));
        }
        if is_variable(existing) && is_variable(path_part) {
            return Err(ApiError::bad_request(format!(
                "A sibling ({existing}) of this resource already has a variable path part -- only one is allowed"
            )));
        }
    }
    Ok(())
}

pub(crate) fn is_variable(part: &str) -> bool {
    part.starts_with('{') && part.ends_with('}')
}

pub(crate) fn is_greedy(part: &str) -> bool {
    part.starts_with('{') && part.ends_with("+}")
}

/// A literal segment, `{name}` or `{name+}`.
pub(crate) fn check_path_part(part: &str) -> ApiResult<()> {
    let invalid = || {
        ApiError::bad_request(format!(
            "Resource's path part only allow a-zA-Z0-9._-: and curly braces at the beginning and the end \
             and an optional plus sign before the closing brace. Invalid pathPart: '{part}'"
        ))
    };
    if part.is_empty() || part.len() > 1024 {
        return Err(invalid());
    }
    let name = if is_variable(part) {
        let inner = &part[1..part.len() - 1];
        inner.strip_suffix('+').unwrap_or(inner)
    } else {
        part
    };
    let literal_ok = |c: char| c.is_ascii_alphanumeric() || "._-:".contains(c);
    if name.is_empty() || !name.chars().all(literal_ok) {
        return Err(invalid());
    }
    Ok(())
}

async fn update(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path((api_id, resource_id)): Path<(String, String)>,
    body: Bytes,
) -> ApiResult<Response> {
    let patch: PatchRequest = json(&body)?;
    let body = modify_api(&state, &caller, &api_id, |doc| {
        let resource = doc
            .resources
            .get(&resource_id)
            .ok_or_else(invalid_resource)?;
        if resource.parent_id.is_none() {
            return Err(ApiError::bad_request("The root resource cannot be changed"));
        }
        for op in &patch.patch_operations {
            apply(doc, &resource_id, op)?;
        }
        Ok(view(doc, &doc.resources[&resource_id], false))
    })
    .await?;
    Ok(reply(StatusCode::OK, &body))
}

fn apply(doc: &mut RestApiDoc, resource_id: &str, op: &PatchOp) -> ApiResult<()> {
    let current = &doc.resources[resource_id];
    let (parent, part) = match op.path.as_str() {
        "/pathPart" => (
            current.parent_id.clone().unwrap_or_default(),
            op.replacement()?.to_owned(),
        ),
        "/parentId" => {
            let new_parent = op.replacement()?.to_owned();
            if !doc.resources.contains_key(&new_parent) {
                return Err(invalid_resource());
            }
            if doc.is_ancestor_or_self(resource_id, &new_parent) {
                return Err(ApiError::bad_request(
                    "Invalid parentId: a resource cannot be moved under itself or one of its descendants",
                ));
            }
            (new_parent, current.path_part.clone().unwrap_or_default())
        }
        _ => return Err(op.invalid_path(&["/pathPart", "/parentId"])),
    };
    check_placement(doc, &parent, &part, Some(resource_id))?;
    let resource = doc
        .resources
        .get_mut(resource_id)
        .ok_or_else(invalid_resource)?;
    resource.parent_id = Some(parent);
    resource.path_part = Some(part);
    Ok(())
}

async fn delete(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path((api_id, resource_id)): Path<(String, String)>,
) -> ApiResult<Response> {
    modify_api(&state, &caller, &api_id, |doc| {
        let resource = doc
            .resources
            .get(&resource_id)
            .ok_or_else(invalid_resource)?;
        if resource.parent_id.is_none() {
            return Err(ApiError::bad_request("Cannot delete the root resource"));
        }
        for id in doc.subtree(&resource_id) {
            doc.resources.remove(&id);
        }
        Ok(())
    })
    .await?;
    Ok(no_content(StatusCode::ACCEPTED))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn path_parts() {
        for ok in ["pets", "{petId}", "{proxy+}", "v1.2", "a-b_c", "x:y"] {
            assert!(check_path_part(ok).is_ok(), "{ok}");
        }
        for bad in [
            "",
            "{}",
            "{+}",
            "a/b",
            "a b",
            "{a",
            "é",
            "%20",
            "semi;colon",
            "pre{fix}",
        ] {
            assert!(check_path_part(bad).is_err(), "{bad}");
        }
    }
}
