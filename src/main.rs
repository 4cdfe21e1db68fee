//! The `apigw` command line: parses arguments and hands them to the libraries.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;

use anyhow::Context;
use apigw_control_plane::config::{ControlPlaneConfig, ManagementConfig};
use apigw_control_plane::operator::{self, AdminCommand};
use apigw_control_plane::server::{ControlPlane, shutdown_signal};
use apigw_control_plane::tenancy::random_string;
use apigw_data_plane::node::DataPlaneConfig;
use apigw_data_plane::subscriber::SubscriberConfig;
use clap::{Parser, Subcommand};

// glibc malloc was ~8% of the data plane's CPU under load (bench/README.md).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
#[command(
    name = "apigw",
    version,
    about = "A self-hosted API gateway that speaks the AWS API Gateway model"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Control plane and data plane in one process on SQLite: zero setup.
    Standalone(apigw::standalone::StandaloneConfig),
    /// The management API and gRPC services on Postgres.
    ControlPlane {
        #[arg(long, env = "DATABASE_URL")]
        database_url: String,
        /// Base64 32-byte key that seals access-key secrets at rest.
        #[arg(long, env = "APIGW_MASTER_KEY", hide_env_values = true)]
        master_key: String,
        /// Registered (hashed) at start-up so operators can reach the admin service.
        #[arg(long, env = "APIGW_BOOTSTRAP_ADMIN_TOKEN", hide_env_values = true)]
        bootstrap_admin_token: Option<String>,
        #[arg(long, env = "APIGW_HOST", default_value_t = IpAddr::V4(Ipv4Addr::LOCALHOST))]
        host: IpAddr,
        #[arg(long, default_value_t = 8081)]
        management_port: u16,
        #[arg(long, default_value_t = 8082)]
        grpc_port: u16,
        #[arg(long, env = "APIGW_REGION", default_value = "us-east-1")]
        region: String,
    },
    /// The proxy serving published APIs, fed by a control plane over gRPC.
    DataPlane {
        #[arg(
            long,
            env = "APIGW_CONTROL_PLANE",
            default_value = "http://127.0.0.1:8082"
        )]
        control_plane: String,
        /// Unique per node; shown by `apigw admin nodes list`.
        #[arg(long, env = "APIGW_NODE_ID")]
        node_id: Option<String>,
        #[arg(long, env = "APIGW_REGION", default_value = "us-east-1")]
        region: String,
        #[arg(long, env = "APIGW_ENDPOINT_CLASS", default_value = "public", value_parser = ["public", "private"])]
        endpoint_class: String,
        #[arg(long, env = "APIGW_HOST", default_value_t = IpAddr::V4(Ipv4Addr::LOCALHOST))]
        host: IpAddr,
        #[arg(long, default_value_t = 8080)]
        port: u16,
        #[arg(long, default_value_t = 9464)]
        metrics_port: u16,
        /// Holds the last-known-good config, served at boot when the control plane is away.
        #[arg(long, env = "APIGW_STATE_DIR", default_value = "./.apigw-data-plane")]
        state_dir: PathBuf,
        #[arg(long, env = "APIGW_BASE_DOMAIN", default_value = "localhost")]
        base_domain: String,
        /// Proxy worker threads, each with its own listener (SO_REUSEPORT); 0 = one per CPU.
        #[arg(long, env = "APIGW_PROXY_WORKERS", default_value_t = 0)]
        proxy_workers: usize,
    },
    /// Operator administration through the control plane's gRPC admin service.
    Admin {
        #[arg(
            long,
            env = "APIGW_CONTROL_PLANE",
            default_value = "http://127.0.0.1:8082"
        )]
        control_plane: String,
        #[arg(long, env = "APIGW_ADMIN_TOKEN", hide_env_values = true)]
        admin_token: String,
        #[command(subcommand)]
        command: AdminCli,
    },
}

#[derive(Subcommand)]
enum AdminCli {
    /// Tenants (accounts).
    Tenant {
        #[command(subcommand)]
        command: TenantCli,
    },
    /// Access keys of a tenant.
    Key {
        #[command(subcommand)]
        command: KeyCli,
    },
    /// Connected data-plane nodes.
    Nodes {
        #[command(subcommand)]
        command: NodesCli,
    },
}

#[derive(Subcommand)]
enum TenantCli {
    Create {
        #[arg(long, default_value = "")]
        name: String,
        /// A specific 12-digit account id (generated when omitted).
        #[arg(long)]
        account_id: Option<String>,
    },
    List,
}

#[derive(Subcommand)]
enum KeyCli {
    Create {
        #[arg(long)]
        tenant: String,
    },
    List {
        #[arg(long)]
        tenant: String,
    },
    Delete {
        #[arg(long)]
        access_key_id: String,
    },
}

#[derive(Subcommand)]
enum NodesCli {
    List,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    match Cli::parse().command {
        Command::Standalone(config) => apigw::standalone::run(config).await,
        Command::ControlPlane {
            database_url,
            master_key,
            bootstrap_admin_token,
            host,
            management_port,
            grpc_port,
            region,
        } => {
            let config = ControlPlaneConfig {
                database_url,
                master_key,
                management_addr: SocketAddr::new(host, management_port),
                grpc_addr: SocketAddr::new(host, grpc_port),
                management: ManagementConfig {
                    default_region: region,
                    ..Default::default()
                },
                bootstrap_admin_token,
            };
            ControlPlane::open(config)
                .await?
                .serve(shutdown_signal())
                .await?;
            Ok(())
        }
        Command::DataPlane {
            control_plane,
            node_id,
            region,
            endpoint_class,
            host,
            port,
            metrics_port,
            state_dir,
            base_domain,
            proxy_workers,
        } => {
            let node_id = node_id
                .unwrap_or_else(|| format!("node-{}", random_string(8).to_ascii_lowercase()));
            let config = DataPlaneConfig {
                listen: SocketAddr::new(host, port),
                metrics_listen: SocketAddr::new(host, metrics_port),
                base_domain,
                subscriber: SubscriberConfig {
                    control_plane,
                    node_id,
                    region,
                    endpoint_class,
                    last_known_good: state_dir.join("last-known-good.json"),
                },
                proxy_workers,
            };
            apigw_data_plane::node::run(config, shutdown_signal()).await?;
            Ok(())
        }
        Command::Admin {
            control_plane,
            admin_token,
            command,
        } => {
            let command = match command {
                AdminCli::Tenant {
                    command: TenantCli::Create { name, account_id },
                } => AdminCommand::CreateTenant { name, account_id },
                AdminCli::Tenant {
                    command: TenantCli::List,
                } => AdminCommand::ListTenants,
                AdminCli::Key {
                    command: KeyCli::Create { tenant },
                } => AdminCommand::CreateKey { account_id: tenant },
                AdminCli::Key {
                    command: KeyCli::List { tenant },
                } => AdminCommand::ListKeys { account_id: tenant },
                AdminCli::Key {
                    command: KeyCli::Delete { access_key_id },
                } => AdminCommand::DeleteKey { access_key_id },
                AdminCli::Nodes {
                    command: NodesCli::List,
                } => AdminCommand::ListNodes,
            };
            let out = operator::run(&control_plane, &admin_token, command)
                .await
                .with_context(|| format!("admin call to {control_plane} failed"))?;
            println!("{out}");
            Ok(())
        }
    }
}
