//! The contract between apigw's control plane and its data-plane nodes: the
//! gRPC services (generated from `proto/apigw/*.proto`) and the serde model
//! of a compiled deployment snapshot that travels inside them.

pub mod gateway_response;
pub mod principal;
pub mod snapshot;
pub mod usage;

pub mod admin {
    //! Operator administration service (`apigw.admin.v1`).
    tonic::include_proto!("apigw.admin.v1");
}

pub mod config {
    //! Configuration streaming service (`apigw.config.v1`).
    tonic::include_proto!("apigw.config.v1");
}
