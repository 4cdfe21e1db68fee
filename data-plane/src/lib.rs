//! apigw's data plane: the proxy that serves published APIs from deployment
//! snapshots streamed by the control plane. It never touches the database and
//! keeps serving its last-known-good configuration when the control plane is
//! away.

pub mod auth;
pub mod binary;
pub mod body;
pub mod cors;
pub mod gateway_response;
pub mod held;
pub mod integration;
mod listen;
pub mod metrics;
pub mod node;
pub mod proxy;
pub mod routing;
pub mod runtime;
pub mod subscriber;
pub mod throttle;
pub mod transform;
pub mod validation;
