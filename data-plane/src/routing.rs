//! The routing table: from an incoming request's Host, path and method to the
//! stage and route that serve it.
//!
//! Each stage is compiled once, on its own, into a [`CompiledStage`] (shared
//! behind an `Arc`, so an update reuses every stage it did not change); a table
//! is only an index from API id and stage name to those stages, cheap to
//! rebuild, and never mutated. Each stage compiles its routes into a
//! trie (one node per path segment: literal children in a hash map, at most one
//! `{param}` child and one greedy `{name+}` child), so a lookup walks the
//! request's segments instead of scanning routes.
//!
//! Two steps, mirroring the request flow:
//! 1. [`RoutingTable::resolve`] finds the API and stage from either invoke URL
//!    form: host form `{api_id}.execute-api.{base_domain}` + `/{stage}/{rest}`,
//!    or path form `/restapis/{api_id}/{stage}/_user_request_/{rest}` on any Host.
//! 2. [`CompiledStage::match_route`] matches the method and the rest of the path.
//!
//! [`RoutingTable::route`] does both and yields a [`RouteOutcome`].
//!
//! Behaviours chosen (AWS documents little of this):
//! - Precedence at each level: literal, then `{param}`, then greedy; a branch that
//!   dead-ends (no deeper match, or the resource lacks the method) backtracks to
//!   the next candidate. On one resource a concrete method beats `ANY`.
//! - A greedy parameter takes one or more segments, so `/{proxy+}` does not match
//!   `/`; its value is the percent-decoded remainder, inner slashes kept.
//! - One trailing slash is ignored (`/pets/` is `/pets`).
//! - Segments are split on raw `/` before decoding: `%2F` stays inside one value.
//!   Literals are compared after decoding (`/pets/%64og` is `/pets/dog`).
//! - Invalid escapes such as `%zz` are kept verbatim (as the decoder does).
//! - No route (a 403 Missing Authentication Token) for: empty segments (`//`,
//!   `/a//b`), dot segments `.`/`..` (raw or encoded; never normalised, so a
//!   greedy value cannot carry a traversal to a backend), segments that are not
//!   UTF-8 once decoded, and paths longer than [`MAX_PATH_LEN`].
//! - The API id is matched case-insensitively in both forms (it is a DNS label
//!   in the host form); stage names are case-sensitive. A port in Host is
//!   ignored. A query string, if passed in `path`, is ignored.

use std::borrow::Cow;
use std::collections::HashMap;
use std::sync::Arc;

use apigw_proto::snapshot::StageSnapshot;
use percent_encoding::percent_decode_str;

use crate::integration::Services;
use crate::runtime::StageRuntime;

/// Base domain of host-form invoke URLs when none is configured.
pub const DEFAULT_BASE_DOMAIN: &str = "localhost";

/// Longest request path routed, in bytes (AWS's Regional URL limit).
pub const MAX_PATH_LEN: usize = 10_240;

const PATH_FORM_PREFIX: &str = "/restapis/";

/// The maps here are built from configuration and only looked up by
/// requests (which cannot add keys to collide), so a fast hash will do.
type Map<K, V> = HashMap<K, V, foldhash::fast::RandomState>;
const PATH_FORM_MARKER: &str = "_user_request_";

/// Why a stage could not be compiled or added to a table.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("api {api_id:?} stage {stage:?}: {kind}")]
pub struct BuildError {
    pub api_id: String,
    pub stage: String,
    pub kind: BuildErrorKind,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BuildErrorKind {
    #[error("the api id or stage name cannot appear in an invoke URL")]
    Unaddressable,
    #[error("the stage is defined twice")]
    DuplicateStage,
    #[error("invalid resource path {path:?}: {reason}")]
    InvalidPath { path: String, reason: &'static str },
    #[error("invalid HTTP method {method:?} on {path}")]
    InvalidMethod { path: String, method: String },
    #[error("{method} {path} is defined twice")]
    DuplicateRoute { path: String, method: String },
    #[error("{path} names parameter {{{found}}} where a sibling names {{{existing}}}")]
    ConflictingParameter {
        path: String,
        existing: String,
        found: String,
    },
    /// An integration or gateway response that does not compile.
    #[error("{0}")]
    Integration(String),
}

/// All stages a node serves, keyed by API id and stage name.
#[derive(Debug)]
pub struct RoutingTable {
    /// Lowercased API id → its stages (a handful, so a list searched by name).
    apis: Map<Box<str>, Vec<Arc<CompiledStage>>>,
    /// `.execute-api.{base_domain}`, lowercased.
    host_suffix: Box<str>,
}

/// Where [`RoutingTable::resolve`] sends a request.
#[derive(Debug, Clone, Copy)]
pub enum Resolution<'t, 'p> {
    /// A live API and stage; `rest_path` is the raw path after the stage
    /// (`/` at least, query removed), still percent-encoded.
    Stage {
        stage: &'t CompiledStage,
        rest_path: &'p str,
    },
    /// No such API or stage, or not an invoke URL: 403 `Forbidden`.
    UnknownApiOrStage,
}

/// The result of routing a whole request.
#[derive(Debug, Clone)]
pub enum RouteOutcome<'t, 'p> {
    Matched(RouteMatch<'t, 'p>),
    /// The API and stage exist but no route matches: 403 `Missing Authentication Token`.
    NoRoute {
        stage: &'t CompiledStage,
    },
    /// 403 `Forbidden`.
    UnknownApiOrStage,
}

/// A matched route. `route.path` is the resource path template and
/// `route.http_method` the method as declared (possibly `ANY`). The path
/// parameters may borrow the request path (`'p`).
#[derive(Debug, Clone)]
pub struct RouteMatch<'t, 'p> {
    pub stage: &'t CompiledStage,
    pub route: &'t RouteInfo,
    /// The route's position in the stage's deployment routes, for per-route
    /// data compiled alongside them.
    pub route_index: usize,
    pub path_parameters: PathParameters<'p>,
}

/// Decoded path parameters in path order; a handful at most, so a vector.
/// A value without escapes borrows the request path.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PathParameters<'t>(Vec<(&'t str, Cow<'t, str>)>);

impl<'t> PathParameters<'t> {
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0.iter().find(|(n, _)| *n == name).map(|(_, v)| &**v)
    }

    pub fn iter(&self) -> impl Iterator<Item = (&'t str, &str)> + '_ {
        self.0.iter().map(|(n, v)| (*n, &**v))
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// One stage, compiled: its identity, its routes in a trie, and what serving
/// them needs ([`StageRuntime`]: integrations, gateway responses). The parsed
/// snapshot it came from is not kept.
#[derive(Debug)]
pub struct CompiledStage {
    info: StageInfo,
    /// Parallel to the deployment's `routes`.
    routes: Box<[RouteInfo]>,
    root: Node,
    runtime: StageRuntime,
}

/// What identifies a compiled stage; shaped like the [`StageSnapshot`] fields
/// it keeps (`info.deployment.account_id`, …).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StageInfo {
    pub stage_name: Box<str>,
    pub deployment: DeploymentInfo,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeploymentInfo {
    pub account_id: Box<str>,
    pub api_id: Box<str>,
    pub deployment_id: Box<str>,
}

/// A route as declared in the deployment, without its compiled integration
/// (see [`crate::runtime::Runtime::integration`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RouteInfo {
    pub resource_id: Box<str>,
    /// Resource path template, e.g. `/pets/{petId}`.
    pub path: Box<str>,
    /// As declared: `GET`, … or `ANY`.
    pub http_method: Box<str>,
}

#[derive(Debug, Default)]
struct Node {
    literals: Map<Box<str>, Node>,
    param: Option<(Box<str>, Box<Node>)>,
    /// A greedy segment is always last, so it carries methods and no children.
    greedy: Option<(Box<str>, Methods)>,
    methods: Methods,
}

/// Methods on one resource, as indexes into the deployment's routes.
#[derive(Debug, Default)]
struct Methods {
    concrete: Vec<(Box<str>, usize)>,
    any: Option<usize>,
}

impl Methods {
    fn find(&self, method: &str) -> Option<usize> {
        self.concrete
            .iter()
            .find(|(m, _)| &**m == method)
            .map(|&(_, i)| i)
            .or(self.any)
    }

    fn add(&mut self, path: &str, method: &str, index: usize) -> Result<(), BuildErrorKind> {
        let valid = !method.is_empty()
            && method
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
        if !valid {
            return Err(BuildErrorKind::InvalidMethod {
                path: path.to_owned(),
                method: method.to_owned(),
            });
        }
        let method = method.to_ascii_uppercase();
        let duplicate = || BuildErrorKind::DuplicateRoute {
            path: path.to_owned(),
            method: method.clone(),
        };
        if method == "ANY" {
            if self.any.replace(index).is_some() {
                return Err(duplicate());
            }
        } else if self.concrete.iter().any(|(m, _)| **m == *method) {
            return Err(duplicate());
        } else {
            self.concrete.push((method.as_str().into(), index));
        }
        Ok(())
    }
}

enum Segment<'a> {
    Literal(&'a str),
    Param(&'a str),
    Greedy(&'a str),
}

fn parse_template(path: &str) -> Result<Vec<Segment<'_>>, &'static str> {
    let body = path.strip_prefix('/').ok_or("must start with /")?;
    if body.is_empty() {
        return Ok(Vec::new());
    }
    let raw: Vec<&str> = body.split('/').collect();
    let mut segments = Vec::with_capacity(raw.len());
    for (i, seg) in raw.iter().enumerate() {
        if seg.is_empty() {
            return Err("empty segment");
        }
        let inner = seg.strip_prefix('{').and_then(|s| s.strip_suffix('}'));
        let segment = match inner {
            Some(inner) => {
                let (name, greedy) = match inner.strip_suffix('+') {
                    Some(name) => (name, true),
                    None => (inner, false),
                };
                if name.is_empty() || name.contains(['{', '}', '+']) {
                    return Err("bad parameter name");
                }
                if greedy && i + 1 != raw.len() {
                    return Err("a greedy parameter must be the last segment");
                }
                if greedy {
                    Segment::Greedy(name)
                } else {
                    Segment::Param(name)
                }
            }
            None if seg.contains(['{', '}']) => return Err("braces must enclose a whole segment"),
            // Requests with dot segments never route, so such a route is unreachable.
            None if *seg == "." || *seg == ".." => return Err("dot segment"),
            None => Segment::Literal(seg),
        };
        segments.push(segment);
    }
    Ok(segments)
}

impl Node {
    /// Gives back the spare capacity left by building (a node lives as long as its stage).
    fn shrink(&mut self) {
        self.literals.shrink_to_fit();
        for child in self.literals.values_mut() {
            child.shrink();
        }
        if let Some((_, child)) = &mut self.param {
            child.shrink();
        }
        if let Some((_, methods)) = &mut self.greedy {
            methods.concrete.shrink_to_fit();
        }
        self.methods.concrete.shrink_to_fit();
    }

    fn insert(&mut self, path: &str, method: &str, index: usize) -> Result<(), BuildErrorKind> {
        let segments = parse_template(path).map_err(|reason| BuildErrorKind::InvalidPath {
            path: path.to_owned(),
            reason,
        })?;
        let conflict = |existing: &str, found: &str| BuildErrorKind::ConflictingParameter {
            path: path.to_owned(),
            existing: existing.to_owned(),
            found: found.to_owned(),
        };
        let mut node = self;
        for segment in segments {
            match segment {
                Segment::Literal(literal) => {
                    node = node.literals.entry(literal.into()).or_default()
                }
                Segment::Param(name) => {
                    let (existing, child) = node
                        .param
                        .get_or_insert_with(|| (name.into(), Box::default()));
                    if &**existing != name {
                        return Err(conflict(existing, name));
                    }
                    node = child;
                }
                Segment::Greedy(name) => {
                    let (existing, methods) = node
                        .greedy
                        .get_or_insert_with(|| (name.into(), Methods::default()));
                    if &**existing != name {
                        return Err(conflict(existing, name));
                    }
                    return methods.add(path, method, index);
                }
            }
        }
        node.methods.add(path, method, index)
    }

    /// Depth-first in precedence order; `rest` is the remaining segments without
    /// a leading slash, already validated by [`normalize`]. `escaped`: whether
    /// `rest` holds a `%` at all (without one, decoding is the identity).
    fn walk<'a>(
        &'a self,
        rest: &'a str,
        escaped: bool,
        method: &str,
        params: &mut Vec<(&'a str, Cow<'a, str>)>,
    ) -> Option<usize> {
        if rest.is_empty() {
            return self.methods.find(method);
        }
        let (segment, tail) = split_at_byte(rest, b'/');
        let tail = tail.get(1..).unwrap_or("");
        let decoded = decode(segment, escaped)?;
        if let Some(child) = self.literals.get(&*decoded)
            && let Some(index) = child.walk(tail, escaped, method, params)
        {
            return Some(index);
        }
        if let Some((name, child)) = &self.param {
            params.push((name, decoded));
            if let Some(index) = child.walk(tail, escaped, method, params) {
                return Some(index);
            }
            params.pop();
        }
        if let Some((name, methods)) = &self.greedy
            && let Some(index) = methods.find(method)
        {
            params.push((name, decode(rest, escaped)?));
            return Some(index);
        }
        None
    }
}

/// Percent-decodes, refusing results that are not UTF-8. `escaped`: whether
/// the path holds a `%` at all; without one, `s` is its own decoding (and
/// UTF-8 already), borrowed without a scan.
fn decode(s: &str, escaped: bool) -> Option<Cow<'_, str>> {
    if !escaped {
        return Some(Cow::Borrowed(s));
    }
    percent_decode_str(s).decode_utf8().ok()
}

/// Splits at the first `b` (kept at the start of the second part); for the
/// short segments of a path a plain scan beats `str::find`'s searcher.
fn split_at_byte(s: &str, b: u8) -> (&str, &str) {
    match s.bytes().position(|c| c == b) {
        // `b` is ASCII, so `i` is a char boundary.
        Some(i) => s.split_at(i),
        None => (s, ""),
    }
}

/// Checks a rest path and returns its segments without the leading and one
/// trailing slash (`""` for the root) and whether they hold an escape, or
/// `None` when it can match nothing.
fn normalize(rest_path: &str) -> Option<(&str, bool)> {
    if rest_path.len() > MAX_PATH_LEN {
        return None;
    }
    let body = match rest_path.strip_prefix('/') {
        Some(body) => body,
        None if rest_path.is_empty() => return Some(("", false)),
        None => return None,
    };
    if body.is_empty() {
        return Some(("", false));
    }
    let body = body.strip_suffix('/').unwrap_or(body);
    let escaped = body.as_bytes().contains(&b'%');
    for segment in body.split('/') {
        let decoded = decode(segment, escaped)?;
        if decoded.is_empty() || decoded == "." || decoded == ".." {
            return None;
        }
    }
    Some((body, escaped))
}

impl CompiledStage {
    /// Compiles a stage's routes and integrations. Fails on a route no request
    /// could address unambiguously (bad template, duplicate method, conflicting
    /// parameter names) and on an integration or gateway response that does not
    /// compile.
    pub fn compile(snapshot: &StageSnapshot) -> Result<Self, BuildError> {
        Self::compile_with(snapshot, &Services::default())
    }

    /// [`Self::compile`] with the node's clients for the integrations.
    pub fn compile_with(snapshot: &StageSnapshot, services: &Services) -> Result<Self, BuildError> {
        let error = |kind| BuildError {
            api_id: snapshot.deployment.api_id.clone(),
            stage: snapshot.stage_name.clone(),
            kind,
        };
        let api_id = &snapshot.deployment.api_id;
        let stage = &snapshot.stage_name;
        if api_id.is_empty()
            || api_id.contains(['.', '/', ':'])
            || stage.is_empty()
            || stage.contains('/')
        {
            return Err(error(BuildErrorKind::Unaddressable));
        }
        let mut root = Node::default();
        for (index, route) in snapshot.deployment.routes.iter().enumerate() {
            root.insert(&route.path, &route.http_method, index)
                .map_err(error)?;
        }
        root.shrink();
        let runtime = StageRuntime::compile(snapshot, services)
            .map_err(|e| error(BuildErrorKind::Integration(e)))?;
        let deployment = &snapshot.deployment;
        Ok(Self {
            info: StageInfo {
                stage_name: stage.as_str().into(),
                deployment: DeploymentInfo {
                    account_id: deployment.account_id.as_str().into(),
                    api_id: api_id.as_str().into(),
                    deployment_id: deployment.deployment_id.as_str().into(),
                },
            },
            routes: deployment
                .routes
                .iter()
                .map(|r| RouteInfo {
                    resource_id: r.resource_id.as_str().into(),
                    path: r.path.as_str().into(),
                    http_method: r.http_method.as_str().into(),
                })
                .collect(),
            root,
            runtime,
        })
    }

    pub fn api_id(&self) -> &str {
        &self.info.deployment.api_id
    }

    pub fn stage_name(&self) -> &str {
        &self.info.stage_name
    }

    pub fn account_id(&self) -> &str {
        &self.info.deployment.account_id
    }

    pub fn deployment_id(&self) -> &str {
        &self.info.deployment.deployment_id
    }

    /// The stage's identity, in the snapshot's shape (only these fields are kept).
    pub fn snapshot(&self) -> &StageInfo {
        &self.info
    }

    /// The routes, in the deployment's order (`RouteMatch::route_index` indexes them).
    pub fn routes(&self) -> &[RouteInfo] {
        &self.routes
    }

    /// Integrations and gateway responses.
    pub fn runtime(&self) -> &StageRuntime {
        &self.runtime
    }

    /// Matches `method` (case-sensitive, as sent) and the raw path after the
    /// stage. `None` means no route: 403 `Missing Authentication Token`.
    pub fn match_route<'t: 'p, 'p>(
        &'t self,
        method: &str,
        rest_path: &'p str,
    ) -> Option<RouteMatch<'t, 'p>> {
        let (body, escaped) = normalize(rest_path)?;
        let mut params = Vec::new();
        let index = self.root.walk(body, escaped, method, &mut params)?;
        Some(RouteMatch {
            stage: self,
            route: &self.routes[index],
            route_index: index,
            path_parameters: PathParameters(params),
        })
    }
}

/// Splits `a/b/c` into `a` and `/b/c`.
fn first_segment(s: &str) -> (&str, &str) {
    split_at_byte(s, b'/')
}

/// `host` without a `:port` suffix.
pub(crate) fn strip_port(host: &str) -> &str {
    // A byte scan: `rfind`'s searcher costs more than a short Host header.
    match host.bytes().rposition(|b| b == b':') {
        Some(i) if host[i + 1..].bytes().all(|b| b.is_ascii_digit()) => &host[..i],
        _ => host,
    }
}

impl RoutingTable {
    /// Builds a table from compiled stages; `base_domain` is the host-form
    /// suffix after `.execute-api.` (see [`DEFAULT_BASE_DOMAIN`]).
    ///
    /// Only indexes: the stages are shared, so building a table over stages
    /// that are already compiled costs a hash insert per stage.
    pub fn new(
        base_domain: &str,
        stages: impl IntoIterator<Item = Arc<CompiledStage>>,
    ) -> Result<Self, BuildError> {
        let base = base_domain.trim_matches('.').to_ascii_lowercase();
        let host_suffix = if base.is_empty() {
            ".execute-api".into()
        } else {
            format!(".execute-api.{base}").into()
        };
        let stages = stages.into_iter();
        let mut apis: Map<Box<str>, Vec<Arc<CompiledStage>>> =
            Map::with_capacity_and_hasher(stages.size_hint().0, Default::default());
        for stage in stages {
            let api_id = stage.api_id();
            let by_name = if api_id.bytes().any(|b| b.is_ascii_uppercase()) {
                apis.entry(api_id.to_ascii_lowercase().into()).or_default()
            } else if let Some(by_name) = apis.get_mut(api_id) {
                by_name
            } else {
                apis.entry(api_id.into()).or_default()
            };
            if by_name.iter().any(|s| s.stage_name() == stage.stage_name()) {
                return Err(BuildError {
                    api_id: stage.api_id().to_owned(),
                    stage: stage.stage_name().to_owned(),
                    kind: BuildErrorKind::DuplicateStage,
                });
            }
            by_name.push(stage);
        }
        Ok(Self { apis, host_suffix })
    }

    /// Compiles and builds in one go; the first bad stage fails the whole table.
    pub fn build(
        base_domain: &str,
        snapshots: impl IntoIterator<Item = StageSnapshot>,
    ) -> Result<Self, BuildError> {
        let stages = snapshots
            .into_iter()
            .map(|s| CompiledStage::compile(&s).map(Arc::new))
            .collect::<Result<Vec<_>, _>>()?;
        Self::new(base_domain, stages)
    }

    /// How many stages the table serves.
    pub fn len(&self) -> usize {
        self.apis.values().map(Vec::len).sum()
    }

    pub fn is_empty(&self) -> bool {
        self.apis.is_empty()
    }

    /// A stage by API id (any case) and stage name.
    pub fn stage(&self, api_id: &str, stage: &str) -> Option<&CompiledStage> {
        let stages = if api_id.bytes().any(|b| b.is_ascii_uppercase()) {
            self.apis.get(api_id.to_ascii_lowercase().as_str())
        } else {
            self.apis.get(api_id)
        }?;
        stages
            .iter()
            .find(|s| s.stage_name() == stage)
            .map(|s| &**s)
    }

    /// Finds the API and stage a request addresses. The path form is tried
    /// first when the path has its exact shape (the `_user_request_` marker
    /// is unambiguous), on any Host; otherwise the host form.
    pub fn resolve<'t, 'p>(&'t self, host: Option<&str>, path: &'p str) -> Resolution<'t, 'p> {
        let path = if path.as_bytes().contains(&b'?') {
            split_at_byte(path, b'?').0
        } else {
            path
        };
        let (api_id, stage, rest) = match Self::split_path_form(path) {
            Some(parts) => parts,
            None => {
                let Some(api_id) = host.and_then(|h| self.api_id_from_host(h)) else {
                    return Resolution::UnknownApiOrStage;
                };
                let Some(after) = path.strip_prefix('/') else {
                    return Resolution::UnknownApiOrStage;
                };
                let (stage, rest) = first_segment(after);
                (api_id, stage, rest)
            }
        };
        match self.stage(api_id, stage) {
            Some(stage) => Resolution::Stage {
                stage,
                rest_path: if rest.is_empty() { "/" } else { rest },
            },
            None => Resolution::UnknownApiOrStage,
        }
    }

    /// Resolves, then matches: the whole routing decision for one request.
    pub fn route<'t: 'p, 'p>(
        &'t self,
        host: Option<&str>,
        method: &str,
        path: &'p str,
    ) -> RouteOutcome<'t, 'p> {
        match self.resolve(host, path) {
            Resolution::UnknownApiOrStage => RouteOutcome::UnknownApiOrStage,
            Resolution::Stage { stage, rest_path } => match stage.match_route(method, rest_path) {
                Some(matched) => RouteOutcome::Matched(matched),
                None => RouteOutcome::NoRoute { stage },
            },
        }
    }

    /// `/restapis/{api}/{stage}/_user_request_{rest}` → (api, stage, rest).
    fn split_path_form(path: &str) -> Option<(&str, &str, &str)> {
        let (api_id, rest) = first_segment(path.strip_prefix(PATH_FORM_PREFIX)?);
        let (stage, rest) = first_segment(rest.strip_prefix('/')?);
        let (marker, rest) = first_segment(rest.strip_prefix('/')?);
        (marker == PATH_FORM_MARKER).then_some((api_id, stage, rest))
    }

    fn api_id_from_host<'h>(&self, host: &'h str) -> Option<&'h str> {
        let host = strip_port(host);
        let host = host.strip_suffix('.').unwrap_or(host);
        let split = host.len().checked_sub(self.host_suffix.len())?;
        let (api_id, suffix) = (host.get(..split)?, host.get(split..)?);
        (suffix.eq_ignore_ascii_case(&self.host_suffix)
            && !api_id.is_empty()
            && !api_id.contains('.'))
        .then_some(api_id)
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use apigw_proto::snapshot::{ApiSettings, DeploymentSnapshot, Route};
    use serde_json::json;

    use super::*;

    fn snapshot(api_id: &str, stage: &str, routes: &[(&str, &str)]) -> StageSnapshot {
        StageSnapshot {
            stage_name: stage.into(),
            authorizer_cache_generation: 0,
            variables: BTreeMap::new(),
            method_settings: BTreeMap::new(),
            usage_plans: Vec::new(),
            deployment: DeploymentSnapshot {
                account_id: "123456789012".into(),
                api_id: api_id.into(),
                deployment_id: "dep1".into(),
                created_epoch_seconds: 0,
                api: ApiSettings::default(),
                routes: routes
                    .iter()
                    .enumerate()
                    .map(|(i, (path, method))| Route {
                        resource_id: format!("r{i}"),
                        path: (*path).into(),
                        http_method: (*method).into(),
                        method: json!({}),
                    })
                    .collect(),
                gateway_responses: BTreeMap::new(),
                models: BTreeMap::new(),
                request_validators: BTreeMap::new(),
                authorizers: BTreeMap::new(),
            },
        }
    }

    fn table(routes: &[(&str, &str)]) -> RoutingTable {
        RoutingTable::build(DEFAULT_BASE_DOMAIN, [snapshot("abc123", "prod", routes)]).unwrap()
    }

    const HOST: Option<&str> = Some("abc123.execute-api.localhost:4566");

    /// (resource path, declared method, parameters).
    type Hit = (String, String, Vec<(String, String)>);

    /// Routes via the host form and returns (resource path, declared method, params).
    fn hit(t: &RoutingTable, method: &str, rest: &str) -> Option<Hit> {
        match t.route(HOST, method, &format!("/prod{rest}")) {
            RouteOutcome::Matched(m) => Some((
                m.route.path.to_string(),
                m.route.http_method.to_string(),
                m.path_parameters
                    .iter()
                    .map(|(k, v)| (k.to_owned(), v.to_owned()))
                    .collect(),
            )),
            RouteOutcome::NoRoute { stage } => {
                assert_eq!(stage.stage_name(), "prod");
                None
            }
            RouteOutcome::UnknownApiOrStage => panic!("stage should resolve for {rest:?}"),
        }
    }

    fn path_of(t: &RoutingTable, method: &str, rest: &str) -> Option<String> {
        hit(t, method, rest).map(|(path, _, _)| path)
    }

    fn param(t: &RoutingTable, rest: &str, name: &str) -> Option<String> {
        let (_, _, params) = hit(t, "GET", rest)?;
        params.into_iter().find(|(k, _)| k == name).map(|(_, v)| v)
    }

    fn is_unknown(outcome: RouteOutcome<'_, '_>) -> bool {
        matches!(outcome, RouteOutcome::UnknownApiOrStage)
    }

    #[test]
    fn literal_beats_param_beats_greedy() {
        let t = table(&[
            ("/pets/dog", "GET"),
            ("/pets/{id}", "GET"),
            ("/{proxy+}", "GET"),
        ]);
        assert_eq!(path_of(&t, "GET", "/pets/dog").unwrap(), "/pets/dog");
        assert_eq!(path_of(&t, "GET", "/pets/cat").unwrap(), "/pets/{id}");
        assert_eq!(param(&t, "/pets/cat", "id").unwrap(), "cat");
        assert_eq!(param(&t, "/pets/cat/toy", "proxy").unwrap(), "pets/cat/toy");
        assert_eq!(param(&t, "/pets", "proxy").unwrap(), "pets");
        assert_eq!(param(&t, "/other", "proxy").unwrap(), "other");
    }

    #[test]
    fn backtracks_when_the_literal_branch_dead_ends() {
        let t = table(&[("/a/b", "GET"), ("/a/{x}/c", "GET")]);
        assert_eq!(path_of(&t, "GET", "/a/b").unwrap(), "/a/b");
        let (path, _, params) = hit(&t, "GET", "/a/b/c").unwrap();
        assert_eq!(path, "/a/{x}/c");
        assert_eq!(params, vec![("x".into(), "b".into())]);
        assert_eq!(hit(&t, "GET", "/a/b/d"), None);
    }

    #[test]
    fn backtracking_drops_parameters_of_abandoned_branches() {
        let t = table(&[("/a/{x}/c", "GET"), ("/{p+}", "GET")]);
        let (path, _, params) = hit(&t, "GET", "/a/b/d").unwrap();
        assert_eq!(path, "/{p+}");
        assert_eq!(params, vec![("p".into(), "a/b/d".into())]);
    }

    #[test]
    fn resource_without_the_method_backtracks_to_a_less_specific_one() {
        let t = table(&[("/pets/dog", "POST"), ("/pets/{id}", "GET")]);
        assert_eq!(path_of(&t, "GET", "/pets/dog").unwrap(), "/pets/{id}");
        assert_eq!(path_of(&t, "POST", "/pets/dog").unwrap(), "/pets/dog");
        assert_eq!(hit(&t, "DELETE", "/pets/dog"), None);
    }

    #[test]
    fn concrete_method_beats_any_and_any_is_the_fallback() {
        let t = table(&[("/pets", "GET"), ("/pets", "ANY"), ("/toys", "POST")]);
        assert_eq!(hit(&t, "GET", "/pets").unwrap().1, "GET");
        assert_eq!(hit(&t, "DELETE", "/pets").unwrap().1, "ANY");
        assert_eq!(hit(&t, "GET", "/toys"), None);
        // Methods are case-sensitive on the wire.
        assert_eq!(hit(&t, "post", "/toys"), None);
        // ANY on the more specific resource still wins over a concrete method above it.
        let t = table(&[("/pets/dog", "ANY"), ("/pets/{id}", "GET")]);
        assert_eq!(path_of(&t, "GET", "/pets/dog").unwrap(), "/pets/dog");
    }

    #[test]
    fn root_resource() {
        let t = table(&[("/", "GET"), ("/{proxy+}", "ANY")]);
        for rest in ["", "/"] {
            assert_eq!(path_of(&t, "GET", rest).unwrap(), "/");
        }
        assert_eq!(path_of(&t, "POST", "/x").unwrap(), "/{proxy+}");
        // The greedy resource does not match the root itself.
        assert_eq!(hit(&t, "POST", "/"), None);
        let t = table(&[("/{proxy+}", "ANY")]);
        assert_eq!(hit(&t, "GET", "/"), None);
        assert_eq!(hit(&t, "GET", ""), None);
    }

    #[test]
    fn one_trailing_slash_is_ignored() {
        let t = table(&[
            ("/pets", "GET"),
            ("/pets/{id}", "GET"),
            ("/files/{path+}", "GET"),
        ]);
        assert_eq!(path_of(&t, "GET", "/pets/").unwrap(), "/pets");
        assert_eq!(param(&t, "/pets/7/", "id").unwrap(), "7");
        assert_eq!(param(&t, "/files/a/b/", "path").unwrap(), "a/b");
        // The greedy parameter needs at least one segment.
        assert_eq!(hit(&t, "GET", "/files"), None);
        assert_eq!(hit(&t, "GET", "/files/"), None);
        assert_eq!(hit(&t, "GET", "/pets//"), None);
    }

    #[test]
    fn values_without_escapes_borrow_the_path() {
        let t = table(&[("/pets/{id}", "GET"), ("/{proxy+}", "ANY")]);
        let stage = t.stage("abc123", "prod").unwrap();
        let matched = stage.match_route("GET", "/a/b/c").unwrap();
        assert!(matches!(
            matched.path_parameters.0[..],
            [("proxy", Cow::Borrowed("a/b/c"))]
        ));
        let matched = stage.match_route("GET", "/pets/7").unwrap();
        assert!(matches!(
            matched.path_parameters.0[..],
            [("id", Cow::Borrowed("7"))]
        ));
        // One escape anywhere decodes every segment of the path.
        let matched = stage.match_route("GET", "/x/%41/b").unwrap();
        assert_eq!(matched.path_parameters.get("proxy"), Some("x/A/b"));
    }

    #[test]
    fn parameters_are_percent_decoded_per_segment() {
        let t = table(&[
            ("/pets/dog", "GET"),
            ("/pets/{id}", "GET"),
            ("/files/{path+}", "GET"),
        ]);
        assert_eq!(
            param(&t, "/pets/hello%20world", "id").unwrap(),
            "hello world"
        );
        assert_eq!(param(&t, "/pets/caf%C3%A9", "id").unwrap(), "café");
        // %2F decodes inside the value and never splits segments.
        assert_eq!(param(&t, "/pets/a%2Fb", "id").unwrap(), "a/b");
        // Literals compare decoded.
        assert_eq!(path_of(&t, "GET", "/pets/%64og").unwrap(), "/pets/dog");
        // '+' is not a space in a path.
        assert_eq!(param(&t, "/pets/a+b", "id").unwrap(), "a+b");
        // Invalid escapes stay verbatim.
        assert_eq!(param(&t, "/pets/%zz", "id").unwrap(), "%zz");
        assert_eq!(param(&t, "/pets/100%", "id").unwrap(), "100%");
        assert_eq!(
            param(&t, "/files/a%20b/c%2Fd/e", "path").unwrap(),
            "a b/c/d/e"
        );
    }

    #[test]
    fn hostile_paths_route_nowhere() {
        let t = table(&[("/pets/{id}", "GET"), ("/{proxy+}", "ANY")]);
        for rest in [
            "//",
            "//pets",
            "/pets//x",
            "/a/./b",
            "/a/../b",
            "/..",
            "/%2e%2E",
            "/a/%2e",
            "/pets/%ff",
            "/pets/%C3",
        ] {
            assert_eq!(hit(&t, "GET", rest), None, "{rest:?}");
        }
        // A rest path must start with a slash.
        let stage = t.stage("abc123", "prod").unwrap();
        assert!(stage.match_route("GET", "pets/1").is_none());
        let huge = format!("/{}", "a/".repeat(MAX_PATH_LEN));
        assert_eq!(hit(&t, "GET", &huge), None);
        // Just under the limit still routes, through the greedy resource.
        let long = format!("/{}", "a".repeat(MAX_PATH_LEN - 1));
        assert_eq!(path_of(&t, "GET", &long).unwrap(), "/{proxy+}");
        // Dots inside a segment are ordinary characters.
        assert_eq!(param(&t, "/pets/..a", "id").unwrap(), "..a");
    }

    #[test]
    fn query_string_is_ignored() {
        let t = table(&[("/pets", "GET")]);
        assert_eq!(path_of(&t, "GET", "/pets?x=1/2").unwrap(), "/pets");
        assert!(matches!(
            t.route(None, "GET", "/restapis/abc123/prod/_user_request_/pets?a=b"),
            RouteOutcome::Matched(_)
        ));
    }

    #[test]
    fn host_and_path_forms() {
        let t = table(&[("/pets", "GET"), ("/", "GET")]);
        let matched = |host: Option<&str>, path: &str| {
            matches!(t.route(host, "GET", path), RouteOutcome::Matched(_))
        };
        for host in [
            "abc123.execute-api.localhost",
            "abc123.execute-api.localhost:8080",
            "ABC123.Execute-API.LocalHost",
            "abc123.execute-api.localhost.",
        ] {
            assert!(matched(Some(host), "/prod/pets"), "{host}");
        }
        assert!(matched(HOST, "/prod"));
        assert!(matched(HOST, "/prod/"));
        for host in [None, Some("localhost"), Some("anything:1"), HOST] {
            assert!(matched(host, "/restapis/abc123/prod/_user_request_/pets"));
            assert!(matched(host, "/restapis/ABC123/prod/_user_request_/"));
            assert!(matched(host, "/restapis/abc123/prod/_user_request_"));
        }
        match t.resolve(None, "/restapis/abc123/prod/_user_request_/pets/x%20y?q") {
            Resolution::Stage { stage, rest_path } => {
                assert_eq!((stage.api_id(), stage.stage_name()), ("abc123", "prod"));
                assert_eq!(rest_path, "/pets/x%20y");
            }
            Resolution::UnknownApiOrStage => panic!("should resolve"),
        }
        // Known API and stage but unknown path: NoRoute in both forms.
        assert!(matches!(
            t.route(HOST, "GET", "/prod/nope"),
            RouteOutcome::NoRoute { .. }
        ));
        assert!(matches!(
            t.route(None, "GET", "/restapis/abc123/prod/_user_request_/nope"),
            RouteOutcome::NoRoute { .. }
        ));
    }

    #[test]
    fn unknown_api_or_stage() {
        let t = table(&[("/pets", "GET")]);
        for (host, path) in [
            (Some("zzz.execute-api.localhost"), "/prod/pets"),
            (HOST, "/staging/pets"),
            (HOST, "/PROD/pets"),
            (HOST, "/"),
            (HOST, ""),
            (HOST, "//prod/pets"),
            (Some("abc123.execute-api.example.com"), "/prod/pets"),
            (Some("x.abc123.execute-api.localhost"), "/prod/pets"),
            (Some(".execute-api.localhost"), "/prod/pets"),
            (Some("localhost"), "/prod/pets"),
            (None, "/prod/pets"),
            (None, "/restapis/zzz/prod/_user_request_/pets"),
            (None, "/restapis/abc123/dev/_user_request_/pets"),
            (None, "/restapis/abc123/prod/user_request/pets"),
            (None, "/restapis/abc123"),
        ] {
            assert!(is_unknown(t.route(host, "GET", path)), "{host:?} {path}");
        }
    }

    #[test]
    fn custom_base_domain_and_several_apis() {
        let t = RoutingTable::build(
            "API.Example.com.",
            [
                snapshot("one", "prod", &[("/a", "GET")]),
                snapshot("one", "dev", &[("/b", "GET")]),
                snapshot("two", "prod", &[("/c", "GET")]),
            ],
        )
        .unwrap();
        let path = |host: &str, path: &str| match t.route(Some(host), "GET", path) {
            RouteOutcome::Matched(m) => Some(format!("{}:{}", m.stage.stage_name(), m.route.path)),
            _ => None,
        };
        assert_eq!(
            path("one.execute-api.api.example.com", "/prod/a").unwrap(),
            "prod:/a"
        );
        assert_eq!(
            path("one.execute-api.api.example.com", "/dev/b").unwrap(),
            "dev:/b"
        );
        assert_eq!(
            path("TWO.execute-api.api.example.com:443", "/prod/c").unwrap(),
            "prod:/c"
        );
        assert_eq!(path("one.execute-api.api.example.com", "/prod/c"), None);
        assert!(is_unknown(t.route(
            Some("one.execute-api.localhost"),
            "GET",
            "/prod/a"
        )));
        assert!(t.stage("ONE", "dev").is_some());
        assert!(t.stage("one", "DEV").is_none());
    }

    #[test]
    fn build_rejects_ambiguous_or_malformed_routes() {
        let kind = |routes: &[(&str, &str)]| {
            CompiledStage::compile(&snapshot("abc", "prod", routes))
                .unwrap_err()
                .kind
        };
        assert!(matches!(
            kind(&[("/a", "GET"), ("/a", "get")]),
            BuildErrorKind::DuplicateRoute { .. }
        ));
        assert!(matches!(
            kind(&[("/a", "ANY"), ("/a", "ANY")]),
            BuildErrorKind::DuplicateRoute { .. }
        ));
        assert!(matches!(
            kind(&[("/a/{x}", "GET"), ("/a/{y}/b", "GET")]),
            BuildErrorKind::ConflictingParameter { .. }
        ));
        assert!(matches!(
            kind(&[("/a", "")]),
            BuildErrorKind::InvalidMethod { .. }
        ));
        for bad in [
            "",
            "pets",
            "/a//b",
            "/a/",
            "/{proxy+}/x",
            "/{}",
            "/{+}",
            "/a{b}",
            "/{a",
            "/..",
        ] {
            assert!(
                matches!(kind(&[(bad, "GET")]), BuildErrorKind::InvalidPath { .. }),
                "{bad:?}"
            );
        }
        assert_eq!(
            CompiledStage::compile(&snapshot("a.b", "prod", &[]))
                .unwrap_err()
                .kind,
            BuildErrorKind::Unaddressable
        );
        let err = RoutingTable::build(
            DEFAULT_BASE_DOMAIN,
            [snapshot("abc", "prod", &[]), snapshot("ABC", "prod", &[])],
        )
        .unwrap_err();
        assert_eq!(err.kind, BuildErrorKind::DuplicateStage);
        // Lowercase methods in a snapshot are normalised.
        let t = table(&[("/a", "get")]);
        assert!(hit(&t, "GET", "/a").is_some());
    }

    #[test]
    fn garbage_never_panics() {
        let t = table(&[
            ("/", "ANY"),
            ("/pets", "GET"),
            ("/pets/{id}", "GET"),
            ("/pets/{id}/toys/{toy}", "ANY"),
            ("/a/b", "GET"),
            ("/a/{x}/c", "GET"),
            ("/files/{path+}", "GET"),
            ("/{proxy+}", "POST"),
        ]);
        const PIECES: &[&str] = &[
            "/",
            "//",
            "a",
            "b",
            "c",
            "pets",
            "files",
            "toys",
            "%",
            "%2",
            "%zz",
            "%2F",
            "%2e",
            "%ff",
            "%C3",
            "%C3%A9",
            ".",
            "..",
            "?",
            "#",
            "é",
            "\u{0}",
            " ",
            "+",
            "{",
            "}",
            "{id}",
            "prod",
            "restapis",
            "abc123",
            "_user_request_",
            ":",
            "\u{1F600}",
        ];
        const HOSTS: &[Option<&str>] = &[
            None,
            Some(""),
            Some(":"),
            Some("abc123.execute-api.localhost"),
            Some("abc123.execute-api.localhost:"),
            Some("[::1]:80"),
            Some("é.execute-api.localhost"),
            Some(".execute-api.localhost:99999999999999999999"),
            Some("execute-api.localhost"),
        ];
        let mut seed: u64 = 0x9E37_79B9_7F4A_7C15;
        let mut next = move || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed as usize
        };
        for _ in 0..20_000 {
            let mut path = String::new();
            for _ in 0..next() % 12 {
                path.push_str(PIECES[next() % PIECES.len()]);
            }
            if next() % 3 == 0 {
                path.insert_str(0, "/prod/");
            } else if next() % 3 == 0 {
                path.insert_str(0, "/restapis/abc123/prod/_user_request_/");
            }
            let host = HOSTS[next() % HOSTS.len()];
            let method = ["GET", "POST", "ANY", "", "get"][next() % 5];
            if let RouteOutcome::Matched(m) = t.route(host, method, &path) {
                assert!(m.path_parameters.iter().all(|(_, v)| !v.is_empty()));
            }
            if let Some(stage) = t.stage("abc123", "prod") {
                let _ = stage.match_route(method, &path);
            }
        }
    }
}
