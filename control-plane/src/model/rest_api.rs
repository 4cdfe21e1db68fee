//! The REST API aggregate: the API's own settings and its resource tree with
//! methods, integrations, models, validators and gateway responses.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

pub type Tags = BTreeMap<String, String>;

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EndpointConfiguration {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub types: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ip_address_type: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vpc_endpoint_ids: Option<Vec<String>>,
}

/// AWS's `RestApi` shape.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RestApi {
    pub id: String,
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    pub created_date: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub binary_media_types: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub minimum_compression_size: Option<i64>,
    pub api_key_source: String,
    pub endpoint_configuration: EndpointConfiguration,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub policy: Option<String>,
    #[serde(default, skip_serializing_if = "Tags::is_empty")]
    pub tags: Tags,
    pub disable_execute_api_endpoint: bool,
    pub root_resource_id: String,
}

/// AWS's `Resource` shape, without the computed `path` (derived from the tree).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Resource {
    pub id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parent_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path_part: Option<String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub resource_methods: BTreeMap<String, Method>,
}

/// AWS's `Method` shape.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Method {
    pub http_method: String,
    pub authorization_type: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub authorizer_id: Option<String>,
    pub api_key_required: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_validator_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub operation_name: Option<String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub request_parameters: BTreeMap<String, bool>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub request_models: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub method_responses: BTreeMap<String, MethodResponse>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub method_integration: Option<Integration>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub authorization_scopes: Vec<String>,
}

/// AWS's `MethodResponse` shape.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MethodResponse {
    pub status_code: String,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub response_parameters: BTreeMap<String, bool>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub response_models: BTreeMap<String, String>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TlsConfig {
    #[serde(default)]
    pub insecure_skip_verification: bool,
}

/// AWS's `Integration` shape.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Integration {
    #[serde(rename = "type")]
    pub integration_type: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub http_method: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uri: Option<String>,
    pub connection_type: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub connection_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub credentials: Option<String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub request_parameters: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub request_templates: BTreeMap<String, String>,
    pub passthrough_behavior: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content_handling: Option<String>,
    pub timeout_in_millis: i64,
    pub cache_namespace: String,
    pub cache_key_parameters: Vec<String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub integration_responses: BTreeMap<String, IntegrationResponse>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls_config: Option<TlsConfig>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub response_transfer_mode: Option<String>,
}

/// AWS's `IntegrationResponse` shape.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct IntegrationResponse {
    pub status_code: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub selection_pattern: Option<String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub response_parameters: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub response_templates: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content_handling: Option<String>,
}

/// AWS's `Model` shape.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Model {
    pub id: String,
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub schema: Option<String>,
    pub content_type: String,
}

/// AWS's `RequestValidator` shape.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RequestValidator {
    pub id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    pub validate_request_body: bool,
    pub validate_request_parameters: bool,
}

/// AWS's `GatewayResponse` shape, for a customised response.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GatewayResponse {
    pub response_type: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status_code: Option<String>,
    #[serde(default)]
    pub response_parameters: BTreeMap<String, String>,
    #[serde(default)]
    pub response_templates: BTreeMap<String, String>,
    pub default_response: bool,
}

/// AWS's `Authorizer` shape (TOKEN, REQUEST, COGNITO_USER_POOLS).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Authorizer {
    pub id: String,
    pub name: String,
    #[serde(rename = "type")]
    pub authorizer_type: String,
    #[serde(
        default,
        rename = "providerARNs",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub provider_arns: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auth_type: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub authorizer_uri: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub authorizer_credentials: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub identity_source: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub identity_validation_expression: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub authorizer_result_ttl_in_seconds: Option<i64>,
}

/// Everything editable about one REST API, stored as one document.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RestApiDoc {
    pub api: RestApi,
    /// Keyed by resource id.
    pub resources: BTreeMap<String, Resource>,
    /// Keyed by model name.
    #[serde(default)]
    pub models: BTreeMap<String, Model>,
    /// Keyed by validator id.
    #[serde(default)]
    pub request_validators: BTreeMap<String, RequestValidator>,
    /// Customised gateway responses, keyed by response type.
    #[serde(default)]
    pub gateway_responses: BTreeMap<String, GatewayResponse>,
    /// Keyed by authorizer id; scoped to this API, so never shared across tenants.
    #[serde(default)]
    pub authorizers: BTreeMap<String, Authorizer>,
}

impl RestApiDoc {
    /// The full path of a resource (`/`, `/pets`, `/pets/{petId}`), walking up
    /// its parents. The tree is kept acyclic by every change, so this ends.
    pub fn path_of(&self, resource_id: &str) -> String {
        let mut parts = Vec::new();
        let mut current = self.resources.get(resource_id);
        while let Some(resource) = current {
            match (&resource.path_part, &resource.parent_id) {
                (Some(part), Some(parent)) => {
                    parts.push(part.as_str());
                    current = self.resources.get(parent);
                }
                _ => break,
            }
        }
        if parts.is_empty() {
            return "/".to_owned();
        }
        parts.reverse();
        format!("/{}", parts.join("/"))
    }

    /// Whether `ancestor` is `resource_id` itself or one of its ancestors.
    pub fn is_ancestor_or_self(&self, ancestor: &str, resource_id: &str) -> bool {
        let mut current = Some(resource_id);
        while let Some(id) = current {
            if id == ancestor {
                return true;
            }
            current = self.resources.get(id).and_then(|r| r.parent_id.as_deref());
        }
        false
    }

    pub fn children_of<'a>(
        &'a self,
        parent_id: &'a str,
    ) -> impl Iterator<Item = &'a Resource> + 'a {
        self.resources
            .values()
            .filter(move |r| r.parent_id.as_deref() == Some(parent_id))
    }

    /// Ids of a resource and everything below it.
    pub fn subtree(&self, resource_id: &str) -> Vec<String> {
        self.resources
            .keys()
            .filter(|id| self.is_ancestor_or_self(resource_id, id))
            .cloned()
            .collect()
    }
}
