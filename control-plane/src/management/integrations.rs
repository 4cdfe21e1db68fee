//! PutIntegration, GetIntegration, UpdateIntegration, DeleteIntegration and
//! the integration-response operations.

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
use super::methods::{http_method, invalid_response, method, method_mut, status_code};
use super::{AppState, modify_api, no_content, read_api, reply};
use crate::error::{ApiError, ApiResult};
use crate::model::{Integration, IntegrationResponse, RestApiDoc, TlsConfig};

pub fn routes() -> Router<AppState> {
    Router::new()
        .route(
            "/restapis/{restapi_id}/resources/{resource_id}/methods/{http_method}/integration",
            get(fetch).put(put).patch(update).delete(delete),
        )
        .route(
            "/restapis/{restapi_id}/resources/{resource_id}/methods/{http_method}/integration/responses/{status_code}",
            get(fetch_response).put(put_response).patch(update_response).delete(delete_response),
        )
}

pub(crate) const TYPES: [&str; 5] = ["HTTP", "AWS", "MOCK", "HTTP_PROXY", "AWS_PROXY"];
pub(crate) const PASSTHROUGH: [&str; 3] = ["WHEN_NO_MATCH", "WHEN_NO_TEMPLATES", "NEVER"];
pub(crate) const CONTENT_HANDLING: [&str; 2] = ["CONVERT_TO_BINARY", "CONVERT_TO_TEXT"];
pub(crate) const CONNECTION_TYPES: [&str; 2] = ["INTERNET", "VPC_LINK"];
const TRANSFER_MODES: [&str; 2] = ["BUFFERED", "STREAM"];
pub const MIN_TIMEOUT_MS: i64 = 50;
pub const MAX_TIMEOUT_MS: i64 = 29_000;

fn invalid_integration() -> ApiError {
    ApiError::not_found("Invalid Integration identifier specified")
}

fn integration_mut<'a>(
    doc: &'a mut RestApiDoc,
    resource_id: &str,
    http: &str,
) -> ApiResult<&'a mut Integration> {
    method_mut(doc, resource_id, http)?
        .method_integration
        .as_mut()
        .ok_or_else(invalid_integration)
}

pub(crate) fn check_timeout(ms: i64) -> ApiResult<()> {
    if (MIN_TIMEOUT_MS..=MAX_TIMEOUT_MS).contains(&ms) {
        Ok(())
    } else {
        Err(ApiError::bad_request(format!(
            "Timeout should be between {MIN_TIMEOUT_MS} ms and {MAX_TIMEOUT_MS} ms (timeoutInMillis: {ms})"
        )))
    }
}

/// The URI each integration type needs: an absolute http(s) URL (stage
/// variables allowed) for HTTP types, an API Gateway service ARN for AWS types.
pub(crate) fn check_uri(integration_type: &str, uri: Option<&str>) -> ApiResult<()> {
    match integration_type {
        "MOCK" => Ok(()),
        "HTTP" | "HTTP_PROXY" => {
            let uri = uri.filter(|u| !u.is_empty()).ok_or_else(|| {
                ApiError::bad_request(format!("Invalid integration URI specified: 'uri' is required for type {integration_type}"))
            })?;
            let without_vars = stage_variables_replaced(uri);
            match url::Url::parse(&without_vars) {
                Ok(u) if matches!(u.scheme(), "http" | "https") && u.host().is_some() => Ok(()),
                _ => Err(ApiError::bad_request(format!(
                    "Invalid HTTP endpoint specified for URI: '{uri}'"
                ))),
            }
        }
        _ => {
            let uri = uri.filter(|u| !u.is_empty()).ok_or_else(|| {
                ApiError::bad_request(format!("Invalid integration URI specified: 'uri' is required for type {integration_type}"))
            })?;
            if uri.starts_with("arn:aws:apigateway:") {
                Ok(())
            } else {
                Err(ApiError::bad_request(format!(
                    "AWS ARN for integration must contain path or action: '{uri}' is not an arn:aws:apigateway:{{region}}:{{service}}:... ARN"
                )))
            }
        }
    }
}

/// `${stageVariables.x}` → `x`, so a templated URL can be checked for shape.
fn stage_variables_replaced(uri: &str) -> String {
    let mut out = String::with_capacity(uri.len());
    let mut rest = uri;
    while let Some(start) = rest.find("${") {
        out.push_str(&rest[..start]);
        match rest[start..].find('}') {
            Some(end) => {
                out.push('x');
                rest = &rest[start + end + 1..];
            }
            None => {
                rest = &rest[start..];
                break;
            }
        }
    }
    out.push_str(rest);
    out
}

const INTEGRATION_LOCATIONS: [&str; 3] = ["path", "querystring", "header"];

pub(crate) fn check_request_mapping(key: &str, value: &str) -> ApiResult<()> {
    let key_ok = key
        .strip_prefix("integration.request.")
        .and_then(|rest| rest.split_once('.'))
        .is_some_and(|(loc, name)| INTEGRATION_LOCATIONS.contains(&loc) && !name.is_empty());
    let value_ok = ["method.request.", "stageVariables.", "context."]
        .iter()
        .any(|p| value.starts_with(p))
        || (value.len() >= 2 && value.starts_with('\'') && value.ends_with('\''));
    if key_ok && value_ok {
        Ok(())
    } else {
        Err(ApiError::bad_request(format!(
            "Invalid mapping expression specified: {key} = {value}"
        )))
    }
}

pub(crate) fn check_response_mapping(key: &str, value: &str) -> ApiResult<()> {
    let key_ok = key
        .strip_prefix("method.response.header.")
        .is_some_and(|n| !n.is_empty());
    let value_ok = [
        "integration.response.header.",
        "integration.response.multivalueheader.",
        "integration.response.body",
        "stageVariables.",
        "context.",
    ]
    .iter()
    .any(|p| value.starts_with(p))
        || (value.len() >= 2 && value.starts_with('\'') && value.ends_with('\''));
    if key_ok && value_ok {
        Ok(())
    } else {
        Err(ApiError::bad_request(format!(
            "Invalid mapping expression specified: {key} = {value}"
        )))
    }
}

pub(crate) fn check_selection_pattern(pattern: &str) -> ApiResult<()> {
    regex::Regex::new(pattern)
        .map(|_| ())
        .map_err(|e| ApiError::bad_request(format!("Invalid selection pattern '{pattern}': {e}")))
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct PutInput {
    #[serde(rename = "type")]
    integration_type: Option<String>,
    http_method: Option<String>,
    uri: Option<String>,
    connection_type: Option<String>,
    connection_id: Option<String>,
    credentials: Option<String>,
    #[serde(default)]
    request_parameters: BTreeMap<String, String>,
    #[serde(default)]
    request_templates: BTreeMap<String, String>,
    passthrough_behavior: Option<String>,
    cache_namespace: Option<String>,
    #[serde(default)]
    cache_key_parameters: Vec<String>,
    content_handling: Option<String>,
    timeout_in_millis: Option<i64>,
    tls_config: Option<TlsConfig>,
    response_transfer_mode: Option<String>,
}

async fn put(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path((api_id, resource_id, http)): Path<(String, String, String)>,
    body: Bytes,
) -> ApiResult<Response> {
    let input: PutInput = json(&body)?;
    let integration_type = input
        .integration_type
        .ok_or_else(|| ApiError::bad_request("The 'type' member is required"))?;
    one_of(&integration_type, "putIntegrationInput.type", &TYPES)?;
    let integration_http_method = match input.http_method.filter(|m| !m.is_empty()) {
        Some(m) => Some(http_method(&m).map_err(|_| {
            ApiError::bad_request(format!("Invalid integration HTTP method specified: '{m}'"))
        })?),
        None if integration_type == "MOCK" => None,
        None => {
            return Err(ApiError::bad_request(
                "Enumeration value for HttpMethod must be non-empty",
            ));
        }
    };
    check_uri(&integration_type, input.uri.as_deref())?;
    let timeout = input.timeout_in_millis.unwrap_or(MAX_TIMEOUT_MS);
    check_timeout(timeout)?;
    let passthrough = input
        .passthrough_behavior
        .unwrap_or_else(|| "WHEN_NO_MATCH".into());
    one_of(
        &passthrough,
        "putIntegrationInput.passthroughBehavior",
        &PASSTHROUGH,
    )?;
    if let Some(c) = &input.content_handling {
        one_of(c, "putIntegrationInput.contentHandling", &CONTENT_HANDLING)?;
    }
    let connection_type = input.connection_type.unwrap_or_else(|| "INTERNET".into());
    one_of(
        &connection_type,
        "putIntegrationInput.connectionType",
        &CONNECTION_TYPES,
    )?;
    if let Some(m) = &input.response_transfer_mode {
        one_of(
            m,
            "putIntegrationInput.responseTransferMode",
            &TRANSFER_MODES,
        )?;
    }
    for (k, v) in &input.request_parameters {
        check_request_mapping(k, v)?;
    }
    let integration = modify_api(&state, &caller, &api_id, |doc| {
        let method = method_mut(doc, &resource_id, &http)?;
        let integration = Integration {
            integration_type,
            http_method: integration_http_method,
            uri: input.uri,
            connection_type,
            connection_id: input.connection_id,
            credentials: input.credentials,
            request_parameters: input.request_parameters,
            request_templates: input.request_templates,
            passthrough_behavior: passthrough,
            content_handling: input.content_handling,
            timeout_in_millis: timeout,
            cache_namespace: input.cache_namespace.unwrap_or_else(|| resource_id.clone()),
            cache_key_parameters: input.cache_key_parameters,
            integration_responses: BTreeMap::new(),
            tls_config: input.tls_config,
            response_transfer_mode: input.response_transfer_mode,
        };
        method.method_integration = Some(integration.clone());
        Ok(integration)
    })
    .await?;
    Ok(reply(StatusCode::CREATED, &integration))
}

async fn fetch(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path((api_id, resource_id, http)): Path<(String, String, String)>,
) -> ApiResult<Response> {
    let integration = read_api(&state, &caller, &api_id, |doc| {
        method(doc, &resource_id, &http)?
            .method_integration
            .clone()
            .ok_or_else(invalid_integration)
    })
    .await?;
    Ok(reply(StatusCode::OK, &integration))
}

const INTEGRATION_PATHS: [&str; 13] = [
    "/uri",
    "/httpMethod",
    "/credentials",
    "/timeoutInMillis",
    "/passthroughBehavior",
    "/contentHandling",
    "/connectionType",
    "/connectionId",
    "/cacheNamespace",
    "/tlsConfig/insecureSkipVerification",
    "/requestTemplates/{contentType}",
    "/requestParameters/{name}",
    "/cacheKeyParameters/{name}",
];

async fn update(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path((api_id, resource_id, http)): Path<(String, String, String)>,
    body: Bytes,
) -> ApiResult<Response> {
    let patch: PatchRequest = json(&body)?;
    let integration = modify_api(&state, &caller, &api_id, |doc| {
        let integration = integration_mut(doc, &resource_id, &http)?;
        for op in &patch.patch_operations {
            apply(integration, op)?;
        }
        check_uri(&integration.integration_type, integration.uri.as_deref())?;
        Ok(integration.clone())
    })
    .await?;
    Ok(reply(StatusCode::OK, &integration))
}

fn apply(integration: &mut Integration, op: &PatchOp) -> ApiResult<()> {
    let segments = op.segments();
    match segments
        .iter()
        .map(String::as_str)
        .collect::<Vec<_>>()
        .as_slice()
    {
        ["uri"] => integration.uri = Some(op.replacement()?.to_owned()),
        ["httpMethod"] => integration.http_method = Some(http_method(op.replacement()?)?),
        ["credentials"] => integration.credentials = op.set_or_remove()?.map(str::to_owned),
        ["timeoutInMillis"] => {
            let ms = op.int_value()?;
            check_timeout(ms)?;
            integration.timeout_in_millis = ms;
        }
        ["passthroughBehavior"] => {
            let v = op.replacement()?;
            one_of(
                v,
                "updateIntegrationInput.passthroughBehavior",
                &PASSTHROUGH,
            )?;
            integration.passthrough_behavior = v.to_owned();
        }
        ["contentHandling"] => {
            let v = op.set_or_remove()?.filter(|v| !v.is_empty());
            if let Some(v) = v {
                one_of(
                    v,
                    "updateIntegrationInput.contentHandling",
                    &CONTENT_HANDLING,
                )?;
            }
            integration.content_handling = v.map(str::to_owned);
        }
        ["connectionType"] => {
            let v = op.replacement()?;
            one_of(
                v,
                "updateIntegrationInput.connectionType",
                &CONNECTION_TYPES,
            )?;
            integration.connection_type = v.to_owned();
        }
        ["connectionId"] => integration.connection_id = op.set_or_remove()?.map(str::to_owned),
        ["cacheNamespace"] => integration.cache_namespace = op.replacement()?.to_owned(),
        ["tlsConfig", "insecureSkipVerification"] => {
            integration.tls_config = Some(TlsConfig {
                insecure_skip_verification: op.bool_value()?,
            })
        }
        ["requestTemplates", content_type] => {
            patch_map(&mut integration.request_templates, content_type, op, |v| {
                Ok(v.to_owned())
            })?
        }
        ["requestParameters", key] => {
            patch_map(&mut integration.request_parameters, key, op, |v| {
                check_request_mapping(key, v)?;
                Ok(v.to_owned())
            })?
        }
        ["cacheKeyParameters", name] => match op.op {
            Op::Add => {
                if !integration.cache_key_parameters.iter().any(|p| p == name) {
                    integration.cache_key_parameters.push((*name).to_owned());
                }
            }
            Op::Remove => integration.cache_key_parameters.retain(|p| p != name),
            _ => return Err(op.invalid_op(&["add", "remove"])),
        },
        _ => return Err(op.invalid_path(&INTEGRATION_PATHS)),
    }
    Ok(())
}

async fn delete(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path((api_id, resource_id, http)): Path<(String, String, String)>,
) -> ApiResult<Response> {
    modify_api(&state, &caller, &api_id, |doc| {
        let method = method_mut(doc, &resource_id, &http)?;
        method
            .method_integration
            .take()
            .ok_or_else(invalid_integration)?;
        Ok(())
    })
    .await?;
    Ok(no_content(StatusCode::NO_CONTENT))
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct PutResponseInput {
    selection_pattern: Option<String>,
    #[serde(default)]
    response_parameters: BTreeMap<String, String>,
    #[serde(default)]
    response_templates: BTreeMap<String, String>,
    content_handling: Option<String>,
}

async fn put_response(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path((api_id, resource_id, http, status)): Path<(String, String, String, String)>,
    body: Bytes,
) -> ApiResult<Response> {
    let input: PutResponseInput = json(&body)?;
    let status = status_code(&status)?;
    if let Some(p) = &input.selection_pattern {
        check_selection_pattern(p)?;
    }
    if let Some(c) = &input.content_handling {
        one_of(
            c,
            "putIntegrationResponseInput.contentHandling",
            &CONTENT_HANDLING,
        )?;
    }
    for (k, v) in &input.response_parameters {
        check_response_mapping(k, v)?;
    }
    let response = modify_api(&state, &caller, &api_id, |doc| {
        let method = method_mut(doc, &resource_id, &http)?;
        // As on AWS, the method must declare the response first.
        if !method.method_responses.contains_key(&status) {
            return Err(invalid_response());
        }
        let integration = method
            .method_integration
            .as_mut()
            .ok_or_else(invalid_integration)?;
        let response = IntegrationResponse {
            status_code: status.clone(),
            selection_pattern: input.selection_pattern,
            response_parameters: input.response_parameters,
            response_templates: input.response_templates,
            content_handling: input.content_handling,
        };
        integration
            .integration_responses
            .insert(status, response.clone());
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
        let integration = method(doc, &resource_id, &http)?
            .method_integration
            .as_ref()
            .ok_or_else(invalid_integration)?;
        integration
            .integration_responses
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
        let integration = integration_mut(doc, &resource_id, &http)?;
        let response = integration
            .integration_responses
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
                ["selectionPattern"] => {
                    let p = op.set_or_remove()?;
                    if let Some(p) = p {
                        check_selection_pattern(p)?;
                    }
                    response.selection_pattern = p.map(str::to_owned);
                }
                ["contentHandling"] => {
                    let v = op.set_or_remove()?.filter(|v| !v.is_empty());
                    if let Some(v) = v {
                        one_of(
                            v,
                            "updateIntegrationResponseInput.contentHandling",
                            &CONTENT_HANDLING,
                        )?;
                    }
                    response.content_handling = v.map(str::to_owned);
                }
                ["responseTemplates", content_type] => {
                    patch_map(&mut response.response_templates, content_type, op, |v| {
                        Ok(v.to_owned())
                    })?
                }
                ["responseParameters", key] => {
                    patch_map(&mut response.response_parameters, key, op, |v| {
                        check_response_mapping(key, v)?;
                        Ok(v.to_owned())
                    })?
                }
                _ => {
                    return Err(op.invalid_path(&[
                        "/selectionPattern",
                        "/contentHandling",
                        "/responseTemplates/{contentType}",
                        "/responseParameters/{name}",
                    ]));
                }
            }
        }
        Ok(response.clone())
    })
    .await?;
    Ok(reply(StatusCode::OK, &response))
}

async fn delete_response(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path((api_id, resource_id, http, status)): Path<(String, String, String, String)>,
) -> ApiResult<Response> {
    modify_api(&state, &caller, &api_id, |doc| {
        let integration = integration_mut(doc, &resource_id, &http)?;
        integration
            .integration_responses
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
    fn uris_by_type() {
        assert!(check_uri("MOCK", None).is_ok());
        assert!(check_uri("HTTP_PROXY", Some("http://example.com/{proxy}")).is_ok());
        assert!(check_uri("HTTP", Some("https://${stageVariables.host}/pets")).is_ok());
        assert!(check_uri("HTTP", None).is_err());
        assert!(check_uri("HTTP", Some("not a url")).is_err());
        assert!(check_uri("HTTP", Some("ftp://example.com")).is_err());
        assert!(
            check_uri(
                "AWS_PROXY",
                Some("arn:aws:apigateway:us-east-1:lambda:path/2015-03-31/functions/f/invocations")
            )
            .is_ok()
        );
        assert!(check_uri("AWS", Some("http://example.com")).is_err());
    }

    #[test]
    fn timeouts() {
        assert!(check_timeout(50).is_ok());
        assert!(check_timeout(29_000).is_ok());
        assert!(check_timeout(49).is_err());
        assert!(check_timeout(29_001).is_err());
    }

    #[test]
    fn mapping_expressions() {
        assert!(
            check_request_mapping("integration.request.header.x", "method.request.header.y")
                .is_ok()
        );
        assert!(check_request_mapping("integration.request.querystring.q", "'static'").is_ok());
        assert!(check_request_mapping("integration.request.body.q", "'static'").is_err());
        assert!(check_request_mapping("integration.request.header.x", "whatever").is_err());
        assert!(
            check_response_mapping("method.response.header.x", "integration.response.body.a")
                .is_ok()
        );
        assert!(check_response_mapping("method.response.header.x", "nope").is_err());
    }
}
