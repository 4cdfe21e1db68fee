//! The management handlers publish config resources in their transaction and
//! wake the feed after commit. Driven through the real routers, with the
//! SigV4 layer replaced by a fixed caller.

use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::http::{Method, Request, StatusCode};
use serde_json::{Value, json};
use tower::ServiceExt;

use super::auth::Caller;
use super::{AppState, deployments, integrations, methods, rest_apis, stages, tags};
use crate::config::ManagementConfig;
use crate::feed::ConfigFeed;
use crate::publish::stage_key;
use crate::store::Store;
use crate::store::config::{self as config_store, ConfigResourceRow};
use crate::tenancy::{Sealer, Tenancy};

const ACCOUNT: &str = "123456789012";

struct Harness {
    _dir: tempfile::TempDir,
    store: Store,
    feed: ConfigFeed,
    router: Router,
}

impl Harness {
    async fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&Store::sqlite_url(&dir.path().join("t.db")))
            .await
            .unwrap();
        let tenancy = Tenancy::new(
            store.clone(),
            Sealer::from_base64(&Sealer::generate_key()).unwrap(),
        );
        tenancy.create_tenant("t", Some(ACCOUNT)).await.unwrap();
        let feed = ConfigFeed::new();
        let state = AppState {
            store: store.clone(),
            tenancy,
            config: Arc::new(ManagementConfig::default()),
            feed: feed.clone(),
            usage: Default::default(),
        };
        let router = Router::new()
            .merge(rest_apis::routes())
            .merge(methods::routes())
            .merge(integrations::routes())
            .merge(deployments::routes())
            .merge(stages::routes())
            .merge(tags::routes())
            .layer(axum::Extension(Caller {
                account_id: ACCOUNT.into(),
                access_key_id: "AKIATEST".into(),
                region: "us-east-1".into(),
            }))
            .with_state(state);
        Self {
            _dir: dir,
            store,
            feed,
            router,
        }
    }

    async fn call(&self, method: Method, uri: &str, body: Value) -> (StatusCode, Value) {
        let request = Request::builder()
            .method(method)
            .uri(uri)
            .header("content-type", "application/json")
            .body(Body::from(body.to_string()))
            .unwrap();
        let response = self.router.clone().oneshot(request).await.unwrap();
        let status = response.status();
        let bytes = axum::body::to_bytes(response.into_body(), usize::MAX)
            .await
            .unwrap();
        (
            status,
            serde_json::from_slice(&bytes).unwrap_or(Value::Null),
        )
    }

    async fn resource(&self, key: &str) -> Option<ConfigResourceRow> {
        let mut tx = self.store.begin().await.unwrap();
        config_store::get(&mut tx, key).await.unwrap()
    }

    async fn version(&self) -> u64 {
        let mut tx = self.store.begin().await.unwrap();
        config_store::current_version(&mut tx).await.unwrap() as u64
    }
}

#[tokio::test]
async fn management_calls_publish_and_wake_the_feed() {
    let h = Harness::new().await;
    let (s, api) = h
        .call(Method::POST, "/restapis", json!({ "name": "pets" }))
        .await;
    assert_eq!(s, StatusCode::CREATED, "{api}");
    let (api_id, root) = (
        api["id"].as_str().unwrap().to_owned(),
        api["rootResourceId"].as_str().unwrap().to_owned(),
    );
    let method = format!("/restapis/{api_id}/resources/{root}/methods/GET");
    let (s, _) = h
        .call(Method::PUT, &method, json!({ "authorizationType": "NONE" }))
        .await;
    assert_eq!(s, StatusCode::CREATED);
    let (s, b) = h
        .call(
            Method::PUT,
            &format!("{method}/integration"),
            json!({ "type": "MOCK" }),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{b}");
    assert_eq!(
        h.version().await,
        0,
        "nothing published before a stage exists"
    );

    // CreateDeployment with a stageName creates and publishes the stage.
    let mut wake = h.feed.subscribe();
    let (s, d) = h
        .call(
            Method::POST,
            &format!("/restapis/{api_id}/deployments"),
            json!({ "stageName": "prod", "variables": { "a": "1" } }),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{d}");
    let key = stage_key(ACCOUNT, &api_id, "prod");
    let row = h.resource(&key).await.unwrap();
    assert_eq!(row.endpoint_type, "EDGE");
    assert!(wake.has_changed().unwrap());
    assert_eq!(*wake.borrow_and_update(), row.version as u64);
    let v1 = row.version;

    // UpdateStage: a new version; a description-only change takes none.
    let stage = format!("/restapis/{api_id}/stages/prod");
    let patch = |path: &str, value: &str| json!({ "patchOperations": [{ "op": "replace", "path": path, "value": value }] });
    let (s, b) = h
        .call(Method::PATCH, &stage, patch("/variables/a", "2"))
        .await;
    assert_eq!(s, StatusCode::OK, "{b}");
    let v2 = h.resource(&key).await.unwrap().version;
    assert!(v2 > v1);
    assert_eq!(h.feed.latest(), v2 as u64);
    h.call(Method::PATCH, &stage, patch("/description", "x"))
        .await;
    assert_eq!(h.resource(&key).await.unwrap().version, v2);

    // FlushStageAuthorizersCache: a new version whose body carries a new
    // generation, kept by later republications; unknown stages are 404.
    let generation = |row: &ConfigResourceRow| {
        serde_json::from_str::<Value>(row.body.as_deref().unwrap()).unwrap()
            ["authorizerCacheGeneration"]
            .as_u64()
    };
    assert_eq!(generation(&h.resource(&key).await.unwrap()), None);
    let flush = format!("{stage}/cache/authorizers");
    for expected in [1, 2] {
        let (s, _) = h.call(Method::DELETE, &flush, Value::Null).await;
        assert_eq!(s, StatusCode::ACCEPTED);
        let row = h.resource(&key).await.unwrap();
        assert_eq!(generation(&row), Some(expected));
        assert_eq!(h.feed.latest(), row.version as u64);
    }
    let (s, b) = h
        .call(Method::PATCH, &stage, patch("/variables/a", "3"))
        .await;
    assert_eq!(s, StatusCode::OK, "{b}");
    let row = h.resource(&key).await.unwrap();
    assert_eq!(generation(&row), Some(2));
    let v2 = row.version;
    let before = h.version().await;
    let (s, b) = h
        .call(
            Method::DELETE,
            &format!("/restapis/{api_id}/stages/nope/cache/authorizers"),
            Value::Null,
        )
        .await;
    assert_eq!(
        (s, b["message"].as_str()),
        (
            StatusCode::NOT_FOUND,
            Some("Invalid stage identifier specified")
        )
    );
    assert_eq!(h.version().await, before);

    // A refused call publishes nothing.
    let (s, _) = h
        .call(Method::PATCH, &stage, patch("/deploymentId", "nope00"))
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    assert_eq!(h.version().await, v2 as u64);

    // Moving the API to PRIVATE republishes its stages for private nodes.
    let (s, b) = h
        .call(
            Method::PATCH,
            &format!("/restapis/{api_id}"),
            json!({ "patchOperations": [{ "op": "replace", "path": "/endpointConfiguration/types/EDGE", "value": "PRIVATE" }] }),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{b}");
    let row = h.resource(&key).await.unwrap();
    assert_eq!(row.endpoint_type, "PRIVATE");
    assert!(row.version > v2);

    // CreateStage, DeleteStage.
    let deployment_id = d["id"].as_str().unwrap();
    let (s, b) = h
        .call(
            Method::POST,
            &format!("/restapis/{api_id}/stages"),
            json!({ "stageName": "beta", "deploymentId": deployment_id }),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{b}");
    let beta = stage_key(ACCOUNT, &api_id, "beta");
    assert!(h.resource(&beta).await.unwrap().body.is_some());
    let (s, _) = h
        .call(
            Method::DELETE,
            &format!("/restapis/{api_id}/stages/beta"),
            Value::Null,
        )
        .await;
    assert_eq!(s, StatusCode::ACCEPTED);
    let gone = h.resource(&beta).await.unwrap();
    assert!(gone.body.is_none());
    assert_eq!(h.feed.latest(), gone.version as u64);

    // DeleteRestApi tombstones the remaining stage.
    let (s, _) = h
        .call(Method::DELETE, &format!("/restapis/{api_id}"), Value::Null)
        .await;
    assert_eq!(s, StatusCode::ACCEPTED);
    let row = h.resource(&key).await.unwrap();
    assert!(row.body.is_none());
    assert_eq!(h.feed.latest(), row.version as u64);
    assert_eq!(h.version().await, row.version as u64);
}
