//! TestInvokeAuthorizer: `POST /restapis/{restapi_id}/authorizers/{authorizer_id}`.
//! A TOKEN or REQUEST authorizer runs exactly as a data-plane node runs it
//! (the identity checks, event and judgement are the data plane's own code,
//! `apigw_data_plane::auth::test_invoke`), its function on this control
//! plane's function host, always the caller's own account's function.
//!
//! A COGNITO_USER_POOLS authorizer's token (from its identity source header)
//! is verified by the nodes' own code (`test_invoke::cognito`) against the
//! pool's keys, located by this control plane's `--cognito-*` settings
//! (`ManagementConfig::cognito`, the same flags the nodes take): `clientStatus`
//! 200 with the token's `claims`, or 401.

use std::collections::BTreeMap;
use std::time::Duration;

use apigw_data_plane::auth::test_invoke::{self, Outcome, Reply, Simulated, Step};
use apigw_function_host::FunctionHost;
use axum::body::Bytes;
use axum::extract::{Extension, Path, State};
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode};
use axum::response::Response;
use serde::{Deserialize, Serialize};

use super::auth::Caller;
use super::authorizers::invalid_authorizer;
use super::input::json;
use super::{AppState, lambda, read_api, reply};
use crate::error::{ApiError, ApiResult};

/// How long AWS lets an authorizer run.
const AUTHORIZER_TIMEOUT: Duration = Duration::from_secs(10);

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Input {
    #[serde(default)]
    headers: Option<BTreeMap<String, String>>,
    #[serde(default)]
    multi_value_headers: Option<BTreeMap<String, Vec<String>>>,
    #[serde(default)]
    path_with_query_string: Option<String>,
    /// Accepted as AWS does; no authorizer event carries a body.
    #[serde(default)]
    #[allow(dead_code)]
    body: Option<String>,
    #[serde(default)]
    stage_variables: Option<BTreeMap<String, String>>,
    #[serde(default)]
    additional_context: Option<BTreeMap<String, String>>,
}

/// TestInvokeAuthorizerResponse.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct Output {
    client_status: u16,
    log: String,
    latency: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    principal_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    policy: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    authorization: Option<BTreeMap<String, Vec<String>>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    claims: Option<BTreeMap<String, String>>,
}

impl Output {
    /// A Lambda authorizer's outcome: `authorization` when it allowed.
    fn lambda(o: Outcome) -> Self {
        Self {
            client_status: o.client_status,
            log: o.log,
            latency: u64::try_from(o.latency.as_millis()).unwrap_or(u64::MAX),
            principal_id: o.principal_id,
            policy: o.policy,
            authorization: (o.client_status == 200).then_some(o.authorization),
            claims: None,
        }
    }

    /// A user pool's outcome: the token's `claims` when it was accepted.
    fn cognito(o: Outcome) -> Self {
        Self {
            client_status: o.client_status,
            log: o.log,
            latency: u64::try_from(o.latency.as_millis()).unwrap_or(u64::MAX),
            principal_id: None,
            policy: None,
            authorization: None,
            claims: (o.client_status == 200).then_some(o.claims),
        }
    }
}

/// The simulated request's headers: `multiValueHeaders` in order, then
/// `headers` for names not already given.
fn header_map(input: &Input) -> ApiResult<HeaderMap> {
    let mut map = HeaderMap::new();
    let name = |n: &str| {
        HeaderName::from_bytes(n.as_bytes())
            .map_err(|_| ApiError::bad_request(format!("Invalid header name specified: {n}")))
    };
    let value = |n: &str, v: &str| {
        HeaderValue::from_str(v)
            .map_err(|_| ApiError::bad_request(format!("Invalid value specified for header {n}")))
    };
    for (n, values) in input.multi_value_headers.iter().flatten() {
        let header = name(n)?;
        for v in values {
            map.append(header.clone(), value(n, v)?);
        }
    }
    for (n, v) in input.headers.iter().flatten() {
        let header = name(n)?;
        if !map.contains_key(&header) {
            map.insert(header, value(n, v)?);
        }
    }
    Ok(map)
}

fn check_path(path: Option<&str>) -> ApiResult<()> {
    match path {
        Some(p) if !p.is_empty() && (!p.starts_with('/') || p.chars().any(char::is_whitespace)) => {
            Err(ApiError::bad_request(format!(
                "Invalid pathWithQueryString specified: {p}. It must start with '/' and contain no whitespace"
            )))
        }
        _ => Ok(()),
    }
}

pub(super) async fn handler(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Extension(host): Extension<FunctionHost>,
    Path((api_id, authorizer_id)): Path<(String, String)>,
    body: Bytes,
) -> ApiResult<Response> {
    let input: Input = json(&body)?;
    let headers = header_map(&input)?;
    check_path(input.path_with_query_string.as_deref())?;
    // Another tenant's API answers as a missing authorizer, as the other calls do.
    let (api_id, authorizer) = read_api(&state, &caller, &api_id, |doc| {
        let a = doc
            .authorizers
            .get(&authorizer_id)
            .cloned()
            .ok_or_else(invalid_authorizer)?;
        Ok((doc.api.id.clone(), a))
    })
    .await
    .map_err(|e| match e {
        ApiError::NotFound(_) => invalid_authorizer(),
        other => other,
    })?;
    let definition =
        serde_json::to_value(&authorizer).map_err(|e| ApiError::Internal(e.to_string()))?;
    let request_id = uuid::Uuid::new_v4().to_string();
    let none = BTreeMap::new();
    let simulated = Simulated {
        region: &caller.region,
        account_id: &caller.account_id,
        api_id: &api_id,
        authorizer_id: &authorizer.id,
        request_id: &request_id,
        headers: &headers,
        path_with_query_string: input.path_with_query_string.as_deref(),
        stage_variables: input.stage_variables.as_ref().unwrap_or(&none),
        additional_context: input.additional_context.as_ref().unwrap_or(&none),
    };
    let cannot = |why: String| {
        ApiError::bad_request(format!(
            "Authorizer {} cannot be invoked: {why}",
            authorizer.id
        ))
    };
    if authorizer.authorizer_type == "COGNITO_USER_POOLS" {
        let outcome = test_invoke::cognito(&definition, &state.config.cognito, &simulated)
            .await
            .map_err(cannot)?;
        return Ok(reply(StatusCode::OK, &Output::cognito(outcome)));
    }
    let step = test_invoke::prepare(&definition, &simulated).map_err(cannot)?;
    let outcome = match step {
        Step::Done(outcome) => outcome,
        Step::Call(call) => {
            let arn = call.function.to_string();
            let reply = lambda::invoke_own(
                &state,
                &caller,
                &host,
                &arn,
                call.payload.clone(),
                AUTHORIZER_TIMEOUT,
            )
            .await
            .map(|out| Reply {
                function_error: out.function_error,
                body: out.payload,
            });
            call.finish(reply)
        }
    };
    Ok(reply(StatusCode::OK, &Output::lambda(outcome)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headers_merge_and_refuse_bad_names() {
        let input = Input {
            headers: Some(BTreeMap::from([
                ("Authorization".into(), "single".into()),
                ("X-One".into(), "1".into()),
            ])),
            multi_value_headers: Some(BTreeMap::from([(
                "authorization".into(),
                vec!["a".into(), "b".into()],
            )])),
            ..Input::default()
        };
        let map = header_map(&input).unwrap();
        let auth: Vec<_> = map.get_all("authorization").iter().collect();
        assert_eq!(auth, ["a", "b"]);
        assert_eq!(map["x-one"], "1");
        let bad = Input {
            headers: Some(BTreeMap::from([("bad name".into(), "v".into())])),
            ..Input::default()
        };
        assert!(matches!(header_map(&bad), Err(ApiError::BadRequest(_))));
        let bad_value = Input {
            headers: Some(BTreeMap::from([("x".into(), "a\nb".into())])),
            ..Input::default()
        };
        assert!(matches!(
            header_map(&bad_value),
            Err(ApiError::BadRequest(_))
        ));
    }

    #[test]
    fn cognito_outcomes_carry_claims_only_when_accepted() {
        let accepted = Outcome {
            client_status: 200,
            log: "log".into(),
            claims: BTreeMap::from([("sub".to_owned(), "s-1".to_owned())]),
            ..Outcome::default()
        };
        let body = serde_json::to_value(Output::cognito(accepted)).unwrap();
        assert_eq!(
            body,
            serde_json::json!({"clientStatus": 200, "log": "log", "latency": 0, "claims": {"sub": "s-1"}})
        );
        let refused = Outcome {
            client_status: 401,
            ..Outcome::default()
        };
        let body = serde_json::to_value(Output::cognito(refused)).unwrap();
        assert_eq!(
            body,
            serde_json::json!({"clientStatus": 401, "log": "", "latency": 0})
        );
    }

    #[test]
    fn paths_start_with_a_slash() {
        assert!(check_path(None).is_ok());
        assert!(check_path(Some("")).is_ok());
        assert!(check_path(Some("/pets/1?x=y")).is_ok());
        assert!(check_path(Some("pets")).is_err());
        assert!(check_path(Some("/a b")).is_err());
    }
}
