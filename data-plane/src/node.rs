//! One data-plane node: the config subscriber, the proxy and the metrics
//! endpoint, sharing one atomically swapped runtime.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::integration::lambda::LambdaConfigError;
use crate::integration::{LambdaClient, LambdaSettings, Services};
use crate::metrics::{self, Metrics};
use crate::proxy;
use crate::runtime::RuntimeHandle;
use crate::subscriber::{self, SubscriberConfig};

#[derive(Debug, Clone)]
pub struct DataPlaneConfig {
    pub listen: SocketAddr,
    pub metrics_listen: SocketAddr,
    /// Host-form invoke URLs are `{api_id}.execute-api.{base_domain}`.
    pub base_domain: String,
    pub subscriber: SubscriberConfig,
    /// Proxy worker threads (one single-threaded runtime each); 0 = one per CPU.
    pub proxy_workers: usize,
    /// Where Lambda integrations invoke functions, and with which key.
    pub lambda: LambdaSettings,
    /// API keys, usage plans, quotas and throttles (Redis or in-process).
    pub throttle: crate::throttle::ThrottleConfig,
    /// Method authorization: Cognito issuer/JWKS locations, trusted VPC headers.
    pub auth: crate::auth::AuthSettings,
}

#[derive(Debug, thiserror::Error)]
pub enum DataPlaneError {
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("proxy failed: {0}")]
    Proxy(std::io::Error),
    #[error("metrics endpoint failed: {0}")]
    Metrics(std::io::Error),
    #[error(transparent)]
    Lambda(#[from] LambdaConfigError),
    #[error(transparent)]
    Throttle(#[from] crate::throttle::ThrottleConfigError),
}

/// Serves until `shutdown` completes.
pub async fn run(
    config: DataPlaneConfig,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), DataPlaneError> {
    run_with(config, shutdown, |_| {}).await
}

/// [`run`], handing the node's limiter to `on_throttle` once it exists
/// (standalone's control plane reads usage counters through it).
pub async fn run_with(
    config: DataPlaneConfig,
    shutdown: impl Future<Output = ()> + Send + 'static,
    on_throttle: impl FnOnce(Arc<crate::throttle::Throttle>),
) -> Result<(), DataPlaneError> {
    let bind = |addr: SocketAddr| async move {
        TcpListener::bind(addr)
            .await
            .map_err(|source| DataPlaneError::Bind { addr, source })
    };
    let workers = match config.proxy_workers {
        0 => std::thread::available_parallelism().map_or(1, usize::from),
        n => n,
    };
    let proxy_listeners =
        proxy::bind_workers(config.listen, workers).map_err(|source| DataPlaneError::Bind {
            addr: config.listen,
            source,
        })?;
    let metrics_listener = bind(config.metrics_listen).await?;
    tracing::info!(
        proxy = %config.listen,
        workers,
        metrics = %config.metrics_listen,
        control_plane = %config.subscriber.control_plane,
        node_id = %config.subscriber.node_id,
        "data plane listening"
    );

    let services = Services {
        lambda: Some(Arc::new(LambdaClient::new(&config.lambda)?)),
        // Method ARNs name the node's region.
        auth: crate::auth::AuthSettings {
            region: config.subscriber.region.clone(),
            ..config.auth.clone()
        },
    };
    let runtime = RuntimeHandle::with_services(&config.base_domain, services);
    let metrics = Metrics::new();
    let throttle = Arc::new(crate::throttle::Throttle::new(
        config.throttle.clone(),
        metrics.throttle().clone(),
    )?);
    runtime.attach_throttle(throttle.clone());
    on_throttle(throttle);
    let stop_rx = crate::listen::stop_flag(shutdown);
    let stopped = |mut rx: watch::Receiver<bool>| async move {
        crate::listen::stopped(&mut rx).await;
    };
    let subscriber = tokio::spawn(subscriber::run(
        config.subscriber.clone(),
        Arc::new(runtime.clone()),
        stop_rx.clone(),
    ));
    let (p, m) = tokio::join!(
        proxy::serve_workers(
            proxy_listeners,
            runtime,
            metrics.clone(),
            stopped(stop_rx.clone())
        ),
        metrics::serve_metrics(metrics_listener, metrics, stopped(stop_rx)),
    );
    let _ = subscriber.await;
    p.map_err(DataPlaneError::Proxy)?;
    m.map_err(DataPlaneError::Metrics)?;
    Ok(())
}
