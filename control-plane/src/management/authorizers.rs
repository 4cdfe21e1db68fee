//! CreateAuthorizer, GetAuthorizers, GetAuthorizer, UpdateAuthorizer,
//! DeleteAuthorizer: Lambda (TOKEN, REQUEST) and Cognito user-pool
//! authorizers a method's `authorizerId` names. Authorizers live inside their
//! REST API's aggregate, so one tenant can never name another's.

// The nodes' own user-pool ARN parser: what is accepted here is exactly what
// they (and TestInvokeAuthorizer) can fetch keys for.
use apigw_data_plane::auth::jwt::user_pool as parse_user_pool_arn;
use axum::Router;
use axum::body::Bytes;
use axum::extract::{Extension, Path, Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::get;
use serde::Deserialize;

use super::auth::Caller;
use super::input::{Op, Paging, PatchOp, PatchRequest, json, list_body, one_of, page};
use super::{AppState, ids, modify_api, no_content, read_api, reply};
use crate::error::{ApiError, ApiResult};
use crate::model::{Authorizer, RestApiDoc};

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/restapis/{restapi_id}/authorizers", get(list).post(create))
        .route(
            "/restapis/{restapi_id}/authorizers/{authorizer_id}",
            get(fetch)
                .patch(update)
                .delete(delete)
                .post(super::test_invoke_authorizer::handler),
        )
}

pub const AUTHORIZER_TYPES: [&str; 3] = ["TOKEN", "REQUEST", "COGNITO_USER_POOLS"];
/// AWS's default and ceiling for `authorizerResultTtlInSeconds`.
pub const DEFAULT_TTL_SECONDS: i64 = 300;
pub const MAX_TTL_SECONDS: i64 = 3600;

pub(crate) fn invalid_authorizer() -> ApiError {
    ApiError::not_found("Invalid Authorizer identifier specified")
}

/// AWS answers an authorizer call on a missing API as if the authorizer were missing.
fn missing_as_invalid_authorizer(e: ApiError) -> ApiError {
    match e {
        ApiError::NotFound(_) => invalid_authorizer(),
        other => other,
    }
}

/// Whether `id` names an authorizer of this API that a method of
/// `authorization_type` may use (CUSTOM → TOKEN/REQUEST, COGNITO → Cognito).
pub(crate) fn usable_by(doc: &RestApiDoc, id: &str, authorization_type: &str) -> bool {
    doc.authorizers
        .get(id)
        .is_some_and(|a| match authorization_type {
            "CUSTOM" => matches!(a.authorizer_type.as_str(), "TOKEN" | "REQUEST"),
            "COGNITO_USER_POOLS" => a.authorizer_type == "COGNITO_USER_POOLS",
            _ => false,
        })
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct CreateInput {
    name: Option<String>,
    #[serde(rename = "type")]
    authorizer_type: Option<String>,
    #[serde(default, rename = "providerARNs")]
    provider_arns: Vec<String>,
    auth_type: Option<String>,
    authorizer_uri: Option<String>,
    authorizer_credentials: Option<String>,
    identity_source: Option<String>,
    identity_validation_expression: Option<String>,
    authorizer_result_ttl_in_seconds: Option<i64>,
}

/// The whole authorizer must make sense after every change, as AWS checks.
pub(crate) fn validate(a: &Authorizer) -> ApiResult<()> {
    if a.name.trim().is_empty() {
        return Err(ApiError::bad_request("Authorizer name must be non-empty"));
    }
    one_of(
        &a.authorizer_type,
        "createAuthorizerInput.type",
        &AUTHORIZER_TYPES,
    )?;
    if let Some(ttl) = a.authorizer_result_ttl_in_seconds
        && !(0..=MAX_TTL_SECONDS).contains(&ttl)
    {
        return Err(ApiError::bad_request(format!(
            "Invalid authorizer TTL specified: {ttl}. Value must be between 0 and {MAX_TTL_SECONDS} seconds"
        )));
    }
    match a.authorizer_type.as_str() {
        "COGNITO_USER_POOLS" => {
            if a.provider_arns.is_empty() {
                return Err(ApiError::bad_request(
                    "Invalid providerARNs specified. At least one Cognito user pool ARN is required for a COGNITO_USER_POOLS authorizer",
                ));
            }
            for arn in &a.provider_arns {
                if parse_user_pool_arn(arn).is_none() {
                    return Err(ApiError::bad_request(format!(
                        "Invalid provider ARN specified: {arn}. Expected arn:aws:cognito-idp:{{region}}:{{account}}:userpool/{{poolId}}"
                    )));
                }
            }
        }
        _ => {
            let uri = a.authorizer_uri.as_deref().unwrap_or_default();
            if lambda_function_of(uri).is_none() {
                return Err(ApiError::bad_request(format!(
                    "Invalid Authorizer URI: {}. Authorizer URI should be a valid API Gateway ARN that represents a Lambda function invocation.",
                    if uri.is_empty() { "null" } else { uri }
                )));
            }
        }
    }
    let source = a.identity_source.as_deref().unwrap_or_default();
    match a.authorizer_type.as_str() {
        "TOKEN" | "COGNITO_USER_POOLS" => {
            let ok = source
                .strip_prefix("method.request.header.")
                .is_some_and(|h| !h.is_empty() && !h.contains(['.', ',', ' ']));
            if !ok {
                return Err(ApiError::bad_request(format!(
                    "Invalid identity source specified: '{source}'. Identity source must be a header mapping expression (method.request.header.<name>)"
                )));
            }
        }
        _ => {
            // REQUEST: a source list, required only when results are cached.
            let caching = a.authorizer_result_ttl_in_seconds.unwrap_or(0) > 0;
            if source.trim().is_empty() {
                if caching {
                    return Err(ApiError::bad_request(
                        "Identity source is required when authorizer caching is enabled",
                    ));
                }
            } else {
                for part in source.split(',') {
                    check_request_source(part.trim())?;
                }
            }
        }
    }
    if let Some(expr) = a.identity_validation_expression.as_deref()
        && !expr.is_empty()
        && regex_lite_check(expr).is_err()
    {
        return Err(ApiError::bad_request(format!(
            "Invalid identity validation expression specified: {expr}"
        )));
    }
    Ok(())
}

fn regex_lite_check(expr: &str) -> Result<(), ()> {
    regex::Regex::new(expr).map(|_| ()).map_err(|_| ())
}

/// A REQUEST authorizer's identity source: header, query string, stage variable or context value.
fn check_request_source(part: &str) -> ApiResult<()> {
    let prefixes = [
        "method.request.header.",
        "method.request.querystring.",
        "stageVariables.",
        "context.",
    ];
    let ok = prefixes
        .iter()
        .any(|p| part.strip_prefix(p).is_some_and(|rest| !rest.is_empty()));
    if ok {
        Ok(())
    } else {
        Err(ApiError::bad_request(format!(
            "Invalid identity source specified: '{part}'. Must be method.request.header.*, \
             method.request.querystring.*, stageVariables.* or context.*"
        )))
    }
}

/// The function ARN inside `arn:aws:apigateway:{region}:lambda:path/2015-03-31/functions/{fn}/invocations`.
pub fn lambda_function_of(uri: &str) -> Option<&str> {
    let rest = uri.strip_prefix("arn:")?;
    let (_partition, rest) = rest.split_once(':')?;
    let rest = rest.strip_prefix("apigateway:")?;
    let (region, rest) = rest.split_once(':')?;
    if region.is_empty() {
        return None;
    }
    let function = rest
        .strip_prefix("lambda:path/2015-03-31/functions/")?
        .strip_suffix("/invocations")?;
    (!function.is_empty()).then_some(function)
}

async fn create(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(api_id): Path<String>,
    body: Bytes,
) -> ApiResult<Response> {
    let input: CreateInput = json(&body)?;
    let name = input
        .name
        .ok_or_else(|| ApiError::bad_request("The 'name' member is required"))?;
    let authorizer_type = input
        .authorizer_type
        .ok_or_else(|| ApiError::bad_request("The 'type' member is required"))?;
    let ttl = input.authorizer_result_ttl_in_seconds.or(
        // AWS fills in its default for the Lambda kinds and Cognito alike.
        Some(DEFAULT_TTL_SECONDS),
    );
    let mut authorizer = Authorizer {
        id: String::new(),
        name,
        authorizer_type,
        provider_arns: input.provider_arns,
        auth_type: input.auth_type,
        authorizer_uri: input.authorizer_uri,
        authorizer_credentials: input.authorizer_credentials,
        identity_source: input.identity_source,
        identity_validation_expression: input.identity_validation_expression,
        authorizer_result_ttl_in_seconds: ttl,
    };
    validate(&authorizer)?;
    let authorizer = modify_api(&state, &caller, &api_id, |doc| {
        let mut id = ids::short();
        while doc.authorizers.contains_key(&id) {
            id = ids::short();
        }
        authorizer.id = id.clone();
        doc.authorizers.insert(id, authorizer.clone());
        Ok(authorizer)
    })
    .await?;
    Ok(reply(StatusCode::CREATED, &authorizer))
}

async fn list(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(api_id): Path<String>,
    Query(paging): Query<Paging>,
) -> ApiResult<Response> {
    let body = read_api(&state, &caller, &api_id, |doc| {
        let all: Vec<&Authorizer> = doc.authorizers.values().collect();
        let (items, position) = page(all, |a| a.id.as_str(), &paging)?;
        Ok(list_body(&items, position))
    })
    .await?;
    Ok(reply(StatusCode::OK, &body))
}

async fn fetch(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path((api_id, authorizer_id)): Path<(String, String)>,
) -> ApiResult<Response> {
    let authorizer = read_api(&state, &caller, &api_id, |doc| {
        doc.authorizers
            .get(&authorizer_id)
            .cloned()
            .ok_or_else(invalid_authorizer)
    })
    .await
    .map_err(missing_as_invalid_authorizer)?;
    Ok(reply(StatusCode::OK, &authorizer))
}

const PATCH_PATHS: [&str; 9] = [
    "/name",
    "/type",
    "/authorizerUri",
    "/authorizerCredentials",
    "/identitySource",
    "/identityValidationExpression",
    "/authorizerResultTtlInSeconds",
    "/authType",
    "/providerARNs",
];

fn apply(a: &mut Authorizer, op: &PatchOp) -> ApiResult<()> {
    let optional = |op: &PatchOp| -> ApiResult<Option<String>> {
        Ok(op
            .set_or_remove()?
            .filter(|v| !v.is_empty())
            .map(str::to_owned))
    };
    match op.path.as_str() {
        "/providerARNs" => match op.op {
            Op::Add => {
                let v = op.value()?.to_owned();
                if !a.provider_arns.contains(&v) {
                    a.provider_arns.push(v);
                }
            }
            Op::Remove => {
                let v = op.value()?;
                a.provider_arns.retain(|p| p != v);
            }
            Op::Replace => a.provider_arns = vec![op.value()?.to_owned()],
            _ => return Err(op.invalid_op(&["add", "remove", "replace"])),
        },
        "/name" => a.name = op.replacement()?.to_owned(),
        "/type" => a.authorizer_type = op.replacement()?.to_owned(),
        "/authorizerUri" => a.authorizer_uri = optional(op)?,
        "/authorizerCredentials" => a.authorizer_credentials = optional(op)?,
        "/identitySource" => a.identity_source = optional(op)?,
        "/identityValidationExpression" => a.identity_validation_expression = optional(op)?,
        "/authType" => a.auth_type = optional(op)?,
        "/authorizerResultTtlInSeconds" => {
            a.authorizer_result_ttl_in_seconds = Some(op.int_value()?);
        }
        _ => return Err(op.invalid_path(&PATCH_PATHS)),
    }
    Ok(())
}

async fn update(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path((api_id, authorizer_id)): Path<(String, String)>,
    body: Bytes,
) -> ApiResult<Response> {
    let patch: PatchRequest = json(&body)?;
    let authorizer = modify_api(&state, &caller, &api_id, |doc| {
        let mut changed = doc
            .authorizers
            .get(&authorizer_id)
            .cloned()
            .ok_or_else(invalid_authorizer)?;
        for op in &patch.patch_operations {
            apply(&mut changed, op)?;
        }
        validate(&changed)?;
        if let Some(method) = first_user(doc, &authorizer_id)
            && !usable_by_type(&changed, &method.1)
        {
            return Err(ApiError::conflict(format!(
                "Cannot change the type of authorizer '{authorizer_id}', it is referenced in method: {}",
                method.0
            )));
        }
        doc.authorizers.insert(authorizer_id.clone(), changed.clone());
        Ok(changed)
    })
    .await
    .map_err(missing_as_invalid_authorizer)?;
    Ok(reply(StatusCode::OK, &authorizer))
}

fn usable_by_type(a: &Authorizer, authorization_type: &str) -> bool {
    match authorization_type {
        "CUSTOM" => matches!(a.authorizer_type.as_str(), "TOKEN" | "REQUEST"),
        "COGNITO_USER_POOLS" => a.authorizer_type == "COGNITO_USER_POOLS",
        _ => true,
    }
}

/// The first method using an authorizer: (`{path}/{HTTP}`, its authorizationType).
fn first_user(doc: &RestApiDoc, authorizer_id: &str) -> Option<(String, String)> {
    doc.resources.values().find_map(|resource| {
        resource
            .resource_methods
            .iter()
            .find(|(_, m)| m.authorizer_id.as_deref() == Some(authorizer_id))
            .map(|(http, m)| {
                (
                    format!("{}/{http}", doc.path_of(&resource.id)),
                    m.authorization_type.clone(),
                )
            })
    })
}

async fn delete(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path((api_id, authorizer_id)): Path<(String, String)>,
) -> ApiResult<Response> {
    modify_api(&state, &caller, &api_id, |doc| {
        if !doc.authorizers.contains_key(&authorizer_id) {
            return Err(invalid_authorizer());
        }
        if let Some((method, _)) = first_user(doc, &authorizer_id) {
            return Err(ApiError::conflict(format!(
                "Cannot delete authorizer '{authorizer_id}', is referenced in method: {method}"
            )));
        }
        doc.authorizers.remove(&authorizer_id);
        Ok(())
    })
    .await
    .map_err(missing_as_invalid_authorizer)?;
    Ok(no_content(StatusCode::ACCEPTED))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn token() -> Authorizer {
        Authorizer {
            id: "a1".into(),
            name: "tok".into(),
            authorizer_type: "TOKEN".into(),
            authorizer_uri: Some(
                "arn:aws:apigateway:us-east-1:lambda:path/2015-03-31/functions/arn:aws:lambda:us-east-1:123456789012:function:auth/invocations".into(),
            ),
            identity_source: Some("method.request.header.Authorization".into()),
            authorizer_result_ttl_in_seconds: Some(300),
            ..Default::default()
        }
    }

    fn op(op: Op, path: &str, value: Option<&str>) -> PatchOp {
        PatchOp {
            op,
            path: path.into(),
            value: value.map(Into::into),
            from: None,
        }
    }

    #[test]
    fn validates_each_kind() {
        assert!(validate(&token()).is_ok());
        let mut a = token();
        a.authorizer_result_ttl_in_seconds = Some(3601);
        assert!(validate(&a).unwrap_err().to_string().contains("3601"));
        let mut a = token();
        a.authorizer_uri = Some("arn:aws:lambda:us-east-1:1:function:f".into());
        assert!(validate(&a).is_err());
        let mut a = token();
        a.identity_source = Some("method.request.querystring.t".into());
        assert!(validate(&a).is_err());
        let mut a = token();
        a.authorizer_type = "REQUEST".into();
        a.identity_source = Some("method.request.header.A, method.request.querystring.q, stageVariables.s, context.sourceIp".into());
        assert!(validate(&a).is_ok());
        a.identity_source = Some("method.request.path.p".into());
        assert!(validate(&a).is_err());
        a.identity_source = None;
        assert!(validate(&a).is_err(), "caching needs a source");
        a.authorizer_result_ttl_in_seconds = Some(0);
        assert!(validate(&a).is_ok());
        let mut c = Authorizer {
            name: "pool".into(),
            authorizer_type: "COGNITO_USER_POOLS".into(),
            identity_source: Some("method.request.header.Authorization".into()),
            ..Default::default()
        };
        assert!(validate(&c).is_err(), "needs provider ARNs");
        c.provider_arns =
            vec!["arn:aws:cognito-idp:us-east-1:123456789012:userpool/us-east-1_abc".into()];
        assert!(validate(&c).is_ok());
        c.provider_arns = vec!["arn:aws:cognito-idp:us-east-1:1:pool/x".into()];
        assert!(validate(&c).is_err());
        let mut bad = token();
        bad.authorizer_type = "JWT_ISH".into();
        assert!(validate(&bad).is_err());
        let mut bad = token();
        bad.identity_validation_expression = Some("(".into());
        assert!(validate(&bad).is_err());
    }

    #[test]
    fn lambda_uris_and_pool_arns_parse() {
        assert_eq!(
            lambda_function_of(token().authorizer_uri.as_deref().unwrap()),
            Some("arn:aws:lambda:us-east-1:123456789012:function:auth")
        );
        assert_eq!(
            lambda_function_of(
                "arn:aws:apigateway::lambda:path/2015-03-31/functions/f/invocations"
            ),
            None
        );
        assert_eq!(
            lambda_function_of(
                "arn:aws:apigateway:r:lambda:path/2015-03-31/functions//invocations"
            ),
            None
        );
        assert_eq!(
            parse_user_pool_arn("arn:aws:cognito-idp:eu-west-1:1:userpool/eu-west-1_X"),
            Some(("eu-west-1", "eu-west-1_X"))
        );
    }

    #[test]
    fn patches() {
        let mut a = token();
        apply(
            &mut a,
            &op(Op::Replace, "/authorizerResultTtlInSeconds", Some("0")),
        )
        .unwrap();
        assert_eq!(a.authorizer_result_ttl_in_seconds, Some(0));
        apply(&mut a, &op(Op::Replace, "/name", Some("renamed"))).unwrap();
        assert_eq!(a.name, "renamed");
        apply(&mut a, &op(Op::Add, "/providerARNs", Some("p"))).unwrap();
        apply(&mut a, &op(Op::Add, "/providerARNs", Some("p"))).unwrap();
        assert_eq!(a.provider_arns, vec!["p".to_owned()]);
        apply(&mut a, &op(Op::Remove, "/providerARNs", Some("p"))).unwrap();
        assert!(a.provider_arns.is_empty());
        assert!(apply(&mut a, &op(Op::Replace, "/nope", Some("x"))).is_err());
        assert!(
            apply(
                &mut a,
                &op(Op::Replace, "/authorizerResultTtlInSeconds", Some("x"))
            )
            .is_err()
        );
    }
}
