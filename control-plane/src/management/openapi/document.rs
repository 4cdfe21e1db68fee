//! Reading an OpenAPI document: JSON or YAML into one JSON tree, its version,
//! and local `$ref`s resolved with the location of every failure.

use serde_json::{Map, Value};

/// The two dialects AWS imports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    Swagger2,
    Oas30,
}

/// What went wrong, and where in the document (a dotted path).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{location}: {message}")]
pub struct Problem {
    pub location: String,
    pub message: String,
}

impl Problem {
    pub fn new(location: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            location: location.into(),
            message: message.into(),
        }
    }
}

/// Parses JSON (a document starting with `{`) or YAML into a JSON tree.
/// YAML mapping keys that are numbers or booleans (`200:`) become strings,
/// as OpenAPI means them.
pub fn parse(body: &[u8]) -> Result<Value, Problem> {
    let text = std::str::from_utf8(body)
        .map_err(|e| Problem::new("(document)", format!("the body is not UTF-8: {e}")))?;
    let trimmed = text.trim_start_matches('\u{feff}').trim();
    if trimmed.is_empty() {
        return Err(Problem::new("(document)", "the document is empty"));
    }
    if trimmed.starts_with('{') {
        return serde_json::from_str(trimmed).map_err(|e| {
            Problem::new(
                format!("line {} column {}", e.line(), e.column()),
                format!("the document is not valid JSON: {e}"),
            )
        });
    }
    let yaml: serde_norway::Value = serde_norway::from_str(trimmed).map_err(|e| {
        let at = e
            .location()
            .map(|l| format!("line {} column {}", l.line(), l.column()))
            .unwrap_or_else(|| "(document)".into());
        Problem::new(at, format!("the document is not valid YAML or JSON: {e}"))
    })?;
    yaml_to_json(yaml, "")
}

fn yaml_to_json(v: serde_norway::Value, at: &str) -> Result<Value, Problem> {
    use serde_norway::Value as Y;
    Ok(match v {
        Y::Null => Value::Null,
        Y::Bool(b) => Value::Bool(b),
        Y::Number(n) => {
            if let Some(i) = n.as_i64() {
                Value::from(i)
            } else if let Some(u) = n.as_u64() {
                Value::from(u)
            } else {
                n.as_f64()
                    .and_then(serde_json::Number::from_f64)
                    .map(Value::Number)
                    .unwrap_or(Value::Null)
            }
        }
        Y::String(s) => Value::String(s),
        Y::Sequence(items) => Value::Array(
            items
                .into_iter()
                .enumerate()
                .map(|(i, item)| yaml_to_json(item, &format!("{at}[{i}]")))
                .collect::<Result<_, _>>()?,
        ),
        Y::Mapping(m) => {
            let mut out = Map::new();
            for (k, v) in m {
                let key = match k {
                    Y::String(s) => s,
                    Y::Number(n) => n.to_string(),
                    Y::Bool(b) => b.to_string(),
                    Y::Null => "null".into(),
                    _ => {
                        return Err(Problem::new(
                            display(at),
                            "mapping keys must be strings, numbers or booleans",
                        ));
                    }
                };
                let child = join(at, &key);
                let value = yaml_to_json(v, &child)?;
                out.insert(key, value);
            }
            Value::Object(out)
        }
        Y::Tagged(t) => yaml_to_json(t.value, at)?,
    })
}

/// `paths./pets.get` style locations.
pub fn join(at: &str, key: &str) -> String {
    if at.is_empty() {
        key.to_owned()
    } else {
        format!("{at}.{key}")
    }
}

fn display(at: &str) -> String {
    if at.is_empty() {
        "(document)".into()
    } else {
        at.to_owned()
    }
}

/// The dialect from `swagger: "2.0"` or `openapi: 3.0.x`.
pub fn dialect(root: &Value) -> Result<Dialect, Problem> {
    if !root.is_object() {
        return Err(Problem::new(
            "(document)",
            "the document must be an object with 'swagger' or 'openapi'",
        ));
    }
    if let Some(v) = root.get("swagger") {
        return match v.as_str() {
            Some("2.0") => Ok(Dialect::Swagger2),
            _ => Err(Problem::new(
                "swagger",
                format!("unsupported Swagger version {v}: only \"2.0\" is supported"),
            )),
        };
    }
    if let Some(v) = root.get("openapi") {
        return match v.as_str() {
            Some(s) if s.starts_with("3.0") => Ok(Dialect::Oas30),
            _ => Err(Problem::new(
                "openapi",
                format!("unsupported OpenAPI version {v}: only 3.0.x is supported"),
            )),
        };
    }
    Err(Problem::new(
        "(document)",
        "neither 'swagger: \"2.0\"' nor 'openapi: 3.0.x' is present",
    ))
}

/// Follows a local `$ref` (`#/definitions/Pet`, JSON-pointer escapes
/// allowed), up to a bounded depth so a cycle of refs ends with an error.
pub fn resolve<'a>(root: &'a Value, value: &'a Value, at: &str) -> Result<&'a Value, Problem> {
    let mut current = value;
    for _ in 0..32 {
        let Some(reference) = current.get("$ref") else {
            return Ok(current);
        };
        let target = reference
            .as_str()
            .ok_or_else(|| Problem::new(join(at, "$ref"), "$ref must be a string"))?;
        current = lookup(root, target).map_err(|m| Problem::new(join(at, "$ref"), m))?;
    }
    Err(Problem::new(
        join(at, "$ref"),
        "the chain of $refs is too deep or circular",
    ))
}

/// The value a local reference points at.
pub fn lookup<'a>(root: &'a Value, reference: &str) -> Result<&'a Value, String> {
    let pointer = reference.strip_prefix('#').ok_or_else(|| {
        format!("'{reference}' is not a local reference: only '#/…' references are supported")
    })?;
    let decoded = percent_encoding::percent_decode_str(pointer).decode_utf8_lossy();
    root.pointer(&decoded)
        .ok_or_else(|| format!("'{reference}' points at nothing in this document"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn yaml_and_json_read_alike() {
        let yaml = parse(b"swagger: '2.0'\npaths:\n  /a:\n    get:\n      responses:\n        200:\n          description: ok\n").unwrap();
        let json = parse(br#"{"swagger":"2.0","paths":{"/a":{"get":{"responses":{"200":{"description":"ok"}}}}}}"#).unwrap();
        assert_eq!(yaml, json);
        assert_eq!(dialect(&yaml).unwrap(), Dialect::Swagger2);
    }

    #[test]
    fn bad_input_names_a_location() {
        let e = parse(b"swagger: '2.0'\npaths: [\n").unwrap_err();
        assert!(e.location.starts_with("line "), "{e}");
        let e = parse(b"{\"swagger\": ").unwrap_err();
        assert!(e.message.contains("not valid JSON"), "{e}");
        let e = dialect(&serde_json::json!({"openapi": "3.1.0"})).unwrap_err();
        assert_eq!(e.location, "openapi");
        assert!(parse(b"   ").is_err());
    }

    #[test]
    fn refs_resolve_and_fail_clearly() {
        let root = serde_json::json!({
            "definitions": {"A~B": {"type": "object"}, "Loop": {"$ref": "#/definitions/Loop"}},
            "x": {"$ref": "#/definitions/A~0B"}
        });
        assert_eq!(
            resolve(&root, &root["x"], "x").unwrap(),
            &serde_json::json!({"type": "object"})
        );
        let missing = serde_json::json!({"$ref": "#/definitions/Nope"});
        let e = resolve(&root, &missing, "paths./a").unwrap_err();
        assert_eq!(e.location, "paths./a.$ref");
        assert!(e.message.contains("points at nothing"));
        let remote = serde_json::json!({"$ref": "other.yaml#/A"});
        assert!(
            resolve(&root, &remote, "p")
                .unwrap_err()
                .message
                .contains("not a local reference")
        );
        assert!(
            resolve(&root, &root["definitions"]["Loop"], "l")
                .unwrap_err()
                .message
                .contains("circular")
        );
    }
}
