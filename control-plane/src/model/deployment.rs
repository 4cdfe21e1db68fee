//! AWS's `Deployment` shape.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MethodSnapshot {
    pub authorization_type: String,
    pub api_key_required: bool,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Deployment {
    pub id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    pub created_date: i64,
    /// Path → method → summary; returned only with `embed=apisummary`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api_summary: Option<BTreeMap<String, BTreeMap<String, MethodSnapshot>>>,
}
