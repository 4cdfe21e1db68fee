//! The config streaming service (`apigw.config.v1.ConfigService`): each
//! data-plane node opens one `Subscribe` stream, says who it is and what it
//! holds, receives a full snapshot or only the difference, then a delta for
//! every later change that concerns it. It ACKs or NACKs each version.
//!
//! Wire behaviour:
//! - The first node message must be `Hello` (node id, region, endpoint class
//!   `public`|`private`); anything else ends the call with `INVALID_ARGUMENT`.
//! - First update, always sent: with an empty `held`, `full = true` and every
//!   live resource the node serves; otherwise `full = false` with upserts for
//!   served live resources the node lacks or holds at another version, and
//!   removals for held keys that are removed, unknown or no longer served.
//!   Its `version` is the configuration version the node is now at.
//! - Then, whenever the feed wakes (local commit or Postgres NOTIFY, plus a
//!   safety re-read every 30 s), rows with `version > last sent` are read; the
//!   ones concerning the node become one delta (`full = false`) whose `version`
//!   is the highest read. Nothing is sent when no row concerns the node.
//! - Serving rule: PRIVATE → `private` nodes; EDGE → every `public` node;
//!   REGIONAL → `public` nodes whose region is the control plane's; GLOBAL
//!   (principals) → every node.
//! - A principal (`principal/{access_key_id}`) is stored without key material
//!   and leaves here with `signingKeys`: `kSigning` for each of its days, the
//!   receiving node's region and `execute-api`, derived from the sealed secret
//!   at send time. A node never holds a secret, nor a key for another region.
//!
//! Nodes authenticate with a bearer token (`authorization: Bearer <token>`
//! metadata on `Subscribe`) when the control plane has one configured
//! (`--node-token`); without one, anyone reaching the gRPC port may subscribe
//! and receive principals' signing keys, so only a trusted network will do.

use std::collections::{BTreeMap, HashMap};
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use apigw_proto::config::config_service_server::{ConfigService, ConfigServiceServer};
use apigw_proto::config::node_message::Kind;
use apigw_proto::config::{ConfigUpdate, Hello, NodeMessage, SnapshotResource};
use apigw_proto::principal::{self, EXECUTE_API, PrincipalSnapshot};
use chrono::NaiveDate;
use futures::Stream;
use subtle::ConstantTimeEq;
use tokio::sync::{mpsc, watch};
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Request, Response, Status, Streaming};

use super::admin::{NodeInfo, NodeRegistry};
use crate::feed::ConfigFeed;
use crate::publish::as_version;
use crate::store::config::{self as config_store, ConfigResourceRow};
use crate::store::{StoreError, now_epoch};
use crate::tenancy::{Tenancy, TenancyError};

/// How long a node may take to send its `Hello`.
const HELLO_TIMEOUT: Duration = Duration::from_secs(30);
/// A re-read even without a wake-up, in case a notification was lost.
pub const SAFETY_REREAD: Duration = Duration::from_secs(30);

/// Whether a node of `endpoint_class` in `node_region` serves resources of
/// `endpoint_type`, on a control plane in `control_plane_region`.
pub fn serves(
    endpoint_type: &str,
    endpoint_class: &str,
    node_region: &str,
    control_plane_region: &str,
) -> bool {
    match endpoint_type {
        principal::GLOBAL => true,
        "PRIVATE" => endpoint_class == "private",
        "REGIONAL" => endpoint_class == "public" && node_region == control_plane_region,
        // EDGE, and anything unknown treated as the default.
        _ => endpoint_class == "public",
    }
}

struct Inner {
    /// The store, and the sealed secrets principals' keys derive from.
    tenancy: Tenancy,
    feed: ConfigFeed,
    nodes: NodeRegistry,
    region: String,
    /// The live session of each node id, so an old stream ending does not
    /// unregister a node that has already reconnected.
    sessions: Mutex<HashMap<String, u64>>,
    next_session: AtomicU64,
    /// Becomes true when the server shuts down: streams end with UNAVAILABLE
    /// so graceful shutdown does not wait for nodes to hang up.
    stop: watch::Receiver<bool>,
    /// What a node must present; `None`: nodes are not authenticated.
    node_token: Option<String>,
}

pub struct ConfigServer {
    inner: Arc<Inner>,
}

impl ConfigServer {
    /// `region` is the control plane's region (`ManagementConfig::default_region`).
    pub fn new(tenancy: Tenancy, feed: ConfigFeed, nodes: NodeRegistry, region: String) -> Self {
        Self {
            inner: Arc::new(Inner {
                tenancy,
                feed,
                nodes,
                region,
                sessions: Mutex::new(HashMap::new()),
                next_session: AtomicU64::new(1),
                stop: watch::channel(false).1,
                node_token: None,
            }),
        }
    }

    /// Requires `token` of every subscribing node.
    pub fn with_node_token(self, token: Option<String>) -> Self {
        self.configure(|inner| Inner {
            node_token: token,
            ..inner
        })
    }

    /// Ends every stream (UNAVAILABLE) once `stop` becomes true.
    pub fn until(self, stop: watch::Receiver<bool>) -> Self {
        self.configure(|inner| Inner { stop, ..inner })
    }

    /// Builder steps run on a fresh server, before any stream holds `inner`.
    fn configure(self, change: impl FnOnce(Inner) -> Inner) -> Self {
        let inner = Arc::try_unwrap(self.inner)
            .unwrap_or_else(|_| unreachable!("configured before any stream starts"));
        Self {
            inner: Arc::new(change(inner)),
        }
    }

    /// Wraps the server for `tonic::transport::Server::add_service`. Full
    /// snapshots can be large: clients should raise their
    /// `max_decoding_message_size` (tonic's default is 4 MiB).
    pub fn into_service(self) -> ConfigServiceServer<Self> {
        ConfigServiceServer::new(self).max_decoding_message_size(16 * 1024 * 1024)
    }
}

/// Builds the service (without a shutdown signal), ready for
/// `tonic::transport::Server::add_service`.
pub fn service(
    tenancy: Tenancy,
    feed: ConfigFeed,
    nodes: NodeRegistry,
    region: String,
) -> ConfigServiceServer<ConfigServer> {
    ConfigServer::new(tenancy, feed, nodes, region).into_service()
}

/// Who a node is, from its `Hello`.
#[derive(Debug, Clone)]
struct Node {
    id: String,
    region: String,
    class: String,
}

/// What this control plane believes a node holds.
struct Session {
    node: Node,
    /// Keys the node holds, with their versions.
    held: HashMap<String, u64>,
    /// Highest configuration version read for this node.
    last_sent: i64,
}

fn check_hello(hello: &Hello) -> Result<Node, Status> {
    let id = hello.node_id.trim();
    if id.is_empty() {
        return Err(Status::invalid_argument("hello.node_id is required"));
    }
    let region = hello.region.trim();
    if region.is_empty() {
        return Err(Status::invalid_argument("hello.region is required"));
    }
    let class = hello.endpoint_class.trim().to_ascii_lowercase();
    if class != "public" && class != "private" {
        return Err(Status::invalid_argument(format!(
            "hello.endpoint_class must be \"public\" or \"private\", not {:?}",
            hello.endpoint_class
        )));
    }
    Ok(Node {
        id: id.to_owned(),
        region: region.to_owned(),
        class,
    })
}

fn resource(row: &ConfigResourceRow, body: &str) -> SnapshotResource {
    SnapshotResource {
        key: row.resource_key.clone(),
        version: as_version(row.version),
        body: body.as_bytes().to_vec(),
    }
}

/// A stored principal body with the signing keys of its days for `region`;
/// `None` if the body is not a principal (it is then not sent).
pub fn with_signing_keys(body: &str, secret: &str, region: &str) -> Option<String> {
    let mut p: PrincipalSnapshot = serde_json::from_str(body).ok()?;
    p.signing_keys = p
        .dates
        .iter()
        .filter_map(|d| {
            let day = NaiveDate::parse_from_str(d, "%Y%m%d")
                .ok()?
                .and_hms_opt(0, 0, 0)?
                .and_utc();
            let key = apigw_sigv4::signing_key(secret, &day, region, EXECUTE_API);
            Some((d.clone(), hex::encode(key)))
        })
        .collect();
    serde_json::to_string(&p).ok()
}

/// A store error stops the update; a secret that cannot be opened (another
/// master key) leaves the principal out, logged.
fn unreadable_secret<T: Default>(e: TenancyError) -> Result<T, StoreError> {
    match e {
        TenancyError::Store(e) => Err(e),
        e => {
            tracing::error!(error = %e, "config stream: cannot open a principal's secret");
            Ok(T::default())
        }
    }
}

fn internal(e: StoreError) -> Status {
    tracing::error!(error = %e, "config stream: store read failed");
    Status::unavailable("configuration store unavailable")
}

impl Inner {
    fn serves(&self, node: &Node, row: &ConfigResourceRow) -> bool {
        serves(&row.endpoint_type, &node.class, &node.region, &self.region)
    }

    /// The resource as `node` receives it (see the module notes on
    /// principals); `None` when a principal's key is gone meanwhile (its
    /// tombstone follows) or its body is unreadable. `secrets`, when given,
    /// holds every signing secret (a full snapshot reads them at once).
    async fn outgoing(
        &self,
        node: &Node,
        row: &ConfigResourceRow,
        body: &str,
        secrets: Option<&HashMap<String, String>>,
    ) -> Result<Option<SnapshotResource>, StoreError> {
        let Some(access_key_id) = row.resource_key.strip_prefix(principal::KEY_PREFIX) else {
            return Ok(Some(resource(row, body)));
        };
        let secret = match secrets {
            Some(all) => all.get(access_key_id).cloned(),
            None => self
                .tenancy
                .signing_secret(access_key_id)
                .await
                .or_else(unreadable_secret)?,
        };
        let Some(secret) = secret else {
            return Ok(None);
        };
        Ok(with_signing_keys(body, &secret, &node.region).map(|b| resource(row, &b)))
    }

    /// The first update for a node that says it holds `held`.
    async fn initial(
        &self,
        node: Node,
        held: &[apigw_proto::config::ResourceVersion],
    ) -> Result<(Session, ConfigUpdate), StoreError> {
        let mut tx = self.tenancy.store().begin().await?;
        // The counter first: any row committed after this read has a higher
        // version and is either in the rows below or read by the next delta.
        let counter = config_store::current_version(&mut tx).await?;
        let rows = config_store::list_all(&mut tx).await?;
        drop(tx);
        let secrets = if rows
            .iter()
            .any(|r| r.body.is_some() && r.resource_key.starts_with(principal::KEY_PREFIX))
        {
            self.tenancy
                .signing_secrets()
                .await
                .or_else(unreadable_secret)?
        } else {
            HashMap::new()
        };
        let last_sent = rows.iter().map(|r| r.version).fold(counter, i64::max);
        let node_held: BTreeMap<&str, u64> =
            held.iter().map(|r| (r.key.as_str(), r.version)).collect();
        let mut session = Session {
            node,
            held: HashMap::new(),
            last_sent,
        };
        let mut update = ConfigUpdate {
            version: as_version(last_sent),
            full: node_held.is_empty(),
            upserts: Vec::new(),
            removals: Vec::new(),
        };
        for row in &rows {
            let Some(body) = row
                .body
                .as_deref()
                .filter(|_| self.serves(&session.node, row))
            else {
                continue;
            };
            let version = as_version(row.version);
            session.held.insert(row.resource_key.clone(), version);
            // `!=` rather than `>`: a node holding a version this database
            // never reached (a restored backup) is brought back in line too.
            if node_held.get(row.resource_key.as_str()) != Some(&version)
                && let Some(r) = self
                    .outgoing(&session.node, row, body, Some(&secrets))
                    .await?
            {
                update.upserts.push(r);
            }
        }
        update.removals = node_held
            .keys()
            .filter(|k| !session.held.contains_key(**k))
            .map(|k| (*k).to_owned())
            .collect();
        Ok((session, update))
    }

    /// The delta since `session.last_sent`, or `None` if nothing concerns the node.
    async fn delta(&self, session: &mut Session) -> Result<Option<ConfigUpdate>, StoreError> {
        let mut tx = self.tenancy.store().begin().await?;
        let rows = config_store::list_since(&mut tx, session.last_sent).await?;
        drop(tx);
        let Some(last) = rows.iter().map(|r| r.version).max() else {
            return Ok(None);
        };
        session.last_sent = last;
        let mut update = ConfigUpdate {
            version: as_version(last),
            full: false,
            upserts: Vec::new(),
            removals: Vec::new(),
        };
        for row in &rows {
            match row.body.as_deref() {
                Some(body) if self.serves(&session.node, row) => {
                    session
                        .held
                        .insert(row.resource_key.clone(), as_version(row.version));
                    if let Some(r) = self.outgoing(&session.node, row, body, None).await? {
                        update.upserts.push(r);
                    }
                }
                // Removed, or no longer served (the API's endpoint type changed).
                _ => {
                    if session.held.remove(&row.resource_key).is_some() {
                        update.removals.push(row.resource_key.clone());
                    }
                }
            }
        }
        if update.upserts.is_empty() && update.removals.is_empty() {
            return Ok(None);
        }
        Ok(Some(update))
    }

    fn register(&self, info: NodeInfo) -> u64 {
        let session = self.next_session.fetch_add(1, Ordering::Relaxed);
        self.sessions
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(info.node_id.clone(), session);
        self.nodes.upsert(info);
        session
    }

    /// Updates the registry entry unless a newer stream of the node took over.
    fn update(&self, session: u64, info: &NodeInfo) {
        let sessions = self.sessions.lock().unwrap_or_else(PoisonError::into_inner);
        if sessions.get(&info.node_id) == Some(&session) {
            self.nodes.upsert(info.clone());
        }
    }

    fn unregister(&self, session: u64, node_id: &str) {
        let mut sessions = self.sessions.lock().unwrap_or_else(PoisonError::into_inner);
        if sessions.get(node_id) == Some(&session) {
            sessions.remove(node_id);
            self.nodes.remove(node_id);
        }
    }

    /// Serves one node until either side goes away.
    async fn run(
        self: Arc<Self>,
        mut session: Session,
        mut inbound: Streaming<NodeMessage>,
        out: mpsc::Sender<Result<ConfigUpdate, Status>>,
        mut wake: watch::Receiver<u64>,
        session_id: u64,
        mut info: NodeInfo,
    ) {
        let node_id = session.node.id.clone();
        let mut feed_open = true;
        let mut stop = self.stop.clone();
        loop {
            tokio::select! {
                () = stopped(&mut stop) => {
                    let _ = out.send(Err(Status::unavailable("control plane shutting down"))).await;
                    break;
                }
                msg = inbound.message() => match msg {
                    Ok(Some(NodeMessage { kind: Some(Kind::Ack(ack)) })) => {
                        info.applied_version = ack.version;
                        info.last_seen_at = now_epoch();
                        self.update(session_id, &info);
                        tracing::debug!(node = %node_id, version = ack.version, "config ACK");
                    }
                    Ok(Some(NodeMessage { kind: Some(Kind::Nack(nack)) })) => {
                        info.last_seen_at = now_epoch();
                        self.update(session_id, &info);
                        tracing::warn!(
                            node = %node_id,
                            version = nack.version,
                            reason = %nack.reason,
                            "data-plane node rejected a configuration update (NACK); it keeps its previous configuration"
                        );
                    }
                    Ok(Some(NodeMessage { kind: Some(Kind::Hello(_)) })) => {
                        tracing::warn!(node = %node_id, "config stream: Hello after the first message ignored");
                    }
                    Ok(Some(NodeMessage { kind: None })) => {}
                    Ok(None) => break,
                    Err(status) => {
                        tracing::debug!(node = %node_id, %status, "config stream: node stream ended");
                        break;
                    }
                },
                changed = wait(&mut wake, feed_open) => {
                    feed_open = changed;
                    match self.delta(&mut session).await {
                        Ok(Some(update)) => {
                            if out.send(Ok(update)).await.is_err() {
                                break;
                            }
                        }
                        Ok(None) => {}
                        // Not advanced: the next wake-up (or safety re-read) retries.
                        Err(e) => tracing::warn!(node = %node_id, error = %e, "config stream: cannot read changes"),
                    }
                }
                () = out.closed() => break,
            }
        }
        self.unregister(session_id, &node_id);
        tracing::info!(node = %node_id, "data-plane node disconnected");
    }
}

/// Completes when the server shuts down; never without a shutdown signal.
async fn stopped(stop: &mut watch::Receiver<bool>) {
    if stop.wait_for(|s| *s).await.is_err() {
        std::future::pending::<()>().await;
    }
}

/// Completes on a feed wake-up or after [`SAFETY_REREAD`]; returns whether the
/// feed is still open (a closed feed leaves only the periodic re-read).
async fn wait(wake: &mut watch::Receiver<u64>, open: bool) -> bool {
    if !open {
        tokio::time::sleep(SAFETY_REREAD).await;
        return false;
    }
    match tokio::time::timeout(SAFETY_REREAD, wake.changed()).await {
        Ok(Ok(())) | Err(_) => true,
        Ok(Err(_)) => false,
    }
}

type UpdateStream = Pin<Box<dyn Stream<Item = Result<ConfigUpdate, Status>> + Send + 'static>>;

#[tonic::async_trait]
impl ConfigService for ConfigServer {
    type SubscribeStream = UpdateStream;

    async fn subscribe(
        &self,
        request: Request<Streaming<NodeMessage>>,
    ) -> Result<Response<Self::SubscribeStream>, Status> {
        if let Some(expected) = &self.inner.node_token {
            let presented = request
                .metadata()
                .get("authorization")
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.strip_prefix("Bearer "))
                .unwrap_or_default();
            if !bool::from(presented.as_bytes().ct_eq(expected.as_bytes())) {
                return Err(Status::unauthenticated(
                    "a node token is required (authorization: Bearer <token>)",
                ));
            }
        }
        let mut inbound = request.into_inner();
        let first = tokio::time::timeout(HELLO_TIMEOUT, inbound.message())
            .await
            .map_err(|_| Status::invalid_argument("expected Hello as the first message"))??;
        let Some(NodeMessage {
            kind: Some(Kind::Hello(hello)),
        }) = first
        else {
            return Err(Status::invalid_argument(
                "expected Hello as the first message",
            ));
        };
        let node = check_hello(&hello)?;
        // Subscribe before reading, so a change committed meanwhile still wakes us.
        let wake = self.inner.feed.subscribe();
        let (session, update) = self
            .inner
            .initial(node.clone(), &hello.held)
            .await
            .map_err(internal)?;
        let now = now_epoch();
        let info = NodeInfo {
            node_id: node.id.clone(),
            region: node.region.clone(),
            endpoint_class: node.class.clone(),
            applied_version: 0,
            connected_at: now,
            last_seen_at: now,
        };
        let session_id = self.inner.register(info.clone());
        tracing::info!(
            node = %node.id,
            region = %node.region,
            endpoint_class = %node.class,
            held = hello.held.len(),
            full = update.full,
            version = update.version,
            upserts = update.upserts.len(),
            removals = update.removals.len(),
            "data-plane node subscribed"
        );
        let (tx, rx) = mpsc::channel(16);
        // Capacity 16: the first send cannot block.
        let _ = tx.send(Ok(update)).await;
        tokio::spawn(
            self.inner
                .clone()
                .run(session, inbound, tx, wake, session_id, info),
        );
        Ok(Response::new(Box::pin(ReceiverStream::new(rx))))
    }
}
