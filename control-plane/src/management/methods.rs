//! PutMethod, GetMethod, UpdateMethod, DeleteMethod and the method-response
//! operations (PutMethodResponse, GetMethodResponse, …).

use std::collections::BTreeMap;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Extension, Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::get;
use serde::Deserialize;

use super::auth::Caller;
use super::input::{Op, PatchOp, PatchRequest, json, one_of, patch_map};
use super::resources::invalid_resource;
use super::{AppState, modify_api, no_content, read_api, reply};
use crate::error::{ApiError, ApiResult};
use crate::model::{Method, MethodResponse, RestApiDoc};

pub fn routes() -> Router<AppState> {
    Router::new()
        .route(
            "/restapis/{restapi_id}/resources/{resource_id}/methods/{http_method}",
            get(fetch).put(put).patch(update).delete(delete),
        )
        .route(
            "/restapis/{restapi_id}/resources/{resource_id}/methods/{http_method}/responses/{status_code}",
            get(fetch_response).put(put_response).patch(update_response).delete(delete_response),
        )
}

pub const HTTP_METHODS: [&str; 8] = [
    "GET", "PUT", "POST", "DELETE", "PATCH", "OPTIONS", "HEAD", "ANY",
];
const AUTHORIZATION_TYPES: [&str; 4] = ["NONE", "AWS_IAM", "CUSTOM", "COGNITO_USER_POOLS"];

/// Validates and normalises an HTTP method from the path.
pub(crate) fn http_method(raw: &str) -> ApiResult<String> {
    let upper = raw.to_ascii_uppercase();
    if HTTP_METHODS.contains(&upper.as_str()) {
        Ok(upper)
    } else {
        Err(ApiError::bad_request(
            "Invalid HttpMethod specified. Valid options are GET,PUT,POST,DELETE,PATCH,OPTIONS,HEAD,ANY",
        ))
    }
}

pub(crate) fn invalid_method() -> ApiError {
    ApiError::not_found("Invalid Method identifier specified")
}

pub(crate) fn invalid_response() -> ApiError {
    ApiError::not_found("Invalid Response status code specified")
}

/// Finds a method for reading.
pub(crate) fn method<'a>(
    doc: &'a RestApiDoc,
    resource_id: &str,
    http: &str,
) -> ApiResult<&'a Method> {
    let http = http_method(http)?;
    let resource = doc
        .resources
        .get(resource_id)
        .ok_or_else(invalid_resource)?;
    resource
        .resource_methods
        .get(&http)
        .ok_or_else(invalid_method)
}

/// Finds a method for changing.
pub(crate) fn method_mut<'a>(
    doc: &'a mut RestApiDoc,
    resource_id: &str,
    http: &str,
) -> ApiResult<&'a mut Method> {
    let http = http_method(http)?;
    let resource = doc
        .resources
        .get_mut(resource_id)
        .ok_or_else(invalid_resource)?;
    resource
        .resource_methods
        .get_mut(&http)
        .ok_or_else(invalid_method)
}

/// A status code of the form AWS takes: `[1-5]\d\d`.
pub(crate) fn status_code(raw: &str) -> ApiResult<String> {
    let b = raw.as_bytes();
    if b.len() == 3
        && (b'1'..=b'5').contains(&b[0])
        && b[1].is_ascii_digit()
        && b[2].is_ascii_digit()
    {
        Ok(raw.to_owned())
    } else {
        Err(ApiError::bad_request(format!(
            "Invalid status code '{raw}': it must match [1-5]\\d\\d"
        )))
    }
}

const REQUEST_LOCATIONS: [&str; 5] = [
    "path",
    "querystring",
    "header",
    "multivaluequerystring",
    "multivalueheader",
];

/// `method.request.{location}.{name}`.
pub(crate) fn check_request_parameter(key: &str) -> ApiResult<()> {
    let ok = key
        .strip_prefix("method.request.")
        .and_then(|rest| rest.split_once('.'))
        .is_some_and(|(loc, name)| REQUEST_LOCATIONS.contains(&loc) && !name.is_empty());
    if ok {
        Ok(())
    } else {
        Err(ApiError::bad_request(format!(
            "Invalid mapping expression specified: Validation Result: warnings : [], errors : \
             [Parameter name should match the following regular expression: \
             ^method.request.(path|querystring|header|multivaluequerystring|multivalueheader).[^.]+$ : {key}]"
        )))
    }
}

/// `method.response.header.{name}`.
pub(crate) fn check_response_parameter(key: &str) -> ApiResult<()> {
    match key.strip_prefix("method.response.header.") {
        Some(name) if !name.is_empty() => Ok(()),
        _ => Err(ApiError::bad_request(format!(
            "Invalid mapping expression specified: Validation Result: warnings : [], errors : \
             [Parameter name should match the following regular expression: ^method.response.header.[^.]+$ : {key}]"
        ))),
    }
}

fn check_models(doc: &RestApiDoc, models: &BTreeMap<String, String>) -> ApiResult<()> {
    for name in models.values() {
        if !doc.models.contains_key(name) {
            return Err(ApiError::bad_request(format!(
                "Invalid model identifier specified: {name}"
            )));
        }
    }
    Ok(())
}

fn check_authorization(
    doc: &RestApiDoc,
    authorization_type: &str,
    authorizer_id: Option<&str>,
) -> ApiResult<()> {
    one_of(
        authorization_type,
        "putMethodInput.authorizationType",
        &AUTHORIZATION_TYPES,
    )?;
    if matches!(authorization_type, "CUSTOM" | "COGNITO_USER_POOLS") {
        // The authorizer must be one of this API's own, of a matching kind.
        return match authorizer_id {
            Some(id) if super::authorizers::usable_by(doc, id, authorization_type) => Ok(()),
            Some(id) => Err(ApiError::bad_request(format!(
                "Invalid authorizer ID specified: {id}"
            ))),
            None => Err(ApiError::bad_request(format!(
                "Invalid authorizer ID specified. Setting the authorization type to {authorization_type} requires a valid authorizer."
            ))),
        };
    }
    Ok(())
}

fn parse_bool(v: &str) -> ApiResult<bool> {
    match v {
        "true" => Ok(true),
        "false" => Ok(false),
        other => Err(ApiError::bad_request(format!(
            "Invalid boolean value '{other}'"
        ))),
    }
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct PutInput {
    authorization_type: Option<String>,
    authorizer_id: Option<String>,
    #[serde(default)]
    api_key_required: bool,
    operation_name: Option<String>,
    #[serde(default)]
    request_parameters: BTreeMap<String, bool>,
    #[serde(default)]
    request_models: BTreeMap<String, String>,
    request_validator_id: Option<String>,
    #[serde(default)]
    authorization_scopes: Vec<String>,
}

async fn put(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path((api_id, resource_id, http)): Path<(String, String, String)>,
    body: Bytes,
) -> ApiResult<Response> {
    let input: PutInput = json(&body)?;
    let http = http_method(&http)?;
    let authorization_type = input
        .authorization_type
        .ok_or_else(|| ApiError::bad_request("The 'authorizationType' member is required"))?;
    for key in input.request_parameters.keys() {
        check_request_parameter(key)?;
    }
    let method = modify_api(&state, &caller, &api_id, |doc| {
        check_authorization(doc, &authorization_type, input.authorizer_id.as_deref())?;
        check_models(doc, &input.request_models)?;
        if let Some(v) = &input.request_validator_id
            && !doc.request_validators.contains_key(v)
        {
            return Err(ApiError::bad_request(
                "Invalid Request Validator identifier specified",
            ));
        }
        let resource = doc
            .resources
            .get_mut(&resource_id)
            .ok_or_else(invalid_resource)?;
        if resource.resource_methods.contains_key(&http) {
            return Err(ApiError::conflict(
                "Method already exists for this resource",
            ));
        }
        let method = Method {
            http_method: http.clone(),
            authorization_type,
            authorizer_id: input.authorizer_id,
            api_key_required: input.api_key_required,
            request_validator_id: input.request_validator_id,
            operation_name: input.operation_name,
            request_parameters: input.request_parameters,
            request_models: input.request_models,
            authorization_scopes: input.authorization_scopes,
            ..Default::default()
        };
        resource.resource_methods.insert(http, method.clone());
        Ok(method)
    })
    .await?;
    Ok(reply(StatusCode::CREATED, &method))
}

async fn fetch(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path((api_id, resource_id, http)): Path<(String, String, String)>,
) -> ApiResult<Response> {
    let method = read_api(&state, &caller, &api_id, |doc| {
        method(doc, &resource_id, &http).cloned()
    })
    .await?;
    Ok(reply(StatusCode::OK, &method))
}

const METHOD_PATHS: [&str; 8] = [
    "/authorizationType",
    "/authorizerId",
    "/apiKeyRequired",
    "/operationName",
    "/requestValidatorId",
    "/authorizationScopes",
    "/requestParameters/{name}",
    "/requestModels/{contentType}",
];

async fn update(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path((api_id, resource_id, http)): Path<(String, String, String)>,
    body: Bytes,
) -> ApiResult<Response> {
    let patch: PatchRequest = json(&body)?;
    let method = modify_api(&state, &caller, &api_id, |doc| {
        for op in &patch.patch_operations {
            apply(doc, &resource_id, &http, op)?;
        }
        let changed = method(doc, &resource_id, &http)?.clone();
        check_authorization(
            doc,
            &changed.authorization_type,
            changed.authorizer_id.as_deref(),
        )?;
        Ok(changed)
    })
    .await?;
    Ok(reply(StatusCode::OK, &method))
}

fn apply(doc: &mut RestApiDoc, resource_id: &str, http: &str, op: &PatchOp) -> ApiResult<()> {
    let segments = op.segments();
    let segments: Vec<&str> = segments.iter().map(String::as_str).collect();
    // References are checked before the method is borrowed for change.
    match segments.as_slice() {
        ["requestValidatorId"] => {
            if let Some(v) = op.set_or_remove()?
                && !doc.request_validators.contains_key(v)
            {
                return Err(ApiError::bad_request(
                    "Invalid Request Validator identifier specified",
                ));
            }
        }
        ["requestModels", _] => {
            if let Some(model) = op.set_or_remove()?
                && !doc.models.contains_key(model)
            {
                return Err(ApiError::bad_request(format!(
                    "Invalid model identifier specified: {model}"
                )));
            }
        }
        _ => {}
    }
    // The type and the authorizer are checked together once every op has
    // applied (`update`): clients change both in one patch, in either order.
    if let ["authorizerId"] = segments.as_slice()
        && let Some(id) = op.set_or_remove()?
        && !doc.authorizers.contains_key(id)
    {
        return Err(ApiError::bad_request(format!(
            "Invalid authorizer ID specified: {id}"
        )));
    }
    let method = method_mut(doc, resource_id, http)?;
    match segments.as_slice() {
        ["authorizationType"] => {
            let t = op.replacement()?;
            one_of(
                t,
                "updateMethodInput.authorizationType",
                &AUTHORIZATION_TYPES,
            )?;
            method.authorization_type = t.to_owned();
        }
        ["authorizerId"] => method.authorizer_id = op.set_or_remove()?.map(str::to_owned),
        ["apiKeyRequired"] => method.api_key_required = op.bool_value()?,
        ["operationName"] => method.operation_name = op.set_or_remove()?.map(str::to_owned),
        ["requestValidatorId"] => {
            method.request_validator_id = op
                .set_or_remove()?
                .filter(|v| !v.is_empty())
                .map(str::to_owned)
        }
        ["authorizationScopes"] => match op.op {
            Op::Add => method.authorization_scopes.push(op.value()?.to_owned()),
            Op::Remove => {
                let v = op.value()?;
                method.authorization_scopes.retain(|s| s != v);
            }
            Op::Replace => method.authorization_scopes = vec![op.value()?.to_owned()],
            _ => return Err(op.invalid_op(&["add", "remove", "replace"])),
        },
        ["requestParameters", key] => {
            check_request_parameter(key)?;
            patch_map(&mut method.request_parameters, key, op, parse_bool)?;
        }
        ["requestModels", content_type] => {
            patch_map(&mut method.request_models, content_type, op, |v| {
                Ok(v.to_owned())
            })?
        }
        _ => return Err(op.invalid_path(&METHOD_PATHS)),
    }
    Ok(())
}

async fn delete(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path((api_id, resource_id, http)): Path<(String, String, String)>,
) -> ApiResult<Response> {
    modify_api(&state, &caller, &api_id, |doc| {
        let http = http_method(&http)?;
        let resource = doc
            .resources
            .get_mut(&resource_id)
            .ok_or_else(invalid_resource)?;
        resource
            .resource_methods
            .remove(&http)
            .ok_or_else(invalid_method)?;
        Ok(())
    })
    .await?;
    Ok(no_content(StatusCode::NO_CONTENT))
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct PutResponseInput {
    #[serde(default)]
    response_parameters: BTreeMap<String, bool>,
    #[serde(default)]
    response_models: BTreeMap<String, String>,
}

async fn put_response(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path((api_id, resource_id, http, status)): Path<(String, String, String, String)>,
    body: Bytes,
) -> ApiResult<Response> {
    let input: PutResponseInput = json(&body)?;
    let status = status_code(&status)?;
    for key in input.response_parameters.keys() {
        check_response_parameter(key)?;
    }
    let response = modify_api(&state, &caller, &api_id, |doc| {
        check_models(doc, &input.response_models)?;
        let method = method_mut(doc, &resource_id, &http)?;
        let response = MethodResponse {
            status_code: status.clone(),
            response_parameters: input.response_parameters,
            response_models: input.response_models,
        };
        method.method_responses.insert(status, response.clone());
        Ok(response)
    })
    .await?;
    Ok(reply(StatusCode::CREATED, &response))
}

async fn fetch_response(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path((api_id, resource_id, http, status)): Path<(String, String, String, String)>,
) -> ApiResult<Response> {
    let response = read_api(&state, &caller, &api_id, |doc| {
        method(doc, &resource_id, &http)?
            .method_responses
            .get(&status)
            .cloned()
            .ok_or_else(invalid_response)
    })
    .await?;
    Ok(reply(StatusCode::OK, &response))
}

async fn update_response(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path((api_id, resource_id, http, status)): Path<(String, String, String, String)>,
    body: Bytes,
) -> ApiResult<Response> {
    let patch: PatchRequest = json(&body)?;
    let response = modify_api(&state, &caller, &api_id, |doc| {
        let models = doc.models.keys().cloned().collect::<Vec<_>>();
        let method = method_mut(doc, &resource_id, &http)?;
        let response = method
            .method_responses
            .get_mut(&status)
            .ok_or_else(invalid_response)?;
        for op in &patch.patch_operations {
            let segments = op.segments();
            match segments
                .iter()
                .map(String::as_str)
                .collect::<Vec<_>>()
                .as_slice()
            {
                ["responseParameters", key] => {
                    check_response_parameter(key)?;
                    patch_map(&mut response.response_parameters, key, op, parse_bool)?;
                }
                ["responseModels", content_type] => {
                    patch_map(&mut response.response_models, content_type, op, |v| {
                        if models.iter().any(|m| m == v) {
                            Ok(v.to_owned())
                        } else {
                            Err(ApiError::bad_request(format!(
                                "Invalid model identifier specified: {v}"
                            )))
                        }
                    })?
                }
                _ => {
                    return Err(op.invalid_path(&[
                        "/responseParameters/{name}",
                        "/responseModels/{contentType}",
                    ]));
                }
            }
        }
        Ok(response.clone())
    })
    .await?;
    // botocore's model gives UpdateMethodResponse a 201.
    Ok(reply(StatusCode::CREATED, &response))
}

async fn delete_response(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path((api_id, resource_id, http, status)): Path<(String, String, String, String)>,
) -> ApiResult<Response> {
    modify_api(&state, &caller, &api_id, |doc| {
        let method = method_mut(doc, &resource_id, &http)?;
        method
            .method_responses
            .remove(&status)
            .ok_or_else(invalid_response)?;
        Ok(())
    })
    .await?;
    Ok(no_content(StatusCode::NO_CONTENT))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_codes() {
        for ok in ["200", "404", "599", "100"] {
            assert!(status_code(ok).is_ok());
        }
        for bad in ["600", "20", "2000", "abc", "099", ""] {
            assert!(status_code(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn request_parameter_names() {
        assert!(check_request_parameter("method.request.querystring.q").is_ok());
        assert!(check_request_parameter("method.request.header.X-Id").is_ok());
        assert!(check_request_parameter("method.request.body.x").is_err());
        assert!(check_request_parameter("querystring.q").is_err());
        assert!(check_request_parameter("method.request.path.").is_err());
    }

    #[test]
    fn methods_are_case_insensitive_and_bounded() {
        assert_eq!(http_method("get").unwrap(), "GET");
        assert!(http_method("FETCH").is_err());
    }
}
