//! Java methods of strings, lists, maps and numbers, as templates call them.
//!
//! `Ok(None)` means "no such method for these arguments" (Velocity then treats the reference
//! as having no value); `Err(Failed)` means the Java method would have thrown.

use std::collections::HashMap;
use std::rc::Rc;
use std::sync::Arc;

use regex::{Regex, RegexBuilder};

use crate::render::{MethodFailure, Renderer};
use crate::value::{EQUALS_BUDGET, HostObject, Value, java_equals, java_equals_budget};

type M = Result<Option<Value>, MethodFailure>;

fn fail<T>(msg: impl Into<String>) -> Result<T, MethodFailure> {
    Err(MethodFailure::Failed(msg.into()))
}

/// Java methods returning `void` print as nothing.
fn void() -> M {
    Ok(Some(Value::string("")))
}

/// Compiled regexes of one render (templates call `replaceAll` in loops).
#[derive(Default)]
pub(crate) struct RegexCache {
    map: HashMap<String, Regex>,
}

const REGEX_CACHE_MAX: usize = 64;
const REGEX_SIZE_LIMIT: usize = 1 << 20;

impl RegexCache {
    fn get(&mut self, pattern: &str, whole: bool) -> Result<Regex, MethodFailure> {
        let key = if whole {
            format!("^(?:{pattern})$")
        } else {
            pattern.to_string()
        };
        if let Some(r) = self.map.get(&key) {
            return Ok(r.clone());
        }
        let re = RegexBuilder::new(&key)
            .size_limit(REGEX_SIZE_LIMIT)
            .build()
            .map_err(|e| {
                MethodFailure::Failed(format!("invalid or unsupported regular expression: {e}"))
            })?;
        if self.map.len() >= REGEX_CACHE_MAX {
            self.map.clear();
        }
        self.map.insert(key, re.clone());
        Ok(re)
    }
}

pub(crate) fn call_builtin(r: &mut Renderer<'_>, v: &Value, name: &str, args: &[Value]) -> M {
    // Methods every Java object has.
    match (name, args) {
        ("toString", []) => return Ok(Some(Value::string(r.display(v)?))),
        ("equals", [x]) => return Ok(Some(Value::Bool(java_equals(v, x)))),
        _ => {}
    }
    // Most methods walk the whole string or collection: charge for it.
    match v {
        Value::Str(s) => {
            let arg_len: usize = args.iter().filter_map(str_arg).map(str::len).sum();
            r.charge(((s.len() + arg_len) / 64) as u64)?;
            string_method(r, s, name, args)
        }
        Value::List(l) => {
            r.charge((l.items.borrow().len() / 16) as u64)?;
            list_method(r, l, name, args)
        }
        Value::Map(m) => {
            r.charge((m.entries.borrow().len() / 16) as u64)?;
            map_method(r, m, name, args)
        }
        Value::Int(i) => Ok(number_method(*i as f64, Some(*i), name, args)),
        Value::Float(f) => Ok(number_method(*f, None, name, args)),
        Value::Bool(b) => Ok(match (name, args) {
            ("booleanValue", []) => Some(Value::Bool(*b)),
            _ => None,
        }),
        Value::Null | Value::Object(_) => Ok(None),
    }
}

fn number_method(f: f64, i: Option<i64>, name: &str, args: &[Value]) -> Option<Value> {
    if !args.is_empty() {
        return None;
    }
    let int = i.unwrap_or(f as i64);
    match name {
        "intValue" => Some(Value::Int(int as i32 as i64)),
        "longValue" => Some(Value::Int(int)),
        "doubleValue" | "floatValue" => Some(Value::Float(f)),
        _ => None,
    }
}

fn int_arg(v: &Value) -> Option<i64> {
    match v {
        Value::Int(i) => Some(*i),
        _ => None,
    }
}

fn str_arg(v: &Value) -> Option<&str> {
    match v {
        Value::Str(s) => Some(s),
        _ => None,
    }
}

/// Character positions (Java indexes strings by UTF-16 unit; we index by character).
struct Chars<'a> {
    s: &'a str,
    /// Byte offset of each char, plus the end; empty when the string is ASCII.
    offsets: Vec<usize>,
}

impl<'a> Chars<'a> {
    fn new(s: &'a str) -> Self {
        let offsets = if s.is_ascii() {
            Vec::new()
        } else {
            s.char_indices()
                .map(|(i, _)| i)
                .chain(std::iter::once(s.len()))
                .collect()
        };
        Chars { s, offsets }
    }
    fn len(&self) -> usize {
        if self.offsets.is_empty() {
            self.s.len()
        } else {
            self.offsets.len() - 1
        }
    }
    fn byte(&self, char_idx: usize) -> usize {
        if self.offsets.is_empty() {
            char_idx
        } else {
            self.offsets[char_idx]
        }
    }
    fn char_index(&self, byte: usize) -> usize {
        if self.offsets.is_empty() {
            byte
        } else {
            self.offsets.partition_point(|&o| o < byte)
        }
    }
}

fn string_method(r: &mut Renderer<'_>, s: &Arc<str>, name: &str, args: &[Value]) -> M {
    let str_val = |x: String| Ok(Some(Value::Str(Arc::from(x))));
    let limit = r.limits().max_output_bytes;
    match (name, args) {
        ("length", []) => Ok(Some(Value::Int(s.chars().count() as i64))),
        ("isEmpty", []) => Ok(Some(Value::Bool(s.is_empty()))),
        ("trim", []) => str_val(s.trim_matches(|c: char| c <= ' ').to_string()),
        ("toLowerCase", []) => str_val(s.to_lowercase()),
        ("toUpperCase", []) => str_val(s.to_uppercase()),
        ("substring", [b]) | ("substring", [b, _]) => {
            let cs = Chars::new(s);
            let len = cs.len() as i64;
            let Some(b) = int_arg(b) else { return Ok(None) };
            let e = match args.get(1) {
                Some(e) => match int_arg(e) {
                    Some(e) => e,
                    None => return Ok(None),
                },
                None => len,
            };
            if b < 0 || e > len || b > e {
                return fail(format!(
                    "StringIndexOutOfBoundsException: begin {b}, end {e}, length {len}"
                ));
            }
            str_val(s[cs.byte(b as usize)..cs.byte(e as usize)].to_string())
        }
        ("charAt", [i]) => {
            let Some(i) = int_arg(i) else { return Ok(None) };
            match usize::try_from(i).ok().and_then(|i| s.chars().nth(i)) {
                Some(c) => str_val(c.to_string()),
                None => fail(format!(
                    "StringIndexOutOfBoundsException: index {i}, length {}",
                    s.chars().count()
                )),
            }
        }
        ("indexOf", [x]) | ("indexOf", [x, _]) | ("lastIndexOf", [x]) | ("lastIndexOf", [x, _]) => {
            let Some(needle) = str_arg(x) else {
                return Ok(None);
            };
            let cs = Chars::new(s);
            let len = cs.len() as i64;
            let from = match args.get(1) {
                Some(f) => match int_arg(f) {
                    Some(f) => Some(f),
                    None => return Ok(None),
                },
                None => None,
            };
            let found = if name == "indexOf" {
                let from = from.unwrap_or(0).clamp(0, len) as usize;
                s[cs.byte(from)..]
                    .find(needle)
                    .map(|b| cs.char_index(cs.byte(from) + b))
            } else {
                let from = from.unwrap_or(len);
                if from < 0 {
                    None
                } else {
                    // The match may start at `from` at the latest.
                    let start_max = cs.byte((from.min(len)) as usize);
                    let end = (start_max + needle.len()).min(s.len());
                    let mut end = end;
                    while !s.is_char_boundary(end) {
                        end -= 1;
                    }
                    s[..end].rfind(needle).map(|b| cs.char_index(b))
                }
            };
            Ok(Some(Value::Int(found.map_or(-1, |i| i as i64))))
        }
        ("contains", [x]) => Ok(str_arg(x).map(|n| Value::Bool(s.contains(n)))),
        ("startsWith", [x]) => Ok(str_arg(x).map(|n| Value::Bool(s.starts_with(n)))),
        ("startsWith", [x, off]) => {
            let (Some(n), Some(off)) = (str_arg(x), int_arg(off)) else {
                return Ok(None);
            };
            let cs = Chars::new(s);
            let ok =
                off >= 0 && (off as usize) <= cs.len() && s[cs.byte(off as usize)..].starts_with(n);
            Ok(Some(Value::Bool(ok)))
        }
        ("endsWith", [x]) => Ok(str_arg(x).map(|n| Value::Bool(s.ends_with(n)))),
        ("equalsIgnoreCase", [x]) => Ok(Some(Value::Bool(
            str_arg(x).is_some_and(|n| n.to_lowercase() == s.to_lowercase()),
        ))),
        ("compareTo", [x]) => Ok(str_arg(x).map(|n| {
            // Java compares UTF-16 units; for BMP text this is the char order.
            let a: Vec<u16> = s.encode_utf16().collect();
            let b: Vec<u16> = n.encode_utf16().collect();
            let d = a
                .iter()
                .zip(b.iter())
                .find(|(x, y)| x != y)
                .map_or(a.len() as i64 - b.len() as i64, |(x, y)| {
                    *x as i64 - *y as i64
                });
            Value::Int(d)
        })),
        ("concat", [x]) => {
            let Some(n) = str_arg(x) else { return Ok(None) };
            if s.len() + n.len() > limit {
                return Err(MethodFailure::Render(crate::RenderError::OutputTooLarge {
                    limit,
                }));
            }
            str_val(format!("{s}{n}"))
        }
        ("replace", [a, b]) => {
            let (Some(a), Some(b)) = (str_arg(a), str_arg(b)) else {
                return Ok(None);
            };
            let count = if a.is_empty() {
                s.chars().count() + 1
            } else {
                s.matches(a).count()
            };
            if s.len() + count.saturating_mul(b.len()) > limit {
                return Err(MethodFailure::Render(crate::RenderError::OutputTooLarge {
                    limit,
                }));
            }
            str_val(s.replace(a, b))
        }
        ("replaceAll" | "replaceFirst", [a, b]) => {
            let (Some(a), Some(b)) = (str_arg(a), str_arg(b)) else {
                return Ok(None);
            };
            let re = r.regexes.get(a, false)?;
            let rep = java_replacement(b)?;
            let out = if name == "replaceAll" {
                re.replace_all(s, rep.as_str())
            } else {
                re.replace(s, rep.as_str())
            };
            if out.len() > limit {
                return Err(MethodFailure::Render(crate::RenderError::OutputTooLarge {
                    limit,
                }));
            }
            str_val(out.into_owned())
        }
        ("matches", [a]) => {
            let Some(a) = str_arg(a) else { return Ok(None) };
            let re = r.regexes.get(a, true)?;
            Ok(Some(Value::Bool(re.is_match(s))))
        }
        ("split", [a]) | ("split", [a, _]) => {
            let Some(a) = str_arg(a) else { return Ok(None) };
            let lim = match args.get(1) {
                Some(l) => match int_arg(l) {
                    Some(l) => l,
                    None => return Ok(None),
                },
                None => 0,
            };
            let re = r.regexes.get(a, false)?;
            let parts = java_split(&re, s, lim);
            if parts.len() > r.limits().max_collection_len {
                return fail("split produced too many parts");
            }
            Ok(Some(Value::list(
                parts.into_iter().map(Value::string).collect(),
            )))
        }
        _ => Ok(None),
    }
}

/// Java's `String.split(regex, limit)`.
fn java_split<'s>(re: &Regex, s: &'s str, limit: i64) -> Vec<&'s str> {
    let mut parts = Vec::new();
    let mut last = 0;
    let mut matched = false;
    for m in re.find_iter(s) {
        // A zero-width match at the start never yields a leading empty string.
        if m.end() == 0 {
            continue;
        }
        if limit > 0 && parts.len() as i64 == limit - 1 {
            break;
        }
        matched = true;
        parts.push(&s[last..m.start()]);
        last = m.end();
    }
    if !matched {
        return vec![s];
    }
    parts.push(&s[last..]);
    if limit == 0 {
        while parts.last().is_some_and(|p| p.is_empty()) {
            parts.pop();
        }
    }
    parts
}

/// Java's replacement syntax (`$1`, `\$`) in the regex crate's (`${1}`, `$$`).
fn java_replacement(rep: &str) -> Result<String, MethodFailure> {
    let mut out = String::with_capacity(rep.len());
    let mut it = rep.chars().peekable();
    while let Some(c) = it.next() {
        match c {
            '\\' => match it.next() {
                Some('$') => out.push_str("$$"),
                Some(x) => out.push(x),
                None => return fail("character to be escaped is missing"),
            },
            '$' => {
                if it.peek() == Some(&'{') {
                    it.next();
                    let mut name = String::new();
                    for x in it.by_ref() {
                        if x == '}' {
                            break;
                        }
                        name.push(x);
                    }
                    out.push_str(&format!("${{{name}}}"));
                } else {
                    let mut num = String::new();
                    while let Some(d) = it.peek().filter(|d| d.is_ascii_digit()) {
                        num.push(*d);
                        it.next();
                    }
                    if num.is_empty() {
                        return fail("Illegal group reference");
                    }
                    out.push_str(&format!("${{{num}}}"));
                }
            }
            c => out.push(c),
        }
    }
    Ok(out)
}

fn index_arg(i: &Value, len: usize, inclusive_end: bool) -> Result<usize, MethodFailure> {
    let Some(i) = int_arg(i) else {
        return fail("index is not an integer");
    };
    let max = if inclusive_end {
        len
    } else {
        len.saturating_sub(1)
    };
    if i < 0 || i as usize > max || (!inclusive_end && len == 0) {
        return fail(format!(
            "IndexOutOfBoundsException: Index {i} out of bounds for length {len}"
        ));
    }
    Ok(i as usize)
}

fn list_method(r: &mut Renderer<'_>, l: &Rc<crate::value::List>, name: &str, args: &[Value]) -> M {
    let mut budget = EQUALS_BUDGET;
    match (name, args) {
        ("size", []) => Ok(Some(Value::Int(l.items.borrow().len() as i64))),
        ("isEmpty", []) => Ok(Some(Value::Bool(l.items.borrow().is_empty()))),
        ("get", [i]) => {
            if int_arg(i).is_none() {
                return Ok(None);
            }
            let items = l.items.borrow();
            let i = index_arg(i, items.len(), false)?;
            Ok(Some(items[i].clone()))
        }
        ("set", [i, x]) => {
            let mut items = l.items.borrow_mut();
            let i = index_arg(i, items.len(), false)?;
            Ok(Some(std::mem::replace(&mut items[i], x.clone())))
        }
        ("contains", [x]) => Ok(Some(Value::Bool(
            l.items
                .borrow()
                .iter()
                .any(|y| java_equals_budget(x, y, &mut budget)),
        ))),
        ("indexOf", [x]) => Ok(Some(Value::Int(
            l.items
                .borrow()
                .iter()
                .position(|y| java_equals_budget(x, y, &mut budget))
                .map_or(-1, |i| i as i64),
        ))),
        ("lastIndexOf", [x]) => Ok(Some(Value::Int(
            l.items
                .borrow()
                .iter()
                .rposition(|y| java_equals_budget(x, y, &mut budget))
                .map_or(-1, |i| i as i64),
        ))),
        ("add", [x]) => {
            grow_check(r, l.items.borrow().len())?;
            l.items.borrow_mut().push(x.clone());
            Ok(Some(Value::Bool(true)))
        }
        ("add", [i, x]) => {
            let len = l.items.borrow().len();
            grow_check(r, len)?;
            let i = index_arg(i, len, true)?;
            l.items.borrow_mut().insert(i, x.clone());
            void()
        }
        ("addAll", [Value::List(other)]) => {
            let add = other.items.borrow().clone();
            grow_check(r, l.items.borrow().len() + add.len())?;
            let changed = !add.is_empty();
            l.items.borrow_mut().extend(add);
            Ok(Some(Value::Bool(changed)))
        }
        ("remove", [Value::Int(_)]) => {
            let mut items = l.items.borrow_mut();
            let i = index_arg(&args[0], items.len(), false)?;
            Ok(Some(items.remove(i)))
        }
        ("remove", [x]) => {
            let mut items = l.items.borrow_mut();
            match items
                .iter()
                .position(|y| java_equals_budget(x, y, &mut budget))
            {
                Some(i) => {
                    items.remove(i);
                    Ok(Some(Value::Bool(true)))
                }
                None => Ok(Some(Value::Bool(false))),
            }
        }
        ("clear", []) => {
            l.items.borrow_mut().clear();
            void()
        }
        ("subList", [a, b]) => {
            let items = l.items.borrow();
            let a = index_arg(a, items.len(), true)?;
            let b = index_arg(b, items.len(), true)?;
            if a > b {
                return fail(format!(
                    "IllegalArgumentException: fromIndex({a}) > toIndex({b})"
                ));
            }
            Ok(Some(Value::List(Rc::new(crate::value::List {
                items: std::cell::RefCell::new(items[a..b].to_vec()),
                style: l.style,
            }))))
        }
        _ => Ok(None),
    }
}

fn grow_check(r: &Renderer<'_>, len: usize) -> Result<(), MethodFailure> {
    if len >= r.limits().max_collection_len {
        return fail(format!(
            "collection larger than {} elements",
            r.limits().max_collection_len
        ));
    }
    Ok(())
}

fn map_method(r: &mut Renderer<'_>, m: &Rc<crate::value::Map>, name: &str, args: &[Value]) -> M {
    let mut budget = EQUALS_BUDGET;
    match (name, args) {
        ("size", []) => Ok(Some(Value::Int(m.entries.borrow().len() as i64))),
        ("isEmpty", []) => Ok(Some(Value::Bool(m.entries.borrow().is_empty()))),
        ("get", [k]) => {
            let k = r.display(k)?;
            Ok(m.entries.borrow().get(&k).cloned())
        }
        ("containsKey", [k]) => {
            let k = r.display(k)?;
            Ok(Some(Value::Bool(m.entries.borrow().contains_key(&k))))
        }
        ("containsValue", [x]) => Ok(Some(Value::Bool(
            m.entries
                .borrow()
                .values()
                .any(|y| java_equals_budget(x, y, &mut budget)),
        ))),
        ("put", [k, v]) => {
            let k = r.display(k)?;
            let len = m.entries.borrow().len();
            grow_check(r, len)?;
            Ok(m.entries.borrow_mut().insert(k, v.clone()))
        }
        ("putAll", [Value::Map(other)]) => {
            let add: Vec<(String, Value)> = other
                .entries
                .borrow()
                .iter()
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect();
            grow_check(r, m.entries.borrow().len() + add.len())?;
            m.entries.borrow_mut().extend(add);
            void()
        }
        ("remove", [k]) => {
            let k = r.display(k)?;
            Ok(m.entries.borrow_mut().shift_remove(&k))
        }
        ("clear", []) => {
            m.entries.borrow_mut().clear();
            void()
        }
        ("keySet", []) => Ok(Some(Value::list(
            m.entries
                .borrow()
                .keys()
                .map(|k| Value::string(k.as_str()))
                .collect(),
        ))),
        ("values", []) => Ok(Some(Value::list(
            m.entries.borrow().values().cloned().collect(),
        ))),
        ("entrySet", []) => Ok(Some(Value::list(
            m.entries
                .borrow()
                .iter()
                .map(|(k, v)| {
                    Value::Object(Rc::new(Entry {
                        key: k.clone(),
                        value: v.clone(),
                    }))
                })
                .collect(),
        ))),
        _ => Ok(None),
    }
}

/// An element of `entrySet()`.
struct Entry {
    key: String,
    value: Value,
}

impl HostObject for Entry {
    fn property(&self, name: &str) -> Option<Value> {
        match name {
            "key" => Some(Value::string(self.key.as_str())),
            "value" => Some(self.value.clone()),
            _ => None,
        }
    }
    fn call(&self, name: &str, args: &[Value]) -> Result<Option<Value>, String> {
        Ok(match (name, args) {
            ("getKey", []) => Some(Value::string(self.key.as_str())),
            ("getValue", []) => Some(self.value.clone()).filter(|v| !v.is_null()),
            _ => None,
        })
    }
    fn display(&self) -> String {
        format!("{}={}", self.key, self.value.to_java_string())
    }
}
