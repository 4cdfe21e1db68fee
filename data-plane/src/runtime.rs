//! The runtime: everything a node compiles from the configuration it holds —
//! the routing table plus, per stage, each route's integration and the API's
//! gateway-response overrides — so a request does no parsing. A new
//! configuration compiles into a new [`Runtime`] beside the one serving and
//! replaces it atomically; one stage that fails to compile fails the whole
//! update (a NACK), so a bad snapshot never half-applies.

use std::collections::HashMap;
use std::sync::{Arc, OnceLock};

use apigw_proto::snapshot::StageSnapshot;
use arc_swap::ArcSwap;

use crate::gateway_response::GatewayResponses;
use crate::held::Held;
use crate::integration::Integration;
use crate::metrics::Metrics;
use crate::routing::{CompiledStage, RouteMatch, RoutingTable};
use crate::subscriber::ConfigSink;

/// What one stage needs beyond its routes.
#[derive(Debug)]
pub struct StageRuntime {
    /// Parallel to the deployment's `routes`.
    integrations: Vec<Integration>,
    gateway_responses: GatewayResponses,
}

impl StageRuntime {
    fn compile(snapshot: &StageSnapshot) -> Result<Self, String> {
        let vars = &snapshot.variables;
        let integrations = snapshot
            .deployment
            .routes
            .iter()
            .map(|route| {
                Integration::compile(&route.method, vars)
                    .map_err(|e| format!("{} {}: {e}", route.http_method, route.path))
            })
            .collect::<Result<Vec<_>, _>>()?;
        let gateway_responses =
            GatewayResponses::compile(&snapshot.deployment.gateway_responses, vars)?;
        Ok(Self {
            integrations,
            gateway_responses,
        })
    }

    pub fn gateway_responses(&self) -> &GatewayResponses {
        &self.gateway_responses
    }
}

/// A compiled configuration.
#[derive(Debug)]
pub struct Runtime {
    table: RoutingTable,
    /// API id (as in the snapshot) → stage name → stage runtime.
    stages: HashMap<Box<str>, HashMap<Box<str>, StageRuntime>>,
    version: u64,
}

impl Runtime {
    /// Serves nothing: every request is 403 Forbidden.
    pub fn empty(base_domain: &str) -> Self {
        Self {
            table: RoutingTable::new(base_domain, []).expect("an empty table always builds"),
            stages: HashMap::new(),
            version: 0,
        }
    }

    /// Compiles every stage of `held`; the first error fails the whole.
    pub fn compile(base_domain: &str, held: &Held) -> Result<Self, String> {
        let mut stages: HashMap<Box<str>, HashMap<Box<str>, StageRuntime>> = HashMap::new();
        for snapshot in held.stages() {
            let stage = StageRuntime::compile(snapshot).map_err(|e| {
                format!(
                    "api {:?} stage {:?}: {e}",
                    snapshot.deployment.api_id, snapshot.stage_name
                )
            })?;
            stages
                .entry(snapshot.deployment.api_id.as_str().into())
                .or_default()
                .insert(snapshot.stage_name.as_str().into(), stage);
        }
        let table =
            RoutingTable::build(base_domain, held.stages().cloned()).map_err(|e| e.to_string())?;
        Ok(Self {
            table,
            stages,
            version: held.version,
        })
    }

    pub fn table(&self) -> &RoutingTable {
        &self.table
    }

    /// The held configuration's version.
    pub fn version(&self) -> u64 {
        self.version
    }

    pub fn stage(&self, stage: &CompiledStage) -> Option<&StageRuntime> {
        self.stages.get(stage.api_id())?.get(stage.stage_name())
    }

    /// The integration compiled for a matched route.
    pub fn integration(&self, matched: &RouteMatch<'_>) -> Option<&Integration> {
        self.stage(matched.stage)?
            .integrations
            .get(matched.route_index)
    }
}

/// The runtime in service, swapped atomically on each applied configuration.
#[derive(Debug, Clone)]
pub struct RuntimeHandle {
    current: Arc<ArcSwap<Runtime>>,
    base_domain: Arc<str>,
    metrics: Arc<OnceLock<Metrics>>,
}

impl RuntimeHandle {
    pub fn new(base_domain: &str) -> Self {
        Self {
            current: Arc::new(ArcSwap::from_pointee(Runtime::empty(base_domain))),
            base_domain: base_domain.into(),
            metrics: Arc::new(OnceLock::new()),
        }
    }

    pub fn load(&self) -> Arc<Runtime> {
        self.current.load_full()
    }

    /// Reports the configuration version to `metrics` from now on.
    pub fn attach_metrics(&self, metrics: &Metrics) {
        let metrics = self.metrics.get_or_init(|| metrics.clone());
        metrics.set_config_version(self.current.load().version());
    }
}

impl ConfigSink for RuntimeHandle {
    fn apply(&self, held: &Held) -> Result<(), String> {
        let runtime = Runtime::compile(&self.base_domain, held)?;
        let version = runtime.version();
        self.current.store(Arc::new(runtime));
        if let Some(metrics) = self.metrics.get() {
            metrics.set_config_version(version);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use apigw_proto::snapshot::{ApiSettings, DeploymentSnapshot, Route};
    use serde_json::json;

    use super::*;
    use crate::held::HeldResource;
    use crate::routing::RouteOutcome;

    fn stage(api: &str, routes: Vec<Route>) -> StageSnapshot {
        StageSnapshot {
            stage_name: "prod".into(),
            variables: BTreeMap::new(),
            method_settings: BTreeMap::new(),
            deployment: DeploymentSnapshot {
                account_id: "123456789012".into(),
                api_id: api.into(),
                deployment_id: "d1".into(),
                created_epoch_seconds: 0,
                api: ApiSettings::default(),
                routes,
                gateway_responses: BTreeMap::new(),
                models: BTreeMap::new(),
                request_validators: BTreeMap::new(),
            },
        }
    }

    fn route(path: &str, method: &str, integration: serde_json::Value) -> Route {
        Route {
            resource_id: path.into(),
            path: path.into(),
            http_method: method.into(),
            method: json!({"httpMethod": method, "methodIntegration": integration}),
        }
    }

    fn held(version: u64, stages: Vec<StageSnapshot>) -> Held {
        Held {
            version,
            resources: stages
                .into_iter()
                .enumerate()
                .map(|(i, s)| {
                    (
                        format!("k{i}"),
                        HeldResource {
                            version,
                            snapshot: Arc::new(s),
                        },
                    )
                })
                .collect(),
        }
    }

    #[test]
    fn finds_the_integration_of_a_matched_route() {
        let mock = |code: &str| json!({"type": "MOCK", "integrationResponses": {code: {"statusCode": code}}});
        let runtime = Runtime::compile(
            "example.com",
            &held(
                3,
                vec![stage(
                    "api1",
                    vec![
                        route("/a", "GET", mock("201")),
                        route("/b", "GET", mock("202")),
                    ],
                )],
            ),
        )
        .unwrap();
        assert_eq!(runtime.version(), 3);
        let RouteOutcome::Matched(m) =
            runtime
                .table()
                .route(Some("api1.execute-api.example.com"), "GET", "/prod/b")
        else {
            panic!("no match");
        };
        let Some(Integration::Mock(mock)) = runtime.integration(&m) else {
            panic!("no integration");
        };
        assert!(format!("{mock:?}").contains("202"));
        assert_eq!(m.route_index, 1);
    }

    #[test]
    fn a_bad_stage_is_a_nack_and_the_old_runtime_stays() {
        let handle = RuntimeHandle::new("example.com");
        let good = held(
            1,
            vec![stage(
                "api1",
                vec![route("/a", "GET", json!({"type": "MOCK"}))],
            )],
        );
        handle.apply(&good).unwrap();
        let bad = held(
            2,
            vec![
                stage("api1", vec![route("/a", "GET", json!({"type": "MOCK"}))]),
                stage("api2", vec![route("/a", "GET", json!({"type": "WAT"}))]),
            ],
        );
        let reason = handle.apply(&bad).unwrap_err();
        assert!(
            reason.contains("api2") && reason.contains("WAT"),
            "{reason}"
        );
        assert_eq!(handle.load().version(), 1);
        let mut duplicate = stage("api1", vec![route("/a", "GET", json!({"type": "MOCK"}))]);
        duplicate
            .deployment
            .routes
            .push(route("/a", "GET", json!({"type": "MOCK"})));
        assert!(handle.apply(&held(3, vec![duplicate])).is_err());
        assert_eq!(handle.load().version(), 1);
    }
}
