//! GetGatewayResponses, GetGatewayResponse, PutGatewayResponse,
//! UpdateGatewayResponse, DeleteGatewayResponse: what the gateway answers with
//! when it fails a request itself. Only customised types are stored; the
//! others are computed from AWS's defaults.

use std::collections::BTreeMap;

use apigw_proto::gateway_response::{ALL, DEFAULT_TEMPLATE, ResponseType};
use axum::Router;
use axum::body::Bytes;
use axum::extract::{Extension, Path, Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::get;
use serde::Deserialize;

use super::auth::Caller;
use super::input::{Op, Paging, PatchOp, PatchRequest, json, list_body, one_of, page};
use super::methods::status_code;
use super::{AppState, modify_api, no_content, read_api, reply};
use crate::error::{ApiError, ApiResult};
use crate::model::GatewayResponse;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/restapis/{restapi_id}/gatewayresponses", get(list))
        .route(
            "/restapis/{restapi_id}/gatewayresponses/{response_type}",
            get(fetch).put(put).patch(update).delete(delete),
        )
}

/// The enumeration in the order AWS's validation message lists it.
pub(crate) const AWS_ENUM_ORDER: [&str; 21] = [
    "REQUEST_TOO_LARGE",
    "RESOURCE_NOT_FOUND",
    "AUTHORIZER_CONFIGURATION_ERROR",
    "MISSING_AUTHENTICATION_TOKEN",
    "BAD_REQUEST_BODY",
    "INVALID_SIGNATURE",
    "INVALID_API_KEY",
    "BAD_REQUEST_PARAMETERS",
    "AUTHORIZER_FAILURE",
    "UNAUTHORIZED",
    "INTEGRATION_TIMEOUT",
    "ACCESS_DENIED",
    "DEFAULT_4XX",
    "DEFAULT_5XX",
    "WAF_FILTERED",
    "QUOTA_EXCEEDED",
    "THROTTLED",
    "API_CONFIGURATION_ERROR",
    "UNSUPPORTED_MEDIA_TYPE",
    "INTEGRATION_FAILURE",
    "EXPIRED_TOKEN",
];

/// An unknown type is a model violation (ValidationException), as on AWS.
fn response_type(raw: &str) -> ApiResult<ResponseType> {
    one_of(raw, "responseType", &AWS_ENUM_ORDER)?;
    ResponseType::parse(raw)
        .ok_or_else(|| ApiError::Internal(format!("response type {raw} has no definition")))
}

fn default_templates() -> BTreeMap<String, String> {
    BTreeMap::from([("application/json".to_owned(), DEFAULT_TEMPLATE.to_owned())])
}

/// AWS's built-in response for a type.
fn built_in(t: ResponseType) -> GatewayResponse {
    GatewayResponse {
        response_type: t.as_str().to_owned(),
        status_code: t.default_status().map(|s| s.to_string()),
        response_parameters: BTreeMap::new(),
        response_templates: default_templates(),
        default_response: true,
    }
}

/// What a type answers with: its customisation; else, for a type with a
/// status, the customised DEFAULT_4XX/DEFAULT_5XX of its class (still shown as
/// `defaultResponse: true`, as AWS does); else the built-in response.
fn effective(custom: &BTreeMap<String, GatewayResponse>, t: ResponseType) -> GatewayResponse {
    if let Some(r) = custom.get(t.as_str()) {
        return r.clone();
    }
    let Some(status) = t.default_status() else {
        return built_in(t);
    };
    let class = if status >= 500 {
        ResponseType::Default5xx
    } else {
        ResponseType::Default4xx
    };
    match custom.get(class.as_str()) {
        None => built_in(t),
        Some(fallback) => GatewayResponse {
            response_type: t.as_str().to_owned(),
            status_code: fallback
                .status_code
                .clone()
                .or_else(|| Some(status.to_string())),
            response_parameters: fallback.response_parameters.clone(),
            response_templates: if fallback.response_templates.is_empty() {
                default_templates()
            } else {
                fallback.response_templates.clone()
            },
            default_response: true,
        },
    }
}

fn all_effective(custom: &BTreeMap<String, GatewayResponse>) -> Vec<GatewayResponse> {
    ALL.iter().map(|t| effective(custom, *t)).collect()
}

const HEADER_LOCATIONS: [&str; 3] = ["header", "path", "querystring"];
const REQUEST_LOCATIONS: [&str; 5] = [
    "header",
    "path",
    "querystring",
    "multivalueheader",
    "multivaluequerystring",
];

/// `gatewayresponse.{header|path|querystring}.{name}` mapped from
/// `method.request.{location}.{name}`, `stageVariables.{name}`,
/// `context.{name}` or a quoted literal `'value'`.
pub(crate) fn check_parameter(key: &str, value: &str) -> ApiResult<()> {
    let key_ok = key
        .strip_prefix("gatewayresponse.")
        .and_then(|rest| rest.split_once('.'))
        .is_some_and(|(loc, name)| HEADER_LOCATIONS.contains(&loc) && !name.is_empty());
    if !key_ok {
        return Err(ApiError::bad_request(format!(
            "Invalid parameter name specified: '{key}' must be gatewayresponse.header.{{name}}, \
             gatewayresponse.path.{{name}} or gatewayresponse.querystring.{{name}}"
        )));
    }
    let from_request = value
        .strip_prefix("method.request.")
        .and_then(|rest| rest.split_once('.'))
        .is_some_and(|(loc, name)| REQUEST_LOCATIONS.contains(&loc) && !name.is_empty());
    let named = |prefix: &str| value.strip_prefix(prefix).is_some_and(|n| !n.is_empty());
    let literal = value.len() >= 2 && value.starts_with('\'') && value.ends_with('\'');
    if from_request || named("stageVariables.") || named("context.") || literal {
        Ok(())
    } else {
        Err(ApiError::bad_request(format!(
            "Invalid mapping expression specified: {key} = {value} (the value must be \
             method.request.{{location}}.{{name}}, stageVariables.{{name}}, context.{{name}} or a quoted 'literal')"
        )))
    }
}

fn empty_value(member: &str) -> ApiError {
    ApiError::bad_request(format!("Invalid null or empty value in {member}"))
}

fn check_templates(templates: &BTreeMap<String, String>) -> ApiResult<()> {
    for (content_type, template) in templates {
        if content_type.trim().is_empty() {
            return Err(ApiError::bad_request(
                "Invalid content type specified: it must not be empty",
            ));
        }
        if template.is_empty() {
            return Err(empty_value("responseTemplates"));
        }
    }
    Ok(())
}

async fn list(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(api_id): Path<String>,
    Query(paging): Query<Paging>,
) -> ApiResult<Response> {
    let body = read_api(&state, &caller, &api_id, |doc| {
        let (items, position) = page(
            all_effective(&doc.gateway_responses),
            |r| r.response_type.as_str(),
            &paging,
        )?;
        Ok(list_body(&items, position))
    })
    .await?;
    Ok(reply(StatusCode::OK, &body))
}

async fn fetch(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path((api_id, raw_type)): Path<(String, String)>,
) -> ApiResult<Response> {
    let t = response_type(&raw_type)?;
    let response = read_api(&state, &caller, &api_id, |doc| {
        Ok(effective(&doc.gateway_responses, t))
    })
    .await?;
    Ok(reply(StatusCode::OK, &response))
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct PutInput {
    status_code: Option<String>,
    response_parameters: Option<BTreeMap<String, String>>,
    response_templates: Option<BTreeMap<String, String>>,
}

/// The customisation a PUT stores: it replaces any earlier one whole, and
/// what it leaves out is the type's own default (AWS does not inherit from
/// DEFAULT_4XX/5XX here).
fn customised(t: ResponseType, input: PutInput) -> ApiResult<GatewayResponse> {
    let status_code = match input.status_code {
        Some(s) => Some(status_code(&s)?),
        None => t.default_status().map(|s| s.to_string()),
    };
    let response_parameters = input.response_parameters.unwrap_or_default();
    for (key, value) in &response_parameters {
        check_parameter(key, value)?;
    }
    let response_templates = input
        .response_templates
        .filter(|t| !t.is_empty())
        .unwrap_or_else(default_templates);
    check_templates(&response_templates)?;
    Ok(GatewayResponse {
        response_type: t.as_str().to_owned(),
        status_code,
        response_parameters,
        response_templates,
        default_response: false,
    })
}

async fn put(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path((api_id, raw_type)): Path<(String, String)>,
    body: Bytes,
) -> ApiResult<Response> {
    let t = response_type(&raw_type)?;
    let input: PutInput = json(&body)?;
    let response = customised(t, input)?;
    modify_api(&state, &caller, &api_id, |doc| {
        doc.gateway_responses
            .insert(response.response_type.clone(), response.clone());
        Ok(())
    })
    .await?;
    Ok(reply(StatusCode::CREATED, &response))
}

fn invalid_patch_path(op: &PatchOp) -> ApiError {
    ApiError::bad_request(format!("Invalid patch path {}", op.path))
}

/// Adds, replaces or removes one entry of `responseParameters` or
/// `responseTemplates`; replacing or removing a missing entry is refused.
fn patch_entry(
    map: &mut BTreeMap<String, String>,
    key: &str,
    member: &str,
    op: &PatchOp,
    check: impl FnOnce(&str) -> ApiResult<()>,
) -> ApiResult<()> {
    let missing = || ApiError::not_found("Invalid parameter name specified");
    match op.op {
        Op::Add | Op::Replace => {
            if op.op == Op::Replace && !map.contains_key(key) {
                return Err(missing());
            }
            let value = op
                .value
                .as_deref()
                .filter(|v| !v.is_empty())
                .ok_or_else(|| empty_value(member))?;
            check(value)?;
            map.insert(key.to_owned(), value.to_owned());
        }
        Op::Remove => {
            map.remove(key).ok_or_else(missing)?;
        }
        _ => return Err(op.invalid_op(&["add", "remove", "replace"])),
    }
    Ok(())
}

fn apply(response: &mut GatewayResponse, op: &PatchOp) -> ApiResult<()> {
    let segments = op.segments();
    match segments
        .iter()
        .map(String::as_str)
        .collect::<Vec<_>>()
        .as_slice()
    {
        ["statusCode"] => match op.op {
            Op::Replace => response.status_code = Some(status_code(op.value()?)?),
            Op::Add | Op::Remove => return Err(invalid_patch_path(op)),
            _ => return Err(op.invalid_op(&["replace"])),
        },
        ["responseParameters", key] if !key.is_empty() => patch_entry(
            &mut response.response_parameters,
            key,
            "responseParameters",
            op,
            |v| check_parameter(key, v),
        )?,
        ["responseTemplates", content_type] if !content_type.trim().is_empty() => patch_entry(
            &mut response.response_templates,
            content_type,
            "responseTemplates",
            op,
            |_| Ok(()),
        )?,
        _ => return Err(invalid_patch_path(op)),
    }
    Ok(())
}

async fn update(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path((api_id, raw_type)): Path<(String, String)>,
    body: Bytes,
) -> ApiResult<Response> {
    let t = response_type(&raw_type)?;
    let patch: PatchRequest = json(&body)?;
    let response = modify_api(&state, &caller, &api_id, |doc| {
        // Patching an uncustomised type customises it, starting from its own default.
        let mut response = doc
            .gateway_responses
            .get(t.as_str())
            .cloned()
            .unwrap_or_else(|| built_in(t));
        response.default_response = false;
        for op in &patch.patch_operations {
            apply(&mut response, op)?;
        }
        doc.gateway_responses
            .insert(response.response_type.clone(), response.clone());
        Ok(response)
    })
    .await?;
    Ok(reply(StatusCode::OK, &response))
}

async fn delete(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path((api_id, raw_type)): Path<(String, String)>,
) -> ApiResult<Response> {
    let t = response_type(&raw_type)?;
    modify_api(&state, &caller, &api_id, |doc| {
        doc.gateway_responses
            .remove(t.as_str())
            .ok_or_else(|| ApiError::not_found("Gateway response type not defined on api"))?;
        Ok(())
    })
    .await?;
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
    fn defaults_list_all_21_types_as_aws_does() {
        let items = all_effective(&BTreeMap::new());
        assert_eq!(items.len(), 21);
        for item in &items {
            let v = serde_json::to_value(item).unwrap();
            let mut expected = serde_json::json!({
                "defaultResponse": true,
                "responseParameters": {},
                "responseTemplates": {"application/json": "{\"message\":$context.error.messageString}"},
                "responseType": item.response_type,
            });
            if !item.response_type.starts_with("DEFAULT_") {
                expected["statusCode"] = v["statusCode"].clone();
                assert!(v["statusCode"].is_string(), "{v}");
            }
            assert_eq!(v, expected);
        }
        let v =
            serde_json::to_value(effective(&BTreeMap::new(), ResponseType::Default4xx)).unwrap();
        assert!(v.get("statusCode").is_none());
        assert_eq!(
            effective(&BTreeMap::new(), ResponseType::Throttled)
                .status_code
                .as_deref(),
            Some("429")
        );
    }

    #[test]
    fn enum_message_lists_exactly_the_known_types() {
        let mut aws: Vec<&str> = AWS_ENUM_ORDER.to_vec();
        let mut ours: Vec<&str> = ALL.iter().map(|t| t.as_str()).collect();
        aws.sort();
        ours.sort();
        assert_eq!(aws, ours);
        assert!(matches!(
            response_type("NOT_A_TYPE"),
            Err(ApiError::Validation(_))
        ));
        assert_eq!(response_type("THROTTLED").unwrap(), ResponseType::Throttled);
    }

    #[test]
    fn uncustomised_types_inherit_a_customised_class_default() {
        let mut custom = BTreeMap::new();
        let put = |t, status: Option<&str>| {
            let input = PutInput {
                status_code: status.map(Into::into),
                response_parameters: Some(BTreeMap::from([(
                    "gatewayresponse.header.x".into(),
                    "'y'".into(),
                )])),
                response_templates: None,
            };
            customised(t, input).unwrap()
        };
        custom.insert(
            "DEFAULT_5XX".to_owned(),
            put(ResponseType::Default5xx, Some("599")),
        );
        custom.insert(
            "AUTHORIZER_FAILURE".to_owned(),
            put(ResponseType::AuthorizerFailure, None),
        );

        let inherited = effective(&custom, ResponseType::ApiConfigurationError);
        assert!(inherited.default_response);
        assert_eq!(inherited.status_code.as_deref(), Some("599"));
        assert_eq!(inherited.response_parameters.len(), 1);
        // Customised without a status: its own default, not the class's.
        let own = effective(&custom, ResponseType::AuthorizerFailure);
        assert!(!own.default_response);
        assert_eq!(own.status_code.as_deref(), Some("500"));
        assert_eq!(own.response_templates, default_templates());
        // 4xx types are untouched.
        assert_eq!(
            effective(&custom, ResponseType::Throttled),
            built_in(ResponseType::Throttled)
        );
    }

    #[test]
    fn parameter_mappings() {
        for (k, v) in [
            (
                "gatewayresponse.header.Access-Control-Allow-Origin",
                "'a.b.c'",
            ),
            ("gatewayresponse.header.x", "method.request.header.Accept"),
            (
                "gatewayresponse.querystring.q",
                "method.request.querystring.q",
            ),
            ("gatewayresponse.path.p", "method.request.path.petId"),
            ("gatewayresponse.header.s", "stageVariables.name"),
            ("gatewayresponse.header.c", "context.requestId"),
        ] {
            assert!(check_parameter(k, v).is_ok(), "{k} = {v}");
        }
        for (k, v) in [
            ("gatewayresponse.body.x", "'v'"),
            ("method.response.header.x", "'v'"),
            ("gatewayresponse.header.", "'v'"),
            ("gatewayresponse.header.x", "v"),
            ("gatewayresponse.header.x", "'"),
            ("gatewayresponse.header.x", "method.request.body.x"),
            ("gatewayresponse.header.x", "context."),
        ] {
            assert!(check_parameter(k, v).is_err(), "{k} = {v}");
        }
    }

    #[test]
    fn put_fills_in_defaults_and_checks_values() {
        let r = customised(
            ResponseType::MissingAuthenticationToken,
            PutInput {
                status_code: None,
                response_parameters: None,
                response_templates: None,
            },
        )
        .unwrap();
        assert_eq!(r.status_code.as_deref(), Some("403"));
        assert_eq!(r.response_templates, default_templates());
        assert!(!r.default_response);
        let fallback = customised(
            ResponseType::Default4xx,
            PutInput {
                status_code: None,
                response_parameters: None,
                response_templates: None,
            },
        )
        .unwrap();
        assert_eq!(fallback.status_code, None);
        let bad_status = PutInput {
            status_code: Some("600".into()),
            response_parameters: None,
            response_templates: None,
        };
        assert!(customised(ResponseType::Throttled, bad_status).is_err());
        let empty_template = PutInput {
            status_code: None,
            response_parameters: None,
            response_templates: Some(BTreeMap::from([("application/json".into(), String::new())])),
        };
        assert_eq!(
            customised(ResponseType::Throttled, empty_template)
                .unwrap_err()
                .to_string(),
            "Invalid null or empty value in responseTemplates"
        );
    }

    #[test]
    fn patches_follow_aws() {
        let mut r = built_in(ResponseType::MissingAuthenticationToken);
        apply(&mut r, &op(Op::Replace, "/statusCode", Some("410"))).unwrap();
        apply(
            &mut r,
            &op(
                Op::Add,
                "/responseParameters/gatewayresponse.header.x",
                Some("'v'"),
            ),
        )
        .unwrap();
        apply(
            &mut r,
            &op(
                Op::Replace,
                "/responseTemplates/application~1json",
                Some("{}"),
            ),
        )
        .unwrap();
        apply(
            &mut r,
            &op(Op::Add, "/responseTemplates/application~1xml", Some("<a/>")),
        )
        .unwrap();
        assert_eq!(r.status_code.as_deref(), Some("410"));
        assert_eq!(r.response_parameters["gatewayresponse.header.x"], "'v'");
        assert_eq!(r.response_templates["application/json"], "{}");
        assert_eq!(r.response_templates["application/xml"], "<a/>");
        apply(
            &mut r,
            &op(
                Op::Remove,
                "/responseParameters/gatewayresponse.header.x",
                None,
            ),
        )
        .unwrap();
        assert!(r.response_parameters.is_empty());

        let err = |r: &mut GatewayResponse, o: PatchOp| apply(r, &o).unwrap_err().to_string();
        for o in [Op::Add, Op::Remove] {
            assert_eq!(
                err(&mut r, op(o, "/statusCode", Some("418"))),
                "Invalid patch path /statusCode"
            );
        }
        assert_eq!(
            err(&mut r, op(Op::Add, "/wrongPath", Some("x"))),
            "Invalid patch path /wrongPath"
        );
        assert_eq!(
            err(
                &mut r,
                op(Op::Replace, "/responseTemplates/application~1json", None)
            ),
            "Invalid null or empty value in responseTemplates"
        );
        assert_eq!(
            err(
                &mut r,
                op(
                    Op::Replace,
                    "/responseTemplates/application~1json",
                    Some("")
                )
            ),
            "Invalid null or empty value in responseTemplates"
        );
        assert_eq!(
            err(
                &mut r,
                op(
                    Op::Replace,
                    "/responseParameters/gatewayresponse.header.nope",
                    Some("'v'")
                )
            ),
            "Invalid parameter name specified"
        );
        assert!(
            apply(
                &mut r,
                &op(
                    Op::Add,
                    "/responseParameters/gatewayresponse.header.y",
                    Some("bad")
                )
            )
            .is_err()
        );
        assert!(apply(&mut r, &op(Op::Replace, "/statusCode", Some("99"))).is_err());
        assert_eq!(r.status_code.as_deref(), Some("410"));
    }
}
