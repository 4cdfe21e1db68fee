//! The runtime: everything a node compiles from the configuration it holds —
//! the routing table plus, per stage, each route's integration and the API's
//! gateway-response overrides, and the IAM callers (principals) it can
//! verify — so a request does no parsing. A new
//! configuration compiles into a new [`Runtime`] beside the one serving and
//! replaces it atomically; one stage that fails to compile fails the whole
//! update (a NACK), so a bad snapshot never half-applies.

use std::collections::HashMap;
use std::sync::{Arc, OnceLock};

use apigw_proto::principal::KEY_PREFIX as PRINCIPAL_PREFIX;
use apigw_proto::snapshot::StageSnapshot;
use arc_swap::ArcSwap;

use crate::auth::principals::{Principal, Principals};
use crate::gateway_response::GatewayResponses;
use crate::held::{Held, HeldResource};
use crate::integration::{Integration, Services, StageEnv};
use crate::metrics::Metrics;
use crate::routing::{CompiledStage, RouteMatch, RoutingTable};
use crate::subscriber::ConfigSink;

/// Updates with at least this many stages to compile are compiled on several threads.
const PARALLEL_COMPILE_MIN: usize = 64;

/// What one stage needs beyond its routes.
#[derive(Debug)]
pub struct StageRuntime {
    /// Parallel to the deployment's `routes`.
    integrations: Box<[Integration]>,
    gateway_responses: GatewayResponses,
    /// Authorizers and resource policy, per route.
    auth: crate::auth::StageAuth,
    /// API keys, usage plans and throttles, per route.
    limits: crate::throttle::StageLimits,
    /// Request validators and models, per route.
    validation: crate::validation::StageValidation,
}

impl StageRuntime {
    pub(crate) fn compile(snapshot: &StageSnapshot, services: &Services) -> Result<Self, String> {
        let vars = &snapshot.variables;
        let env = StageEnv {
            stage_variables: vars,
            account_id: &snapshot.deployment.account_id,
            binary_media_types: &snapshot.deployment.api.binary_media_types,
            services,
        };
        let integrations = snapshot
            .deployment
            .routes
            .iter()
            .map(|route| {
                Integration::compile_in(&route.method, &env)
                    .map_err(|e| format!("{} {}: {e}", route.http_method, route.path))
            })
            .collect::<Result<Box<[_]>, _>>()?;
        let gateway_responses =
            GatewayResponses::compile(&snapshot.deployment.gateway_responses, vars)?;
        let auth = crate::auth::StageAuth::compile(snapshot, services)?;
        let limits = crate::throttle::StageLimits::compile(snapshot, &services.auth.region);
        let validation = crate::validation::StageValidation::compile(&snapshot.deployment);
        Ok(Self {
            integrations,
            gateway_responses,
            auth,
            limits,
            validation,
        })
    }

    /// Request validation for the route at `route_index` (crate::validation).
    pub fn validate(
        &self,
        route_index: usize,
        view: &crate::integration::mapping::RequestView<'_>,
        body: &[u8],
    ) -> Result<(), crate::gateway_response::GatewayError> {
        self.validation
            .route(route_index)
            .map_or(Ok(()), |v| v.check(view, body))
    }

    pub fn gateway_responses(&self) -> &GatewayResponses {
        &self.gateway_responses
    }

    pub fn auth(&self) -> &crate::auth::StageAuth {
        &self.auth
    }

    pub fn limits(&self) -> &crate::throttle::StageLimits {
        &self.limits
    }

    /// The integration of the route at `route_index`.
    pub fn integration(&self, route_index: usize) -> Option<&Integration> {
        self.integrations.get(route_index)
    }
}

/// What one config resource compiles to.
#[derive(Debug, Clone)]
enum Artifact {
    Stage(Arc<CompiledStage>),
    Principal(Arc<Principal>),
}

/// A compiled config resource, with the resource version it was compiled
/// from: the same key at the same version compiles to the same thing.
#[derive(Debug, Clone)]
struct Compiled {
    version: u64,
    artifact: Artifact,
}

impl Compiled {
    fn stage(&self) -> Option<&Arc<CompiledStage>> {
        match &self.artifact {
            Artifact::Stage(stage) => Some(stage),
            Artifact::Principal(_) => None,
        }
    }
}

/// A compiled configuration.
#[derive(Debug)]
pub struct Runtime {
    table: RoutingTable,
    /// Resource key → what was compiled from it, reused by the next update.
    resources: HashMap<Arc<str>, Compiled>,
    /// IAM callers by access key id.
    principals: Principals,
    version: u64,
}

impl Runtime {
    /// Serves nothing: every request is 403 Forbidden.
    pub fn empty(base_domain: &str) -> Self {
        Self {
            table: RoutingTable::new(base_domain, []).expect("an empty table always builds"),
            resources: HashMap::new(),
            principals: Principals::new(),
            version: 0,
        }
    }

    /// Compiles every stage of `held`; the first error fails the whole.
    pub fn compile(base_domain: &str, held: &Held) -> Result<Self, String> {
        Self::compile_reusing(base_domain, held, None, &Services::default())
    }

    /// Compiles `held`, reusing every stage `previous` compiled from the same
    /// resource key at the same version: only new or changed resources are
    /// parsed and compiled; the rest costs a lookup and an `Arc` clone each,
    /// plus one insert into the new API/stage index. Anything that fails
    /// (a resource that does not parse or compile, two resources for one
    /// stage) fails the whole, and `previous` is untouched.
    pub fn compile_reusing(
        base_domain: &str,
        held: &Held,
        previous: Option<&Runtime>,
        services: &Services,
    ) -> Result<Self, String> {
        let mut resources: HashMap<Arc<str>, Compiled> =
            HashMap::with_capacity(held.resources.len());
        let mut todo: Vec<(&Arc<str>, &HeldResource)> = Vec::new();
        for (key, resource) in held.resources.iter() {
            match previous
                .and_then(|p| p.resources.get(key))
                .filter(|c| c.version == resource.version)
            {
                Some(compiled) => {
                    resources.insert(key.clone(), compiled.clone());
                }
                None => todo.push((key, resource)),
            }
        }
        for (key, compiled) in compile_all(&todo, services)? {
            resources.insert(key.clone(), compiled);
        }
        let table = RoutingTable::new(
            base_domain,
            resources.values().filter_map(|c| c.stage().cloned()),
        )
        .map_err(|e| e.to_string())?;
        let principals = resources
            .values()
            .filter_map(|c| match &c.artifact {
                Artifact::Principal(p) => Some((Arc::from(p.access_key_id.as_str()), p.clone())),
                Artifact::Stage(_) => None,
            })
            .collect();
        Ok(Self {
            table,
            resources,
            principals,
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

    /// The compiled stage of a resource key, if this runtime serves it.
    pub fn resource(&self, key: &str) -> Option<&Arc<CompiledStage>> {
        self.resources.get(key).and_then(Compiled::stage)
    }

    /// The IAM callers this node can verify, by access key id.
    pub fn principals(&self) -> &Principals {
        &self.principals
    }

    pub fn stage<'s>(&self, stage: &'s CompiledStage) -> Option<&'s StageRuntime> {
        Some(stage.runtime())
    }

    /// The integration compiled for a matched route.
    pub fn integration<'t>(&self, matched: &RouteMatch<'t, '_>) -> Option<&'t Integration> {
        matched.stage.runtime().integration(matched.route_index)
    }
}

/// Parses and compiles one resource; the parsed snapshot is dropped here.
fn compile_one(
    key: &str,
    resource: &HeldResource,
    services: &Services,
) -> Result<Compiled, String> {
    if key.starts_with(PRINCIPAL_PREFIX) {
        let principal = Principal::compile(&resource.body)
            .map_err(|e| format!("resource {key} (version {}): {e}", resource.version))?;
        return Ok(Compiled {
            version: resource.version,
            artifact: Artifact::Principal(Arc::new(principal)),
        });
    }
    let snapshot: StageSnapshot = serde_json::from_slice(&resource.body).map_err(|e| {
        format!(
            "resource {key} (version {}) is not a valid stage snapshot: {e}",
            resource.version
        )
    })?;
    let stage = CompiledStage::compile_with(&snapshot, services).map_err(|e| e.to_string())?;
    Ok(Compiled {
        version: resource.version,
        artifact: Artifact::Stage(Arc::new(stage)),
    })
}

/// Compiles `todo` (in key order), on several threads when there is much of
/// it; the error reported is the first in key order.
fn compile_all<'k>(
    todo: &[(&'k Arc<str>, &HeldResource)],
    services: &Services,
) -> Result<Vec<(&'k Arc<str>, Compiled)>, String> {
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let one = |&(key, resource): &(&'k Arc<str>, &HeldResource)| {
        compile_one(key, resource, services).map(|c| (key, c))
    };
    if threads < 2 || todo.len() < PARALLEL_COMPILE_MIN {
        return todo.iter().map(one).collect();
    }
    let chunk = todo.len().div_ceil(threads);
    std::thread::scope(|scope| {
        let workers: Vec<_> = todo
            .chunks(chunk)
            .map(|part| scope.spawn(move || part.iter().map(one).collect::<Result<Vec<_>, _>>()))
            .collect();
        let mut out = Vec::with_capacity(todo.len());
        for worker in workers {
            out.extend(worker.join().expect("stage compilation panicked")?);
        }
        Ok(out)
    })
}

/// The runtime in service, swapped atomically on each applied configuration.
#[derive(Debug, Clone)]
pub struct RuntimeHandle {
    current: Arc<ArcSwap<Runtime>>,
    base_domain: Arc<str>,
    metrics: Arc<OnceLock<Metrics>>,
    /// Clients the integrations it compiles share.
    services: Services,
    /// The node's limiter; none: nothing is throttled (unit tests).
    throttle: Arc<OnceLock<Arc<crate::throttle::Throttle>>>,
}

impl RuntimeHandle {
    /// A handle whose integrations get no clients (Lambda answers 500).
    pub fn new(base_domain: &str) -> Self {
        Self::with_services(base_domain, Services::default())
    }

    pub fn with_services(base_domain: &str, services: Services) -> Self {
        Self {
            current: Arc::new(ArcSwap::from_pointee(Runtime::empty(base_domain))),
            base_domain: base_domain.into(),
            metrics: Arc::new(OnceLock::new()),
            services,
            throttle: Arc::new(OnceLock::new()),
        }
    }

    /// Enforces API keys, usage plans and throttles with `throttle` from now on.
    pub fn attach_throttle(&self, throttle: Arc<crate::throttle::Throttle>) {
        let _ = self.throttle.set(throttle);
    }

    pub fn throttle(&self) -> Option<&crate::throttle::Throttle> {
        self.throttle.get().map(|t| &**t)
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
    /// Compiles `held` beside the runtime in service, reusing its unchanged
    /// stages, and swaps it in. Only the subscriber applies, one update at a time.
    fn apply(&self, held: &Held) -> Result<(), String> {
        let current = self.current.load_full();
        let runtime =
            Runtime::compile_reusing(&self.base_domain, held, Some(&current), &self.services)?;
        drop(current);
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

    use apigw_proto::config::{ConfigUpdate, SnapshotResource};
    use apigw_proto::snapshot::{ApiSettings, DeploymentSnapshot, Route};
    use serde_json::json;

    use super::*;
    use crate::held::HeldResource;
    use crate::routing::RouteOutcome;

    fn stage(api: &str, routes: Vec<Route>) -> StageSnapshot {
        StageSnapshot {
            stage_name: "prod".into(),
            authorizer_cache_generation: 0,
            variables: BTreeMap::new(),
            method_settings: BTreeMap::new(),
            usage_plans: Vec::new(),
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
                authorizers: BTreeMap::new(),
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
        Held::new(
            version,
            stages
                .into_iter()
                .enumerate()
                .map(|(i, s)| {
                    (
                        format!("k{i}").into(),
                        HeldResource::from_snapshot(version, &s),
                    )
                })
                .collect(),
        )
    }

    fn mock(body: &str) -> serde_json::Value {
        json!({"type": "MOCK", "integrationResponses": {"200": {"statusCode": "200", "responseTemplates": {"application/json": body}}}})
    }

    /// One stage per API: `stage/{api}` → api `{api}` serving `GET /v` with `body`.
    fn upsert(api: &str, version: u64, body: &str) -> SnapshotResource {
        SnapshotResource {
            key: format!("stage/{api}"),
            version,
            body: serde_json::to_vec(&stage(api, vec![route("/v", "GET", mock(body))])).unwrap(),
        }
    }

    fn update(
        version: u64,
        full: bool,
        upserts: Vec<SnapshotResource>,
        removals: &[&str],
    ) -> ConfigUpdate {
        ConfigUpdate {
            version,
            full,
            upserts,
            removals: removals.iter().map(|k| k.to_string()).collect(),
        }
    }

    /// The body `api`'s `GET /v` answers, if it is served.
    fn serves(runtime: &Runtime, api: &str) -> Option<String> {
        let host = format!("{api}.execute-api.example.com");
        let RouteOutcome::Matched(m) = runtime.table().route(Some(&host), "GET", "/prod/v") else {
            return None;
        };
        let Some(Integration::Mock(mock)) = runtime.integration(&m) else {
            panic!("no integration");
        };
        Some(format!("{mock:?}"))
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

    #[test]
    fn unchanged_stages_are_reused_and_only_changes_compile() {
        let handle = RuntimeHandle::new("example.com");
        let held = Held::default().apply(update(
            3,
            true,
            vec![
                upsert("aaa", 1, "a1"),
                upsert("bbb", 2, "b1"),
                upsert("ccc", 3, "c1"),
            ],
            &[],
        ));
        handle.apply(&held).unwrap();
        let before = handle.load();
        assert_eq!(before.table().len(), 3);
        // A delta: one stage changes, one goes, one comes.
        let held = held.apply(update(
            5,
            false,
            vec![upsert("bbb", 4, "b2"), upsert("ddd", 5, "d1")],
            &["stage/ccc"],
        ));
        handle.apply(&held).unwrap();
        let after = handle.load();
        assert_eq!(after.version(), 5);
        assert!(Arc::ptr_eq(
            before.resource("stage/aaa").unwrap(),
            after.resource("stage/aaa").unwrap()
        ));
        assert!(!Arc::ptr_eq(
            before.resource("stage/bbb").unwrap(),
            after.resource("stage/bbb").unwrap()
        ));
        assert!(after.resource("stage/ccc").is_none());
        assert!(serves(&after, "aaa").unwrap().contains("a1"));
        assert!(serves(&after, "bbb").unwrap().contains("b2"));
        assert_eq!(serves(&after, "ccc"), None);
        assert!(serves(&after, "ddd").unwrap().contains("d1"));
        assert_eq!(after.table().len(), 3);
        // The runtime it replaced still serves what it served.
        assert!(serves(&before, "bbb").unwrap().contains("b1"));
        assert!(serves(&before, "ccc").unwrap().contains("c1"));

        // A full update replaces everything; what it resends at the same
        // version is still reused, what it leaves out is gone.
        let held = held.apply(update(
            6,
            true,
            vec![upsert("aaa", 1, "a1"), upsert("eee", 6, "e1")],
            &[],
        ));
        handle.apply(&held).unwrap();
        let full = handle.load();
        assert!(Arc::ptr_eq(
            before.resource("stage/aaa").unwrap(),
            full.resource("stage/aaa").unwrap()
        ));
        for gone in ["bbb", "ccc", "ddd"] {
            assert_eq!(serves(&full, gone), None, "{gone}");
        }
        assert!(serves(&full, "eee").unwrap().contains("e1"));
        assert_eq!(full.table().len(), 2);
    }

    #[test]
    fn a_bad_delta_is_a_nack_and_changes_nothing() {
        let handle = RuntimeHandle::new("example.com");
        let held = Held::default().apply(update(
            2,
            true,
            vec![upsert("aaa", 1, "a1"), upsert("bbb", 2, "b1")],
            &[],
        ));
        handle.apply(&held).unwrap();
        let before = handle.load();
        // Not JSON at all.
        let mut broken = upsert("ccc", 3, "c1");
        broken.body = b"{not json".to_vec();
        let reason = handle
            .apply(&held.apply(update(
                3,
                false,
                vec![upsert("aaa", 3, "a2"), broken],
                &["stage/bbb"],
            )))
            .unwrap_err();
        assert!(
            reason.contains("stage/ccc") && reason.contains("not a valid stage snapshot"),
            "{reason}"
        );
        // A second resource for a stage that is already served.
        let mut twin = upsert("aaa", 4, "a3");
        twin.key = "stage/aaa-twin".into();
        let reason = handle
            .apply(&held.apply(update(4, false, vec![twin], &[])))
            .unwrap_err();
        assert!(reason.contains("defined twice"), "{reason}");
        // An integration that does not compile.
        let mut bad = stage("ccc", vec![route("/v", "GET", json!({"type": "WAT"}))]);
        bad.stage_name = "prod".into();
        let bad = SnapshotResource {
            key: "stage/ccc".into(),
            version: 5,
            body: serde_json::to_vec(&bad).unwrap(),
        };
        let reason = handle
            .apply(&held.apply(update(5, false, vec![bad], &[])))
            .unwrap_err();
        assert!(reason.contains("WAT"), "{reason}");
        // The old runtime is still the one in service, untouched.
        let now = handle.load();
        assert!(Arc::ptr_eq(&before, &now));
        assert_eq!(now.version(), 2);
        assert!(serves(&now, "aaa").unwrap().contains("a1"));
        assert!(serves(&now, "bbb").unwrap().contains("b1"));
        // And the next good delta still reuses what it had.
        handle
            .apply(&held.apply(update(6, false, vec![upsert("ddd", 6, "d1")], &[])))
            .unwrap();
        let next = handle.load();
        assert!(Arc::ptr_eq(
            before.resource("stage/aaa").unwrap(),
            next.resource("stage/aaa").unwrap()
        ));
        assert_eq!(next.table().len(), 3);
    }

    /// Not a benchmark, a guard: applying a one-stage delta over many stages
    /// must not recompile them (it would take seconds in a debug build).
    #[test]
    fn a_small_delta_over_many_stages_is_cheap() {
        let n = 5_000;
        let handle = RuntimeHandle::new("example.com");
        let upserts = (0..n)
            .map(|i| upsert(&format!("api{i:05}"), 1, "x"))
            .collect();
        let held = Held::default().apply(update(1, true, upserts, &[]));
        handle.apply(&held).unwrap();
        let held = held.apply(update(2, false, vec![upsert("api00042", 2, "y")], &[]));
        let started = std::time::Instant::now();
        handle.apply(&held).unwrap();
        let took = started.elapsed();
        let runtime = handle.load();
        assert_eq!(runtime.table().len(), n);
        assert!(serves(&runtime, "api00042").unwrap().contains('y'));
        eprintln!("one-stage delta over {n} stages applied in {took:?}");
        assert!(took < std::time::Duration::from_millis(500), "{took:?}");
    }
}
