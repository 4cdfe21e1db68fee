//! Reading management requests: JSON bodies, `patchOperations`, paging and
//! enumerations, each failure becoming the AWS error a client expects.

use serde::Deserialize;
use serde::de::DeserializeOwned;

use crate::error::{ApiError, ApiResult};

/// Parses a JSON body; an empty body reads as `{}` (AWS SDKs omit it).
/// Members AWS does not define are ignored, as AWS does.
pub fn json<T: DeserializeOwned>(body: &[u8]) -> ApiResult<T> {
    let body: &[u8] = if body.iter().all(u8::is_ascii_whitespace) {
        b"{}"
    } else {
        body
    };
    let de = &mut serde_json::Deserializer::from_slice(body);
    serde_path_to_error::deserialize(de).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        if inner.is_syntax() || inner.is_eof() || path == "." {
            ApiError::Serialization(format!("Could not parse request body into json: {inner}"))
        } else {
            ApiError::Serialization(format!("Invalid value for member '{path}': {inner}"))
        }
    })
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Op {
    Add,
    Remove,
    Replace,
    Move,
    Copy,
    Test,
}

impl Op {
    pub fn as_str(self) -> &'static str {
        match self {
            Op::Add => "add",
            Op::Remove => "remove",
            Op::Replace => "replace",
            Op::Move => "move",
            Op::Copy => "copy",
            Op::Test => "test",
        }
    }
}

/// One of AWS's `PatchOperation`s: a JSON-pointer path and a string value.
#[derive(Debug, Clone, Deserialize)]
pub struct PatchOp {
    pub op: Op,
    /// Missing reads as empty, so it fails as an invalid path (AWS: 400), not as bad JSON.
    #[serde(default)]
    pub path: String,
    #[serde(default)]
    pub value: Option<String>,
    #[serde(default)]
    pub from: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PatchRequest {
    #[serde(default)]
    pub patch_operations: Vec<PatchOp>,
}

impl PatchOp {
    /// The path's segments with `~1` and `~0` unescaped; `"/a/b~1c"` → `["a", "b/c"]`.
    pub fn segments(&self) -> Vec<String> {
        self.raw_segments()
            .map(|s| s.replace("~1", "/").replace("~0", "~"))
            .collect()
    }

    /// The path's segments as written (AWS keys stage method settings by them).
    pub fn raw_segments(&self) -> impl Iterator<Item = &str> {
        self.path.strip_prefix('/').unwrap_or(&self.path).split('/')
    }

    /// The error AWS gives for a path the resource does not have.
    pub fn invalid_path(&self, allowed: &[&str]) -> ApiError {
        ApiError::BadRequest(format!(
            "Invalid patch path  '{}' specified for op '{}'. Must be one of: [{}]",
            self.path,
            self.op.as_str(),
            allowed.join(", ")
        ))
    }

    /// The error AWS gives for an op a resource's paths never take.
    pub fn unsupported_op(&self) -> ApiError {
        ApiError::BadRequest(format!(
            "Invalid patch path  '{}' specified for op '{}'. Please choose supported operations",
            self.path,
            self.op.as_str()
        ))
    }

    /// The error AWS gives for an operation the path does not take.
    pub fn invalid_op(&self, allowed: &[&str]) -> ApiError {
        ApiError::BadRequest(format!(
            "Invalid patch operation specified. Must be one of: [{}]",
            allowed.join(", ")
        ))
    }

    pub fn value(&self) -> ApiResult<&str> {
        self.value.as_deref().ok_or_else(|| {
            ApiError::BadRequest(format!(
                "Invalid null or empty value for patch path '{}'",
                self.path
            ))
        })
    }

    /// The value for `add`/`replace`, `None` for `remove`; other ops are refused.
    pub fn set_or_remove(&self) -> ApiResult<Option<&str>> {
        match self.op {
            Op::Add | Op::Replace => self.value().map(Some),
            Op::Remove => Ok(None),
            _ => Err(self.invalid_op(&["add", "remove", "replace"])),
        }
    }

    /// The value of a `replace` (AWS also takes `add` where a field always exists).
    pub fn replacement(&self) -> ApiResult<&str> {
        match self.op {
            Op::Replace | Op::Add => self.value(),
            _ => Err(self.invalid_op(&["replace"])),
        }
    }

    pub fn bool_value(&self) -> ApiResult<bool> {
        match self.replacement()? {
            "true" | "True" | "TRUE" => Ok(true),
            "false" | "False" | "FALSE" => Ok(false),
            other => Err(ApiError::BadRequest(format!(
                "Invalid boolean value '{other}' for patch path '{}'",
                self.path
            ))),
        }
    }

    pub fn int_value(&self) -> ApiResult<i64> {
        let v = self.replacement()?;
        v.parse().map_err(|_| {
            ApiError::BadRequest(format!(
                "Invalid integer value '{v}' for patch path '{}'",
                self.path
            ))
        })
    }

    pub fn float_value(&self) -> ApiResult<f64> {
        let v = self.replacement()?;
        v.parse::<f64>()
            .ok()
            .filter(|f| f.is_finite())
            .ok_or_else(|| {
                ApiError::BadRequest(format!(
                    "Invalid number value '{v}' for patch path '{}'",
                    self.path
                ))
            })
    }
}

/// Sets or removes `key` in a string map per a patch op.
pub fn patch_map<V>(
    map: &mut std::collections::BTreeMap<String, V>,
    key: &str,
    op: &PatchOp,
    parse: impl FnOnce(&str) -> ApiResult<V>,
) -> ApiResult<()> {
    match op.set_or_remove()? {
        Some(v) => {
            map.insert(key.to_owned(), parse(v)?);
        }
        None => {
            if map.remove(key).is_none() {
                return Err(ApiError::BadRequest(format!(
                    "Cannot remove '{key}': it is not present (patch path '{}')",
                    op.path
                )));
            }
        }
    }
    Ok(())
}

#[derive(Debug, Default, Deserialize)]
pub struct Paging {
    pub position: Option<String>,
    pub limit: Option<String>,
}

/// One page of `items` (already in a stable order). `position` is the id of
/// the first item of the page, as returned in the previous page.
pub fn page<T>(
    items: Vec<T>,
    id_of: impl Fn(&T) -> &str,
    paging: &Paging,
) -> ApiResult<(Vec<T>, Option<String>)> {
    let limit = match paging.limit.as_deref() {
        None | Some("") => 25,
        Some(l) => match l.parse::<usize>() {
            Ok(n) if (1..=500).contains(&n) => n,
            _ => {
                return Err(ApiError::BadRequest(format!(
                    "Invalid value for parameter 'limit': '{l}' (must be between 1 and 500)"
                )));
            }
        },
    };
    let start = match paging.position.as_deref().filter(|p| !p.is_empty()) {
        None => 0,
        Some(p) => items
            .iter()
            .position(|i| id_of(i) == p)
            .ok_or_else(|| ApiError::BadRequest("Invalid position parameter".to_owned()))?,
    };
    let mut rest: Vec<T> = items.into_iter().skip(start).collect();
    let next = if rest.len() > limit {
        Some(id_of(&rest[limit]).to_owned())
    } else {
        None
    };
    rest.truncate(limit);
    Ok((rest, next))
}

/// Checks a value against an enumeration, answering as AWS's model validation does.
pub fn one_of(value: &str, member: &str, allowed: &[&str]) -> ApiResult<()> {
    if allowed.contains(&value) {
        Ok(())
    } else {
        Err(ApiError::Validation(format!(
            "1 validation error detected: Value '{value}' at '{member}' failed to satisfy constraint: \
             Member must satisfy enum value set: [{}]",
            allowed.join(", ")
        )))
    }
}

/// A list response: AWS's wire key is `item`.
pub fn list_body<T: serde::Serialize>(items: &[T], position: Option<String>) -> serde_json::Value {
    let mut body = serde_json::json!({ "item": items });
    if let Some(p) = position {
        body["position"] = serde_json::Value::String(p);
    }
    body
}

#[cfg(test)]
mod tests {
    use super::*;

    fn op(op: Op, path: &str, value: Option<&str>) -> PatchOp {
        PatchOp {
            op,
            path: path.into(),
            value: value.map(Into::into),
            from: None,
        }
    }

    #[test]
    fn segments_unescape_slashes() {
        assert_eq!(
            op(Op::Add, "/binaryMediaTypes/image~1png", None).segments(),
            ["binaryMediaTypes", "image/png"]
        );
        assert_eq!(op(Op::Add, "/a~0b", None).segments(), ["a~b"]);
    }

    #[test]
    fn invalid_path_message_matches_aws() {
        let e = op(Op::Replace, "/x", Some("1")).invalid_path(&["/name", "/description"]);
        assert_eq!(
            e.to_string(),
            "Invalid patch path  '/x' specified for op 'replace'. Must be one of: [/name, /description]"
        );
    }

    #[test]
    fn typed_values_reject_garbage() {
        assert!(op(Op::Replace, "/t", Some("abc")).int_value().is_err());
        assert_eq!(op(Op::Replace, "/t", Some("42")).int_value().unwrap(), 42);
        assert!(op(Op::Replace, "/b", Some("yes")).bool_value().is_err());
        assert!(op(Op::Replace, "/f", Some("NaN")).float_value().is_err());
        assert!(op(Op::Remove, "/t", None).int_value().is_err());
    }

    #[test]
    fn paging_walks_every_item_once() {
        let items: Vec<String> = (0..7).map(|i| format!("id{i}")).collect();
        let mut seen = Vec::new();
        let mut paging = Paging {
            position: None,
            limit: Some("3".into()),
        };
        loop {
            let (page, next) = page(items.clone(), |s| s.as_str(), &paging).unwrap();
            seen.extend(page);
            match next {
                Some(p) => paging.position = Some(p),
                None => break,
            }
        }
        assert_eq!(seen, items);
        assert!(
            page(
                items.clone(),
                |s| s.as_str(),
                &Paging {
                    position: None,
                    limit: Some("0".into())
                }
            )
            .is_err()
        );
        assert!(
            page(
                items,
                |s| s.as_str(),
                &Paging {
                    position: Some("nope".into()),
                    limit: None
                }
            )
            .is_err()
        );
    }

    #[test]
    fn json_errors_name_the_member() {
        #[derive(Debug, Deserialize)]
        #[allow(dead_code)]
        struct T {
            n: i64,
        }
        let e = json::<T>(br#"{"n": "abc"}"#).unwrap_err().to_string();
        assert!(e.contains("'n'"), "{e}");
        assert!(matches!(
            json::<T>(b"{not json"),
            Err(ApiError::Serialization(_))
        ));
        assert!(json::<serde_json::Value>(b"").is_ok());
    }
}
