//! Runs the control plane: the management REST endpoint and the gRPC
//! services, on one store, until a shutdown signal.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

use tokio::net::TcpListener;
use tokio_stream::wrappers::TcpListenerStream;

use crate::config::ControlPlaneConfig;
use crate::grpc::admin::{self, NodeRegistry};
use crate::management::{self, AppState};
use crate::store::{Store, StoreError};
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
    #[error("gRPC server failed: {0}")]
    Grpc(#[from] tonic::transport::Error),
}

/// An opened control plane, ready to serve.
pub struct ControlPlane {
    config: ControlPlaneConfig,
    store: Store,
    tenancy: Tenancy,
    nodes: NodeRegistry,
}

impl ControlPlane {
    /// Opens the store (applying migrations) and registers the bootstrap admin token.
    pub async fn open(config: ControlPlaneConfig) -> Result<Self, ServerError> {
        let sealer = Sealer::from_base64(&config.master_key)?;
        let store = Store::open(&config.database_url).await?;
        let tenancy = Tenancy::new(store.clone(), sealer);
        if let Some(token) = &config.bootstrap_admin_token {
            tenancy.ensure_admin_token(token).await?;
        }
        Ok(Self {
            config,
            store,
            tenancy,
            nodes: NodeRegistry::default(),
        })
    }

    pub fn tenancy(&self) -> &Tenancy {
        &self.tenancy
    }

    /// Binds both listeners, then serves until `shutdown` completes.
    pub async fn serve(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> Result<(), ServerError> {
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

        let state = AppState {
            store: self.store.clone(),
            tenancy: self.tenancy.clone(),
            config: Arc::new(self.config.management.clone()),
        };
        let router = management::router(state);
        let management = axum::serve(management_listener, router)
            .with_graceful_shutdown(stopped(stop_rx.clone()));
        let grpc = tonic::transport::Server::builder()
            .add_service(admin::service(self.tenancy.clone(), self.nodes.clone()))
            .serve_with_incoming_shutdown(TcpListenerStream::new(grpc_listener), stopped(stop_rx));
        tokio::spawn(async move {
            shutdown.await;
            let _ = stop_tx.send(true);
        });
        let (m, g) = tokio::join!(management, grpc);
        m.map_err(ServerError::Management)?;
        g?;
        self.store.close().await;
        Ok(())
    }
}

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
