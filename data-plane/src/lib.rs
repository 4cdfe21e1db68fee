//! apigw's data plane: the proxy that serves published APIs from deployment
//! snapshots streamed by the control plane. It arrives with the data-plane
//! work; this crate holds its place in the workspace.
