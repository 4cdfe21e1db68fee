//! `apigw standalone`: everything in one process on an SQLite file in a data
//! directory, with a dev tenant and credentials, for zero-setup local use.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};

use anyhow::Context;
use std::time::Duration;

use apigw_control_plane::config::{ControlPlaneConfig, FunctionHostConfig, ManagementConfig};
use apigw_control_plane::server::{ControlPlane, shutdown_signal};
use apigw_control_plane::store::Store;
use apigw_control_plane::tenancy::{
    DEV_ACCESS_KEY_ID, DEV_ACCOUNT_ID, DEV_SECRET_ACCESS_KEY, Sealer, random_string,
};
use apigw_data_plane::integration::{LambdaCredentials, LambdaSettings};
use apigw_data_plane::node::DataPlaneConfig;
use apigw_data_plane::subscriber::SubscriberConfig;
use tokio::sync::watch;

/// Standalone's settings, read straight from its command line.
#[derive(Debug, Clone, clap::Args)]
pub struct StandaloneConfig {
    #[arg(long, env = "APIGW_DATA_DIR", default_value = "./.apigw")]
    pub data_dir: PathBuf,
    #[arg(long, env = "APIGW_HOST", default_value_t = IpAddr::V4(Ipv4Addr::LOCALHOST))]
    pub host: IpAddr,
    #[arg(long, default_value_t = 8080)]
    pub data_plane_port: u16,
    #[arg(long, default_value_t = 8081)]
    pub management_port: u16,
    #[arg(long, default_value_t = 8082)]
    pub grpc_port: u16,
    #[arg(long, default_value_t = 9464)]
    pub metrics_port: u16,
    #[arg(long, env = "APIGW_REGION", default_value = "us-east-1")]
    pub region: String,
    /// Data-plane proxy worker threads, each with its own listener; 0 = one per CPU.
    #[arg(long, env = "APIGW_PROXY_WORKERS", default_value_t = 0)]
    pub proxy_workers: usize,
    #[command(flatten)]
    pub functions: FunctionHostArgs,
    #[command(flatten)]
    pub throttle: crate::throttle_args::ThrottleArgs,
    #[command(flatten)]
    pub auth: crate::auth_args::AuthArgs,
}

/// The built-in function host's settings (standalone and control plane).
#[derive(Debug, Clone, clap::Args)]
pub struct FunctionHostArgs {
    /// Where function code is unpacked, per account and code digest
    /// [default: <data dir>/functions in standalone, ./.apigw-functions otherwise].
    #[arg(long, env = "APIGW_FUNCTIONS_DIR")]
    pub functions_dir: Option<PathBuf>,
    /// Concurrent invocations per function; beyond it Invoke answers 429.
    #[arg(long, env = "APIGW_FUNCTION_CONCURRENCY", default_value_t = 10,
          value_parser = clap::value_parser!(u16).range(1..))]
    pub function_concurrency: u16,
    /// Seconds an idle function instance is kept warm.
    #[arg(long, env = "APIGW_FUNCTION_IDLE_SECONDS", default_value_t = 300)]
    pub function_idle_seconds: u64,
    /// The Python that runs `python3.x` functions (it needs `awslambdaric`).
    #[arg(long, env = "APIGW_FUNCTION_PYTHON", default_value = "python3")]
    pub function_python: PathBuf,
}

impl FunctionHostArgs {
    pub fn into_config(self, default_dir: PathBuf) -> FunctionHostConfig {
        let mut config = FunctionHostConfig::new(self.functions_dir.unwrap_or(default_dir));
        config.concurrency_per_function = usize::from(self.function_concurrency);
        config.idle_timeout = Duration::from_secs(self.function_idle_seconds.max(1));
        config.python = self.function_python;
        config
    }
}

pub async fn run(config: StandaloneConfig) -> anyhow::Result<()> {
    std::fs::create_dir_all(&config.data_dir)
        .with_context(|| format!("cannot create data dir {}", config.data_dir.display()))?;
    let master_key = read_or_create(&config.data_dir.join("master.key"), Sealer::generate_key)?;
    let admin_token = read_or_create(&config.data_dir.join("admin-token"), || random_string(40))?;
    // The in-process node subscribes over the same gRPC port operators reach.
    let node_token = random_string(40);
    let cp_config = ControlPlaneConfig {
        database_url: Store::sqlite_url(&config.data_dir.join("apigw.db")),
        master_key,
        management_addr: SocketAddr::new(config.host, config.management_port),
        grpc_addr: SocketAddr::new(config.host, config.grpc_port),
        management: ManagementConfig {
            default_region: config.region.clone(),
            // The in-process data plane's own user-pool settings.
            cognito: config.auth.cognito.settings(),
            ..Default::default()
        },
        bootstrap_admin_token: Some(admin_token.clone()),
        functions: config
            .functions
            .clone()
            .into_config(config.data_dir.join("functions")),
        usage: config.throttle.usage_config(),
        node_token: Some(node_token.clone()),
    };
    // GetUsage reads the in-process data plane's counters.
    let counters = crate::throttle_args::InProcessCounters::default();
    let control_plane = ControlPlane::open(cp_config)
        .await?
        .with_usage_counters(std::sync::Arc::new(counters.clone()));
    control_plane.tenancy().ensure_dev_credentials().await?;
    // The in-process data plane invokes functions on this process's own
    // function host, signing with a service key created at first boot.
    let (service_key_id, service_secret) = read_or_create_service_key(&config.data_dir)?;
    control_plane
        .tenancy()
        .ensure_service_key(&service_key_id, &service_secret, "standalone data plane")
        .await?;

    let host = config.host;
    println!("apigw standalone");
    println!(
        "  management API (apigateway, apigatewayv2, lambda): http://{host}:{}",
        config.management_port
    );
    println!(
        "  operator gRPC (admin):                             http://{host}:{}",
        config.grpc_port
    );
    println!(
        "  data plane (invoke URLs):                          http://{host}:{}/restapis/{{api_id}}/{{stage}}/_user_request_/…",
        config.data_plane_port
    );
    println!(
        "                                                     http://{{api_id}}.execute-api.localhost:{}/{{stage}}/…",
        config.data_plane_port
    );
    println!(
        "  metrics:                                           http://{host}:{}/metrics",
        config.metrics_port
    );
    println!("  data dir: {}", config.data_dir.display());
    println!(
        "  tenant {DEV_ACCOUNT_ID}: AWS_ACCESS_KEY_ID={DEV_ACCESS_KEY_ID} AWS_SECRET_ACCESS_KEY={DEV_SECRET_ACCESS_KEY}"
    );
    println!(
        "  admin token: in {}",
        config.data_dir.join("admin-token").display()
    );
    println!(
        "  try: AWS_ACCESS_KEY_ID=test AWS_SECRET_ACCESS_KEY=test aws --region {} --endpoint-url http://{host}:{} apigateway get-rest-apis",
        config.region, config.management_port
    );
    // The in-process data plane subscribes to this process's own gRPC port:
    // one snapshot path for every mode.
    let data_plane = DataPlaneConfig {
        listen: SocketAddr::new(config.host, config.data_plane_port),
        metrics_listen: SocketAddr::new(config.host, config.metrics_port),
        base_domain: "localhost".into(),
        throttle: config.throttle.throttle_config(&config.region),
        auth: config.auth.settings(&config.region),
        subscriber: SubscriberConfig {
            control_plane: format!("http://{}", SocketAddr::new(config.host, config.grpc_port)),
            node_id: "standalone".into(),
            region: config.region.clone(),
            endpoint_class: "public".into(),
            last_known_good: config
                .data_dir
                .join("data-plane")
                .join("last-known-good.json"),
            node_token: Some(node_token),
        },
        proxy_workers: config.proxy_workers,
        lambda: LambdaSettings {
            default_endpoint: Some(format!(
                "http://{}",
                SocketAddr::new(config.host, config.management_port)
            )),
            endpoints_by_account: Default::default(),
            credentials: Some(LambdaCredentials {
                access_key_id: service_key_id,
                secret_access_key: service_secret,
                session_token: None,
            }),
        },
    };
    let (stop_tx, stop_rx) = watch::channel(false);
    let stopped = |mut rx: watch::Receiver<bool>| async move {
        let _ = rx.wait_for(|s| *s).await;
    };
    tokio::spawn(async move {
        shutdown_signal().await;
        let _ = stop_tx.send(true);
    });
    let (cp, dp) = tokio::join!(
        control_plane.serve(stopped(stop_rx.clone())),
        apigw_data_plane::node::run_with(data_plane, stopped(stop_rx), move |throttle| {
            let _ = counters.0.set(throttle);
        }),
    );
    cp?;
    dp?;
    Ok(())
}

/// The service key pair kept in `<data dir>/service-key` (id, then secret),
/// created on first boot.
fn read_or_create_service_key(data_dir: &Path) -> anyhow::Result<(String, String)> {
    let path = data_dir.join("service-key");
    let text = read_or_create(&path, || {
        format!(
            "AKSV{}\n{}",
            random_string(16).to_ascii_uppercase(),
            random_string(40)
        )
    })?;
    let mut lines = text.lines().map(str::trim);
    match (lines.next(), lines.next()) {
        (Some(id), Some(secret)) if !id.is_empty() && !secret.is_empty() => {
            Ok((id.to_owned(), secret.to_owned()))
        }
        _ => anyhow::bail!(
            "{} must hold a key id and a secret on two lines",
            path.display()
        ),
    }
}

/// Reads a one-line secret file, or creates it (owner-only) with `make()`.
fn read_or_create(path: &Path, make: impl FnOnce() -> String) -> anyhow::Result<String> {
    if path.exists() {
        let value = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read {}", path.display()))?;
        return Ok(value.trim().to_owned());
    }
    let value = make();
    write_private(path, &format!("{value}\n"))
        .with_context(|| format!("cannot write {}", path.display()))?;
    Ok(value)
}

#[cfg(unix)]
fn write_private(path: &Path, contents: &str) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)?;
    f.write_all(contents.as_bytes())
}

#[cfg(not(unix))]
fn write_private(path: &Path, contents: &str) -> std::io::Result<()> {
    std::fs::write(path, contents)
}
