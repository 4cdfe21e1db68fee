//! The interpreter: walks the parsed template with a context of variables.

use std::cell::Cell;
use std::collections::HashMap;
use std::rc::Rc;
use std::sync::Arc;

use crate::ast::{Accessor, BinOp, Block, Expr, Node, Reference};
use crate::error::{RenderError, line_col};
use crate::methods;
use crate::value::{HostObject, Num, Overflow, Value, java_equals};

/// Bounds on one render, so that a hostile template cannot loop forever or exhaust memory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limits {
    /// Output size; also the largest string a template may build.
    pub max_output_bytes: usize,
    /// Iterations of one `#foreach`; further items are skipped silently, as Velocity's
    /// `directive.foreach.maxloops` does (API Gateway allows 1,000).
    pub max_foreach_iterations: usize,
    /// Evaluation steps of the whole render: nodes, expressions and loop iterations, plus
    /// the work inside methods (about a step per 64 bytes of a string walked, per 16
    /// elements of a collection, per 16 bytes of JSON parsed).
    pub max_steps: u64,
    /// Nesting of values when printed or compared, and of method calls in method calls.
    pub max_depth: usize,
    /// Elements a range literal (`[1..n]`) or a string split may produce.
    pub max_collection_len: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_output_bytes: 10 * 1024 * 1024,
            max_foreach_iterations: 1000,
            max_steps: 1_000_000,
            max_depth: 64,
            max_collection_len: 100_000,
        }
    }
}

/// Dialect differences between plain Velocity 1.7 and API Gateway.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum NullMode {
    /// Velocity 1.7: a reference without a value prints as written (`$nope`), and
    /// `null == ""` is false.
    #[default]
    Velocity,
    /// API Gateway (recorded against AWS): a reference without a value prints nothing, and
    /// compares equal to both `$null` and `""`.
    ApiGateway,
}

/// Variables for one render.
#[derive(Default)]
pub struct Context {
    vars: HashMap<String, Value, crate::Hasher>,
}

impl Context {
    pub fn new() -> Self {
        Context::default()
    }

    /// A context with room for `n` variables (templates add their `#set` ones).
    pub fn with_capacity(n: usize) -> Self {
        Context {
            vars: HashMap::with_capacity_and_hasher(n, Default::default()),
        }
    }

    pub fn insert(&mut self, name: impl Into<String>, value: Value) {
        self.vars.insert(name.into(), value);
    }

    pub fn get(&self, name: &str) -> Option<&Value> {
        self.vars.get(name)
    }

    pub fn remove(&mut self, name: &str) -> Option<Value> {
        self.vars.remove(name)
    }
}

enum Flow {
    Normal,
    Break,
    Stop,
}

pub(crate) struct Renderer<'a> {
    src: &'a str,
    vars: &'a mut HashMap<String, Value, crate::Hasher>,
    out: String,
    limits: &'a Limits,
    null_mode: NullMode,
    steps: u64,
    depth: usize,
    pub(crate) regexes: methods::RegexCache,
}

pub(crate) fn render(
    src: &str,
    block: &Block,
    ctx: &mut Context,
    limits: &Limits,
    null_mode: NullMode,
) -> Result<String, RenderError> {
    let mut r = Renderer {
        src,
        vars: &mut ctx.vars,
        out: String::with_capacity((src.len() * 2).min(limits.max_output_bytes)),
        limits,
        null_mode,
        steps: 0,
        depth: 0,
        regexes: methods::RegexCache::default(),
    };
    // `#stop`, and `#break` outside a loop, end the render with what was written so far.
    r.block(block)?;
    Ok(r.out)
}

type R<T> = Result<T, RenderError>;

impl Renderer<'_> {
    /// Sets a variable, allocating its name only the first time.
    fn set_var(&mut self, name: &str, v: Value) {
        match self.vars.get_mut(name) {
            Some(slot) => *slot = v,
            None => {
                self.vars.insert(name.to_string(), v);
            }
        }
    }

    /// Counts `n` steps of work done outside the interpreter (methods over long strings,
    /// big collections, host objects).
    pub(crate) fn charge(&mut self, n: u64) -> R<()> {
        self.steps = self.steps.saturating_add(n);
        self.step()
    }

    fn step(&mut self) -> R<()> {
        self.steps += 1;
        if self.steps > self.limits.max_steps {
            return Err(RenderError::TooManySteps {
                limit: self.limits.max_steps,
            });
        }
        Ok(())
    }

    fn too_large(&self) -> RenderError {
        RenderError::OutputTooLarge {
            limit: self.limits.max_output_bytes,
        }
    }

    fn push_str(&mut self, s: &str) -> R<()> {
        if self.out.len() + s.len() > self.limits.max_output_bytes {
            return Err(self.too_large());
        }
        self.out.push_str(s);
        Ok(())
    }

    fn push_value(&mut self, v: &Value) -> R<()> {
        let limit = self.limits.max_output_bytes;
        v.write_display(&mut self.out, limit, 0, self.limits.max_depth)
            .map_err(|Overflow| self.too_large())
    }

    /// `toString()` of a value for comparisons, keys and concatenation; its length counts
    /// against the step budget (printing a big structure over and over is work too).
    pub(crate) fn display(&mut self, v: &Value) -> R<String> {
        let mut s = String::new();
        v.write_display(
            &mut s,
            self.limits.max_output_bytes,
            0,
            self.limits.max_depth,
        )
        .map_err(|Overflow| self.too_large())?;
        self.steps += (s.len() / 16) as u64;
        self.step()?;
        Ok(s)
    }

    pub(crate) fn limits(&self) -> &Limits {
        self.limits
    }

    fn block(&mut self, block: &Block) -> R<Flow> {
        for node in block {
            self.step()?;
            match node {
                Node::Text(t) => self.push_str(t)?,
                Node::Ref(r) => {
                    let v = self.reference(r)?;
                    self.print_ref(r, &v)?;
                }
                Node::EscapedRef {
                    backslashes,
                    reference,
                } => {
                    let v = self.reference(reference)?;
                    let n = *backslashes;
                    if v.is_null() {
                        // Velocity keeps every backslash when the reference has no value.
                        self.push_str(&"\\".repeat(n))?;
                        self.push_str(&reference.source)?;
                    } else {
                        self.push_str(&"\\".repeat(n / 2))?;
                        if n % 2 == 1 {
                            self.push_str(&reference.source)?;
                        } else {
                            self.print_ref(reference, &v)?;
                        }
                    }
                }
                Node::Set { target, value } => {
                    let v = self.expr(value)?;
                    self.assign(target, v)?;
                }
                Node::If {
                    branches,
                    otherwise,
                } => {
                    let mut taken = None;
                    for (cond, body) in branches {
                        if self.condition(cond)? {
                            taken = Some(body);
                            break;
                        }
                    }
                    if let Some(body) = taken.or(otherwise.as_ref()) {
                        match self.block(body)? {
                            Flow::Normal => {}
                            f => return Ok(f),
                        }
                    }
                }
                Node::Foreach {
                    var,
                    iterable,
                    body,
                } => {
                    if let Flow::Stop = self.foreach(var, iterable, body)? {
                        return Ok(Flow::Stop);
                    }
                }
                Node::Break => return Ok(Flow::Break),
                Node::Stop => return Ok(Flow::Stop),
            }
        }
        Ok(Flow::Normal)
    }

    fn print_ref(&mut self, r: &Reference, v: &Value) -> R<()> {
        if v.is_null() {
            if r.quiet || self.null_mode == NullMode::ApiGateway {
                Ok(())
            } else {
                self.push_str(&r.source)
            }
        } else {
            self.push_value(v)
        }
    }

    fn foreach(&mut self, var: &str, iterable: &Expr, body: &Block) -> R<Flow> {
        // Java's iterator fails when the loop changes the list it walks.
        let mut watched = None;
        let items: Vec<Value> = match self.expr(iterable)? {
            Value::List(l) => {
                let items = l.items.borrow().clone();
                watched = Some((l, items.len()));
                items
            }
            Value::Map(m) => m.entries.borrow().values().cloned().collect(),
            Value::Object(o) => match o.call("iterator", &[]) {
                Ok(Some(Value::List(l))) => l.items.borrow().clone(),
                _ => Vec::new(),
            },
            _ => Vec::new(),
        };
        let saved_var = self.vars.remove(var);
        let saved_scope = self.vars.remove("foreach");
        let saved_count = self.vars.remove("velocityCount");
        let scope = Rc::new(ForeachScope {
            index: Cell::new(0),
            has_next: Cell::new(false),
            parent: saved_scope.clone().unwrap_or(Value::Null),
        });
        self.vars
            .insert("foreach".into(), Value::Object(scope.clone()));
        let n = items.len().min(self.limits.max_foreach_iterations);
        let mut flow = Flow::Normal;
        for (i, item) in items.into_iter().take(n).enumerate() {
            self.step()?;
            scope.index.set(i);
            scope.has_next.set(i + 1 < n);
            self.set_var("velocityCount", Value::Int(i as i64 + 1));
            if item.is_null() {
                self.vars.remove(var);
            } else {
                self.set_var(var, item);
            }
            let f = self.block(body)?;
            if let Some((l, len)) = &watched
                && l.items.borrow().len() != *len
                && matches!(f, Flow::Normal)
            {
                return Err(RenderError::Host(
                    "ConcurrentModificationException: #foreach's list changed while looping".into(),
                ));
            }
            match f {
                Flow::Normal => {}
                Flow::Break => break,
                Flow::Stop => {
                    flow = Flow::Stop;
                    break;
                }
            }
        }
        for (name, saved) in [
            (var, saved_var),
            ("foreach", saved_scope),
            ("velocityCount", saved_count),
        ] {
            match saved {
                Some(v) => self.vars.insert(name.into(), v),
                None => self.vars.remove(name),
            };
        }
        Ok(flow)
    }

    /// `#if` / `&&` / `||` / `!` operands. As in Velocity 1.7, a bare literal such as `"x"`
    /// or `1` is not a condition and counts as false; references count by their value.
    fn condition(&mut self, e: &Expr) -> R<bool> {
        self.step()?;
        Ok(match e {
            Expr::Bool(b) => *b,
            Expr::Ref(r) => self.reference(r)?.truthy(),
            Expr::Not(inner) => !self.condition(inner)?,
            Expr::Binary(op, l, r) => match op {
                BinOp::And => self.condition(l)? && self.condition(r)?,
                BinOp::Or => self.condition(l)? || self.condition(r)?,
                BinOp::Eq | BinOp::Ne | BinOp::Lt | BinOp::Le | BinOp::Gt | BinOp::Ge => {
                    self.expr(e)?.truthy()
                }
                _ => false,
            },
            _ => false,
        })
    }

    pub(crate) fn expr(&mut self, e: &Expr) -> R<Value> {
        self.step()?;
        Ok(match e {
            Expr::Bool(b) => Value::Bool(*b),
            Expr::Int(i) => Value::Int(*i),
            Expr::Float(f) => Value::Float(*f),
            Expr::Str(s) => Value::Str(s.clone()),
            Expr::Interpolated(block) => {
                // Render the string's inside into a buffer of its own.
                let outer = std::mem::take(&mut self.out);
                let r = self.block(block);
                let inner = std::mem::replace(&mut self.out, outer);
                r?;
                Value::Str(Arc::from(inner))
            }
            Expr::List(items) => {
                let mut v = Vec::with_capacity(items.len());
                for i in items {
                    v.push(self.expr(i)?);
                }
                Value::list(v)
            }
            Expr::Range(a, b) => {
                let (a, b) = (self.expr(a)?, self.expr(b)?);
                let (Some(a), Some(b)) = (as_int(&a), as_int(&b)) else {
                    return Ok(Value::Null);
                };
                let len = a.abs_diff(b).saturating_add(1);
                if len > self.limits.max_collection_len as u64 {
                    return Err(RenderError::Host(format!(
                        "range [{a}..{b}] has more than {} elements",
                        self.limits.max_collection_len
                    )));
                }
                let v: Vec<Value> = if a <= b {
                    (a..=b).map(Value::Int).collect()
                } else {
                    (b..=a).rev().map(Value::Int).collect()
                };
                Value::list(v)
            }
            Expr::Map(entries) => {
                let mut m =
                    crate::MapEntries::with_capacity_and_hasher(entries.len(), Default::default());
                for (k, v) in entries {
                    let k = self.expr(k)?;
                    let k = self.display(&k)?;
                    let v = self.expr(v)?;
                    m.insert(k, v);
                }
                Value::map(m)
            }
            Expr::Ref(r) => self.reference(r)?,
            Expr::Not(inner) => Value::Bool(!self.condition(inner)?),
            Expr::Neg(inner) => match self.expr(inner)? {
                Value::Int(i) => i
                    .checked_neg()
                    .map_or(Value::Float(-(i as f64)), Value::Int),
                Value::Float(f) => Value::Float(-f),
                _ => Value::Null,
            },
            Expr::Binary(op, l, r) => match op {
                BinOp::And | BinOp::Or => Value::Bool(self.condition(e)?),
                BinOp::Eq | BinOp::Ne => {
                    let (a, b) = (self.expr(l)?, self.expr(r)?);
                    let eq = self.equals(&a, &b)?;
                    Value::Bool(if *op == BinOp::Eq { eq } else { !eq })
                }
                BinOp::Lt | BinOp::Le | BinOp::Gt | BinOp::Ge => {
                    let (a, b) = (self.expr(l)?, self.expr(r)?);
                    // Velocity 1.7 orders numbers only; anything else compares false.
                    let ord = match (Num::of(&a), Num::of(&b)) {
                        (Some(x), Some(y)) => x.cmp(y),
                        _ => None,
                    };
                    Value::Bool(ord.is_some_and(|o| match op {
                        BinOp::Lt => o.is_lt(),
                        BinOp::Le => o.is_le(),
                        BinOp::Gt => o.is_gt(),
                        _ => o.is_ge(),
                    }))
                }
                _ => {
                    let (a, b) = (self.expr(l)?, self.expr(r)?);
                    self.arith(*op, &a, &b)?
                }
            },
        })
    }

    /// Velocity 1.7's `==`: numbers by value, same types by `equals`, different types by
    /// their `toString()`.
    fn equals(&mut self, a: &Value, b: &Value) -> R<bool> {
        match (a, b) {
            (Value::Null, Value::Null) => Ok(true),
            (Value::Null, Value::Str(s)) | (Value::Str(s), Value::Null) => {
                Ok(self.null_mode == NullMode::ApiGateway && s.is_empty())
            }
            (Value::Null, _) | (_, Value::Null) => Ok(false),
            _ => {
                if let (Some(x), Some(y)) = (Num::of(a), Num::of(b)) {
                    return Ok(x.cmp(y) == Some(std::cmp::Ordering::Equal));
                }
                if std::mem::discriminant(a) == std::mem::discriminant(b) {
                    return Ok(java_equals(a, b));
                }
                Ok(self.display(a)? == self.display(b)?)
            }
        }
    }

    fn arith(&mut self, op: BinOp, a: &Value, b: &Value) -> R<Value> {
        if op == BinOp::Add
            && (matches!(a, Value::Str(_)) || matches!(b, Value::Str(_)))
            && !a.is_null()
            && !b.is_null()
        {
            let mut s = self.display(a)?;
            s.push_str(&self.display(b)?);
            if s.len() > self.limits.max_output_bytes {
                return Err(self.too_large());
            }
            return Ok(Value::Str(Arc::from(s)));
        }
        let (Some(x), Some(y)) = (Num::of(a), Num::of(b)) else {
            return Ok(Value::Null);
        };
        Ok(match (x, y) {
            (Num::I(x), Num::I(y)) => {
                let r = match op {
                    BinOp::Add => x.checked_add(y),
                    BinOp::Sub => x.checked_sub(y),
                    BinOp::Mul => x.checked_mul(y),
                    // Division by zero gives no value (Velocity logs and returns null).
                    BinOp::Div if y == 0 => return Ok(Value::Null),
                    BinOp::Mod if y == 0 => return Ok(Value::Null),
                    BinOp::Div => x.checked_div(y),
                    _ => x.checked_rem(y),
                };
                match r {
                    Some(v) => Value::Int(v),
                    // Java widens to BigInteger; a double is the closest we keep.
                    None => Value::Float(float_op(op, x as f64, y as f64)),
                }
            }
            (x, y) => {
                let (x, y) = (x.as_f64(), y.as_f64());
                if matches!(op, BinOp::Div | BinOp::Mod) && y == 0.0 {
                    return Ok(Value::Null);
                }
                Value::Float(float_op(op, x, y))
            }
        })
    }

    pub(crate) fn reference(&mut self, r: &Reference) -> R<Value> {
        let mut v = self.vars.get(&*r.root).cloned().unwrap_or(Value::Null);
        for part in &r.parts {
            if v.is_null() {
                return Ok(Value::Null);
            }
            v = self.access(&v, part, r.pos)?;
        }
        Ok(v)
    }

    /// One step of a reference; `ref_pos` (the `$`) locates errors of property getters.
    fn access(&mut self, v: &Value, part: &Accessor, ref_pos: usize) -> R<Value> {
        match part {
            Accessor::Property(name) => self.property(v, name, ref_pos),
            Accessor::Method { name, args, pos } => {
                self.depth += 1;
                if self.depth > self.limits.max_depth {
                    self.depth -= 1;
                    return Err(RenderError::TooDeep {
                        limit: self.limits.max_depth,
                    });
                }
                let mut vals = Vec::with_capacity(args.len());
                let mut res = Ok(());
                for a in args {
                    match self.expr(a) {
                        Ok(x) => vals.push(x),
                        Err(e) => {
                            res = Err(e);
                            break;
                        }
                    }
                }
                self.depth -= 1;
                res?;
                self.call(v, name, &vals, *pos)
            }
            Accessor::Index { index, pos } => {
                let i = self.expr(index)?;
                if i.is_null() {
                    return Ok(Value::Null);
                }
                match v {
                    Value::List(_) => match i {
                        Value::Int(_) => self.call(v, "get", &[i], *pos),
                        _ => Ok(Value::Null),
                    },
                    Value::Map(m) => {
                        let k = self.display(&i)?;
                        Ok(m.entries.borrow().get(&k).cloned().unwrap_or(Value::Null))
                    }
                    _ => self.call(v, "get", &[i], *pos),
                }
            }
        }
    }

    fn property(&mut self, v: &Value, name: &str, ref_pos: usize) -> R<Value> {
        match v {
            Value::Map(m) => Ok(m.entries.borrow().get(name).cloned().unwrap_or(Value::Null)),
            Value::Object(o) => {
                if let Some(x) = o.property(name) {
                    return Ok(x);
                }
                let getter = getter_name("get", name);
                match o.call(&getter, &[]) {
                    Ok(x) => Ok(x.unwrap_or(Value::Null)),
                    Err(message) => {
                        let (line, column) = line_col(self.src, ref_pos);
                        Err(RenderError::Method {
                            method: getter,
                            message,
                            line,
                            column,
                        })
                    }
                }
            }
            _ => {
                // Java bean properties of strings and lists: `$list.empty`, `$s.bytes`…
                for prefix in ["get", "is"] {
                    let getter = getter_name(prefix, name);
                    if let Ok(Some(x)) = methods::call_builtin(self, v, &getter, &[]) {
                        return Ok(x);
                    }
                }
                Ok(Value::Null)
            }
        }
    }

    fn call(&mut self, v: &Value, name: &str, args: &[Value], pos: usize) -> R<Value> {
        let r = match v {
            Value::Object(o) => {
                let r = match o.call(name, args) {
                    Ok(Some(x)) => Ok(Some(x)),
                    Ok(None) if name == "toString" && args.is_empty() => {
                        Ok(Some(Value::string(o.display())))
                    }
                    other => other.map_err(MethodFailure::Failed),
                };
                self.charge(o.take_work())?;
                r
            }
            _ => methods::call_builtin(self, v, name, args),
        };
        match r {
            Ok(x) => Ok(x.unwrap_or(Value::Null)),
            Err(MethodFailure::Failed(message)) => {
                let (line, column) = line_col(self.src, pos);
                Err(RenderError::Method {
                    method: name.to_string(),
                    message,
                    line,
                    column,
                })
            }
            Err(MethodFailure::Render(e)) => Err(e),
        }
    }

    fn assign(&mut self, target: &Reference, value: Value) -> R<()> {
        // Velocity 1.7 does not assign a null (`directive.set.null.allowed = false`).
        if value.is_null() {
            return Ok(());
        }
        let Some((last, init)) = target.parts.split_last() else {
            self.set_var(&target.root, value);
            return Ok(());
        };
        let mut obj = self.vars.get(&*target.root).cloned().unwrap_or(Value::Null);
        for part in init {
            if obj.is_null() {
                return Ok(());
            }
            obj = self.access(&obj, part, target.pos)?;
        }
        match (last, &obj) {
            (Accessor::Property(name), Value::Map(m)) => {
                m.entries.borrow_mut().insert(name.to_string(), value);
            }
            (Accessor::Property(name), Value::Object(o)) => {
                o.set_property(name, value);
            }
            (Accessor::Index { index, pos }, Value::List(_) | Value::Map(_)) => {
                let i = self.expr(index)?;
                if let Value::Map(m) = &obj {
                    let k = self.display(&i)?;
                    m.entries.borrow_mut().insert(k, value);
                } else {
                    self.call(&obj, "set", &[i, value], *pos)?;
                }
            }
            // Anything else (a property of a string, a null target…) is ignored, as Velocity
            // logs and continues.
            _ => {}
        }
        Ok(())
    }
}

pub(crate) enum MethodFailure {
    /// The method threw: the render fails with this message.
    Failed(String),
    Render(RenderError),
}

impl From<RenderError> for MethodFailure {
    fn from(e: RenderError) -> Self {
        MethodFailure::Render(e)
    }
}

fn float_op(op: BinOp, x: f64, y: f64) -> f64 {
    match op {
        BinOp::Add => x + y,
        BinOp::Sub => x - y,
        BinOp::Mul => x * y,
        BinOp::Div => x / y,
        _ => x % y,
    }
}

fn as_int(v: &Value) -> Option<i64> {
    match v {
        Value::Int(i) => Some(*i),
        Value::Str(s) => s.trim().parse().ok(),
        _ => None,
    }
}

fn getter_name(prefix: &str, name: &str) -> String {
    let mut s = String::with_capacity(prefix.len() + name.len());
    s.push_str(prefix);
    let mut cs = name.chars();
    if let Some(c) = cs.next() {
        s.extend(c.to_uppercase());
        s.push_str(cs.as_str());
    }
    s
}

/// `$foreach`: the loop's state.
struct ForeachScope {
    index: Cell<usize>,
    has_next: Cell<bool>,
    parent: Value,
}

impl HostObject for ForeachScope {
    fn property(&self, name: &str) -> Option<Value> {
        let i = self.index.get();
        Some(match name {
            "index" => Value::Int(i as i64),
            "count" => Value::Int(i as i64 + 1),
            "hasNext" => Value::Bool(self.has_next.get()),
            "first" => Value::Bool(i == 0),
            "last" => Value::Bool(!self.has_next.get()),
            "parent" => self.parent.clone(),
            _ => return None,
        })
    }

    fn call(&self, name: &str, args: &[Value]) -> Result<Option<Value>, String> {
        if !args.is_empty() {
            return Ok(None);
        }
        let prop = match name {
            "getIndex" => "index",
            "getCount" => "count",
            "hasNext" | "getHasNext" => "hasNext",
            "isFirst" | "getFirst" => "first",
            "isLast" | "getLast" => "last",
            "getParent" => "parent",
            _ => return Ok(None),
        };
        Ok(self.property(prop).filter(|v| !v.is_null()))
    }

    fn display(&self) -> String {
        "org.apache.velocity.runtime.directive.ForeachScope".into()
    }
}
