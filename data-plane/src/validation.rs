//! Request validation (reference §6): a method's request validator
//! (`requestValidatorId` → `validateRequestParameters`,
//! `validateRequestBody`), its required method request parameters and its
//! `requestModels`, compiled when a stage loads.
//!
//! - Parameters run first: every `method.request.{header|path|querystring}.x`
//!   marked `true` must be present and non-blank, else 400
//!   `BAD_REQUEST_PARAMETERS` `Missing required request parameters: [a, b]`
//!   (names in the sorted order of their full keys).
//! - Then the body: the model for the request's `Content-Type` (absent:
//!   `application/json`), a JSON Schema draft 4, compiled once per model with
//!   `jsonschema`; `$ref`s resolve to the API's own models
//!   (`https://apigateway.amazonaws.com/restapis/{id}/models/{name}`) and
//!   to `#/definitions`, never to the network. A body that is not JSON or
//!   breaks the schema → 400 `BAD_REQUEST_BODY` `Invalid request body`, the
//!   details in `$context.error.validationErrorString`. An empty body is
//!   validated as `{}` (what templates see of it too).
//!
//! A model schema that does not compile (AWS refuses it at CreateModel; a
//! snapshot may still carry one) makes the routes using it answer 500
//! `API_CONFIGURATION_ERROR`, logged, without refusing the snapshot.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use apigw_proto::gateway_response::ResponseType;
use apigw_proto::snapshot::DeploymentSnapshot;
use http::header::CONTENT_TYPE;
use jsonschema::{Draft, Retrieve, Uri, Validator};
use serde_json::Value;

use crate::gateway_response::GatewayError;
use crate::integration::mapping::RequestView;
use crate::transform::media_type;

const MODEL_BASE: &str = "https://apigateway.amazonaws.com/restapis/";

/// Where a required parameter is read.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Location {
    Header(http::HeaderName),
    Path,
    Query,
}

#[derive(Debug, Clone)]
struct Required {
    location: Location,
    name: Box<str>,
}

/// A compiled model, or why it did not compile.
type Model = Result<Arc<Validator>, Arc<str>>;

/// One route's checks.
#[derive(Debug, Clone, Default)]
pub struct RouteValidation {
    /// Sorted by full key (header < path < querystring, then name).
    required: Vec<Required>,
    /// Content type (lower case) → the compiled model, or why it did not compile.
    models: Vec<(Box<str>, Model)>,
}

impl RouteValidation {
    pub fn is_empty(&self) -> bool {
        self.required.is_empty() && self.models.is_empty()
    }

    /// `Ok` when the request passes; else the gateway error to answer.
    pub fn check(&self, view: &RequestView<'_>, body: &[u8]) -> Result<(), GatewayError> {
        let missing: Vec<&str> = self
            .required
            .iter()
            .filter(|r| {
                let value = match &r.location {
                    Location::Header(h) => view.header(h).map(std::borrow::Cow::Borrowed),
                    Location::Path => view.path(&r.name).map(std::borrow::Cow::Borrowed),
                    Location::Query => view.query(&r.name),
                };
                value.is_none_or(|v| v.trim().is_empty())
            })
            .map(|r| &*r.name)
            .collect();
        if !missing.is_empty() {
            let message = format!(
                "Missing required request parameters: [{}]",
                missing.join(", ")
            );
            let mut error =
                GatewayError::with_message(ResponseType::BadRequestParameters, message.clone());
            error.validation_error = Some(message);
            return Err(error);
        }
        if self.models.is_empty() {
            return Ok(());
        }
        let ct = view
            .headers
            .get(CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .map(media_type)
            .filter(|m| !m.is_empty())
            .unwrap_or_else(|| "application/json".to_owned());
        let Some((_, model)) = self.models.iter().find(|(c, _)| **c == *ct) else {
            return Ok(());
        };
        let validator = model.as_ref().map_err(|reason| {
            tracing::warn!(
                api_id = view.context.api_id,
                resource = view.context.resource_path,
                %reason,
                "Execution failed due to configuration error: request model does not compile"
            );
            GatewayError::new(ResponseType::ApiConfigurationError)
        })?;
        let instance: Value = if body.trim_ascii().is_empty() {
            Value::Object(Default::default())
        } else {
            match serde_json::from_slice(body) {
                Ok(v) => v,
                Err(e) => return Err(invalid_body(format!("[Invalid JSON: {e}]"))),
            }
        };
        let errors: Vec<String> = validator
            .iter_errors(&instance)
            .map(|e| {
                let at = e.instance_path().to_string();
                if at.is_empty() {
                    e.to_string()
                } else {
                    format!("{e} (at {at})")
                }
            })
            .collect();
        if errors.is_empty() {
            Ok(())
        } else {
            Err(invalid_body(format!("[{}]", errors.join(", "))))
        }
    }
}

fn invalid_body(detail: String) -> GatewayError {
    let mut error = GatewayError::new(ResponseType::BadRequestBody);
    error.validation_error = Some(detail);
    error
}

/// A stage's checks, parallel to its routes.
#[derive(Debug, Default)]
pub struct StageValidation(Box<[RouteValidation]>);

impl StageValidation {
    pub fn compile(deployment: &DeploymentSnapshot) -> Self {
        let models = Models::new(deployment);
        let mut compiled: HashMap<&str, Model> = HashMap::new();
        let routes = deployment
            .routes
            .iter()
            .map(|route| {
                let method = &route.method;
                let Some(validator) = method
                    .get("requestValidatorId")
                    .and_then(Value::as_str)
                    .and_then(|id| deployment.request_validators.get(id))
                else {
                    return RouteValidation::default();
                };
                let flag = |k: &str| validator.get(k).and_then(Value::as_bool).unwrap_or(false);
                let mut out = RouteValidation::default();
                if flag("validateRequestParameters") {
                    out.required = required_parameters(method);
                }
                if flag("validateRequestBody")
                    && let Some(request_models) =
                        method.get("requestModels").and_then(Value::as_object)
                {
                    for (ct, name) in request_models {
                        let Some(name) = name.as_str() else { continue };
                        let model = compiled
                            .entry(name)
                            .or_insert_with(|| models.compile(name))
                            .clone();
                        if let Err(reason) = &model {
                            tracing::warn!(
                                api_id = deployment.api_id,
                                route = %format_args!("{} {}", route.http_method, route.path),
                                %reason,
                                "request model does not compile; the route answers 500"
                            );
                        }
                        out.models.push((media_type(ct).into(), model));
                    }
                }
                out
            })
            .collect();
        Self(routes)
    }

    pub fn route(&self, index: usize) -> Option<&RouteValidation> {
        self.0.get(index).filter(|r| !r.is_empty())
    }
}

fn required_parameters(method: &Value) -> Vec<Required> {
    let mut keys: Vec<&str> = method
        .get("requestParameters")
        .and_then(Value::as_object)
        .map(|m| {
            m.iter()
                .filter(|(_, v)| v.as_bool() == Some(true))
                .map(|(k, _)| k.as_str())
                .collect()
        })
        .unwrap_or_default();
    keys.sort_unstable();
    keys.into_iter()
        .filter_map(|key| {
            let rest = key.strip_prefix("method.request.")?;
            let (location, name) = rest.split_once('.')?;
            let location = match location {
                "header" => Location::Header(http::HeaderName::from_bytes(name.as_bytes()).ok()?),
                "path" => Location::Path,
                "querystring" => Location::Query,
                _ => return None,
            };
            Some(Required {
                location,
                name: name.into(),
            })
        })
        .collect()
}

/// The API's models, by name, as parsed JSON schemas.
struct Models {
    api_id: String,
    schemas: BTreeMap<String, Result<Value, String>>,
}

impl Models {
    fn new(deployment: &DeploymentSnapshot) -> Self {
        let schemas = deployment
            .models
            .iter()
            .map(|(name, model)| {
                let schema = match model.get("schema").and_then(Value::as_str) {
                    None => Ok(Value::Object(Default::default())),
                    Some(text) => serde_json::from_str(text)
                        .map_err(|e| format!("model {name}: schema is not JSON: {e}")),
                };
                (name.clone(), schema)
            })
            .collect();
        Self {
            api_id: deployment.api_id.clone(),
            schemas,
        }
    }

    fn compile(&self, name: &str) -> Model {
        let schema = match self.schemas.get(name) {
            None => return Err(format!("no model named {name:?}").into()),
            Some(Err(e)) => return Err(e.as_str().into()),
            Some(Ok(schema)) => schema,
        };
        let models: HashMap<String, Value> = self
            .schemas
            .iter()
            .filter_map(|(n, s)| Some((n.clone(), s.as_ref().ok()?.clone())))
            .collect();
        jsonschema::options()
            .with_draft(Draft::Draft4)
            .with_base_uri(format!("{MODEL_BASE}{}/models/{name}", self.api_id))
            .with_retriever(ApiModels {
                prefix: format!("{MODEL_BASE}{}/models/", self.api_id),
                models,
            })
            .build(schema)
            .map(Arc::new)
            .map_err(|e| format!("model {name}: {e}").into())
    }
}

/// Resolves `$ref`s to the API's other models; nothing else is fetched.
struct ApiModels {
    prefix: String,
    models: HashMap<String, Value>,
}

impl Retrieve for ApiModels {
    fn retrieve(
        &self,
        uri: &Uri<String>,
    ) -> Result<Value, Box<dyn std::error::Error + Send + Sync>> {
        let uri = uri.as_str();
        let name = uri
            .strip_prefix(&self.prefix)
            .map(|n| n.split('#').next().unwrap_or(n))
            .ok_or_else(|| format!("$ref {uri} is not a model of this API"))?;
        self.models
            .get(name)
            .cloned()
            .ok_or_else(|| format!("$ref to unknown model {name:?}").into())
    }
}

#[cfg(test)]
mod tests {
    use apigw_proto::snapshot::Route;
    use http::{HeaderMap, HeaderValue};
    use serde_json::json;

    use super::*;
    use crate::integration::mapping::RequestContext;

    fn deployment(method: Value) -> DeploymentSnapshot {
        let pet = json!({
            "$schema": "http://json-schema.org/draft-04/schema#",
            "type": "object",
            "required": ["name", "type"],
            "properties": {
                "name": {"type": "string"},
                "type": {"type": "string", "enum": ["dog", "cat"]},
                "price": {"$ref": "#/definitions/price"},
                "owner": {"$ref": "https://apigateway.amazonaws.com/restapis/a1/models/Owner"}
            },
            "definitions": {"price": {"type": "number", "maximum": 500}}
        });
        let owner = json!({"type": "object", "required": ["email"],
                           "properties": {"email": {"type": "string"}}});
        serde_json::from_value(json!({
            "accountId": "123456789012",
            "apiId": "a1",
            "deploymentId": "d1",
            "createdEpochSeconds": 0,
            "api": {"name": "x", "binaryMediaTypes": [], "apiKeySource": "HEADER",
                    "minimumCompressionSize": null, "endpointTypes": [], "policy": null,
                    "disableExecuteApiEndpoint": false},
            "routes": [],
            "gatewayResponses": {},
            "models": {
                "Pet": {"name": "Pet", "contentType": "application/json", "schema": pet.to_string()},
                "Owner": {"name": "Owner", "contentType": "application/json", "schema": owner.to_string()},
                "Broken": {"name": "Broken", "contentType": "application/json", "schema": "{\"type\": 12}"}
            },
            "requestValidators": {
                "all": {"id": "all", "validateRequestBody": true, "validateRequestParameters": true},
                "body": {"id": "body", "validateRequestBody": true, "validateRequestParameters": false}
            },
            "authorizers": {}
        }))
        .map(|mut d: DeploymentSnapshot| {
            d.routes.push(
                serde_json::from_value::<Route>(json!({
                    "resourceId": "r1", "path": "/p", "httpMethod": "POST", "method": method
                }))
                .unwrap(),
            );
            d
        })
        .unwrap()
    }

    fn check(
        v: &StageValidation,
        headers: &[(&'static str, &'static str)],
        query: &str,
        body: &str,
    ) -> Result<(), (ResponseType, String, Option<String>)> {
        let mut h = HeaderMap::new();
        for (k, val) in headers {
            h.insert(*k, HeaderValue::from_static(val));
        }
        let view = RequestView {
            headers: &h,
            raw_query: Some(query),
            path_parameters: None,
            context: RequestContext::default(),
        };
        match v.route(0) {
            None => Ok(()),
            Some(r) => r
                .check(&view, body.as_bytes())
                .map_err(|e| (e.kind, e.message, e.validation_error)),
        }
    }

    #[test]
    fn required_parameters_in_aws_order() {
        let v = StageValidation::compile(&deployment(json!({
            "requestValidatorId": "all",
            "requestParameters": {
                "method.request.querystring.qs1": true,
                "method.request.header.x-header-param": true,
                "method.request.path.issuer": true,
                "method.request.querystring.optional": false
            }
        })));
        let missing = |h: &[(&'static str, &'static str)], q: &str| match check(&v, h, q, "") {
            Ok(()) => None,
            Err((kind, message, _)) => {
                assert_eq!(kind, ResponseType::BadRequestParameters);
                Some(message)
            }
        };
        assert_eq!(
            missing(&[], "").as_deref(),
            Some("Missing required request parameters: [x-header-param, issuer, qs1]")
        );
        assert_eq!(
            missing(&[("x-header-param", "1")], "qs1=").as_deref(),
            Some("Missing required request parameters: [issuer, qs1]")
        );
        assert_eq!(
            missing(&[("x-header-param", " ")], "qs1=x").as_deref(),
            Some("Missing required request parameters: [x-header-param, issuer]")
        );
    }

    #[test]
    fn bodies_against_models_with_refs() {
        let v = StageValidation::compile(&deployment(json!({
            "requestValidatorId": "body",
            "requestParameters": {"method.request.querystring.q": true},
            "requestModels": {"application/json": "Pet", "text/plain": "Broken"}
        })));
        assert_eq!(
            check(&v, &[], "", r#"{"name": "Rex", "type": "dog"}"#),
            Ok(())
        );
        let invalid = |body: &str| match check(&v, &[], "", body) {
            Err((ResponseType::BadRequestBody, message, Some(detail))) => {
                assert_eq!(message, "Invalid request body");
                detail
            }
            other => panic!("{body}: {other:?}"),
        };
        assert!(invalid(r#"{"name": "Rex", "type": "bird"}"#).contains("bird"));
        assert!(invalid(r#"{"name": "Rex", "type": "dog", "price": 501}"#).contains("501"));
        assert!(invalid(r#"{"name": "Rex", "type": "dog", "owner": {}}"#).contains("email"));
        assert!(invalid(r#"{"name": "Rex""#).contains("Invalid JSON"));
        // Empty is `{}`, which lacks the required names.
        assert!(invalid("").contains("name"));
        // Content types without a model are not checked; a broken model is a 500.
        assert_eq!(check(&v, &[("content-type", "image/png")], "", "x"), Ok(()));
        assert_eq!(
            check(&v, &[("content-type", "text/plain")], "", "x")
                .unwrap_err()
                .0,
            ResponseType::ApiConfigurationError
        );
    }

    #[test]
    fn no_validator_no_checks() {
        let v = StageValidation::compile(&deployment(json!({
            "requestParameters": {"method.request.querystring.q": true},
            "requestModels": {"application/json": "Pet"}
        })));
        assert!(v.route(0).is_none());
        assert_eq!(check(&v, &[], "", "not json"), Ok(()));
    }
}
