//! apigw's control plane: storage (Postgres or SQLite), tenancy and
//! credentials, the AWS-compatible management API, the gRPC services for
//! operators and data-plane nodes (config streaming: `publish`, `feed`,
//! `grpc::config`), and the deployment snapshot compiler.

pub mod config;
pub mod error;
pub mod feed;
pub mod grpc;
pub mod management;
pub mod model;
pub mod operator;
pub mod publish;
pub mod server;
pub mod snapshot;
pub mod store;
pub mod tenancy;
pub mod usage;
