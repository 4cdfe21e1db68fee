//! Config streaming end to end on real databases: publishing versioned
//! resources in the management transaction, the gRPC `Subscribe` stream (full
//! snapshot, deltas, ACK/NACK, reconnect with `held`, endpoint-class
//! filtering), and, on Postgres, LISTEN/NOTIFY between two replicas.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::Duration;

use apigw_control_plane::feed::ConfigFeed;
use apigw_control_plane::grpc::admin::NodeRegistry;
use apigw_control_plane::grpc::config as config_service;
use apigw_control_plane::publish::{self, stage_key};
use apigw_control_plane::store::config as config_store;
use apigw_control_plane::store::deployments::{self, DeploymentRow};
use apigw_control_plane::store::rest_apis::{self, RestApiRow};
use apigw_control_plane::store::stages::{self, StageRow};
use apigw_control_plane::store::tenants::{self, TenantRow};
use apigw_control_plane::store::{Store, Tx};
use apigw_control_plane::tenancy::{Sealer, Tenancy};
use apigw_proto::config::config_service_client::ConfigServiceClient;
use apigw_proto::config::node_message::Kind;
use apigw_proto::config::{Ack, ConfigUpdate, Hello, Nack, NodeMessage, ResourceVersion};
use apigw_proto::principal::{self, PrincipalSnapshot};
use apigw_proto::snapshot::{ApiSettings, DeploymentSnapshot, StageSnapshot};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio_stream::wrappers::ReceiverStream;
use tonic::transport::server::TcpIncoming;
use tonic::{Code, Streaming};

mod common;

const ACCOUNT: &str = "111111111111";
const REGION: &str = "us-east-1";
const WAIT: Duration = Duration::from_secs(2);

// ---------------------------------------------------------------- fixtures

fn deployment_snapshot(api_id: &str, deployment_id: &str) -> String {
    serde_json::to_string(&DeploymentSnapshot {
        account_id: ACCOUNT.into(),
        api_id: api_id.into(),
        deployment_id: deployment_id.into(),
        created_epoch_seconds: 1,
        api: ApiSettings {
            name: api_id.into(),
            ..Default::default()
        },
        routes: Vec::new(),
        gateway_responses: BTreeMap::new(),
        models: BTreeMap::new(),
        request_validators: BTreeMap::new(),
        authorizers: BTreeMap::new(),
    })
    .unwrap()
}

/// A tenant (once), an API of `endpoint_type` and its deployments `d1`, `d2`.
async fn seed_api(tx: &mut Tx, api_id: &str, endpoint_type: &str) {
    if tenants::get_tenant(tx, ACCOUNT).await.unwrap().is_none() {
        tenants::insert_tenant(
            tx,
            &TenantRow {
                account_id: ACCOUNT.into(),
                name: "t".into(),
                created_at: 1,
            },
        )
        .await
        .unwrap();
    }
    let doc = serde_json::json!({
        "api": { "id": api_id, "endpointConfiguration": { "types": [endpoint_type] } }
    });
    rest_apis::insert(
        tx,
        &RestApiRow {
            api_id: api_id.into(),
            account_id: ACCOUNT.into(),
            created_at: 1,
            version: 1,
            doc: doc.to_string(),
        },
    )
    .await
    .unwrap();
    for d in ["d1", "d2"] {
        deployments::insert(
            tx,
            &DeploymentRow {
                api_id: api_id.into(),
                deployment_id: d.into(),
                account_id: ACCOUNT.into(),
                created_at: 1,
                doc: "{}".into(),
                snapshot: deployment_snapshot(api_id, d),
            },
        )
        .await
        .unwrap();
    }
}

fn stage_doc(variables: &[(&str, &str)]) -> String {
    let variables: BTreeMap<_, _> = variables.iter().copied().collect();
    serde_json::json!({
        "stageName": "ignored", "variables": variables,
        "methodSettings": { "*/*": { "throttlingBurstLimit": 10 } }
    })
    .to_string()
}

async fn create_stage(tx: &mut Tx, api_id: &str, stage: &str) -> u64 {
    stages::insert(
        tx,
        &StageRow {
            api_id: api_id.into(),
            stage_name: stage.into(),
            account_id: ACCOUNT.into(),
            deployment_id: "d1".into(),
            created_at: 1,
            version: 1,
            doc: stage_doc(&[]),
        },
    )
    .await
    .unwrap();
    publish::publish_stage(tx, ACCOUNT, api_id, stage)
        .await
        .unwrap()
        .expect("a new stage publishes")
}

/// Points the stage at `deployment_id` with `variables`, and publishes it.
async fn change_stage(
    tx: &mut Tx,
    api_id: &str,
    stage: &str,
    deployment_id: &str,
    variables: &[(&str, &str)],
) -> Option<u64> {
    let row = stages::get(tx, ACCOUNT, api_id, stage)
        .await
        .unwrap()
        .unwrap();
    stages::update(
        tx,
        &StageRow {
            deployment_id: deployment_id.into(),
            doc: stage_doc(variables),
            ..row
        },
    )
    .await
    .unwrap();
    publish::publish_stage(tx, ACCOUNT, api_id, stage)
        .await
        .unwrap()
}

async fn delete_stage(tx: &mut Tx, api_id: &str, stage: &str) -> u64 {
    assert!(stages::delete(tx, ACCOUNT, api_id, stage).await.unwrap());
    publish::retract_stage(tx, ACCOUNT, api_id, stage)
        .await
        .unwrap()
        .expect("a live stage is retracted")
}

fn key(api_id: &str, stage: &str) -> String {
    stage_key(ACCOUNT, api_id, stage)
}

// ------------------------------------------------------------- gRPC harness

struct Server {
    addr: SocketAddr,
    nodes: NodeRegistry,
    task: JoinHandle<()>,
}

impl Drop for Server {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn start(store: Store, feed: ConfigFeed) -> Server {
    let sealer = Sealer::from_base64(&Sealer::generate_key()).unwrap();
    start_with(Tenancy::new(store, sealer), feed).await
}

async fn start_with(tenancy: Tenancy, feed: ConfigFeed) -> Server {
    let nodes = NodeRegistry::new();
    let server = config_service::ConfigServer::new(tenancy, feed, nodes.clone(), REGION.into());
    start_server(server, nodes).await
}

async fn start_server(server: config_service::ConfigServer, nodes: NodeRegistry) -> Server {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let router = tonic::transport::Server::builder().add_service(server.into_service());
    let task = tokio::spawn(async move {
        router
            .serve_with_incoming(TcpIncoming::from(listener))
            .await
            .unwrap();
    });
    Server { addr, nodes, task }
}

struct NodeClient {
    out: mpsc::Sender<NodeMessage>,
    updates: Streaming<ConfigUpdate>,
}

fn hello(node_id: &str, region: &str, class: &str, held: &[(&str, u64)]) -> NodeMessage {
    NodeMessage {
        kind: Some(Kind::Hello(Hello {
            node_id: node_id.into(),
            region: region.into(),
            endpoint_class: class.into(),
            held: held
                .iter()
                .map(|(k, v)| ResourceVersion {
                    key: (*k).into(),
                    version: *v,
                })
                .collect(),
        })),
    }
}

async fn subscribe(addr: SocketAddr, first: NodeMessage) -> Result<NodeClient, tonic::Status> {
    let mut client = ConfigServiceClient::connect(format!("http://{addr}"))
        .await
        .unwrap()
        .max_decoding_message_size(64 * 1024 * 1024);
    let (out, rx) = mpsc::channel(16);
    out.send(first).await.unwrap();
    let updates = client
        .subscribe(ReceiverStream::new(rx))
        .await?
        .into_inner();
    Ok(NodeClient { out, updates })
}

impl NodeClient {
    async fn next(&mut self) -> ConfigUpdate {
        tokio::time::timeout(WAIT, self.updates.message())
            .await
            .expect("an update within 2 s")
            .unwrap()
            .expect("the stream is open")
    }

    /// Asserts that nothing arrives for a short while.
    async fn quiet(&mut self) {
        if let Ok(m) =
            tokio::time::timeout(Duration::from_millis(300), self.updates.message()).await
        {
            panic!("expected no update, got {m:?}");
        }
    }

    async fn send(&self, kind: Kind) {
        self.out
            .send(NodeMessage { kind: Some(kind) })
            .await
            .unwrap();
    }
}

fn keys(update: &ConfigUpdate) -> Vec<String> {
    let mut k: Vec<String> = update.upserts.iter().map(|r| r.key.clone()).collect();
    k.sort();
    k
}

async fn eventually(what: &str, mut check: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + WAIT;
    while !check() {
        assert!(tokio::time::Instant::now() < deadline, "timed out: {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

// ------------------------------------------------------------------- tests

both_backends! {
    stage_changes_publish_versioned_resources => |store: Store| async move {
        let mut tx = store.begin().await.unwrap();
        seed_api(&mut tx, "apione", "REGIONAL").await;
        let v1 = create_stage(&mut tx, "apione", "prod").await;
        tx.commit().await.unwrap();

        let mut tx = store.begin().await.unwrap();
        let row = config_store::get(&mut tx, &key("apione", "prod")).await.unwrap().unwrap();
        assert_eq!(row.version as u64, v1);
        assert_eq!((row.account_id.as_str(), row.endpoint_type.as_str()), (ACCOUNT, "REGIONAL"));
        let snap: StageSnapshot = serde_json::from_str(row.body.as_deref().unwrap()).unwrap();
        assert_eq!(snap.stage_name, "prod");
        assert_eq!(snap.deployment.deployment_id, "d1");
        assert_eq!(snap.method_settings["*/*"]["throttlingBurstLimit"], 10);
        assert_eq!(config_store::current_version(&mut tx).await.unwrap() as u64, v1);

        // An update (new deployment, variables) is a new, higher version.
        let v2 = change_stage(&mut tx, "apione", "prod", "d2", &[("color", "blue")]).await.unwrap();
        assert!(v2 > v1, "{v2} > {v1}");
        // Re-publishing an identical snapshot takes no version.
        assert_eq!(publish::publish_stage(&mut tx, ACCOUNT, "apione", "prod").await.unwrap(), None);
        tx.commit().await.unwrap();

        let mut tx = store.begin().await.unwrap();
        let row = config_store::get(&mut tx, &key("apione", "prod")).await.unwrap().unwrap();
        let snap: StageSnapshot = serde_json::from_str(row.body.as_deref().unwrap()).unwrap();
        assert_eq!((row.version as u64, snap.deployment.deployment_id.as_str()), (v2, "d2"));
        assert_eq!(snap.variables["color"], "blue");

        // Deleting leaves a tombstone with a new version.
        let v3 = delete_stage(&mut tx, "apione", "prod").await;
        assert!(v3 > v2);
        assert_eq!(publish::retract_stage(&mut tx, ACCOUNT, "apione", "prod").await.unwrap(), None);
        tx.commit().await.unwrap();
        let mut tx = store.begin().await.unwrap();
        let row = config_store::get(&mut tx, &key("apione", "prod")).await.unwrap().unwrap();
        assert_eq!((row.version as u64, row.body), (v3, None));
        drop(tx);

        // A failed call (rolled back) publishes nothing and takes no version.
        {
            let mut tx = store.begin().await.unwrap();
            create_stage(&mut tx, "apione", "beta").await;
            change_stage(&mut tx, "apione", "beta", "d2", &[]).await.unwrap();
        }
        let mut tx = store.begin().await.unwrap();
        assert!(config_store::get(&mut tx, &key("apione", "beta")).await.unwrap().is_none());
        assert_eq!(config_store::current_version(&mut tx).await.unwrap() as u64, v3);

        // Deleting the API tombstones all its stages under one version.
        create_stage(&mut tx, "apione", "a").await;
        create_stage(&mut tx, "apione", "b").await;
        assert!(rest_apis::delete(&mut tx, ACCOUNT, "apione").await.unwrap());
        let v4 = publish::retract_api(&mut tx, ACCOUNT, "apione").await.unwrap().unwrap();
        assert_eq!(publish::retract_api(&mut tx, ACCOUNT, "apione").await.unwrap(), None);
        for s in ["a", "b"] {
            let row = config_store::get(&mut tx, &key("apione", s)).await.unwrap().unwrap();
            assert_eq!((row.version as u64, row.body), (v4, None));
        }
        tx.commit().await.unwrap();
    };

    backfill_publishes_stages_that_predate_streaming => |store: Store| async move {
        let mut tx = store.begin().await.unwrap();
        seed_api(&mut tx, "apione", "EDGE").await;
        create_stage(&mut tx, "apione", "prod").await;
        // A stage written without publishing, as before migration 0002.
        stages::insert(&mut tx, &StageRow {
            api_id: "apione".into(), stage_name: "old".into(), account_id: ACCOUNT.into(),
            deployment_id: "d2".into(), created_at: 1, version: 1, doc: stage_doc(&[]),
        }).await.unwrap();
        tx.commit().await.unwrap();
        let v = publish::backfill(&store).await.unwrap().unwrap();
        assert_eq!(publish::backfill(&store).await.unwrap(), None);
        let mut tx = store.begin().await.unwrap();
        let row = config_store::get(&mut tx, &key("apione", "old")).await.unwrap().unwrap();
        assert_eq!((row.version as u64, row.endpoint_type.as_str()), (v, "EDGE"));
    };

    grpc_stream_full_then_deltas_acks_and_reconnect => |store: Store| async move {
        let feed = ConfigFeed::new();
        let mut tx = store.begin().await.unwrap();
        seed_api(&mut tx, "edgeapi", "EDGE").await;
        seed_api(&mut tx, "regapi", "REGIONAL").await;
        seed_api(&mut tx, "privapi", "PRIVATE").await;
        create_stage(&mut tx, "edgeapi", "prod").await;
        create_stage(&mut tx, "regapi", "prod").await;
        let v0 = create_stage(&mut tx, "privapi", "prod").await;
        tx.commit().await.unwrap();
        let server = start(store.clone(), feed.clone()).await;

        // A public node of the control plane's region: EDGE and REGIONAL, never PRIVATE.
        let mut node = subscribe(server.addr, hello("n1", REGION, "public", &[])).await.unwrap();
        let full = node.next().await;
        assert!(full.full);
        assert_eq!(full.version, v0);
        assert_eq!(keys(&full), vec![key("edgeapi", "prod"), key("regapi", "prod")]);
        assert!(full.removals.is_empty());
        let body: StageSnapshot = serde_json::from_slice(&full.upserts[0].body).unwrap();
        assert_eq!(body.deployment.api_id, "edgeapi");
        eventually("node registered", || server.nodes.list().iter().any(|n| n.node_id == "n1")).await;

        node.send(Kind::Ack(Ack { version: full.version })).await;
        eventually("ACK recorded", || {
            server.nodes.list().iter().any(|n| n.node_id == "n1" && n.applied_version == v0)
        }).await;
        let info = server.nodes.list().into_iter().find(|n| n.node_id == "n1").unwrap();
        assert_eq!((info.region.as_str(), info.endpoint_class.as_str()), (REGION, "public"));

        // A stage update reaches the node as a delta.
        let mut tx = store.begin().await.unwrap();
        let v1 = change_stage(&mut tx, "edgeapi", "prod", "d2", &[("x", "1")]).await.unwrap();
        tx.commit().await.unwrap();
        feed.published(v1);
        let delta = node.next().await;
        assert!(!delta.full);
        assert_eq!(delta.version, v1);
        assert_eq!(keys(&delta), vec![key("edgeapi", "prod")]);
        assert_eq!(delta.upserts[0].version, v1);
        let body: StageSnapshot = serde_json::from_slice(&delta.upserts[0].body).unwrap();
        assert_eq!(body.deployment.deployment_id, "d2");
        node.send(Kind::Ack(Ack { version: v1 })).await;
        eventually("second ACK", || {
            server.nodes.list().iter().any(|n| n.node_id == "n1" && n.applied_version == v1)
        }).await;

        // A change to a PRIVATE API is not sent to a public node.
        let mut tx = store.begin().await.unwrap();
        let vp = change_stage(&mut tx, "privapi", "prod", "d2", &[]).await.unwrap();
        tx.commit().await.unwrap();
        feed.published(vp);
        node.quiet().await;

        // A NACK keeps the applied version and the stream.
        node.send(Kind::Nack(Nack { version: vp, reason: "bad template".into() })).await;

        // A deletion arrives as a removal.
        let mut tx = store.begin().await.unwrap();
        let v2 = delete_stage(&mut tx, "regapi", "prod").await;
        tx.commit().await.unwrap();
        feed.published(v2);
        let delta = node.next().await;
        assert_eq!((delta.full, delta.version), (false, v2));
        assert!(delta.upserts.is_empty());
        assert_eq!(delta.removals, vec![key("regapi", "prod")]);
        assert!(server.nodes.list().iter().any(|n| n.node_id == "n1" && n.applied_version == v1));

        // Disconnect: the node leaves the registry.
        drop(node);
        eventually("node unregistered", || server.nodes.list().is_empty()).await;

        // While it is away: a new stage, and the edge stage changes again.
        let mut tx = store.begin().await.unwrap();
        create_stage(&mut tx, "edgeapi", "beta").await;
        tx.commit().await.unwrap();

        // Reconnect saying what it holds (with a stale regapi entry): only the difference.
        let mut node = subscribe(server.addr, hello(
            "n1", REGION, "public",
            &[(&key("edgeapi", "prod"), v1), (&key("regapi", "prod"), 1)],
        )).await.unwrap();
        let delta = node.next().await;
        assert!(!delta.full);
        assert_eq!(keys(&delta), vec![key("edgeapi", "beta")]);
        assert_eq!(delta.removals, vec![key("regapi", "prod")]);
        let mut tx = store.begin().await.unwrap();
        assert_eq!(delta.version, config_store::current_version(&mut tx).await.unwrap() as u64);
        drop(tx);

        // A private node gets only the PRIVATE API; a public node of another
        // region gets EDGE but not REGIONAL.
        let mut private = subscribe(server.addr, hello("p1", REGION, "private", &[])).await.unwrap();
        let full = private.next().await;
        assert_eq!((full.full, keys(&full)), (true, vec![key("privapi", "prod")]));
        let mut tx = store.begin().await.unwrap();
        seed_api(&mut tx, "regtwo", "REGIONAL").await;
        create_stage(&mut tx, "regtwo", "prod").await;
        tx.commit().await.unwrap();
        let mut abroad = subscribe(server.addr, hello("e1", "eu-west-1", "public", &[])).await.unwrap();
        let full = abroad.next().await;
        assert_eq!(keys(&full), vec![key("edgeapi", "beta"), key("edgeapi", "prod")]);
        assert_eq!(server.nodes.list().len(), 3);
    };

    grpc_stream_rejects_a_missing_or_bad_hello => |store: Store| async move {
        let server = start(store, ConfigFeed::new()).await;
        let ack_first = NodeMessage { kind: Some(Kind::Ack(Ack { version: 1 })) };
        let e = subscribe(server.addr, ack_first).await.err().expect("refused");
        assert_eq!(e.code(), Code::InvalidArgument, "{e}");
        let e = subscribe(server.addr, hello("n1", REGION, "internal", &[])).await.err().expect("refused");
        assert_eq!(e.code(), Code::InvalidArgument, "{e}");
        let e = subscribe(server.addr, hello("", REGION, "public", &[])).await.err().expect("refused");
        assert_eq!(e.code(), Code::InvalidArgument, "{e}");
        assert!(server.nodes.list().is_empty());
    };

    endpoint_type_change_moves_stages_between_node_classes => |store: Store| async move {
        let feed = ConfigFeed::new();
        let mut tx = store.begin().await.unwrap();
        seed_api(&mut tx, "apione", "EDGE").await;
        create_stage(&mut tx, "apione", "prod").await;
        tx.commit().await.unwrap();
        let server = start(store.clone(), feed.clone()).await;
        let mut public = subscribe(server.addr, hello("n1", REGION, "public", &[])).await.unwrap();
        let mut private = subscribe(server.addr, hello("p1", REGION, "private", &[])).await.unwrap();
        assert_eq!(keys(&public.next().await), vec![key("apione", "prod")]);
        assert!(private.next().await.upserts.is_empty());

        let mut tx = store.begin().await.unwrap();
        let doc = serde_json::json!({ "api": { "endpointConfiguration": { "types": ["PRIVATE"] } } });
        rest_apis::update(&mut tx, ACCOUNT, "apione", 1, &doc.to_string()).await.unwrap();
        let v = publish::publish_api_stages(&mut tx, ACCOUNT, "apione").await.unwrap().unwrap();
        tx.commit().await.unwrap();
        feed.published(v);
        let gone = public.next().await;
        assert_eq!((gone.removals.clone(), gone.upserts.len()), (vec![key("apione", "prod")], 0));
        let came = private.next().await;
        assert_eq!(keys(&came), vec![key("apione", "prod")]);
    };
}

both_backends! {
    principals_reach_every_node_with_keys_for_its_region_only => |store: Store| async move {
        let feed = ConfigFeed::new();
        let sealer = Sealer::from_base64(&Sealer::generate_key()).unwrap();
        let tenancy = Tenancy::new(store.clone(), sealer).with_feed(feed.clone());
        tenancy.create_tenant("t", Some(ACCOUNT)).await.unwrap();
        tenancy.add_access_key(ACCOUNT, "AKIAADMINKEY", "admin-secret").await.unwrap();
        let policy = r#"{"Statement":[{"Effect":"Allow","Action":"execute-api:Invoke","Resource":"*"}]}"#;
        let bob = tenancy.create_principal(ACCOUNT, "user", "bob", policy).await.unwrap();
        let server = start_with(tenancy.clone(), feed).await;
        // Principals are GLOBAL: private and public nodes of any region get them.
        let mut east = subscribe(server.addr, hello("n1", REGION, "private", &[])).await.unwrap();
        let mut west = subscribe(server.addr, hello("n2", "eu-west-1", "public", &[])).await.unwrap();
        let today = chrono::Utc::now().date_naive();
        let midnight = today.and_hms_opt(0, 0, 0).unwrap().and_utc();
        let bob_key = principal::resource_key(&bob.row.access_key_id);
        let mut expected = vec![principal::resource_key("AKIAADMINKEY"), bob_key.clone()];
        expected.sort();
        for (node, region) in [(&mut east, REGION), (&mut west, "eu-west-1")] {
            let update = node.next().await;
            assert_eq!(keys(&update), expected);
            for r in &update.upserts {
                let text = String::from_utf8(r.body.clone()).unwrap();
                assert!(!text.contains("admin-secret") && !text.contains(&bob.secret), "{text}");
                let p: PrincipalSnapshot = serde_json::from_str(&text).unwrap();
                let secret = if p.admin { "admin-secret" } else { bob.secret.as_str() };
                assert_eq!(p.signing_keys.len(), 4, "{text}");
                let want = apigw_sigv4::signing_key(secret, &midnight, region, "execute-api");
                assert_eq!(p.signing_keys[&today.format("%Y%m%d").to_string()], hex::encode(want));
            }
        }
        // A policy change is a new version; a deletion a removal.
        tenancy
            .put_principal_policy(&bob.row.access_key_id, &policy.replace("\"*\"", "\"arn:*\""))
            .await
            .unwrap();
        let changed = east.next().await;
        assert_eq!(keys(&changed), vec![bob_key.clone()]);
        tenancy.delete_principal(&bob.row.access_key_id).await.unwrap();
        assert_eq!(east.next().await.removals, vec![bob_key]);
    };

    nodes_must_present_the_node_token_when_one_is_set => |store: Store| async move {
        let tenancy = Tenancy::new(store.clone(), Sealer::from_base64(&Sealer::generate_key()).unwrap());
        let nodes = NodeRegistry::new();
        let server = config_service::ConfigServer::new(tenancy, ConfigFeed::new(), nodes.clone(), REGION.into())
            .with_node_token(Some("node-secret-token".into()));
        let server = start_server(server, nodes).await;
        let connect = |token: Option<&'static str>| async move {
            let mut client = ConfigServiceClient::connect(format!("http://{}", server.addr)).await.unwrap();
            let (out, rx) = mpsc::channel(16);
            out.send(hello("n1", REGION, "public", &[])).await.unwrap();
            let mut request = tonic::Request::new(ReceiverStream::new(rx));
            if let Some(t) = token {
                request.metadata_mut().insert("authorization", format!("Bearer {t}").parse().unwrap());
            }
            let result = client.subscribe(request).await.map(|r| r.into_inner());
            (result, out)
        };
        for token in [None, Some("wrong-token"), Some("node-secret-tokenX")] {
            let (result, _out) = connect(token).await;
            assert_eq!(result.err().map(|s| s.code()), Some(Code::Unauthenticated), "{token:?}");
        }
        assert!(server.nodes.list().is_empty());
        let (result, _out) = connect(Some("node-secret-token")).await;
        let first = result.unwrap().message().await.unwrap().unwrap();
        assert!(first.full);
    };

    principal_key_windows_move_with_the_day => |store: Store| async move {
        let tenancy = Tenancy::new(store.clone(), Sealer::from_base64(&Sealer::generate_key()).unwrap());
        tenancy.create_tenant("t", Some(ACCOUNT)).await.unwrap();
        tenancy.add_access_key(ACCOUNT, "AKIAADMINKEY", "admin-secret").await.unwrap();
        let day = chrono::NaiveDate::from_ymd_opt(2030, 12, 31).unwrap();
        let first = publish::refresh_principals(&store, day).await.unwrap();
        assert!(first.is_some());
        // Idempotent within a day; the next day moves the window.
        assert_eq!(publish::refresh_principals(&store, day).await.unwrap(), None);
        let next = day.succ_opt().unwrap();
        let moved = publish::refresh_principals(&store, next).await.unwrap();
        assert!(moved > first);
        let mut tx = store.begin().await.unwrap();
        let row = config_store::get(&mut tx, &principal::resource_key("AKIAADMINKEY"))
            .await
            .unwrap()
            .unwrap();
        let p: PrincipalSnapshot = serde_json::from_str(row.body.as_deref().unwrap()).unwrap();
        assert_eq!(p.dates, ["20301231", "20310101", "20310102", "20310103"]);
        assert!(p.signing_keys.is_empty(), "no key material is stored");
        assert_eq!(row.endpoint_type, principal::GLOBAL);
    };
}

/// Two control-plane replicas on one Postgres database: a change committed
/// through replica A reaches a node subscribed to replica B through
/// LISTEN/NOTIFY alone (B's feed is never bumped by hand).
#[tokio::test]
async fn postgres_notify_reaches_the_other_replica() {
    let url = common::postgres_url().await;
    let store_a = Store::open(&url).await.unwrap();
    let store_b = Store::open(&url).await.unwrap();
    let feed_a = ConfigFeed::new();
    let feed_b = ConfigFeed::new();
    let listen_a = feed_a.listen_postgres(&url).await.unwrap();
    let listen_b = feed_b.listen_postgres(&url).await.unwrap();

    let mut tx = store_a.begin().await.unwrap();
    seed_api(&mut tx, "apione", "EDGE").await;
    create_stage(&mut tx, "apione", "prod").await;
    tx.commit().await.unwrap();

    let server_b = start(store_b.clone(), feed_b.clone()).await;
    let mut node = subscribe(server_b.addr, hello("n1", REGION, "public", &[]))
        .await
        .unwrap();
    assert_eq!(keys(&node.next().await), vec![key("apione", "prod")]);

    let mut wake_a = feed_a.subscribe();
    let mut tx = store_a.begin().await.unwrap();
    let v = change_stage(&mut tx, "apione", "prod", "d2", &[("via", "a")])
        .await
        .unwrap();
    tx.commit().await.unwrap();

    let delta = node.next().await;
    assert_eq!((delta.full, delta.version), (false, v));
    assert_eq!(keys(&delta), vec![key("apione", "prod")]);
    // Both feeds learnt the version from the notification.
    tokio::time::timeout(WAIT, wake_a.wait_for(|x| *x >= v))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(feed_b.latest(), v);

    // A rolled-back change notifies nobody (NOTIFY is delivered at commit only).
    {
        let mut tx = store_a.begin().await.unwrap();
        change_stage(&mut tx, "apione", "prod", "d1", &[])
            .await
            .unwrap();
        tx.rollback().await.unwrap();
    }
    node.quiet().await;
    assert_eq!(feed_b.latest(), v);

    listen_a.abort();
    listen_b.abort();
}
