//! The immutable, compiled form of a REST API deployment, and of a stage that
//! serves it. The control plane builds a [`DeploymentSnapshot`] once, at
//! CreateDeployment, and never changes it; the data plane compiles its routing
//! table from [`StageSnapshot`]s and never sees the editable resource tree.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// Everything a data-plane node needs to serve one deployment of a REST API.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DeploymentSnapshot {
    pub account_id: String,
    pub api_id: String,
    pub deployment_id: String,
    pub created_epoch_seconds: i64,
    pub api: ApiSettings,
    /// One entry per (resource path, HTTP method), sorted by path then method.
    pub routes: Vec<Route>,
    /// Gateway responses the tenant customised; the data plane supplies AWS's defaults for the rest.
    pub gateway_responses: BTreeMap<String, Value>,
    pub models: BTreeMap<String, Value>,
    pub request_validators: BTreeMap<String, Value>,
    /// Authorizers (AWS's `Authorizer` shape) by id; a route's
    /// `method.authorizerId` names one of these, never another API's.
    #[serde(default)]
    pub authorizers: BTreeMap<String, Value>,
}

/// API-wide settings that shape request handling.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ApiSettings {
    pub name: String,
    pub binary_media_types: Vec<String>,
    pub api_key_source: String,
    pub minimum_compression_size: Option<i64>,
    pub endpoint_types: Vec<String>,
    pub policy: Option<String>,
    pub disable_execute_api_endpoint: bool,
}

/// A method on a resource path, with its integration, exactly as configured
/// at deployment time (AWS's `Method` shape, `methodIntegration` included).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Route {
    pub resource_id: String,
    /// Resource path template, e.g. `/pets/{petId}` or `/{proxy+}`.
    pub path: String,
    /// `GET`, `POST`, … or `ANY`.
    pub http_method: String,
    pub method: Value,
}

/// A stage: a name bound to one deployment, with its variables and settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StageSnapshot {
    pub stage_name: String,
    pub variables: BTreeMap<String, String>,
    pub method_settings: BTreeMap<String, Value>,
    pub deployment: DeploymentSnapshot,
    /// The usage plans that include this stage, with the keys they admit.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub usage_plans: Vec<StageUsagePlan>,
    /// Bumped by FlushStageAuthorizersCache: a new value is a new resource
    /// version, which nodes compile anew, with empty authorizer caches.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub authorizer_cache_generation: u64,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

/// A usage plan as one stage enforces it. Keys travel as SHA-256 digests only.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StageUsagePlan {
    pub id: String,
    /// Days since the epoch (UTC) of the plan's creation: its first quota period.
    #[serde(default)]
    pub created_day: i64,
    pub throttle: Option<ThrottleLimits>,
    pub quota: Option<QuotaLimits>,
    /// `/{resourcePath}/{httpMethod}` (e.g. `/pets/GET`) → that method's limits in this plan.
    #[serde(default)]
    pub method_throttle: BTreeMap<String, ThrottleLimits>,
    /// Enabled keys attached to the plan.
    #[serde(default)]
    pub keys: Vec<StageApiKey>,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ThrottleLimits {
    #[serde(default)]
    pub burst_limit: i64,
    #[serde(default)]
    pub rate_limit: f64,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct QuotaLimits {
    pub limit: i64,
    #[serde(default)]
    pub offset: i64,
    /// `DAY`, `WEEK` or `MONTH`.
    pub period: String,
}

impl QuotaLimits {
    /// The quota on `day` for a plan created on `created`: AWS's `offset` is
    /// the number of requests subtracted from the limit in the first period.
    pub fn limit_on(&self, day: crate::usage::Day, created: crate::usage::Day) -> i64 {
        if day.period_start(&self.period) == created.period_start(&self.period) {
            (self.limit - self.offset).max(0)
        } else {
            self.limit
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StageApiKey {
    pub id: String,
    /// Hex SHA-256 of the key's value.
    pub sha256: String,
}
