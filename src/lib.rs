//! The `apigw` binary's composition: standalone mode wires the control plane
//! (and, as they arrive, the data plane and function host) into one process.

pub mod auth_args;
pub mod cors;
pub mod standalone;
pub mod throttle_args;
