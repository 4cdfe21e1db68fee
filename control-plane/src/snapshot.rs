//! Compiles a REST API aggregate into the immutable [`DeploymentSnapshot`]
//! the data plane serves, once, at CreateDeployment.

use std::collections::BTreeMap;

use apigw_proto::snapshot::{ApiSettings, DeploymentSnapshot, Route};

use crate::model::{MethodSnapshot, Resource, RestApiDoc};

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum CompileError {
    #[error("The REST API doesn't contain any methods")]
    NoMethods,
    #[error("No integration defined for method {method} {path}")]
    MissingIntegration { method: String, path: String },
}

/// Routes in path order; every method must have an integration, as AWS requires.
pub fn compile(
    account_id: &str,
    doc: &RestApiDoc,
    deployment_id: &str,
    created_epoch_seconds: i64,
) -> Result<DeploymentSnapshot, CompileError> {
    let mut routes = Vec::new();
    for resource in doc.resources.values() {
        let path = doc.path_of(&resource.id);
        for (http_method, method) in &resource.resource_methods {
            if method.method_integration.is_none() {
                return Err(CompileError::MissingIntegration {
                    method: http_method.clone(),
                    path,
                });
            }
            routes.push(Route {
                resource_id: resource.id.clone(),
                path: path.clone(),
                http_method: http_method.clone(),
                method: serde_json::to_value(method).unwrap_or_default(),
            });
        }
    }
    if routes.is_empty() {
        return Err(CompileError::NoMethods);
    }
    routes.sort_by(|a, b| (&a.path, &a.http_method).cmp(&(&b.path, &b.http_method)));
    Ok(DeploymentSnapshot {
        account_id: account_id.to_owned(),
        api_id: doc.api.id.clone(),
        deployment_id: deployment_id.to_owned(),
        created_epoch_seconds,
        api: ApiSettings {
            name: doc.api.name.clone(),
            binary_media_types: doc.api.binary_media_types.clone(),
            api_key_source: doc.api.api_key_source.clone(),
            minimum_compression_size: doc.api.minimum_compression_size,
            endpoint_types: doc.api.endpoint_configuration.types.clone(),
            policy: doc.api.policy.clone(),
            disable_execute_api_endpoint: doc.api.disable_execute_api_endpoint,
        },
        routes,
        gateway_responses: to_json_map(&doc.gateway_responses),
        models: to_json_map(&doc.models),
        request_validators: to_json_map(&doc.request_validators),
        authorizers: to_json_map(&doc.authorizers),
    })
}

/// The inverse of [`compile`]: the API as `snapshot` deployed it, for
/// exports of a stage (AWS exports the stage's deployment, not the API as
/// edited since). `current` supplies what a snapshot does not keep: the
/// API's identity and the ids of resources that carry no method.
pub fn deployed_doc(
    current: &RestApiDoc,
    snapshot: &DeploymentSnapshot,
) -> Result<RestApiDoc, serde_json::Error> {
    let mut api = current.api.clone();
    let settings = &snapshot.api;
    api.name = settings.name.clone();
    api.binary_media_types = settings.binary_media_types.clone();
    api.api_key_source = settings.api_key_source.clone();
    api.minimum_compression_size = settings.minimum_compression_size;
    api.endpoint_configuration.types = settings.endpoint_types.clone();
    api.policy = settings.policy.clone();
    api.disable_execute_api_endpoint = settings.disable_execute_api_endpoint;

    // Resource ids by path: the deployed routes' first, then today's tree.
    let mut ids: BTreeMap<String, String> = current
        .resources
        .keys()
        .map(|id| (current.path_of(id), id.clone()))
        .collect();
    for route in &snapshot.routes {
        ids.insert(route.path.clone(), route.resource_id.clone());
    }
    let id_of = |path: &str| {
        ids.get(path)
            .cloned()
            .unwrap_or_else(|| format!("deployed:{path}"))
    };
    let mut resources: BTreeMap<String, Resource> = BTreeMap::new();
    for route in &snapshot.routes {
        // The route's resource and every ancestor up to the root.
        let mut path = route.path.as_str();
        loop {
            let id = id_of(path);
            let (parent, part) = match path.rsplit_once('/') {
                Some(("", "")) | None => (None, None),
                Some((parent, part)) => {
                    let parent = if parent.is_empty() { "/" } else { parent };
                    (Some(id_of(parent)), Some(part.to_owned()))
                }
            };
            resources.entry(id.clone()).or_insert_with(|| Resource {
                id,
                parent_id: parent,
                path_part: part,
                resource_methods: BTreeMap::new(),
            });
            match path.rsplit_once('/') {
                Some(("", "")) | None => break,
                Some(("", _)) => path = "/",
                Some((parent, _)) => path = parent,
            }
        }
        let method = serde_json::from_value(route.method.clone())?;
        if let Some(resource) = resources.get_mut(&id_of(&route.path)) {
            resource
                .resource_methods
                .insert(route.http_method.clone(), method);
        }
    }
    Ok(RestApiDoc {
        api,
        resources,
        models: from_json_map(&snapshot.models)?,
        request_validators: from_json_map(&snapshot.request_validators)?,
        gateway_responses: from_json_map(&snapshot.gateway_responses)?,
        authorizers: from_json_map(&snapshot.authorizers)?,
    })
}

fn from_json_map<T: serde::de::DeserializeOwned>(
    map: &BTreeMap<String, serde_json::Value>,
) -> Result<BTreeMap<String, T>, serde_json::Error> {
    map.iter()
        .map(|(k, v)| Ok((k.clone(), serde_json::from_value(v.clone())?)))
        .collect()
}

fn to_json_map<T: serde::Serialize>(
    map: &BTreeMap<String, T>,
) -> BTreeMap<String, serde_json::Value> {
    map.iter()
        .map(|(k, v)| (k.clone(), serde_json::to_value(v).unwrap_or_default()))
        .collect()
}

/// AWS's `apiSummary`: path → method → authorization summary.
pub fn api_summary(
    snapshot: &DeploymentSnapshot,
) -> BTreeMap<String, BTreeMap<String, MethodSnapshot>> {
    let mut summary: BTreeMap<String, BTreeMap<String, MethodSnapshot>> = BTreeMap::new();
    for route in &snapshot.routes {
        summary.entry(route.path.clone()).or_default().insert(
            route.http_method.clone(),
            MethodSnapshot {
                authorization_type: route.method["authorizationType"]
                    .as_str()
                    .unwrap_or("NONE")
                    .to_owned(),
                api_key_required: route.method["apiKeyRequired"].as_bool().unwrap_or(false),
            },
        );
    }
    summary
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Integration, Method, Resource, RestApi};

    fn doc_with(method: Option<Method>) -> RestApiDoc {
        let mut doc = RestApiDoc {
            api: RestApi {
                id: "abc".into(),
                root_resource_id: "root".into(),
                ..Default::default()
            },
            ..Default::default()
        };
        doc.resources.insert(
            "root".into(),
            Resource {
                id: "root".into(),
                ..Default::default()
            },
        );
        let mut pets = Resource {
            id: "pets".into(),
            parent_id: Some("root".into()),
            path_part: Some("pets".into()),
            ..Default::default()
        };
        if let Some(m) = method {
            pets.resource_methods.insert(m.http_method.clone(), m);
        }
        doc.resources.insert("pets".into(), pets);
        doc
    }

    #[test]
    fn refuses_apis_without_methods_or_integrations() {
        assert_eq!(
            compile("1", &doc_with(None), "d", 0),
            Err(CompileError::NoMethods)
        );
        let bare = Method {
            http_method: "GET".into(),
            authorization_type: "NONE".into(),
            ..Default::default()
        };
        assert!(matches!(
            compile("1", &doc_with(Some(bare)), "d", 0),
            Err(CompileError::MissingIntegration { .. })
        ));
    }

    #[test]
    fn compiles_routes_with_paths_and_summary() {
        let m = Method {
            http_method: "GET".into(),
            authorization_type: "NONE".into(),
            api_key_required: true,
            method_integration: Some(Integration {
                integration_type: "MOCK".into(),
                ..Default::default()
            }),
            ..Default::default()
        };
        let snap = compile("123456789012", &doc_with(Some(m)), "dep1", 7).unwrap();
        assert_eq!(snap.routes.len(), 1);
        assert_eq!(snap.routes[0].path, "/pets");
        assert_eq!(snap.routes[0].method["methodIntegration"]["type"], "MOCK");
        let summary = api_summary(&snap);
        assert!(summary["/pets"]["GET"].api_key_required);
    }

    #[test]
    fn deployed_doc_inverts_compile() {
        let m = Method {
            http_method: "GET".into(),
            authorization_type: "NONE".into(),
            method_integration: Some(Integration {
                integration_type: "MOCK".into(),
                ..Default::default()
            }),
            ..Default::default()
        };
        let mut doc = doc_with(Some(m));
        doc.resources.insert(
            "pet".into(),
            Resource {
                id: "pet".into(),
                parent_id: Some("pets".into()),
                path_part: Some("{petId}".into()),
                resource_methods: doc.resources["pets"].resource_methods.clone(),
            },
        );
        let snap = compile("123456789012", &doc, "dep1", 7).unwrap();
        // Edits after the deployment do not show in what the stage serves.
        let mut edited = doc.clone();
        edited
            .resources
            .get_mut("pets")
            .unwrap()
            .resource_methods
            .clear();
        edited.api.name = "renamed".into();
        let deployed = deployed_doc(&edited, &snap).unwrap();
        assert_eq!(deployed.resources, doc.resources);
        assert_eq!(deployed.api.name, doc.api.name);
        assert_eq!(deployed.path_of("pet"), "/pets/{petId}");
    }
}
