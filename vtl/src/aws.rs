//! API Gateway's template variables: `$input`, `$context`, `$stageVariables`, `$util`, and
//! the overrides a template sets through `$context.requestOverride` / `responseOverride`.
//!
//! ```
//! use apigw_vtl::{Limits, Template, aws::{AwsInput, render}};
//!
//! let t = Template::parse(r#"{"id": "$input.params('id')", "n": $input.json('$.n')}"#).unwrap();
//! let input = AwsInput {
//!     body: r#"{"n": [1, 2]}"#.into(),
//!     path_params: vec![("id".into(), "7".into())],
//!     ..AwsInput::default()
//! };
//! let out = render(&t, &input, &Limits::default()).unwrap();
//! assert_eq!(out.body, r#"{"id": "7", "n": [1,2]}"#);
//! ```

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::rc::Rc;

use base64::Engine as _;
use serde_json_path::{JsonPath, PathElement};

use crate::json::{deep_copy, from_serde, parse_json};
use crate::{Context, HostObject, Limits, NullMode, RenderError, Template, Value};

/// What a mapping template can see of a request (or of an integration's response).
///
/// Repeated names in `query` and `headers` are multiple values; templates see the last one,
/// as API Gateway's single-valued maps do.
#[derive(Debug, Clone, Default)]
pub struct AwsInput {
    /// The payload as text. An empty payload reads as `{}`, as on API Gateway.
    pub body: String,
    pub path_params: Vec<(String, String)>,
    pub query: Vec<(String, String)>,
    pub headers: Vec<(String, String)>,
    /// `$context`: a JSON object (`requestId`, `identity`, `authorizer`…).
    pub context: serde_json::Value,
    pub stage_variables: Vec<(String, String)>,
}

/// What the template asked to override (`#set($context.responseOverride.status = 400)` …).
/// List values are joined with `,`, as API Gateway sends multi-value headers.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Overrides {
    pub status: Option<u16>,
    pub response_headers: Vec<(String, String)>,
    pub request_headers: Vec<(String, String)>,
    pub request_querystring: Vec<(String, String)>,
    pub request_path: Vec<(String, String)>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rendered {
    pub body: String,
    pub overrides: Overrides,
}

/// Renders a mapping template the way API Gateway does: references without a value print
/// nothing, and `$foreach` stops after `limits.max_foreach_iterations` items.
pub fn render(t: &Template, input: &AwsInput, limits: &Limits) -> Result<Rendered, RenderError> {
    let mut ctx = Context::with_capacity(32);
    let ov = OverrideMaps::default();
    ctx.insert("context", context_value(&input.context, &ov));
    ctx.insert(
        "input",
        Value::Object(Rc::new(Input {
            body: if input.body.is_empty() {
                "{}".to_string()
            } else {
                input.body.clone()
            },
            path: input.path_params.clone(),
            query: input.query.clone(),
            headers: input.headers.clone(),
            tree: RefCell::new(None),
            plain: RefCell::new(None),
            paths: RefCell::new(HashMap::new()),
            work: Cell::new(0),
        })),
    );
    ctx.insert("stageVariables", string_map(&input.stage_variables));
    ctx.insert("util", Value::Object(Rc::new(Util::default())));
    let body = t.render_with(&mut ctx, limits, NullMode::ApiGateway)?;
    Ok(Rendered {
        body,
        overrides: ov.collect()?,
    })
}

/// A map of strings where a repeated name keeps its last value.
fn string_map(pairs: &[(String, String)]) -> Value {
    Value::map(
        pairs
            .iter()
            .map(|(k, v)| (k.clone(), Value::string(v.as_str())))
            .collect(),
    )
}

fn context_value(ctx: &serde_json::Value, ov: &OverrideMaps) -> Value {
    let v = match ctx {
        serde_json::Value::Object(_) => from_serde(ctx),
        _ => Value::map(Default::default()),
    };
    if let Value::Map(m) = &v {
        let mut e = m.entries.borrow_mut();
        // The override maps exist up front so `#set($context.requestOverride.header.x = …)`
        // has somewhere to go.
        e.insert(
            "requestOverride".into(),
            Value::map_from([
                ("header", Value::Object(ov.request_header.clone())),
                ("querystring", Value::Object(ov.request_query.clone())),
                ("path", Value::Object(ov.request_path.clone())),
            ]),
        );
        e.insert(
            "responseOverride".into(),
            Value::Object(ov.response.clone()),
        );
    }
    v
}

/// The maps behind `$context.requestOverride.*` and `$context.responseOverride`.
struct OverrideMaps {
    request_header: Rc<OverrideMap>,
    request_query: Rc<OverrideMap>,
    request_path: Rc<OverrideMap>,
    /// Holds `status` and the `header` map.
    response: Rc<OverrideMap>,
    response_header: Rc<OverrideMap>,
}

impl Default for OverrideMaps {
    fn default() -> Self {
        let response_header = Rc::new(OverrideMap::new("responseOverride.header"));
        let response = Rc::new(OverrideMap::new("responseOverride"));
        response
            .entries
            .borrow_mut()
            .insert("header".into(), Value::Object(response_header.clone()));
        OverrideMaps {
            request_header: Rc::new(OverrideMap::new("requestOverride.header")),
            request_query: Rc::new(OverrideMap::new("requestOverride.querystring")),
            request_path: Rc::new(OverrideMap::new("requestOverride.path")),
            response,
            response_header,
        }
    }
}

impl OverrideMaps {
    fn collect(&self) -> Result<Overrides, RenderError> {
        for m in [
            &self.request_header,
            &self.request_query,
            &self.request_path,
            &self.response,
            &self.response_header,
        ] {
            if let Some(name) = m.repeated.borrow().as_ref() {
                // API Gateway answers 5XX: an override is final.
                return Err(RenderError::Host(format!(
                    "$context.{}.{name} was overridden more than once",
                    m.label
                )));
            }
        }
        let status = match self.response.entries.borrow().get("status") {
            None | Some(Value::Null) => None,
            Some(v) => {
                let n = match v {
                    Value::Int(i) => Some(*i),
                    Value::Str(s) => s.trim().parse().ok(),
                    _ => None,
                };
                match n
                    .and_then(|n| u16::try_from(n).ok())
                    .filter(|n| (100..=599).contains(n))
                {
                    Some(n) => Some(n),
                    None => {
                        return Err(RenderError::Host(format!(
                            "invalid $context.responseOverride.status: {}",
                            v.to_java_string()
                        )));
                    }
                }
            }
        };
        Ok(Overrides {
            status,
            response_headers: self.response_header.pairs(),
            request_headers: self.request_header.pairs(),
            request_querystring: self.request_query.pairs(),
            request_path: self.request_path.pairs(),
        })
    }
}

/// A map that remembers a key set twice (API Gateway allows each override once).
struct OverrideMap {
    label: &'static str,
    entries: RefCell<crate::MapEntries>,
    repeated: RefCell<Option<String>>,
}

impl OverrideMap {
    fn new(label: &'static str) -> Self {
        OverrideMap {
            label,
            entries: RefCell::new(Default::default()),
            repeated: RefCell::new(None),
        }
    }

    fn set(&self, name: String, value: Value) -> Option<Value> {
        let mut e = self.entries.borrow_mut();
        if e.contains_key(&name) {
            self.repeated.borrow_mut().get_or_insert(name.clone());
        }
        e.insert(name, value)
    }

    fn pairs(&self) -> Vec<(String, String)> {
        self.entries
            .borrow()
            .iter()
            .filter(|(_, v)| !v.is_null() && !matches!(v, Value::Object(_)))
            .map(|(k, v)| (k.clone(), header_value(v)))
            .collect()
    }
}

impl HostObject for OverrideMap {
    fn property(&self, name: &str) -> Option<Value> {
        self.entries.borrow().get(name).cloned()
    }

    fn set_property(&self, name: &str, value: Value) -> bool {
        self.set(name.to_string(), value);
        true
    }

    fn call(&self, name: &str, args: &[Value]) -> Result<Option<Value>, String> {
        let key = |v: &Value| v.to_java_string();
        let e = || self.entries.borrow();
        Ok(match (name, args) {
            ("get", [k]) => e().get(&key(k)).cloned(),
            ("put", [k, v]) => self.set(key(k), v.clone()),
            ("containsKey", [k]) => Some(Value::Bool(e().contains_key(&key(k)))),
            ("size", []) => Some(Value::Int(e().len() as i64)),
            ("isEmpty", []) => Some(Value::Bool(e().is_empty())),
            ("keySet", []) => Some(Value::list(
                e().keys().map(|k| Value::string(k.as_str())).collect(),
            )),
            ("values", []) => Some(Value::list(e().values().cloned().collect())),
            _ => None,
        })
    }

    fn display(&self) -> String {
        Value::map(self.entries.borrow().clone()).to_java_string()
    }
}

fn header_value(v: &Value) -> String {
    match v {
        Value::List(l) => l
            .items
            .borrow()
            .iter()
            .map(Value::to_java_string)
            .collect::<Vec<_>>()
            .join(","),
        other => other.to_java_string(),
    }
}

/// `$input`.
struct Input {
    body: String,
    path: Vec<(String, String)>,
    query: Vec<(String, String)>,
    headers: Vec<(String, String)>,
    /// The body as template values, parsed at most once per render unless a template
    /// took it (see `take_tree`).
    tree: RefCell<Option<Value>>,
    /// The body for JSONPath queries that need more than plain navigation.
    plain: RefCell<Option<Rc<serde_json::Value>>>,
    paths: RefCell<HashMap<String, Rc<CompiledPath>>>,
    work: Cell<u64>,
}

/// A JSONPath made only of names and indexes (`$`, `$.a.b[0]`, `$['x']`): answered by
/// walking the tree, without the general JSONPath engine.
enum Step {
    Name(String),
    Index(usize),
}

fn simple_path(normalized: &str) -> Option<Vec<Step>> {
    let rest = normalized.strip_prefix('$')?;
    let b = rest.as_bytes();
    let mut steps = Vec::new();
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'.' => {
                let start = i + 1;
                let mut j = start;
                while j < b.len() && (b[j].is_ascii_alphanumeric() || b[j] == b'_') {
                    j += 1;
                }
                if j == start || b[start].is_ascii_digit() {
                    return None;
                }
                steps.push(Step::Name(rest[start..j].to_string()));
                i = j;
            }
            b'[' => {
                let close = i + rest[i..].find(']')?;
                let inner = &rest[i + 1..close];
                if let Ok(n) = inner.parse::<usize>() {
                    steps.push(Step::Index(n));
                } else if inner.len() >= 2
                    && inner.starts_with('\'')
                    && inner.ends_with('\'')
                    && !inner[1..inner.len() - 1].contains(['\'', '\\'])
                {
                    steps.push(Step::Name(inner[1..inner.len() - 1].to_string()));
                } else {
                    return None;
                }
                i = close + 1;
            }
            _ => return None,
        }
    }
    Some(steps)
}

struct CompiledPath {
    /// Set when the path is only names and indexes.
    simple: Option<Vec<Step>>,
    path: JsonPath,
    /// Jayway JsonPath (what API Gateway uses) answers a single value for a path without
    /// wildcards, deep scans, filters, unions or slices, and a list otherwise.
    definite: bool,
}

fn last<'a>(pairs: &'a [(String, String)], name: &str) -> Option<&'a str> {
    pairs
        .iter()
        .rev()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}

impl Input {
    /// Charges work: parsing JSON costs a step per 16 bytes, copying or writing it one per 64.
    fn add_work(&self, bytes: usize, per_step: usize) {
        self.work.set(self.work.get() + (bytes / per_step) as u64);
    }

    fn parse_body(&self) -> Result<Value, String> {
        self.add_work(self.body.len(), 16);
        parse_json(&self.body).map_err(|e| format!("Unable to parse the payload as JSON: {e}"))
    }

    /// The body's tree for reading: parsed once and kept.
    fn with_tree<T>(&self, f: impl FnOnce(&Value) -> T) -> Result<T, String> {
        let mut tree = self.tree.borrow_mut();
        if tree.is_none() {
            *tree = Some(self.parse_body()?);
        }
        Ok(f(tree.as_ref().expect("just set")))
    }

    /// The body's tree to hand to the template, which may change it: the kept tree the
    /// first time (no copy), a fresh parse after that.
    fn take_tree(&self) -> Result<Value, String> {
        match self.tree.borrow_mut().take() {
            Some(t) => Ok(t),
            None => self.parse_body(),
        }
    }

    fn plain(&self) -> Result<Rc<serde_json::Value>, String> {
        let mut p = self.plain.borrow_mut();
        if let Some(v) = p.as_ref() {
            return Ok(v.clone());
        }
        self.add_work(self.body.len(), 16);
        let v: serde_json::Value = serde_json::from_str(&self.body)
            .map_err(|e| format!("Unable to parse the payload as JSON: {e}"))?;
        let v = Rc::new(v);
        *p = Some(v.clone());
        Ok(v)
    }

    fn compile(&self, path: &str) -> Result<Rc<CompiledPath>, String> {
        if let Some(c) = self.paths.borrow().get(path) {
            return Ok(c.clone());
        }
        let normalized = normalize_path(path);
        let compiled = JsonPath::parse(&normalized)
            .map_err(|e| format!("Invalid JSONPath expression '{path}': {e}"))?;
        let c = Rc::new(CompiledPath {
            simple: simple_path(&normalized),
            path: compiled,
            definite: is_definite(&normalized),
        });
        let mut paths = self.paths.borrow_mut();
        if paths.len() < 64 {
            paths.insert(path.to_string(), c.clone());
        }
        Ok(c)
    }

    /// The values at a path: `None` when a definite path matches nothing. With `owned`
    /// the template gets values it may change (`$input.path`); otherwise they are only read.
    fn select(&self, path: &str, owned: bool) -> Result<Option<Value>, String> {
        let c = self.compile(path)?;
        if let Some(steps) = &c.simple {
            let walk = |root: &Value| {
                let mut v = root.clone();
                for s in steps {
                    v = match (s, &v) {
                        (Step::Name(n), Value::Map(m)) => m.entries.borrow().get(n)?.clone(),
                        (Step::Index(i), Value::List(l)) => l.items.borrow().get(*i)?.clone(),
                        _ => return None,
                    };
                }
                Some(v)
            };
            return if owned {
                if steps.is_empty() {
                    return self.take_tree().map(Some);
                }
                self.add_work(self.body.len(), 64);
                Ok(self.with_tree(walk)?.map(|v| deep_copy(&v)))
            } else {
                self.with_tree(walk)
            };
        }
        let plain = self.plain()?;
        // Queries such as `$..*` walk (and copy) up to the whole body.
        self.add_work(self.body.len(), 64);
        let located = c.path.query_located(&plain);
        let found: Vec<Value> = self.with_tree(|tree| {
            located
                .iter()
                .filter_map(|n| navigate(tree, n.location().iter()))
                .map(|v| if owned { deep_copy(&v) } else { v })
                .collect()
        })?;
        if c.definite {
            Ok(found.into_iter().next())
        } else {
            Ok(Some(Value::json_list(found)))
        }
    }

    fn params(&self) -> Value {
        Value::map_from([
            ("path", string_map(&self.path)),
            ("querystring", string_map(&self.query)),
            ("header", string_map(&self.headers)),
        ])
    }

    /// `$input.params('x')`: path, then query string, then header.
    fn param(&self, name: &str) -> String {
        last(&self.path, name)
            .or_else(|| last(&self.query, name))
            .or_else(|| last(&self.headers, name))
            .or_else(|| {
                // HTTP header names are case-insensitive; exact spelling wins above.
                self.headers
                    .iter()
                    .rev()
                    .find(|(k, _)| k.eq_ignore_ascii_case(name))
                    .map(|(_, v)| v.as_str())
            })
            .unwrap_or("")
            .to_string()
    }
}

fn navigate<'a>(root: &Value, path: impl Iterator<Item = &'a PathElement<'a>>) -> Option<Value> {
    let mut v = root.clone();
    for el in path {
        v = match (el, &v) {
            (PathElement::Name(n), Value::Map(m)) => m.entries.borrow().get(*n)?.clone(),
            (PathElement::Index(i), Value::List(l)) => l.items.borrow().get(*i)?.clone(),
            _ => return None,
        };
    }
    Some(v)
}

/// Jayway accepts `$.a-b` and `$.1x`; RFC 9535 (serde_json_path) needs brackets for them.
fn normalize_path(path: &str) -> String {
    let path = path.trim();
    let path = if path.starts_with('$') {
        path.to_string()
    } else if path.starts_with('[') || path.starts_with('.') {
        format!("${path}")
    } else {
        format!("$.{path}")
    };
    let chars: Vec<char> = path.chars().collect();
    let mut out = String::with_capacity(path.len() + 8);
    let mut i = 0;
    let mut bracket_depth = 0usize;
    let mut quote: Option<char> = None;
    while i < chars.len() {
        let c = chars[i];
        if let Some(q) = quote {
            out.push(c);
            if c == '\\' && i + 1 < chars.len() {
                out.push(chars[i + 1]);
                i += 1;
            } else if c == q {
                quote = None;
            }
            i += 1;
            continue;
        }
        match c {
            '\'' | '"' if bracket_depth > 0 => {
                quote = Some(c);
                out.push(c);
            }
            '[' => {
                bracket_depth += 1;
                out.push(c);
            }
            ']' => {
                bracket_depth = bracket_depth.saturating_sub(1);
                out.push(c);
            }
            '.' if bracket_depth == 0 => {
                out.push('.');
                if chars.get(i + 1) == Some(&'.') {
                    out.push('.');
                    i += 1;
                }
                let start = i + 1;
                let mut j = start;
                while j < chars.len() && chars[j] != '.' && chars[j] != '[' {
                    j += 1;
                }
                let name: String = chars[start..j].iter().collect();
                let shorthand_ok = name == "*"
                    || (name
                        .chars()
                        .next()
                        .is_some_and(|c| c.is_alphabetic() || c == '_' || !c.is_ascii())
                        && name
                            .chars()
                            .all(|c| c.is_alphanumeric() || c == '_' || !c.is_ascii()));
                if shorthand_ok || name.is_empty() {
                    out.push_str(&name);
                } else {
                    // `.name` → `['name']` (after `..` the dot stays: `..['name']`).
                    if !out.ends_with("..") {
                        out.pop();
                    }
                    out.push_str("['");
                    for ch in name.chars() {
                        if ch == '\'' || ch == '\\' {
                            out.push('\\');
                        }
                        out.push(ch);
                    }
                    out.push_str("']");
                }
                i = j;
                continue;
            }
            _ => out.push(c),
        }
        i += 1;
    }
    out
}

fn is_definite(path: &str) -> bool {
    if path.contains("..") || path.contains('*') || path.contains("?") {
        return false;
    }
    // Unions and slices inside brackets (outside quotes).
    let mut in_bracket = false;
    let mut quote: Option<char> = None;
    for c in path.chars() {
        match (quote, c) {
            (Some(q), c) if c == q => quote = None,
            (Some(_), _) => {}
            (None, '\'' | '"') if in_bracket => quote = Some(c),
            (None, '[') => in_bracket = true,
            (None, ']') => in_bracket = false,
            (None, ',' | ':') if in_bracket => return false,
            _ => {}
        }
    }
    true
}

fn one_string(args: &[Value]) -> Option<std::borrow::Cow<'_, str>> {
    match args {
        [Value::Str(s)] => Some(std::borrow::Cow::Borrowed(s)),
        [v] if !v.is_null() => Some(std::borrow::Cow::Owned(v.to_java_string())),
        _ => None,
    }
}

impl HostObject for Input {
    fn property(&self, name: &str) -> Option<Value> {
        match name {
            "body" => Some(Value::string(self.body.as_str())),
            _ => None,
        }
    }

    fn call(&self, name: &str, args: &[Value]) -> Result<Option<Value>, String> {
        match (name, args) {
            ("getBody", []) => Ok(Some(Value::string(self.body.as_str()))),
            ("params", []) => Ok(Some(self.params())),
            ("params", [_]) => Ok(one_string(args).map(|n| Value::string(self.param(&n)))),
            ("path", [_]) => {
                let Some(p) = one_string(args) else {
                    return Ok(None);
                };
                self.select(&p, true)
            }
            ("json", [_]) => {
                let Some(p) = one_string(args) else {
                    return Ok(None);
                };
                // A definite path that matches nothing gives an empty JSON string.
                let text = match self.select(&p, false)? {
                    Some(v) => {
                        let mut s = String::new();
                        v.write_json(&mut s, usize::MAX, 0, 256)
                            .map_err(|_| "JSON too large".to_string())?;
                        self.add_work(s.len(), 64);
                        s
                    }
                    None => "\"\"".to_string(),
                };
                Ok(Some(Value::string(text)))
            }
            _ => Ok(None),
        }
    }

    fn display(&self) -> String {
        "$input".into()
    }

    fn take_work(&self) -> u64 {
        self.work.replace(0)
    }
}

/// `$util`.
#[derive(Default)]
struct Util {
    work: Cell<u64>,
}

impl HostObject for Util {
    fn call(&self, name: &str, args: &[Value]) -> Result<Option<Value>, String> {
        let Some(s) = one_string(args) else {
            return Ok(None);
        };
        self.work.set(self.work.get() + (s.len() / 64) as u64);
        let out = match name {
            "escapeJavaScript" => escape_javascript(&s),
            "urlEncode" => url_encode(&s),
            "urlDecode" => url_decode(&s)?,
            "base64Encode" => base64::engine::general_purpose::STANDARD.encode(s.as_bytes()),
            "base64Decode" => {
                let bytes = base64::engine::general_purpose::STANDARD
                    .decode(s.trim().as_bytes())
                    .map_err(|e| format!("Illegal base64 character: {e}"))?;
                String::from_utf8_lossy(&bytes).into_owned()
            }
            "parseJson" => {
                return parse_json(&s)
                    .map(Some)
                    .map_err(|e| format!("Unable to parse the string as JSON: {e}"));
            }
            _ => return Ok(None),
        };
        Ok(Some(Value::string(out)))
    }

    fn display(&self) -> String {
        "$util".into()
    }

    fn take_work(&self) -> u64 {
        self.work.replace(0)
    }
}

/// Java's `StringEscapeUtils.escapeJavaScript` (commons-lang 2): quotes, backslash and `/`
/// escaped, control characters and everything outside ASCII as `\uXXXX` (UTF-16 units).
pub fn escape_javascript(s: &str) -> String {
    use std::fmt::Write;
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        match c {
            '\'' => out.push_str("\\'"),
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '/' => out.push_str("\\/"),
            '\u{8}' => out.push_str("\\b"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\u{c}' => out.push_str("\\f"),
            '\r' => out.push_str("\\r"),
            c if (c as u32) < 0x20 || (c as u32) > 0x7f => {
                let mut buf = [0u16; 2];
                for unit in c.encode_utf16(&mut buf) {
                    let _ = write!(out, "\\u{:04X}", unit);
                }
            }
            c => out.push(c),
        }
    }
    out
}

/// Java's `URLEncoder.encode(s, "UTF-8")`.
pub fn url_encode(s: &str) -> String {
    use std::fmt::Write;
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        match b {
            b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'.' | b'-' | b'*' | b'_' => {
                out.push(b as char)
            }
            b' ' => out.push('+'),
            b => {
                let _ = write!(out, "%{b:02X}");
            }
        }
    }
    out
}

/// Java's `URLDecoder.decode(s, "UTF-8")`.
pub fn url_decode(s: &str) -> Result<String, String> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'+' => out.push(b' '),
            b'%' => {
                let hex = b
                    .get(i + 1..i + 3)
                    .and_then(|h| std::str::from_utf8(h).ok())
                    .and_then(|h| u8::from_str_radix(h, 16).ok());
                match hex {
                    Some(v) => out.push(v),
                    None => {
                        return Err(
                            "URLDecoder: Illegal hex characters in escape (%) pattern".into()
                        );
                    }
                }
                i += 2;
            }
            c => out.push(c),
        }
        i += 1;
    }
    Ok(String::from_utf8_lossy(&out).into_owned())
}
