//! CreateModel, GetModels, GetModel, UpdateModel, DeleteModel: named schemas
//! that methods name in `requestModels` and method responses in `responseModels`.

use std::collections::BTreeMap;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Extension, Path, Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::get;
use serde::Deserialize;
use serde_json::Value;

use super::auth::Caller;
use super::input::{Op, Paging, PatchOp, PatchRequest, json, list_body, page};
use super::{AppState, ids, modify_api, no_content, read_api, reply};
use crate::error::{ApiError, ApiResult};
use crate::model::{Model, RestApiDoc};

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/restapis/{restapi_id}/models", get(list).post(create))
        .route(
            "/restapis/{restapi_id}/models/{model_name}",
            get(fetch).patch(update).delete(delete),
        )
}

fn invalid_model(name: &str) -> ApiError {
    ApiError::not_found(format!("Invalid model name specified: {name}"))
}

/// AWS answers a model call on a missing API as if the model were missing.
fn missing_as_invalid_model(name: &str) -> impl FnOnce(ApiError) -> ApiError + '_ {
    move |e| match e {
        ApiError::NotFound(_) => invalid_model(name),
        other => other,
    }
}

const EMPTY_SCHEMA: &str = "{\n  \"$schema\": \"http://json-schema.org/draft-04/schema#\",\n  \
                            \"title\" : \"Empty Schema\",\n  \"type\" : \"object\"\n}";
const ERROR_SCHEMA: &str = "{\n  \"$schema\" : \"http://json-schema.org/draft-04/schema#\",\n  \
                            \"title\" : \"Error Schema\",\n  \"type\" : \"object\",\n  \
                            \"properties\" : {\n    \"message\" : { \"type\" : \"string\" }\n  }\n}";

/// The `Empty` and `Error` models AWS gives every new REST API.
pub(crate) fn default_models() -> BTreeMap<String, Model> {
    [
        (
            "Empty",
            "This is a default empty schema model",
            EMPTY_SCHEMA,
        ),
        (
            "Error",
            "This is a default error schema model",
            ERROR_SCHEMA,
        ),
    ]
    .into_iter()
    .map(|(name, description, schema)| {
        let model = Model {
            id: ids::short(),
            name: name.to_owned(),
            description: Some(description.to_owned()),
            schema: Some(schema.to_owned()),
            content_type: "application/json".to_owned(),
        };
        (name.to_owned(), model)
    })
    .collect()
}

pub(crate) fn check_name(name: &str) -> ApiResult<()> {
    if name.is_empty() {
        return Err(ApiError::bad_request("Model name must be non-empty"));
    }
    if !name.chars().all(|c| c.is_ascii_alphanumeric()) {
        return Err(ApiError::bad_request(format!(
            "Invalid model name specified: {name}. A model name must be alphanumeric"
        )));
    }
    Ok(())
}

/// A schema must be a JSON object with at least one member (AWS's wording
/// below covers a missing or empty schema too).
fn check_schema(schema: Option<&str>) -> ApiResult<()> {
    let empty = || {
        ApiError::bad_request("Model schema must have at least 1 property or array items defined")
    };
    let schema = schema.filter(|s| !s.trim().is_empty()).ok_or_else(empty)?;
    match serde_json::from_str::<Value>(schema) {
        Ok(Value::Object(members)) if members.is_empty() => Err(empty()),
        Ok(Value::Object(_)) => Ok(()),
        Ok(_) => Err(ApiError::bad_request(
            "Invalid model specified: the schema must be a JSON object",
        )),
        Err(e) => Err(ApiError::bad_request(format!(
            "Invalid model specified: the schema is not valid JSON: {e}"
        ))),
    }
}

/// AWS drops an empty description rather than storing "".
fn description(value: Option<&str>) -> Option<String> {
    value.filter(|d| !d.is_empty()).map(str::to_owned)
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct CreateInput {
    name: Option<String>,
    description: Option<String>,
    schema: Option<String>,
    content_type: Option<String>,
}

async fn create(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(api_id): Path<String>,
    body: Bytes,
) -> ApiResult<Response> {
    let input: CreateInput = json(&body)?;
    let name = input.name.unwrap_or_default();
    check_name(&name)?;
    let content_type = input
        .content_type
        .filter(|c| !c.trim().is_empty())
        .ok_or_else(|| {
            ApiError::bad_request("Invalid content type specified: 'contentType' is required")
        })?;
    check_schema(input.schema.as_deref())?;
    let model = modify_api(&state, &caller, &api_id, |doc| {
        if doc.models.contains_key(&name) {
            return Err(ApiError::conflict(
                "Model name already exists for this REST API",
            ));
        }
        let mut id = ids::short();
        while doc.models.values().any(|m| m.id == id) {
            id = ids::short();
        }
        let model = Model {
            id,
            name: name.clone(),
            description: description(input.description.as_deref()),
            schema: input.schema,
            content_type,
        };
        doc.models.insert(name, model.clone());
        Ok(model)
    })
    .await?;
    Ok(reply(StatusCode::CREATED, &model))
}

async fn list(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(api_id): Path<String>,
    Query(paging): Query<Paging>,
) -> ApiResult<Response> {
    let body = read_api(&state, &caller, &api_id, |doc| {
        let models: Vec<&Model> = doc.models.values().collect();
        let (items, position) = page(models, |m| m.id.as_str(), &paging)?;
        Ok(list_body(&items, position))
    })
    .await?;
    Ok(reply(StatusCode::OK, &body))
}

/// GetModel; its `flatten` query parameter is accepted and ignored (no
/// `$ref` inlining), as nothing here reads the query.
async fn fetch(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path((api_id, name)): Path<(String, String)>,
) -> ApiResult<Response> {
    let model = read_api(&state, &caller, &api_id, |doc| {
        doc.models
            .get(&name)
            .cloned()
            .ok_or_else(|| invalid_model(&name))
    })
    .await
    .map_err(missing_as_invalid_model(&name))?;
    Ok(reply(StatusCode::OK, &model))
}

const PATCH_PATHS: [&str; 2] = ["/description", "/schema"];

fn apply(model: &mut Model, op: &PatchOp) -> ApiResult<()> {
    if op.op != Op::Replace {
        return Err(op.unsupported_op());
    }
    match op.path.as_str() {
        "/schema" => {
            check_schema(op.value.as_deref())?;
            model.schema = op.value.clone();
        }
        "/description" => model.description = description(op.value.as_deref()),
        _ => return Err(op.invalid_path(&PATCH_PATHS)),
    }
    Ok(())
}

async fn update(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path((api_id, name)): Path<(String, String)>,
    body: Bytes,
) -> ApiResult<Response> {
    let patch: PatchRequest = json(&body)?;
    let model = modify_api(&state, &caller, &api_id, |doc| {
        let model = doc
            .models
            .get_mut(&name)
            .ok_or_else(|| invalid_model(&name))?;
        for op in &patch.patch_operations {
            apply(model, op)?;
        }
        Ok(model.clone())
    })
    .await
    .map_err(missing_as_invalid_model(&name))?;
    Ok(reply(StatusCode::OK, &model))
}

/// Where a model is still in use, in AWS's words: `//ANY` is ANY on `/`.
fn first_reference(doc: &RestApiDoc, name: &str) -> Option<String> {
    for resource in doc.resources.values() {
        for (http, method) in &resource.resource_methods {
            let at = format!("{}/{http}", doc.path_of(&resource.id));
            if method.request_models.values().any(|m| m == name) {
                return Some(format!("method request: {at}"));
            }
            for (status, response) in &method.method_responses {
                if response.response_models.values().any(|m| m == name) {
                    return Some(format!("method response: {at}/{status}"));
                }
            }
        }
    }
    doc.models
        .values()
        .filter(|m| m.name != name)
        .find(|m| m.schema.as_deref().is_some_and(|s| refers_to(s, name)))
        .map(|m| format!("model: {}", m.name))
}

/// Whether a schema `$ref`s the model `name` (`…/models/{name}`).
fn refers_to(schema: &str, name: &str) -> bool {
    fn walk(v: &Value, name: &str) -> bool {
        match v {
            Value::Object(members) => members.iter().any(|(k, v)| {
                (k == "$ref"
                    && v.as_str()
                        .and_then(|r| r.rsplit_once("/models/"))
                        .is_some_and(|(_, target)| target == name))
                    || walk(v, name)
            }),
            Value::Array(items) => items.iter().any(|v| walk(v, name)),
            _ => false,
        }
    }
    serde_json::from_str::<Value>(schema).is_ok_and(|v| walk(&v, name))
}

async fn delete(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path((api_id, name)): Path<(String, String)>,
) -> ApiResult<Response> {
    modify_api(&state, &caller, &api_id, |doc| {
        if !doc.models.contains_key(&name) {
            return Err(invalid_model(&name));
        }
        if let Some(place) = first_reference(doc, &name) {
            return Err(ApiError::conflict(format!(
                "Cannot delete model '{name}', is referenced in {place}"
            )));
        }
        doc.models.remove(&name);
        Ok(())
    })
    .await
    .map_err(missing_as_invalid_model(&name))?;
    Ok(no_content(StatusCode::ACCEPTED))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Method, MethodResponse, Resource};

    #[test]
    fn names_are_alphanumeric_and_non_empty() {
        assert!(check_name("Pet2").is_ok());
        for bad in ["", "not-alnum!", "a b", "Pét"] {
            assert!(check_name(bad).is_err(), "{bad}");
        }
        assert!(check_name("a_b").unwrap_err().to_string().contains("name"));
    }

    #[test]
    fn schemas_must_be_non_empty_json_objects() {
        assert!(check_schema(Some(r#"{"type":"object"}"#)).is_ok());
        let empty = "Model schema must have at least 1 property or array items defined";
        for missing in [None, Some(""), Some("  "), Some("{}")] {
            assert_eq!(check_schema(missing).unwrap_err().to_string(), empty);
        }
        let e = check_schema(Some("{not json")).unwrap_err().to_string();
        assert!(e.starts_with("Invalid model specified: "), "{e}");
        assert!(check_schema(Some("[1]")).is_err());
    }

    #[test]
    fn default_models_are_valid() {
        let models = default_models();
        assert_eq!(models.keys().collect::<Vec<_>>(), ["Empty", "Error"]);
        for m in models.values() {
            check_name(&m.name).unwrap();
            check_schema(m.schema.as_deref()).unwrap();
            let schema: Value = serde_json::from_str(m.schema.as_deref().unwrap()).unwrap();
            assert_eq!(schema["title"], format!("{} Schema", m.name));
        }
    }

    #[test]
    fn patch_paths() {
        let mut model = Model {
            id: "m1".into(),
            name: "Pet".into(),
            ..Default::default()
        };
        let op = |op, path: &str, value: Option<&str>| PatchOp {
            op,
            path: path.into(),
            value: value.map(Into::into),
            from: None,
        };
        apply(&mut model, &op(Op::Replace, "/description", Some("d"))).unwrap();
        assert_eq!(model.description.as_deref(), Some("d"));
        apply(&mut model, &op(Op::Replace, "/description", Some(""))).unwrap();
        assert_eq!(model.description, None);
        apply(
            &mut model,
            &op(Op::Replace, "/schema", Some(r#"{"type":"string"}"#)),
        )
        .unwrap();
        assert!(apply(&mut model, &op(Op::Replace, "/schema", Some(""))).is_err());
        assert_eq!(
            apply(&mut model, &op(Op::Replace, "/name", Some("x")))
                .unwrap_err()
                .to_string(),
            "Invalid patch path  '/name' specified for op 'replace'. Must be one of: [/description, /schema]"
        );
        assert_eq!(
            apply(&mut model, &op(Op::Add, "/wrong-path", Some("x")))
                .unwrap_err()
                .to_string(),
            "Invalid patch path  '/wrong-path' specified for op 'add'. Please choose supported operations"
        );
    }

    #[test]
    fn references_block_deletion() {
        let mut doc = RestApiDoc::default();
        let mut method = Method {
            http_method: "ANY".into(),
            ..Default::default()
        };
        method
            .request_models
            .insert("application/json".into(), "Pet".into());
        method.method_responses.insert(
            "200".into(),
            MethodResponse {
                status_code: "200".into(),
                response_models: [("application/json".into(), "Out".into())].into(),
                ..Default::default()
            },
        );
        let mut root = Resource {
            id: "r".into(),
            ..Default::default()
        };
        root.resource_methods.insert("ANY".into(), method);
        doc.resources.insert("r".into(), root);
        let linked = r#"{"type":"object","properties":{"p":{"$ref":"https://apigateway.amazonaws.com/restapis/a/models/Leaf"}}}"#;
        doc.models.insert(
            "Tree".into(),
            Model {
                name: "Tree".into(),
                schema: Some(linked.into()),
                ..Default::default()
            },
        );

        assert_eq!(
            first_reference(&doc, "Pet").as_deref(),
            Some("method request: //ANY")
        );
        assert_eq!(
            first_reference(&doc, "Out").as_deref(),
            Some("method response: //ANY/200")
        );
        assert_eq!(
            first_reference(&doc, "Leaf").as_deref(),
            Some("model: Tree")
        );
        assert_eq!(first_reference(&doc, "Tree"), None);
        assert!(!refers_to("{not json", "Leaf"));
    }
}
