//! The `apigw` command line: parses arguments and hands them to the libraries.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;

use anyhow::Context;
use apigw_control_plane::config::{ControlPlaneConfig, ManagementConfig};
use apigw_control_plane::operator::{self, AdminCommand};
use apigw_control_plane::server::{ControlPlane, shutdown_signal};
use apigw_control_plane::tenancy::random_string;
use apigw_data_plane::integration::{LambdaCredentials, LambdaSettings};
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
        /// Data-plane nodes must present it to subscribe to the config stream (which carries
        /// principals' signing keys); without it anyone reaching the gRPC port may subscribe.
        #[arg(long, env = "APIGW_NODE_TOKEN", hide_env_values = true)]
        node_token: Option<String>,
        #[arg(long, env = "APIGW_HOST", default_value_t = IpAddr::V4(Ipv4Addr::LOCALHOST))]
        host: IpAddr,
        #[arg(long, default_value_t = 8081)]
        management_port: u16,
        #[arg(long, default_value_t = 8082)]
        grpc_port: u16,
        #[arg(long, env = "APIGW_REGION", default_value = "us-east-1")]
        region: String,
        #[command(flatten)]
        functions: apigw::standalone::FunctionHostArgs,
        #[command(flatten)]
        throttle: apigw::throttle_args::ThrottleArgs,
        // TestInvokeAuthorizer verifies user-pool tokens as the nodes do.
        #[command(flatten)]
        cognito: apigw::auth_args::CognitoArgs,
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
        /// The control plane's `--node-token`, if it has one.
        #[arg(long, env = "APIGW_NODE_TOKEN", hide_env_values = true)]
        node_token: Option<String>,
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
        #[command(flatten)]
        lambda: LambdaArgs,
        #[command(flatten)]
        throttle: apigw::throttle_args::ThrottleArgs,
        #[command(flatten)]
        auth: apigw::auth_args::AuthArgs,
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
    /// CORS helpers for REST APIs, through the management API.
    Cors {
        #[command(subcommand)]
        command: CorsCli,
    },
}

#[derive(Subcommand)]
enum CorsCli {
    /// Writes an OPTIONS MOCK preflight, Access-Control-Allow-Origin on the
    /// resource's other methods and on DEFAULT_4XX/5XX, as the AWS console does.
    Enable {
        /// The management API (signed with the tenant's keys).
        #[arg(long, env = "APIGW_ENDPOINT", default_value = "http://127.0.0.1:8081")]
        endpoint: String,
        #[arg(long, env = "AWS_REGION", default_value = "us-east-1")]
        region: String,
        #[arg(long, env = "AWS_ACCESS_KEY_ID")]
        access_key_id: String,
        #[arg(long, env = "AWS_SECRET_ACCESS_KEY", hide_env_values = true)]
        secret_access_key: String,
        /// REST API id.
        #[arg(long)]
        api: String,
        /// Resource path (`/pets`) or id.
        #[arg(long)]
        resource: String,
        /// `*` or comma-separated origins (`https://app.example.com`).
        #[arg(long, value_delimiter = ',', required = true)]
        origins: Vec<String>,
        /// Access-Control-Allow-Methods; default: the resource's methods and OPTIONS.
        #[arg(long, value_delimiter = ',')]
        methods: Option<Vec<String>>,
        /// Access-Control-Allow-Headers.
        #[arg(long, default_value = apigw::cors::DEFAULT_HEADERS)]
        headers: String,
        /// Send Access-Control-Allow-Credentials: true (needs explicit origins).
        #[arg(long)]
        allow_credentials: bool,
        /// Leave the DEFAULT_4XX/DEFAULT_5XX gateway responses alone.
        #[arg(long)]
        no_gateway_responses: bool,
    },
}

/// Where Lambda integrations invoke functions (AWS by default).
#[derive(clap::Args)]
struct LambdaArgs {
    /// Lambda endpoint for every account without its own, e.g. `http://127.0.0.1:8081`
    /// [default: https://lambda.{region}.amazonaws.com, the region of each function's ARN].
    #[arg(long, env = "APIGW_LAMBDA_ENDPOINT")]
    lambda_endpoint: Option<String>,
    /// `ACCOUNT=URL`: the Lambda endpoint of one account's functions (repeatable).
    #[arg(
        long,
        env = "APIGW_LAMBDA_ENDPOINT_FOR_ACCOUNT",
        value_delimiter = ',',
        value_parser = parse_account_endpoint
    )]
    lambda_endpoint_for_account: Vec<(String, String)>,
    /// The key Invoke calls are signed with [default: AWS_ACCESS_KEY_ID, …].
    #[arg(
        long,
        env = "APIGW_LAMBDA_ACCESS_KEY_ID",
        requires = "lambda_secret_access_key"
    )]
    lambda_access_key_id: Option<String>,
    #[arg(
        long,
        env = "APIGW_LAMBDA_SECRET_ACCESS_KEY",
        hide_env_values = true,
        requires = "lambda_access_key_id"
    )]
    lambda_secret_access_key: Option<String>,
    #[arg(long, env = "APIGW_LAMBDA_SESSION_TOKEN", hide_env_values = true)]
    lambda_session_token: Option<String>,
}

impl LambdaArgs {
    fn into_settings(self) -> LambdaSettings {
        let credentials = match (self.lambda_access_key_id, self.lambda_secret_access_key) {
            (Some(access_key_id), Some(secret_access_key)) => Some(LambdaCredentials {
                access_key_id,
                secret_access_key,
                session_token: self.lambda_session_token,
            }),
            _ => None,
        };
        LambdaSettings {
            default_endpoint: self.lambda_endpoint,
            endpoints_by_account: self.lambda_endpoint_for_account.into_iter().collect(),
            credentials,
        }
    }
}

fn parse_account_endpoint(s: &str) -> Result<(String, String), String> {
    match s.split_once('=') {
        Some((account, url))
            if account.len() == 12
                && account.bytes().all(|b| b.is_ascii_digit())
                && (url.starts_with("http://") || url.starts_with("https://")) =>
        {
            Ok((account.to_string(), url.to_string()))
        }
        _ => Err(format!(
            "expected ACCOUNT=URL (a 12-digit account id and an http(s) URL), got {s:?}"
        )),
    }
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
    /// Keys of the service principal (lambda Invoke by full ARN only; for data-plane nodes).
    ServiceKey {
        #[command(subcommand)]
        command: ServiceKeyCli,
    },
    /// IAM-style principals of a tenant: an access key with an identity policy,
    /// for callers of AWS_IAM methods.
    Principal {
        #[command(subcommand)]
        command: PrincipalCli,
    },
}

#[derive(Subcommand)]
enum PrincipalCli {
    Create {
        #[arg(long)]
        tenant: String,
        #[arg(long)]
        name: String,
        /// `user` or `role`.
        #[arg(long, default_value = "user")]
        kind: String,
        /// The identity policy document: JSON, or `file://path` to read it from a file.
        #[arg(long)]
        policy: String,
    },
    List {
        #[arg(long)]
        tenant: String,
    },
    /// Replaces the principal's identity policy.
    PutPolicy {
        #[arg(long)]
        access_key_id: String,
        /// JSON, or `file://path`.
        #[arg(long)]
        policy: String,
    },
    Delete {
        #[arg(long)]
        access_key_id: String,
    },
}

/// A policy argument as the AWS CLI takes one: inline JSON or `file://path`.
fn policy_arg(value: String) -> anyhow::Result<String> {
    match value.strip_prefix("file://") {
        Some(path) => std::fs::read_to_string(path)
            .with_context(|| format!("cannot read the policy file {path}")),
        None => Ok(value),
    }
}

#[derive(Subcommand)]
enum ServiceKeyCli {
    Create {
        #[arg(long, default_value = "")]
        description: String,
    },
    List,
    Delete {
        #[arg(long)]
        access_key_id: String,
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
            node_token,
            host,
            management_port,
            grpc_port,
            region,
            functions,
            throttle,
            cognito,
        } => {
            let config = ControlPlaneConfig {
                database_url,
                master_key,
                management_addr: SocketAddr::new(host, management_port),
                grpc_addr: SocketAddr::new(host, grpc_port),
                management: ManagementConfig {
                    default_region: region,
                    cognito: cognito.settings(),
                    ..Default::default()
                },
                bootstrap_admin_token,
                functions: functions.into_config(PathBuf::from("./.apigw-functions")),
                usage: throttle.usage_config(),
                node_token,
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
            node_token,
            region,
            endpoint_class,
            host,
            port,
            metrics_port,
            state_dir,
            base_domain,
            proxy_workers,
            lambda,
            throttle,
            auth,
        } => {
            let node_id = node_id
                .unwrap_or_else(|| format!("node-{}", random_string(8).to_ascii_lowercase()));
            let config = DataPlaneConfig {
                listen: SocketAddr::new(host, port),
                metrics_listen: SocketAddr::new(host, metrics_port),
                base_domain,
                throttle: throttle.throttle_config(&region),
                auth: auth.settings(&region),
                subscriber: SubscriberConfig {
                    control_plane,
                    node_id,
                    region,
                    endpoint_class,
                    last_known_good: state_dir.join("last-known-good.json"),
                    node_token,
                },
                proxy_workers,
                lambda: lambda.into_settings(),
            };
            apigw_data_plane::node::run(config, shutdown_signal()).await?;
            Ok(())
        }
        Command::Cors {
            command:
                CorsCli::Enable {
                    endpoint,
                    region,
                    access_key_id,
                    secret_access_key,
                    api,
                    resource,
                    origins,
                    methods,
                    headers,
                    allow_credentials,
                    no_gateway_responses,
                },
        } => {
            let report = apigw::cors::enable(apigw::cors::CorsSettings {
                endpoint,
                region,
                access_key_id,
                secret_access_key,
                api_id: api,
                resource,
                origins,
                methods,
                headers,
                allow_credentials,
                gateway_responses: !no_gateway_responses,
            })
            .await?;
            println!("{}", serde_json::to_string_pretty(&report)?);
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
                AdminCli::ServiceKey {
                    command: ServiceKeyCli::Create { description },
                } => AdminCommand::CreateServiceKey { description },
                AdminCli::ServiceKey {
                    command: ServiceKeyCli::List,
                } => AdminCommand::ListServiceKeys,
                AdminCli::ServiceKey {
                    command: ServiceKeyCli::Delete { access_key_id },
                } => AdminCommand::DeleteServiceKey { access_key_id },
                AdminCli::Principal {
                    command:
                        PrincipalCli::Create {
                            tenant,
                            name,
                            kind,
                            policy,
                        },
                } => AdminCommand::CreatePrincipal {
                    account_id: tenant,
                    kind,
                    name,
                    policy: policy_arg(policy)?,
                },
                AdminCli::Principal {
                    command: PrincipalCli::List { tenant },
                } => AdminCommand::ListPrincipals { account_id: tenant },
                AdminCli::Principal {
                    command:
                        PrincipalCli::PutPolicy {
                            access_key_id,
                            policy,
                        },
                } => AdminCommand::PutPrincipalPolicy {
                    access_key_id,
                    policy: policy_arg(policy)?,
                },
                AdminCli::Principal {
                    command: PrincipalCli::Delete { access_key_id },
                } => AdminCommand::DeletePrincipal { access_key_id },
            };
            let out = operator::run(&control_plane, &admin_token, command)
                .await
                .with_context(|| format!("admin call to {control_plane} failed"))?;
            println!("{out}");
            Ok(())
        }
    }
}
