//! CreateRequestValidator, GetRequestValidators, GetRequestValidator,
//! UpdateRequestValidator, DeleteRequestValidator: the switches a method's
//! `requestValidatorId` names (validate the body, the parameters, or both).

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Extension, Path, Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::get;
use serde::Deserialize;

use super::auth::Caller;
use super::input::{Op, Paging, PatchOp, PatchRequest, json, list_body, page};
use super::{AppState, ids, modify_api, no_content, read_api, reply};
use crate::error::{ApiError, ApiResult};
use crate::model::{RequestValidator, RestApiDoc};

pub fn routes() -> Router<AppState> {
    Router::new()
        .route(
            "/restapis/{restapi_id}/requestvalidators",
            get(list).post(create),
        )
        .route(
            "/restapis/{restapi_id}/requestvalidators/{requestvalidator_id}",
            get(fetch).patch(update).delete(delete),
        )
}

pub(crate) fn invalid_validator() -> ApiError {
    ApiError::not_found("Invalid Request Validator identifier specified")
}

/// AWS answers a validator call on a missing API as if the validator were missing.
fn missing_as_invalid_validator(e: ApiError) -> ApiError {
    match e {
        ApiError::NotFound(_) => invalid_validator(),
        other => other,
    }
}

fn check_name(name: Option<&str>) -> ApiResult<&str> {
    name.filter(|n| !n.trim().is_empty())
        .ok_or_else(|| ApiError::bad_request("Request Validator name cannot be blank"))
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct CreateInput {
    name: Option<String>,
    #[serde(default)]
    validate_request_body: bool,
    #[serde(default)]
    validate_request_parameters: bool,
}

async fn create(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(api_id): Path<String>,
    body: Bytes,
) -> ApiResult<Response> {
    let input: CreateInput = json(&body)?;
    // The name is optional, but not blank when given.
    if input.name.is_some() {
        check_name(input.name.as_deref())?;
    }
    let validator = modify_api(&state, &caller, &api_id, |doc| {
        let mut id = ids::short();
        while doc.request_validators.contains_key(&id) {
            id = ids::short();
        }
        let validator = RequestValidator {
            id: id.clone(),
            name: input.name,
            validate_request_body: input.validate_request_body,
            validate_request_parameters: input.validate_request_parameters,
        };
        doc.request_validators.insert(id, validator.clone());
        Ok(validator)
    })
    .await
    // AWS's answer here differs from every other call on a missing API.
    .map_err(|e| match e {
        ApiError::NotFound(_) => ApiError::bad_request("Invalid REST API identifier specified"),
        other => other,
    })?;
    Ok(reply(StatusCode::CREATED, &validator))
}

async fn list(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(api_id): Path<String>,
    Query(paging): Query<Paging>,
) -> ApiResult<Response> {
    let body = read_api(&state, &caller, &api_id, |doc| {
        let validators: Vec<&RequestValidator> = doc.request_validators.values().collect();
        let (items, position) = page(validators, |v| v.id.as_str(), &paging)?;
        Ok(list_body(&items, position))
    })
    .await?;
    Ok(reply(StatusCode::OK, &body))
}

async fn fetch(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path((api_id, validator_id)): Path<(String, String)>,
) -> ApiResult<Response> {
    let validator = read_api(&state, &caller, &api_id, |doc| {
        doc.request_validators
            .get(&validator_id)
            .cloned()
            .ok_or_else(invalid_validator)
    })
    .await
    .map_err(missing_as_invalid_validator)?;
    Ok(reply(StatusCode::OK, &validator))
}

const PATCH_PATHS: [&str; 3] = [
    "/name",
    "/validateRequestParameters",
    "/validateRequestBody",
];

/// A switch's new value; AWS reads a missing value as `false`.
fn switch(op: &PatchOp) -> ApiResult<bool> {
    match op.value {
        None => Ok(false),
        Some(_) => op.bool_value(),
    }
}

fn apply(validator: &mut RequestValidator, op: &PatchOp) -> ApiResult<()> {
    if op.op != Op::Replace {
        return Err(op.unsupported_op());
    }
    match op.path.as_str() {
        "/name" => validator.name = Some(check_name(op.value.as_deref())?.to_owned()),
        "/validateRequestBody" => validator.validate_request_body = switch(op)?,
        "/validateRequestParameters" => validator.validate_request_parameters = switch(op)?,
        _ => return Err(op.invalid_path(&PATCH_PATHS)),
    }
    Ok(())
}

async fn update(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path((api_id, validator_id)): Path<(String, String)>,
    body: Bytes,
) -> ApiResult<Response> {
    let patch: PatchRequest = json(&body)?;
    let validator = modify_api(&state, &caller, &api_id, |doc| {
        let validator = doc
            .request_validators
            .get_mut(&validator_id)
            .ok_or_else(invalid_validator)?;
        for op in &patch.patch_operations {
            apply(validator, op)?;
        }
        Ok(validator.clone())
    })
    .await
    .map_err(missing_as_invalid_validator)?;
    Ok(reply(StatusCode::OK, &validator))
}

/// The first method (`{path}/{HTTP}`) that uses a validator.
fn first_user(doc: &RestApiDoc, validator_id: &str) -> Option<String> {
    doc.resources.values().find_map(|resource| {
        resource
            .resource_methods
            .iter()
            .find(|(_, m)| m.request_validator_id.as_deref() == Some(validator_id))
            .map(|(http, _)| format!("{}/{http}", doc.path_of(&resource.id)))
    })
}

async fn delete(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path((api_id, validator_id)): Path<(String, String)>,
) -> ApiResult<Response> {
    modify_api(&state, &caller, &api_id, |doc| {
        if !doc.request_validators.contains_key(&validator_id) {
            return Err(invalid_validator());
        }
        if let Some(method) = first_user(doc, &validator_id) {
            return Err(ApiError::conflict(format!(
                "Cannot delete request validator '{validator_id}', is referenced in method: {method}"
            )));
        }
        doc.request_validators.remove(&validator_id);
        Ok(())
    })
    .await
    .map_err(missing_as_invalid_validator)?;
    Ok(no_content(StatusCode::ACCEPTED))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Method, Resource};

    fn op(op: Op, path: &str, value: Option<&str>) -> PatchOp {
        PatchOp {
            op,
            path: path.into(),
            value: value.map(Into::into),
            from: None,
        }
    }

    #[test]
    fn patches_follow_aws() {
        let mut v = RequestValidator {
            id: "v1".into(),
            name: Some("n".into()),
            ..Default::default()
        };
        apply(
            &mut v,
            &op(Op::Replace, "/validateRequestBody", Some("true")),
        )
        .unwrap();
        apply(
            &mut v,
            &op(Op::Replace, "/validateRequestParameters", Some("true")),
        )
        .unwrap();
        apply(&mut v, &op(Op::Replace, "/name", Some("all"))).unwrap();
        assert!(v.validate_request_body && v.validate_request_parameters);
        assert_eq!(v.name.as_deref(), Some("all"));
        // A missing value switches off.
        apply(&mut v, &op(Op::Replace, "/validateRequestBody", None)).unwrap();
        assert!(!v.validate_request_body);
        assert!(
            apply(
                &mut v,
                &op(Op::Replace, "/validateRequestBody", Some("maybe"))
            )
            .is_err()
        );

        let blank = apply(&mut v, &op(Op::Replace, "/name", None))
            .unwrap_err()
            .to_string();
        assert_eq!(blank, "Request Validator name cannot be blank");
        assert!(apply(&mut v, &op(Op::Replace, "/name", Some(" "))).is_err());
        assert_eq!(
            apply(&mut v, &op(Op::Add, "/validateRequestBody", Some("true")))
                .unwrap_err()
                .to_string(),
            "Invalid patch path  '/validateRequestBody' specified for op 'add'. Please choose supported operations"
        );
        assert_eq!(
            apply(&mut v, &op(Op::Replace, "/invalidPath", Some("true")))
                .unwrap_err()
                .to_string(),
            "Invalid patch path  '/invalidPath' specified for op 'replace'. \
             Must be one of: [/name, /validateRequestParameters, /validateRequestBody]"
        );
    }

    #[test]
    fn users_are_found() {
        let mut doc = RestApiDoc::default();
        let mut root = Resource {
            id: "r".into(),
            ..Default::default()
        };
        let method = Method {
            http_method: "GET".into(),
            request_validator_id: Some("v1".into()),
            ..Default::default()
        };
        root.resource_methods.insert("GET".into(), method);
        doc.resources.insert("r".into(), root);
        assert_eq!(first_user(&doc, "v1").as_deref(), Some("//GET"));
        assert_eq!(first_user(&doc, "v2"), None);
    }
}
