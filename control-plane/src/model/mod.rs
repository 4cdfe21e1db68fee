//! AWS API Gateway's REST API (v1) resource shapes, as botocore's model names
//! them. A [`RestApiDoc`] is the stored aggregate of one REST API; the other
//! shapes are its parts, serialised as they appear on the wire.

pub mod deployment;
pub mod rest_api;
pub mod stage;

pub use deployment::{Deployment, MethodSnapshot};
pub use rest_api::*;
pub use stage::{MethodSetting, Stage};
