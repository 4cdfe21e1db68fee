//! gRPC services: operator administration (and, with the data-plane work,
//! configuration streaming).

pub mod admin;
