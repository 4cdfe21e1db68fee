//! gRPC services: operator administration and configuration streaming to
//! data-plane nodes.

pub mod admin;
pub mod config;
