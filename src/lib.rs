//! The `apigw` binary's composition: standalone mode wires the control plane
//! (and, as they arrive, the data plane and function host) into one process.

pub mod standalone;
