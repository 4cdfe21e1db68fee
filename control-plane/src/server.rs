//! Runs the control plane: the management REST endpoint and the gRPC
//! services, on one store, until a shutdown signal.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

use apigw_function_host::FunctionHost;
use tokio::net::TcpListener;
use tokio_stream::wrappers::TcpListenerStream;

use crate::config::ControlPlaneConfig;
use crate::feed::ConfigFeed;
use crate::grpc::admin::{self, NodeRegistry};
use crate::grpc::config as config_service;
use crate::management::{self, AppState};
use crate::publish;
use crate::store::{Backend, Store, StoreError};
use crate::tenancy::sealing::SealError;
use crate::tenancy::{Sealer, Tenancy, TenancyError};

#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    #[error("cannot open the database: {0}")]
    Store(#[from] StoreError),
    #[error("invalid master key: {0}")]
    MasterKey(#[from] SealError),
    #[error("cannot prepare credentials: {0}")]
    Tenancy(#[from] TenancyError),
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("management server failed: {0}")]
    Management(std::io::Error),
    #[error("invalid Redis URL: {0}")]
    Usage(String),
    #[error("gRPC server failed: {0}")]
    Grpc(#[from] tonic::transport::Error),
}

/// An opened control plane, ready to serve.
pub struct ControlPlane {
    config: ControlPlaneConfig,
    store: Store,
    tenancy: Tenancy,
    nodes: NodeRegistry,
    feed: ConfigFeed,
    functions: FunctionHost,
    /// Given by standalone (its in-process data plane); else Redis when configured.
    usage_counters: Option<Arc<dyn crate::usage::UsageCounters>>,
}

impl ControlPlane {
    /// Opens the store (applying migrations), registers the bootstrap admin
    /// token and publishes config resources for stages that predate them.
    pub async fn open(config: ControlPlaneConfig) -> Result<Self, ServerError> {
        let sealer = Sealer::from_base64(&config.master_key)?;
        let store = Store::open(&config.database_url).await?;
        let feed = ConfigFeed::new();
        let tenancy = Tenancy::new(store.clone(), sealer).with_feed(feed.clone());
        if let Some(token) = &config.bootstrap_admin_token {
            tenancy.ensure_admin_token(token).await?;
        }
        if let Some(version) = publish::backfill(&store).await? {
            tracing::info!(version, "published config resources for existing stages");
        }
        if let Some(version) = publish::refresh_principals(&store, crate::tenancy::today()).await? {
            tracing::info!(version, "published principals for existing access keys");
        }
        let functions = FunctionHost::new(config.functions.clone());
        Ok(Self {
            config,
            store,
            tenancy,
            nodes: NodeRegistry::default(),
            feed,
            functions,
            usage_counters: None,
        })
    }

    /// Reads usage (GetUsage) from these counters instead of Redis.
    pub fn with_usage_counters(mut self, counters: Arc<dyn crate::usage::UsageCounters>) -> Self {
        self.usage_counters = Some(counters);
        self
    }

    pub fn tenancy(&self) -> &Tenancy {
        &self.tenancy
    }

    pub fn store(&self) -> &Store {
        &self.store
    }

    /// Wakes config subscribers; bumped after every publishing commit.
    pub fn feed(&self) -> &ConfigFeed {
        &self.feed
    }

    /// The built-in function host (the `lambda` service).
    pub fn functions(&self) -> &FunctionHost {
        &self.functions
    }

    /// The data-plane nodes subscribed to this replica.
    pub fn nodes(&self) -> &NodeRegistry {
        &self.nodes
    }

    /// Binds both listeners, then serves until `shutdown` completes.
    pub async fn serve(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> Result<(), ServerError> {
        // Other replicas' changes arrive as Postgres notifications; SQLite has
        // no other replica, the local handlers wake the feed themselves.
        let listener = match self.store.backend() {
            Backend::Postgres => Some(
                self.feed
                    .listen_postgres(&self.config.database_url)
                    .await
                    .map_err(StoreError::from)?,
            ),
            Backend::Sqlite => None,
        };
        if self.config.node_token.is_none() {
            tracing::warn!(
                "no --node-token: any client reaching the gRPC port can subscribe to the config \
                 stream, which carries principals' signing keys; set one on trusted networks too"
            );
        }
        let management_listener = bind(self.config.management_addr).await?;
        let grpc_listener = bind(self.config.grpc_addr).await?;
        tracing::info!(
            management = %self.config.management_addr,
            grpc = %self.config.grpc_addr,
            "control plane listening"
        );
        let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
        let stopped = |mut rx: tokio::sync::watch::Receiver<bool>| async move {
            let _ = rx.wait_for(|s| *s).await;
        };

        let usage_counters = match (&self.usage_counters, &self.config.usage.redis_url) {
            (Some(c), _) => Some(c.clone()),
            (None, Some(url)) => Some(Arc::new(
                crate::usage::RedisCounters::new(url)
                    .map_err(|e| ServerError::Usage(e.to_string()))?,
            ) as Arc<dyn crate::usage::UsageCounters>),
            (None, None) => None,
        };
        if let Some(counters) = &usage_counters {
            tokio::spawn(crate::usage::persist_loop(
                self.store.clone(),
                counters.clone(),
                self.config.management.default_region.clone(),
                self.config.usage.clock_offset_seconds,
                self.config.usage.persist_interval,
            ));
        }
        tokio::spawn(refresh_principals_loop(
            self.store.clone(),
            self.feed.clone(),
        ));
        let state = AppState {
            store: self.store.clone(),
            tenancy: self.tenancy.clone(),
            config: Arc::new(self.config.management.clone()),
            feed: self.feed.clone(),
            usage: crate::usage::UsageState::new(&self.config.usage, usage_counters),
        };
        // The `lambda` handlers take the host as an extension (AppState is
        // the apigateway handlers' own).
        let router = management::router(state).layer(axum::Extension(self.functions.clone()));
        let management = axum::serve(management_listener, router)
            .with_graceful_shutdown(stopped(stop_rx.clone()));
        let grpc = tonic::transport::Server::builder()
            .add_service(admin::service(self.tenancy.clone(), self.nodes.clone()))
            .add_service(
                config_service::ConfigServer::new(
                    self.tenancy.clone(),
                    self.feed.clone(),
                    self.nodes.clone(),
                    self.config.management.default_region.clone(),
                )
                .with_node_token(self.config.node_token.clone())
                .until(stop_rx.clone())
                .into_service(),
            )
            .serve_with_incoming_shutdown(TcpListenerStream::new(grpc_listener), stopped(stop_rx));
        tokio::spawn(async move {
            shutdown.await;
            let _ = stop_tx.send(true);
        });
        let (m, g) = tokio::join!(management, grpc);
        if let Some(listener) = listener {
            listener.abort();
        }
        self.functions.shutdown();
        m.map_err(ServerError::Management)?;
        g?;
        self.store.close().await;
        Ok(())
    }
}

/// Moves every principal's key window once a day (checked hourly, so a
/// replica started at any time catches the UTC day change within the hour;
/// the window reaches two days ahead). Several replicas doing it at once
/// only publish the same bodies twice.
async fn refresh_principals_loop(store: Store, feed: ConfigFeed) {
    let mut tick = tokio::time::interval(PRINCIPAL_REFRESH);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    tick.tick().await;
    loop {
        tick.tick().await;
        match publish::refresh_principals(&store, crate::tenancy::today()).await {
            Ok(version) => feed.published_opt(version),
            Err(e) => tracing::warn!(error = %e, "cannot refresh principals' signing keys"),
        }
    }
}

const PRINCIPAL_REFRESH: std::time::Duration = std::time::Duration::from_secs(3600);

async fn bind(addr: SocketAddr) -> Result<TcpListener, ServerError> {
    TcpListener::bind(addr)
        .await
        .map_err(|source| ServerError::Bind { addr, source })
}

/// Completes on Ctrl-C or SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = term => {},
    }
    tracing::info!("shutting down");
}
