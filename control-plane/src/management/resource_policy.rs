//! REST API resource policies (`RestApi.policy`): checked for shape when set,
//! so a document the data plane could not evaluate never gets stored (the
//! data plane refuses every request of an API whose policy does not parse).
//! The evaluator itself lives in the data plane (`auth/policy.rs`).

use serde_json::Value;

use crate::error::{ApiError, ApiResult};

/// AWS's answer to a policy it cannot read.
const INVALID: &str =
    "Invalid policy document. Please check the policy syntax and ensure that Principals are valid.";

/// Condition operators the data plane evaluates (each also as `…IfExists`).
const OPERATORS: [&str; 8] = [
    "StringEquals",
    "StringNotEquals",
    "StringEqualsIgnoreCase",
    "StringNotEqualsIgnoreCase",
    "StringLike",
    "StringNotLike",
    "IpAddress",
    "NotIpAddress",
];

fn strings(v: &Value) -> bool {
    match v {
        Value::String(_) => true,
        Value::Array(items) => !items.is_empty() && items.iter().all(Value::is_string),
        _ => false,
    }
}

/// Whether `policy` is a policy document the data plane can evaluate.
pub fn check(policy: &str) -> ApiResult<()> {
    let bad = |why: &str| ApiError::bad_request(format!("{INVALID} ({why})"));
    let doc: Value = serde_json::from_str(policy).map_err(|_| bad("not JSON"))?;
    let statements = match doc.get("Statement") {
        Some(Value::Array(items)) if !items.is_empty() => items.iter().collect::<Vec<_>>(),
        Some(single @ Value::Object(_)) => vec![single],
        _ => return Err(bad("no Statement")),
    };
    for s in statements {
        let s = s
            .as_object()
            .ok_or_else(|| bad("a statement is not an object"))?;
        if !matches!(
            s.get("Effect").and_then(Value::as_str),
            Some("Allow" | "Deny")
        ) {
            return Err(bad("Effect must be Allow or Deny"));
        }
        if s.contains_key("NotPrincipal") {
            return Err(bad("NotPrincipal is not supported"));
        }
        match s.get("Principal") {
            None => {}
            Some(Value::String(p)) if p == "*" => {}
            Some(Value::Object(p)) if p.get("AWS").is_some_and(strings) && p.len() == 1 => {}
            Some(_) => return Err(bad("Principal must be \"*\" or {\"AWS\": …}")),
        }
        for (name, not_name) in [("Action", "NotAction"), ("Resource", "NotResource")] {
            match (s.get(name), s.get(not_name)) {
                (Some(v), None) | (None, Some(v)) if strings(v) => {}
                _ => {
                    return Err(bad(&format!(
                        "exactly one of {name} and {not_name} is required"
                    )));
                }
            }
        }
        if let Some(conditions) = s.get("Condition") {
            let conditions = conditions
                .as_object()
                .ok_or_else(|| bad("Condition is not an object"))?;
            for (op, keys) in conditions {
                let base = op.strip_suffix("IfExists").unwrap_or(op);
                if !OPERATORS.contains(&base) {
                    return Err(bad(&format!("unsupported condition operator {op}")));
                }
                let keys = keys
                    .as_object()
                    .ok_or_else(|| bad("a condition is not an object"))?;
                if !keys.values().all(strings) {
                    return Err(bad("condition values must be strings"));
                }
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::check;

    #[test]
    fn accepts_what_the_data_plane_evaluates() {
        assert!(check(r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":"*","Action":"execute-api:Invoke","Resource":"execute-api:/*","Condition":{"NotIpAddress":{"aws:SourceIp":["10.0.0.0/8"]}}}]}"#).is_ok());
        assert!(check(r#"{"Statement":{"Effect":"Deny","Principal":{"AWS":["123456789012"]},"NotAction":"execute-api:InvalidateCache","Resource":["*"]}}"#).is_ok());
        for bad in [
            "",
            "nope",
            "{}",
            r#"{"Statement":[]}"#,
            r#"{"Statement":[{"Effect":"allow","Action":"*","Resource":"*"}]}"#,
            r#"{"Statement":[{"Effect":"Allow","Resource":"*"}]}"#,
            r#"{"Statement":[{"Effect":"Allow","Action":"*","NotAction":"*","Resource":"*"}]}"#,
            r#"{"Statement":[{"Effect":"Allow","Principal":{"Service":"x"},"Action":"*","Resource":"*"}]}"#,
            r#"{"Statement":[{"Effect":"Allow","Action":"*","Resource":"*","Condition":{"DateLessThan":{"aws:CurrentTime":"x"}}}]}"#,
        ] {
            let e = check(bad).unwrap_err().to_string();
            assert!(e.starts_with("Invalid policy document."), "{bad}: {e}");
        }
    }
}
