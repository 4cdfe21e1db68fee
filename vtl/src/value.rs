//! Render-time values: Java's types as Velocity templates see them.

use std::cell::RefCell;
use std::fmt;
use std::rc::Rc;
use std::sync::Arc;

use indexmap::IndexMap;

/// A value in a template. Lists and maps are shared and mutable (`$list.add(…)` changes
/// every reference to that list), as Java objects are.
#[derive(Clone)]
pub enum Value {
    Null,
    Bool(bool),
    /// Java's `Integer`/`Long`.
    Int(i64),
    /// Java's `Double`.
    Float(f64),
    Str(Arc<str>),
    List(Rc<List>),
    Map(Rc<Map>),
    /// An object supplied by the embedder (e.g. `$input`, `$util`).
    Object(Rc<dyn HostObject>),
}

/// How a list prints with `toString()`: `[a, b]` (Java's `ArrayList`) or JSON (the JSON array
/// type behind API Gateway's `$input.path`, which prints as JSON).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ListStyle {
    Java,
    Json,
}

pub struct List {
    pub items: RefCell<Vec<Value>>,
    pub style: ListStyle,
}

/// The hasher of template maps: fast, and seeded per process (JSON keys come from clients).
pub type Hasher = foldhash::fast::RandomState;

/// The entries of a [`Map`], in insertion order.
pub type MapEntries = IndexMap<String, Value, Hasher>;

/// An insertion-ordered map (Java's `LinkedHashMap`); keys are strings.
pub struct Map {
    pub entries: RefCell<MapEntries>,
}

/// Objects with methods, supplied by the embedder. Property access `$obj.name` asks
/// [`HostObject::property`] first, then calls `getName()` through [`HostObject::call`].
pub trait HostObject {
    /// `$obj.name`; `None` when there is no such property.
    fn property(&self, _name: &str) -> Option<Value> {
        None
    }
    /// `$obj.name(args)`. `Ok(None)` when there is no such method (the reference then has no
    /// value); `Err` when the method fails (the render fails, as a Java exception would).
    fn call(&self, name: &str, args: &[Value]) -> Result<Option<Value>, String>;
    /// `#set($obj.name = value)`; return false when not supported.
    fn set_property(&self, _name: &str, _value: Value) -> bool {
        false
    }
    /// `toString()`.
    fn display(&self) -> String;
    /// Work done by calls since last asked, in evaluation steps (about one per 64 bytes
    /// handled); the renderer charges it against `Limits::max_steps`, so that a template
    /// cannot call an expensive method a million times.
    fn take_work(&self) -> u64 {
        0
    }
}

impl fmt::Debug for Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut s = String::new();
        let _ = self.write_display(&mut s, 1 << 20, 0, 64);
        write!(f, "Value({s})")
    }
}

/// The output limit was reached while writing.
#[derive(Debug)]
pub(crate) struct Overflow;

impl Value {
    pub fn string(s: impl Into<Arc<str>>) -> Value {
        Value::Str(s.into())
    }

    pub fn list(items: Vec<Value>) -> Value {
        Value::List(Rc::new(List {
            items: RefCell::new(items),
            style: ListStyle::Java,
        }))
    }

    pub fn json_list(items: Vec<Value>) -> Value {
        Value::List(Rc::new(List {
            items: RefCell::new(items),
            style: ListStyle::Json,
        }))
    }

    pub fn map(entries: MapEntries) -> Value {
        Value::Map(Rc::new(Map {
            entries: RefCell::new(entries),
        }))
    }

    pub fn map_from<K: Into<String>>(entries: impl IntoIterator<Item = (K, Value)>) -> Value {
        Value::map(entries.into_iter().map(|(k, v)| (k.into(), v)).collect())
    }

    pub fn is_null(&self) -> bool {
        matches!(self, Value::Null)
    }

    /// Velocity's truth of a reference: null and `false` are false, everything else true.
    pub fn truthy(&self) -> bool {
        !matches!(self, Value::Null | Value::Bool(false))
    }

    pub fn as_str(&self) -> Option<&str> {
        match self {
            Value::Str(s) => Some(s),
            _ => None,
        }
    }

    /// Java's `toString()`, unbounded (for embedders; rendering uses the bounded writer).
    pub fn to_java_string(&self) -> String {
        let mut s = String::new();
        let _ = self.write_display(&mut s, usize::MAX, 0, 256);
        s
    }

    pub(crate) fn write_display(
        &self,
        out: &mut String,
        limit: usize,
        depth: usize,
        max_depth: usize,
    ) -> Result<(), Overflow> {
        if depth > max_depth {
            out.push_str("...");
            return check(out, limit);
        }
        match self {
            Value::Null => out.push_str("null"),
            Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
            Value::Int(i) => {
                use fmt::Write;
                let _ = write!(out, "{i}");
            }
            Value::Float(f) => java_double(*f, out),
            Value::Str(s) => out.push_str(s),
            Value::List(l) => match l.style {
                ListStyle::Json => return self.write_json(out, limit, depth, max_depth),
                ListStyle::Java => {
                    out.push('[');
                    let items = l.items.borrow();
                    for (i, v) in items.iter().enumerate() {
                        if i > 0 {
                            out.push_str(", ");
                        }
                        v.write_display(out, limit, depth + 1, max_depth)?;
                    }
                    out.push(']');
                }
            },
            Value::Map(m) => {
                out.push('{');
                let entries = m.entries.borrow();
                for (i, (k, v)) in entries.iter().enumerate() {
                    if i > 0 {
                        out.push_str(", ");
                    }
                    out.push_str(k);
                    out.push('=');
                    check(out, limit)?;
                    v.write_display(out, limit, depth + 1, max_depth)?;
                }
                out.push('}');
            }
            Value::Object(o) => out.push_str(&o.display()),
        }
        check(out, limit)
    }

    /// Compact JSON, keys in insertion order.
    pub(crate) fn write_json(
        &self,
        out: &mut String,
        limit: usize,
        depth: usize,
        max_depth: usize,
    ) -> Result<(), Overflow> {
        if depth > max_depth {
            out.push_str("null");
            return check(out, limit);
        }
        match self {
            Value::Null => out.push_str("null"),
            Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
            Value::Int(i) => {
                use fmt::Write;
                let _ = write!(out, "{i}");
            }
            Value::Float(f) => {
                if f.is_finite() {
                    json_number(*f, out)
                } else {
                    out.push_str("null")
                }
            }
            Value::Str(s) => json_string(s, out),
            Value::Object(o) => json_string(&o.display(), out),
            Value::List(l) => {
                out.push('[');
                for (i, v) in l.items.borrow().iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    v.write_json(out, limit, depth + 1, max_depth)?;
                }
                out.push(']');
            }
            Value::Map(m) => {
                out.push('{');
                for (i, (k, v)) in m.entries.borrow().iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    json_string(k, out);
                    out.push(':');
                    v.write_json(out, limit, depth + 1, max_depth)?;
                }
                out.push('}');
            }
        }
        check(out, limit)
    }
}

fn check(out: &str, limit: usize) -> Result<(), Overflow> {
    if out.len() > limit {
        Err(Overflow)
    } else {
        Ok(())
    }
}

/// Java's `Double.toString`: plain notation in [1e-3, 1e7) with at least one decimal,
/// otherwise `d.dddE±n`.
pub(crate) fn java_double(f: f64, out: &mut String) {
    use fmt::Write;
    if f.is_nan() {
        out.push_str("NaN");
    } else if f.is_infinite() {
        out.push_str(if f > 0.0 { "Infinity" } else { "-Infinity" });
    } else if f == 0.0 {
        out.push_str(if f.is_sign_negative() { "-0.0" } else { "0.0" });
    } else if (1e-3..1e7).contains(&f.abs()) {
        let start = out.len();
        let _ = write!(out, "{f}");
        if !out[start..].contains('.') {
            out.push_str(".0");
        }
    } else {
        let s = format!("{f:e}");
        let (mantissa, exp) = s.split_once('e').unwrap_or((&s, "0"));
        out.push_str(mantissa);
        if !mantissa.contains('.') {
            out.push_str(".0");
        }
        out.push('E');
        out.push_str(exp);
    }
}

/// A JSON number for a double: integral values keep a `.0` as Java's JSON writers do.
fn json_number(f: f64, out: &mut String) {
    java_double(f, out)
}

pub(crate) fn json_string(s: &str, out: &mut String) {
    use fmt::Write;
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

/// Work allowed to one `equals` (including `contains`/`indexOf` scans): lists that share
/// their elements can make a naive comparison exponential.
pub(crate) const EQUALS_BUDGET: usize = 1_000_000;

/// Java's `equals` (type-strict: `Integer 1` is not `Double 1.0`).
pub(crate) fn java_equals(a: &Value, b: &Value) -> bool {
    let mut budget = EQUALS_BUDGET;
    java_equals_budget(a, b, &mut budget)
}

/// `java_equals` drawing on a shared budget; an exhausted budget answers false.
pub(crate) fn java_equals_budget(a: &Value, b: &Value, budget: &mut usize) -> bool {
    if *budget == 0 {
        return false;
    }
    *budget -= 1;
    match (a, b) {
        (Value::Null, Value::Null) => true,
        (Value::Bool(x), Value::Bool(y)) => x == y,
        (Value::Int(x), Value::Int(y)) => x == y,
        (Value::Float(x), Value::Float(y)) => x == y,
        (Value::Str(x), Value::Str(y)) => x == y,
        (Value::List(x), Value::List(y)) => {
            if Rc::ptr_eq(x, y) {
                return true;
            }
            let (x, y) = (x.items.borrow(), y.items.borrow());
            x.len() == y.len()
                && x.iter()
                    .zip(y.iter())
                    .all(|(a, b)| java_equals_budget(a, b, budget))
        }
        (Value::Map(x), Value::Map(y)) => {
            if Rc::ptr_eq(x, y) {
                return true;
            }
            let (x, y) = (x.entries.borrow(), y.entries.borrow());
            x.len() == y.len()
                && x.iter()
                    .all(|(k, v)| y.get(k).is_some_and(|w| java_equals_budget(v, w, budget)))
        }
        (Value::Object(x), Value::Object(y)) => Rc::ptr_eq(x, y),
        _ => false,
    }
}

/// Numeric view for arithmetic and comparison.
#[derive(Clone, Copy)]
pub(crate) enum Num {
    I(i64),
    F(f64),
}

impl Num {
    pub(crate) fn of(v: &Value) -> Option<Num> {
        match v {
            Value::Int(i) => Some(Num::I(*i)),
            Value::Float(f) => Some(Num::F(*f)),
            _ => None,
        }
    }

    pub(crate) fn as_f64(self) -> f64 {
        match self {
            Num::I(i) => i as f64,
            Num::F(f) => f,
        }
    }

    pub(crate) fn cmp(self, other: Num) -> Option<std::cmp::Ordering> {
        match (self, other) {
            (Num::I(a), Num::I(b)) => Some(a.cmp(&b)),
            (a, b) => a.as_f64().partial_cmp(&b.as_f64()),
        }
    }
}
