//! Who may call a method, decided after routing and before the integration
//! (reference §7): the method's `authorizationType` (NONE, AWS_IAM, CUSTOM,
//! COGNITO_USER_POOLS) and the API's resource policy, combined in AWS's order
//! — an explicit Deny anywhere wins; with a resource policy and no other
//! authorization, the policy must Allow.
//!
//! Compiled once per stage ([`StageAuth`], parallel to the routes); a
//! request only evaluates. What is not served yet fails closed: AWS_IAM
//! methods refuse every caller (the node holds no credentials to verify
//! signatures with).

pub mod arn;
pub mod iam;
pub mod jwt;
pub mod lambda_authorizer;
pub mod policy;
pub mod test_invoke;

use std::collections::{BTreeMap, HashMap};
use std::net::IpAddr;
use std::sync::Arc;

use apigw_proto::gateway_response::ResponseType;
use apigw_proto::snapshot::StageSnapshot;
use http::HeaderName;
use serde_json::{Map, Value};

use crate::gateway_response::GatewayError;
use crate::integration::Services;
use crate::integration::mapping::RequestView;
use jwt::{CognitoAuthorizer, JwtSettings};
use lambda_authorizer::LambdaAuthorizer;
use policy::{Decision, Facts, Policy};

/// Node-wide settings authorization needs.
#[derive(Debug, Clone)]
pub struct AuthSettings {
    /// The node's region: method ARNs name it.
    pub region: String,
    /// Headers the operator's private network edge sets (and strips from
    /// callers) with the caller's VPC and VPC endpoint ids, read as
    /// `aws:SourceVpc` / `aws:SourceVpce`. `None`: those keys are never present.
    pub source_vpc_header: Option<HeaderName>,
    pub source_vpce_header: Option<HeaderName>,
    /// Where Cognito user pools' keys are fetched and which issuer they name.
    pub jwt: JwtSettings,
}

impl Default for AuthSettings {
    fn default() -> Self {
        Self {
            region: "us-east-1".into(),
            source_vpc_header: None,
            source_vpce_header: None,
            jwt: JwtSettings::default(),
        }
    }
}

/// What a request gains by passing authorization.
#[derive(Debug, Default)]
pub struct Authorized {
    /// `requestContext.authorizer` / `$context.authorizer.*`: `principalId`
    /// and the authorizer's context, stringified.
    pub context: Option<Map<String, Value>>,
    /// A Lambda authorizer's `usageIdentifierKey` (API key source AUTHORIZER).
    pub usage_identifier_key: Option<String>,
}

impl Authorized {
    /// The view with the authorizer's output in its `$context`.
    pub fn attach<'v>(&'v self, mut view: RequestView<'v>) -> RequestView<'v> {
        view.context.authorizer = self.context.as_ref();
        view.context.usage_identifier_key = self.usage_identifier_key.as_deref();
        view
    }
}

/// Authorizes a matched request on its stage (see [`StageAuth::authorize`]).
pub async fn authorize(
    stage: Option<&crate::runtime::StageRuntime>,
    route_index: usize,
    view: &RequestView<'_>,
) -> Result<Authorized, GatewayError> {
    match stage {
        Some(stage) => stage.auth().authorize(route_index, view).await,
        None => Ok(Authorized::default()),
    }
}

/// One route's authorization.
#[derive(Debug)]
enum RouteAuth {
    None,
    Iam,
    Custom(Arc<LambdaAuthorizer>),
    /// With the method's `authorizationScopes`.
    Cognito(Arc<CognitoAuthorizer>, Vec<String>),
    /// The method names an authorizer this deployment lacks: 500.
    Broken(String),
}

/// A stage's authorization, compiled.
#[derive(Debug)]
pub struct StageAuth {
    /// Parallel to the deployment's routes.
    routes: Box<[RouteAuth]>,
    /// `Err`: the stored policy does not parse; every request is refused.
    resource_policy: Option<Result<Policy, String>>,
    settings: AuthSettings,
    /// REQUEST authorizers see them (event and identity sources).
    stage_variables: BTreeMap<String, String>,
}

impl Default for StageAuth {
    fn default() -> Self {
        Self {
            routes: Box::new([]),
            resource_policy: None,
            settings: AuthSettings::default(),
            stage_variables: BTreeMap::new(),
        }
    }
}

/// The request as an authorizer sees it.
pub struct AuthRequest<'a> {
    pub view: &'a RequestView<'a>,
    pub stage_variables: &'a BTreeMap<String, String>,
    pub path_after_stage: &'a str,
    pub method_arn: &'a str,
    /// `context.*` identity sources read here first (TestInvokeAuthorizer's
    /// `additionalContext`); `None` on the request path.
    pub context_overrides: Option<&'a BTreeMap<String, String>>,
}

impl StageAuth {
    pub fn compile(snapshot: &StageSnapshot, services: &Services) -> Result<Self, String> {
        let deployment = &snapshot.deployment;
        let mut authorizers: HashMap<&str, Arc<LambdaAuthorizer>> = HashMap::new();
        let mut pools: HashMap<&str, Arc<CognitoAuthorizer>> = HashMap::new();
        for (id, a) in &deployment.authorizers {
            if a.get("type").and_then(Value::as_str) == Some("COGNITO_USER_POOLS") {
                let compiled = CognitoAuthorizer::compile(a, &services.auth.jwt)
                    .map_err(|e| format!("authorizer {id}: {e}"))?;
                pools.insert(id, Arc::new(compiled));
            } else if matches!(
                a.get("type").and_then(Value::as_str),
                Some("TOKEN" | "REQUEST")
            ) {
                let compiled = LambdaAuthorizer::compile(
                    a,
                    &snapshot.variables,
                    &deployment.account_id,
                    services,
                )
                .map_err(|e| format!("authorizer {id}: {e}"))?;
                authorizers.insert(id, Arc::new(compiled));
            }
        }
        let routes = deployment
            .routes
            .iter()
            .map(|route| {
                let m = &route.method;
                let id = m.get("authorizerId").and_then(Value::as_str);
                match m.get("authorizationType").and_then(Value::as_str) {
                    None | Some("NONE") => RouteAuth::None,
                    Some("AWS_IAM") => RouteAuth::Iam,
                    Some("CUSTOM") => match id.and_then(|id| authorizers.get(id)) {
                        Some(a) => RouteAuth::Custom(a.clone()),
                        None => RouteAuth::Broken(format!("authorizer {id:?} is not deployed")),
                    },
                    Some("COGNITO_USER_POOLS") => match id.and_then(|id| pools.get(id)) {
                        Some(a) => {
                            let scopes = m
                                .get("authorizationScopes")
                                .and_then(Value::as_array)
                                .into_iter()
                                .flatten()
                                .filter_map(Value::as_str)
                                .map(str::to_owned)
                                .collect();
                            RouteAuth::Cognito(a.clone(), scopes)
                        }
                        None => RouteAuth::Broken(format!("authorizer {id:?} is not deployed")),
                    },
                    Some(other) => RouteAuth::Broken(format!("authorizationType {other}")),
                }
            })
            .collect();
        let resource_policy = deployment
            .api
            .policy
            .as_deref()
            .filter(|p| !p.trim().is_empty())
            .map(|p| {
                let api_arn = format!(
                    "arn:aws:execute-api:{}:{}:{}",
                    services.auth.region, deployment.account_id, deployment.api_id
                );
                Policy::parse(p)
                    .map(|p| p.expand_api_shorthand(&api_arn))
                    .map_err(|e| e.to_string())
            });
        Ok(Self {
            routes,
            resource_policy,
            settings: services.auth.clone(),
            stage_variables: snapshot.variables.clone(),
        })
    }

    /// Decides whether the request at `route_index` may proceed.
    pub async fn authorize(
        &self,
        route_index: usize,
        view: &RequestView<'_>,
    ) -> Result<Authorized, GatewayError> {
        let route = self.routes.get(route_index).unwrap_or(&RouteAuth::None);
        if matches!(route, RouteAuth::None) && self.resource_policy.is_none() {
            return Ok(Authorized::default());
        }
        let c = &view.context;
        let path_after_stage =
            crate::integration::lambda::path_after_stage(c.path, c.api_id, c.stage);
        let method_arn = arn::method_arn(
            &self.settings.region,
            c.account_id,
            c.api_id,
            c.stage,
            c.http_method,
            path_after_stage,
        );
        let header = |h: &Option<HeaderName>| {
            h.as_ref()
                .and_then(|h| view.headers.get(h))
                .and_then(|v| v.to_str().ok())
        };
        let facts = Facts {
            action: "execute-api:Invoke",
            resource: &method_arn,
            source_ip: c.source_ip.parse::<IpAddr>().ok(),
            source_vpc: header(&self.settings.source_vpc_header),
            source_vpce: header(&self.settings.source_vpce_header),
            caller: None,
        };
        // Resource policy, first pass: an explicit Deny stops everything
        // before any authorizer runs.
        let resource = match &self.resource_policy {
            None => Decision::Silent,
            Some(Err(why)) => {
                tracing::warn!(api_id = c.api_id, error = %why, "resource policy does not parse; refusing");
                return Err(anonymous_denied(&method_arn, true));
            }
            Some(Ok(policy)) => policy.evaluate(&facts),
        };
        if resource == Decision::ExplicitDeny {
            return Err(anonymous_denied(&method_arn, true));
        }
        match route {
            RouteAuth::None => {
                // With a resource policy and nothing else, it must Allow.
                if resource == Decision::Allow {
                    Ok(Authorized::default())
                } else {
                    Err(anonymous_denied(&method_arn, false))
                }
            }
            RouteAuth::Iam => Err(iam_refused(view)),
            RouteAuth::Cognito(authorizer, scopes) => {
                let context = authorizer.authorize(view.headers, scopes).await?;
                Ok(Authorized {
                    context: Some(context),
                    usage_identifier_key: None,
                })
            }
            RouteAuth::Broken(why) => {
                tracing::warn!(api_id = c.api_id, error = %why, "method authorization misconfigured");
                Err(GatewayError::new(
                    ResponseType::AuthorizerConfigurationError,
                ))
            }
            RouteAuth::Custom(authorizer) => {
                let request = AuthRequest {
                    view,
                    stage_variables: &self.stage_variables,
                    path_after_stage,
                    method_arn: &method_arn,
                    context_overrides: None,
                };
                let answer = authorizer.answer(&request).await?;
                match answer.policy.evaluate(&Facts {
                    caller: None,
                    ..facts
                }) {
                    Decision::Allow => Ok(Authorized {
                        context: Some(answer.context.clone()),
                        usage_identifier_key: answer.usage_identifier_key.clone(),
                    }),
                    Decision::ExplicitDeny => Err(GatewayError::with_message(
                        ResponseType::AccessDenied,
                        "User is not authorized to access this resource with an explicit deny",
                    )),
                    Decision::Silent => Err(GatewayError::new(ResponseType::AccessDenied)),
                }
            }
        }
    }
}

/// AWS's resource-policy refusal of a caller without an IAM identity.
fn anonymous_denied(method_arn: &str, explicit: bool) -> GatewayError {
    GatewayError::with_message(
        ResponseType::AccessDenied,
        format!(
            "User: anonymous is not authorized to perform: execute-api:Invoke on resource: {method_arn}{}",
            if explicit {
                " with an explicit deny"
            } else {
                ""
            }
        ),
    )
}

/// AWS_IAM methods until nodes hold caller credentials: an unsigned request
/// is told so; a signed one names a key this node cannot verify.
fn iam_refused(view: &RequestView<'_>) -> GatewayError {
    let signed = view.headers.contains_key(http::header::AUTHORIZATION)
        || view.query("X-Amz-Signature").is_some();
    if signed {
        GatewayError::with_message(
            ResponseType::AccessDenied,
            "The security token included in the request is invalid.",
        )
    } else {
        GatewayError::new(ResponseType::MissingAuthenticationToken)
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use http::HeaderMap;
    use serde_json::json;

    use super::*;
    use crate::integration::mapping::{RequestContext, Side, ValueSource};

    #[test]
    fn authorizer_output_reaches_context_mappings() {
        let output = json!({"principalId": "u1", "n": "7", "claims": {"email": "a@b.c", "exp": 5}});
        let authorized = Authorized {
            context: output.as_object().cloned(),
            usage_identifier_key: Some("key".into()),
        };
        let headers = HeaderMap::new();
        let view = authorized.attach(RequestView {
            headers: &headers,
            raw_query: None,
            path_parameters: None,
            context: RequestContext::default(),
        });
        assert_eq!(view.context.usage_identifier_key, Some("key"));
        let vars = BTreeMap::new();
        let resolve = |expr: &str| {
            ValueSource::parse(expr, Side::IntegrationRequest, &vars)
                .unwrap()
                .resolve(&view, None)
                .map(|v| v.into_owned())
        };
        assert_eq!(
            resolve("context.authorizer.principalId").as_deref(),
            Some("u1")
        );
        assert_eq!(
            resolve("context.authorizer.claims.email").as_deref(),
            Some("a@b.c")
        );
        assert_eq!(
            resolve("context.authorizer.claims.exp").as_deref(),
            Some("5")
        );
        assert_eq!(resolve("context.authorizer.missing"), None);
        assert_eq!(resolve("context.authorizer.principalId.deeper"), None);
    }

    #[tokio::test]
    async fn routes_without_authorization_or_policy_pass_untouched() {
        let auth = StageAuth::default();
        let headers = HeaderMap::new();
        let view = RequestView {
            headers: &headers,
            raw_query: None,
            path_parameters: None,
            context: RequestContext::default(),
        };
        let out = auth.authorize(0, &view).await.unwrap();
        assert!(out.context.is_none());
    }
}
