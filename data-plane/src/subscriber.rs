//! Subscribes to the control plane's config stream: boots from the
//! last-known-good file, then applies full snapshots and deltas as they come,
//! ACKing what it applied and NACKing (keeping the old config) what it could
//! not. Reconnects with backoff and reports what it holds, so it receives only
//! the difference.
//!
//! Applying costs what changed: the held set shares unchanged resources with
//! the previous one, the runtime recompiles only new or changed resources
//! (see [`crate::runtime::Runtime::compile_reusing`]), and last-known-good is
//! written by a background thread that coalesces bursts.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use apigw_proto::config::config_service_client::ConfigServiceClient;
use apigw_proto::config::node_message::Kind;
use apigw_proto::config::{Ack, ConfigUpdate, Hello, Nack, NodeMessage};
use rand::Rng;
use tokio::sync::{mpsc, watch};
use tokio_stream::wrappers::ReceiverStream;

use crate::held::{Held, LastKnownGoodWriter};

#[derive(Debug, Clone)]
pub struct SubscriberConfig {
    /// `http://host:8082`.
    pub control_plane: String,
    pub node_id: String,
    pub region: String,
    /// `public` or `private`.
    pub endpoint_class: String,
    /// Where the last applied config is kept for restarts without a control plane.
    pub last_known_good: PathBuf,
    /// Presented as `authorization: Bearer <token>` when subscribing.
    pub node_token: Option<String>,
}

/// Takes a configuration into service; an `Err` is the NACK reason and the
/// previous configuration must stay in service.
pub trait ConfigSink: Send + Sync + 'static {
    fn apply(&self, held: &Held) -> Result<(), String>;
}

const MAX_UPDATE_BYTES: usize = 512 * 1024 * 1024;
const MIN_BACKOFF: Duration = Duration::from_millis(200);
const MAX_BACKOFF: Duration = Duration::from_secs(5);

/// Runs until `shutdown` turns true.
pub async fn run(
    config: SubscriberConfig,
    sink: Arc<dyn ConfigSink>,
    mut shutdown: watch::Receiver<bool>,
) {
    let mut held = boot_from_disk(&config, sink.as_ref());
    let writer = LastKnownGoodWriter::spawn(config.last_known_good.clone());
    let mut backoff = MIN_BACKOFF;
    loop {
        let session = subscribe(&config, sink.as_ref(), &writer, &mut held, &mut backoff);
        tokio::select! {
            result = session => match result {
                Ok(()) => tracing::warn!(control_plane = %config.control_plane, "config stream ended; reconnecting"),
                Err(e) => tracing::warn!(control_plane = %config.control_plane, error = %e, "config stream failed; reconnecting"),
            },
            _ = shutdown.wait_for(|s| *s) => break,
        }
        let jitter = rand::thread_rng().gen_range(0..=backoff.as_millis() as u64 / 2);
        tokio::select! {
            () = tokio::time::sleep(backoff + Duration::from_millis(jitter)) => {},
            _ = shutdown.wait_for(|s| *s) => break,
        }
        backoff = (backoff * 2).min(MAX_BACKOFF);
    }
    // Dropping the writer finishes a pending write; that blocks, so not on a runtime worker.
    let _ = tokio::task::spawn_blocking(move || drop(writer)).await;
}

fn boot_from_disk(config: &SubscriberConfig, sink: &dyn ConfigSink) -> Held {
    match Held::load(&config.last_known_good) {
        Ok(Some(held)) => match sink.apply(&held) {
            Ok(()) => {
                tracing::info!(
                    version = held.version,
                    resources = held.resources.len(),
                    "serving last-known-good config"
                );
                held
            }
            Err(reason) => {
                tracing::error!(%reason, "last-known-good config does not compile; starting empty");
                Held::default()
            }
        },
        Ok(None) => Held::default(),
        Err(e) => {
            tracing::error!(error = %e, "cannot use last-known-good config; starting empty");
            Held::default()
        }
    }
}

#[derive(Debug, thiserror::Error)]
enum StreamError {
    #[error("cannot connect: {0}")]
    Connect(#[from] tonic::transport::Error),
    #[error("stream error: {0}")]
    Status(#[from] tonic::Status),
    #[error("the control plane stopped reading our messages")]
    Closed,
    #[error("the node token must be printable ASCII")]
    InvalidToken,
}

async fn subscribe(
    config: &SubscriberConfig,
    sink: &dyn ConfigSink,
    writer: &LastKnownGoodWriter,
    held: &mut Held,
    backoff: &mut Duration,
) -> Result<(), StreamError> {
    let channel = tonic::transport::Endpoint::from_shared(config.control_plane.clone())
        .map_err(StreamError::Connect)?
        .connect_timeout(Duration::from_secs(3))
        .http2_keep_alive_interval(Duration::from_secs(10))
        .keep_alive_timeout(Duration::from_secs(5))
        .connect()
        .await?;
    let (outbound, rx) = mpsc::channel(16);
    let hello = Hello {
        node_id: config.node_id.clone(),
        region: config.region.clone(),
        endpoint_class: config.endpoint_class.clone(),
        held: held.inventory(),
    };
    send(&outbound, Kind::Hello(hello)).await?;
    let mut request = tonic::Request::new(ReceiverStream::new(rx));
    if let Some(token) = &config.node_token {
        let mut value: tonic::metadata::MetadataValue<_> = format!("Bearer {token}")
            .parse()
            .map_err(|_| StreamError::InvalidToken)?;
        value.set_sensitive(true);
        request.metadata_mut().insert("authorization", value);
    }
    let mut inbound = ConfigServiceClient::new(channel)
        // A full snapshot of many stages is far beyond tonic's 4 MiB default.
        .max_decoding_message_size(MAX_UPDATE_BYTES)
        .subscribe(request)
        .await?
        .into_inner();
    while let Some(update) = inbound.message().await? {
        *backoff = MIN_BACKOFF;
        let version = update.version;
        let reply = match take(sink, writer, held, update) {
            Ok(()) => Kind::Ack(Ack { version }),
            Err(reason) => {
                tracing::warn!(version, %reason, "config rejected; keeping the previous one");
                Kind::Nack(Nack { version, reason })
            }
        };
        send(&outbound, reply).await?;
    }
    Ok(())
}

/// Applies one update; on success it becomes the held config, and is handed
/// to `writer` to become the last-known-good one.
fn take(
    sink: &dyn ConfigSink,
    writer: &LastKnownGoodWriter,
    held: &mut Held,
    update: ConfigUpdate,
) -> Result<(), String> {
    let started = Instant::now();
    let full = update.full;
    let changed = update.upserts.len() + update.removals.len();
    let next = held.apply(update);
    sink.apply(&next)?;
    writer.submit(next.clone());
    tracing::info!(
        version = next.version,
        resources = next.resources.len(),
        full,
        changed,
        ms = started.elapsed().as_secs_f64() * 1000.0,
        "config applied"
    );
    *held = next;
    Ok(())
}

async fn send(outbound: &mpsc::Sender<NodeMessage>, kind: Kind) -> Result<(), StreamError> {
    outbound
        .send(NodeMessage { kind: Some(kind) })
        .await
        .map_err(|_| StreamError::Closed)
}
