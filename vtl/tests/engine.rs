//! Velocity 1.7 semantics. The expected outputs of `VELOCITY_CASES` were produced by Apache
//! Velocity 1.7 itself (Debian's `velocity` 1.7-6 package, default configuration) rendering
//! each template with the context built by `velocity_context()`; a case expecting `Parse` or
//! `Render` is one where Velocity threw a `ParseErrorException` or a
//! `MethodInvocationException`.

use std::time::{Duration, Instant};

use apigw_vtl::{
    Context, HostObject, Limits, NullMode, ParseError, RenderError, Template, Value, parse_json,
};

enum Expect {
    Out(&'static str),
    Parse,
    Render,
}
use Expect::*;

/// JSON lists print as JSON; Velocity's test context held Java `ArrayList`s, which print as
/// `[a, b]`, so rebuild lists Java-style.
fn java_style(v: Value) -> Value {
    match v {
        Value::List(l) => Value::list(l.items.borrow().iter().cloned().map(java_style).collect()),
        Value::Map(m) => Value::map(
            m.entries
                .borrow()
                .iter()
                .map(|(k, v)| (k.clone(), java_style(v.clone())))
                .collect(),
        ),
        v => v,
    }
}

const CONTEXT_JSON: &str = r#"{"list":[1,2,3], "m":{"a":1,"b":"x"}, "s":"Hello World", "n":5, "f":1.5, "t":true, "e":"", "names":["ann","bob","cy"], "nested":{"k":{"deep":[{"x":1},{"x":2}]}}, "empty":[], "emptyMap":{}, "num":"42", "sp":"  pad  "}"#;

fn velocity_context() -> Context {
    let mut ctx = Context::new();
    let Value::Map(m) = java_style(parse_json(CONTEXT_JSON).unwrap()) else {
        panic!("context is an object")
    };
    for (k, v) in m.entries.borrow().iter() {
        ctx.insert(k.clone(), v.clone());
    }
    ctx
}

fn render(src: &str) -> Result<String, String> {
    let t = Template::parse(src).map_err(|e| format!("parse: {e}"))?;
    t.render(&mut velocity_context(), &Limits::default())
        .map_err(|e| format!("render: {e}"))
}

#[test]
fn velocity_cases() {
    let mut failures = Vec::new();
    for (name, src, expect) in VELOCITY_CASES {
        let got =
            Template::parse(src).map(|t| t.render(&mut velocity_context(), &Limits::default()));
        let ok = match (expect, &got) {
            (Out(want), Ok(Ok(out))) => out == want,
            (Parse, Err(_)) => true,
            (Render, Ok(Err(_))) => true,
            _ => false,
        };
        if !ok {
            let want = match expect {
                Out(w) => format!("{w:?}"),
                Parse => "a parse error".into(),
                Render => "a render error".into(),
            };
            failures.push(format!(
                "{name}: template {src:?}\n   want {want}\n    got {got:?}"
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} cases differ from Velocity 1.7:\n{}",
        failures.len(),
        VELOCITY_CASES.len(),
        failures.join("\n")
    );
}

#[test]
fn there_are_at_least_150_velocity_cases() {
    assert!(VELOCITY_CASES.len() >= 150, "{}", VELOCITY_CASES.len());
}

fn parse_err(src: &str) -> ParseError {
    Template::parse(src).expect_err(src)
}

#[test]
fn parse_errors_name_line_and_column() {
    let e = parse_err("line one\n  #if($a)\n  x\n");
    assert_eq!((e.line, e.column), (2, 3), "{e}");
    assert!(e.message.contains("#if"), "{e}");
    let e = parse_err("ok\nok\n   #end");
    assert_eq!((e.line, e.column), (3, 4), "{e}");
    let e = parse_err("#set($x = [1, 2)");
    assert_eq!((e.line, e.column), (1, 16), "{e}");
    assert!(e.to_string().contains("line 1, column 16"), "{e}");
    let e = parse_err("é€ ${a.b");
    assert_eq!((e.line, e.column), (1, 9), "columns count characters: {e}");
    let e = parse_err("#foreach($i of $list)x#end");
    assert_eq!((e.line, e.column), (1, 13), "{e}");
    let e = parse_err("#set($a.b() = 1)");
    assert!(e.message.contains("method"), "{e}");
    let e = parse_err("#if(true)a#else b#elseif(true)c#end");
    assert_eq!((e.line, e.column), (1, 18), "{e}");
    // Errors inside a double-quoted string point into the template.
    let e = parse_err("#set($x = \"ab #if(\")");
    assert_eq!(e.line, 1, "{e}");
}

#[test]
fn deep_nesting_is_a_parse_error_not_a_crash() {
    let src = format!("#set($x = {}1{})", "(".repeat(5000), ")".repeat(5000));
    let e = parse_err(&src);
    assert!(e.message.contains("nesting"), "{e}");
    let src = "#if(true)".repeat(1000) + &"#end".repeat(1000);
    assert!(parse_err(&src).message.contains("nesting"));
    let src = format!("{}x", "[".repeat(100_000));
    assert!(Template::parse(&format!("#set($a = {src})")).is_err());
}

#[test]
fn method_errors_name_the_method_and_position() {
    let t = Template::parse("ok\n  $s.substring(99)").unwrap();
    let e = t
        .render(&mut velocity_context(), &Limits::default())
        .unwrap_err();
    match e {
        RenderError::Method {
            method,
            line,
            column,
            ..
        } => assert_eq!((method.as_str(), line, column), ("substring", 2, 5)),
        e => panic!("{e:?}"),
    }
}

#[test]
fn step_limit_stops_runaway_templates() {
    let limits = Limits {
        max_steps: 10_000,
        ..Limits::default()
    };
    let t = Template::parse(
        "#foreach($a in [1..1000])#foreach($b in [1..1000])#set($x = $a * $b)#end#end",
    )
    .unwrap();
    let start = Instant::now();
    let e = t.render(&mut Context::new(), &limits).unwrap_err();
    assert_eq!(e, RenderError::TooManySteps { limit: 10_000 });
    assert!(start.elapsed() < Duration::from_secs(2));
}

#[test]
fn output_limit_stops_exponential_strings() {
    let limits = Limits {
        max_output_bytes: 1 << 16,
        ..Limits::default()
    };
    // Each #set doubles the string: 2^40 bytes if unbounded.
    let src = "#set($s = 'xx')".to_string() + &"#set($s = \"$s$s\")".repeat(40) + "$s";
    let e = Template::parse(&src)
        .unwrap()
        .render(&mut Context::new(), &limits)
        .unwrap_err();
    assert_eq!(e, RenderError::OutputTooLarge { limit: 1 << 16 });
    // Plain output too.
    let src = "#foreach($i in [1..1000])0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef0123456789#end";
    let e = Template::parse(src)
        .unwrap()
        .render(&mut Context::new(), &limits)
        .unwrap_err();
    assert_eq!(e, RenderError::OutputTooLarge { limit: 1 << 16 });
    // And values that print huge nested structures.
    let src = "#set($a = [1, 2, 3, 4, 5, 6, 7, 8])".to_string()
        + &"#set($a = [$a, $a, $a, $a, $a, $a, $a, $a])".repeat(12)
        + "$a";
    let e = Template::parse(&src)
        .unwrap()
        .render(&mut Context::new(), &limits)
        .unwrap_err();
    assert_eq!(e, RenderError::OutputTooLarge { limit: 1 << 16 });
}

#[test]
fn comparing_shared_structures_stays_bounded() {
    // $a and $b each double 40 times, sharing their halves: 2^40 leaves if walked naively.
    let src = "#set($a = [1])#set($b = [1])".to_string()
        + &"#set($a = [$a, $a])#set($b = [$b, $b])".repeat(40)
        + "#if($a == $b)eq#else ne#end $a.contains($b) $a.equals($a)";
    let start = Instant::now();
    let out = Template::parse(&src)
        .unwrap()
        .render(&mut Context::new(), &Limits::default())
        .unwrap();
    assert!(
        start.elapsed() < Duration::from_secs(5),
        "{:?}",
        start.elapsed()
    );
    assert!(out.ends_with(" true"), "{out}");
    // Printing a big value again and again to compare it counts as work.
    let src = "#set($big = [1..100000])#foreach($i in [1..1000])#if($big == 'x')#end#end";
    let e = Template::parse(src)
        .unwrap()
        .render(&mut Context::new(), &Limits::default())
        .unwrap_err();
    assert!(matches!(e, RenderError::TooManySteps { .. }), "{e:?}");
}

#[test]
fn foreach_iteration_cap_skips_the_rest_silently() {
    let limits = Limits {
        max_foreach_iterations: 3,
        ..Limits::default()
    };
    let t = Template::parse("#foreach($i in [1..10])$i#if($foreach.hasNext),#end#end").unwrap();
    assert_eq!(t.render(&mut Context::new(), &limits).unwrap(), "1,2,3");
}

#[test]
fn huge_ranges_and_collections_are_refused() {
    let t = Template::parse("#set($r = [1..2000000000])$r.size()").unwrap();
    assert!(matches!(
        t.render(&mut Context::new(), &Limits::default()),
        Err(RenderError::Host(_))
    ));
    let limits = Limits {
        max_collection_len: 50,
        max_foreach_iterations: 1000,
        ..Limits::default()
    };
    let t =
        Template::parse("#set($l = [])#foreach($i in [1..40])$l.add($i)$l.add($i)#end").unwrap();
    assert!(t.render(&mut Context::new(), &limits).is_err());
}

#[test]
fn self_containing_list_prints_without_recursing_forever() {
    let t = Template::parse("#set($l = [1])$l.add($l)$l.size() $l").unwrap();
    let out = t.render(&mut Context::new(), &Limits::default()).unwrap();
    assert!(out.starts_with("true2 [1, [1, [1, "), "{out}");
    assert!(out.contains("..."), "{out}");
    let t = Template::parse("#set($l = [1])$l.add($l)#if($l == $l)same#end").unwrap();
    assert_eq!(
        t.render(&mut Context::new(), &Limits::default()).unwrap(),
        "truesame"
    );
}

#[test]
fn modifying_the_list_being_looped_fails_as_in_java() {
    let t = Template::parse("#foreach($i in $list)$list.add(1)#end").unwrap();
    assert!(
        t.render(&mut velocity_context(), &Limits::default())
            .is_err()
    );
    // Changing it and leaving the loop at once is fine (no further `next()`).
    let t = Template::parse("#foreach($i in $list)$list.add(1)#break#end$list.size()").unwrap();
    assert_eq!(
        t.render(&mut velocity_context(), &Limits::default())
            .unwrap(),
        "true4"
    );
}

#[test]
fn null_mode_api_gateway_prints_nothing_for_missing_values() {
    let t = Template::parse("[$nope][$m.zz][${nope}][$m.get('q')]#if($nope == '')E#end").unwrap();
    let out = t
        .render_with(
            &mut velocity_context(),
            &Limits::default(),
            NullMode::ApiGateway,
        )
        .unwrap();
    assert_eq!(out, "[][][][]E");
    let out = t
        .render(&mut velocity_context(), &Limits::default())
        .unwrap();
    assert_eq!(out, "[$nope][$m.zz][${nope}][$m.get('q')]");
}

#[test]
fn set_variables_remain_in_the_context() {
    let t = Template::parse("#set($out = $n * 2)").unwrap();
    let mut ctx = velocity_context();
    t.render(&mut ctx, &Limits::default()).unwrap();
    assert!(matches!(ctx.get("out"), Some(Value::Int(10))));
}

/// An embedder's object: properties, getters, methods with arguments, failures, setters.
struct Counter {
    n: std::cell::Cell<i64>,
}

impl HostObject for Counter {
    fn property(&self, name: &str) -> Option<Value> {
        (name == "value").then(|| Value::Int(self.n.get()))
    }
    fn call(&self, name: &str, args: &[Value]) -> Result<Option<Value>, String> {
        match (name, args) {
            ("getLabel", []) => Ok(Some(Value::string("counter"))),
            ("add", [Value::Int(i)]) => {
                self.n.set(self.n.get() + i);
                Ok(Some(Value::Int(self.n.get())))
            }
            ("fail", []) => Err("boom".into()),
            _ => Ok(None),
        }
    }
    fn set_property(&self, name: &str, value: Value) -> bool {
        match (name, value) {
            ("value", Value::Int(i)) => {
                self.n.set(i);
                true
            }
            _ => false,
        }
    }
    fn display(&self) -> String {
        format!("Counter({})", self.n.get())
    }
}

struct FailingGetter;

impl HostObject for FailingGetter {
    fn call(&self, name: &str, _args: &[Value]) -> Result<Option<Value>, String> {
        match name {
            "getFail" => Err("getter failed".into()),
            _ => Ok(None),
        }
    }
    fn display(&self) -> String {
        "FailingGetter".into()
    }
}

#[test]
fn host_objects() {
    let mut ctx = Context::new();
    ctx.insert(
        "c",
        Value::Object(std::rc::Rc::new(Counter {
            n: std::cell::Cell::new(1),
        })),
    );
    let t = Template::parse(
        "$c.value $c.label $c.add(2) $c.add(3) $c #set($c.value = 10)$c.value $c.toString() $c.missing $c.nope()",
    )
    .unwrap();
    assert_eq!(
        t.render(&mut ctx, &Limits::default()).unwrap(),
        "1 counter 3 6 Counter(6)10 Counter(10) $c.missing $c.nope()"
    );
    let t = Template::parse("x $c.fail()").unwrap();
    let e = t.render(&mut ctx, &Limits::default()).unwrap_err();
    assert!(
        matches!(e, RenderError::Method { ref message, .. } if message == "boom"),
        "{e:?}"
    );
    // A property whose getter fails names the getter and where the reference starts.
    let t = Template::parse("ok\n  $c.fail").unwrap();
    ctx.insert("c", Value::Object(std::rc::Rc::new(FailingGetter)));
    let e = t.render(&mut ctx, &Limits::default()).unwrap_err();
    assert_eq!(
        e,
        RenderError::Method {
            method: "getFail".into(),
            message: "getter failed".into(),
            line: 2,
            column: 3
        }
    );
}

#[test]
fn templates_are_send_sync_and_render_concurrently() {
    fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<Template>();
    let t = std::sync::Arc::new(
        Template::parse("#foreach($i in [1..50])$i#if($foreach.hasNext),#end#end|$name").unwrap(),
    );
    let handles: Vec<_> = (0..4)
        .map(|k| {
            let t = t.clone();
            std::thread::spawn(move || {
                for _ in 0..50 {
                    let mut ctx = Context::new();
                    ctx.insert("name", Value::string(format!("thread{k}")));
                    let out = t.render(&mut ctx, &Limits::default()).unwrap();
                    assert!(out.ends_with(&format!("49,50|thread{k}")));
                }
            })
        })
        .collect();
    for h in handles {
        h.join().unwrap();
    }
}

#[test]
fn render_helper_reports_both_kinds_of_error() {
    assert!(render("#if(").unwrap_err().starts_with("parse:"));
    assert!(render("$s.charAt(99)").unwrap_err().starts_with("render:"));
    assert_eq!(render("$s.charAt(1)").unwrap(), "e");
}

#[rustfmt::skip]
const VELOCITY_CASES: &[(&str, &str, Expect)] = &[
    (r"plain_text", r"hello world", Out(r"hello world")),
    (r"simple_ref", r"$s", Out(r"Hello World")),
    (r"formal_ref", r"${s}!", Out(r"Hello World!")),
    (r"formal_ref_glued", r"${n}th", Out(r"5th")),
    (r"undefined_literal", r"a $nope b", Out(r"a $nope b")),
    (r"undefined_formal_literal", r"a ${nope} b", Out(r"a ${nope} b")),
    (r"quiet_undefined", r"a $!nope b", Out(r"a  b")),
    (r"quiet_formal_undefined", r"a $!{nope} b", Out(r"a  b")),
    (r"quiet_defined", r"$!s", Out(r"Hello World")),
    (r"undefined_property", r"$m.zz", Out(r"$m.zz")),
    (r"undefined_nested_property", r"$m.a.b.c", Out(r"$m.a.b.c")),
    (r"quiet_method_null", r"[$!m.get('zz')]", Out(r"[]")),
    (r"method_null_literal", r"$m.get('zz')", Out(r"$m.get('zz')")),
    (r"property_of_undefined", r"$nope.foo.bar()", Out(r"$nope.foo.bar()")),
    (r"dollar_alone", r"cost: $ 5", Out(r"cost: $ 5")),
    (r"dollar_digit", r"$1.50", Out(r"$1.50")),
    (r"dollar_dot", r"$.x", Out(r"$.x")),
    (r"double_dollar", r"$$s", Out(r"$Hello World")),
    (r"hyphen_identifier", r"$s-x", Out(r"$s-x")),
    (r"hyphen_property", r"$m.b-", Out(r"$m.b-")),
    (r"trailing_dot", r"$m.a.", Out(r"1.")),
    (r"ref_then_paren_text", r"$s (x)", Out(r"Hello World (x)")),
    (r"unclosed_method_is_text", r"$nope.b(", Out(r"$nope.b(")),
    (r"email_like", r"user@$m.b.com", Out(r"user@$m.b.com")),
    (r"underscore_ident", r"#set($_a_b = 1)$_a_b", Out(r"1")),
    (r"ident_with_digits", r"#set($a1 = 2)$a1", Out(r"2")),
    (r"map_property", r"$m.a and $m.b", Out(r"1 and x")),
    (r"map_get", r"$m.get('a')", Out(r"1")),
    (r"map_index", r"$m['b']", Out(r"x")),
    (r"map_index_var", r"#set($k = 'a')$m[$k]", Out(r"1")),
    (r"list_index", r"$list[0]$list[2]", Out(r"13")),
    (r"list_index_var", r"#set($i = 1)$list[$i]", Out(r"2")),
    (r"list_get", r"$list.get(1)", Out(r"2")),
    (r"nested_access", r"$nested.k.deep[1].x", Out(r"2")),
    (r"nested_access_size", r"$nested.k.deep.size()", Out(r"2")),
    (r"list_size", r"$list.size()", Out(r"3")),
    (r"list_size_no_parens", r"$list.size", Out(r"$list.size")),
    (r"list_empty_property", r"$list.empty $empty.empty", Out(r"false true")),
    (r"map_size", r"$m.size()", Out(r"2")),
    (r"map_keyset", r"$m.keySet()", Out(r"[a, b]")),
    (r"map_values", r"$m.values()", Out(r"[1, x]")),
    (r"map_entryset", r"$m.entrySet()", Out(r"[a=1, b=x]")),
    (r"map_containskey", r"$m.containsKey('a') $m.containsKey('q')", Out(r"true false")),
    (r"map_isempty", r"$m.isEmpty() $emptyMap.isEmpty()", Out(r"false true")),
    (r"map_put_returns_previous", r"$m.put('a', 9) $m", Out(r"1 {a=9, b=x}")),
    (r"map_put_new_null", r"$m.put('z', 5)|$m", Out(r"$m.put('z', 5)|{a=1, b=x, z=5}")),
    (r"map_remove", r"$m.remove('a') $m", Out(r"1 {b=x}")),
    (r"map_putall_void", r"[$m.putAll({'q': 1})] $m", Out(r"[] {a=1, b=x, q=1}")),
    (r"map_get_missing_quiet", r"[$!m.get('missing')]", Out(r"[]")),
    (r"map_tostring", r"$m.toString()", Out(r"{a=1, b=x}")),
    (r"list_tostring", r"$list.toString()", Out(r"[1, 2, 3]")),
    (r"list_add", r"$list.add(4) $list", Out(r"true [1, 2, 3, 4]")),
    (r"list_add_index", r"[$list.add(0, 9)] $list", Out(r"[] [9, 1, 2, 3]")),
    (r"list_remove_index", r"$list.remove(0) $list", Out(r"1 [2, 3]")),
    (r"list_contains", r"$list.contains(2) $list.contains(7) $names.contains('bob')", Out(r"true false true")),
    (r"list_indexof", r"$list.indexOf(3) $names.indexOf('zed')", Out(r"2 -1")),
    (r"list_sublist", r"$list.subList(1, 3)", Out(r"[2, 3]")),
    (r"list_isempty", r"$list.isEmpty() $empty.isEmpty()", Out(r"false true")),
    (r"list_get_out_of_range", r"$list.get(5)", Render),
    (r"list_set", r"$list.set(0, 'x') $list", Out(r"1 [x, 2, 3]")),
    (r"method_wrong_arg_type", r"$list.get('x')", Out(r"$list.get('x')")),
    (r"number_tostring", r"$n.toString() $f.toString()", Out(r"5 1.5")),
    (r"bool_tostring", r"$t.toString()", Out(r"true")),
    (r"equals_method", r"$s.equals('Hello World') $n.equals(5) $n.equals('5')", Out(r"true true false")),
    (r"str_length", r"$s.length()", Out(r"11")),
    (r"str_substring1", r"$s.substring(6)", Out(r"World")),
    (r"str_substring2", r"$s.substring(0, 5)", Out(r"Hello")),
    (r"str_substring_oob", r"$s.substring(20)", Render),
    (r"str_indexof", r"$s.indexOf('o') $s.indexOf('o', 5) $s.indexOf('z')", Out(r"4 7 -1")),
    (r"str_lastindexof", r"$s.lastIndexOf('o') $s.lastIndexOf('o', 5)", Out(r"7 4")),
    (r"str_replace", r"$s.replace('l', 'L')", Out(r"HeLLo WorLd")),
    (r"str_replaceall", r"$s.replaceAll('[aeiou]', '_')", Out(r"H_ll_ W_rld")),
    (r"str_replaceall_group", r"$s.replaceAll('(o)', '<$1>')", Out(r"Hell<o> W<o>rld")),
    (r"str_replacefirst", r"$s.replaceFirst('o', '0')", Out(r"Hell0 World")),
    (r"str_lower_upper", r"$s.toLowerCase() $s.toUpperCase()", Out(r"hello world HELLO WORLD")),
    (r"str_trim", r"[$sp.trim()]", Out(r"[pad]")),
    (r"str_split", r"$s.split(' ')[1] $s.split('o').size()", Out(r"World 3")),
    (r"str_split_trailing", r"#set($p = 'a,b,,')$p.split(',').size()", Out(r"2")),
    (r"str_matches", r"$s.matches('H.*d') $s.matches('World')", Out(r"true false")),
    (r"str_contains", r"$s.contains('World') $s.contains('world')", Out(r"true false")),
    (r"str_starts_ends", r"$s.startsWith('He') $s.endsWith('ld') $s.startsWith('x')", Out(r"true true false")),
    (r"str_equalsignorecase", r"$s.equalsIgnoreCase('HELLO WORLD')", Out(r"true")),
    (r"str_isempty", r"$s.isEmpty() $e.isEmpty()", Out(r"false true")),
    (r"str_charat", r"$s.charAt(4)", Out(r"o")),
    (r"str_concat", r"$s.concat('!')", Out(r"Hello World!")),
    (r"str_chain", r"$s.toLowerCase().replace(' ', '-').length()", Out(r"11")),
    (r"str_method_on_literal", r"#set($x = 'abc'.toUpperCase())$x", Parse),
    (r"str_escape_quote_regex", r#"#set($x = "it's")$x.replaceAll("'", "''")"#, Out(r"it''s")),
    (r"num_string_compare", r"#if($num == 42)eq#else ne#end", Out(r"eq")),
    (r"set_string", r"#set($x = 'v')$x", Out(r"v")),
    (r"set_int", r"#set($x = 42)$x", Out(r"42")),
    (r"set_negative", r"#set($x = -42)$x", Out(r"-42")),
    (r"set_float", r"#set($x = 2.50)$x", Out(r"2.5")),
    (r"set_bool", r"#set($x = true)$x", Out(r"true")),
    (r"set_list", r"#set($x = [1, 'two', 3.0])$x", Out(r"[1, two, 3.0]")),
    (r"set_empty_list", r"#set($x = [])$x $x.size()", Out(r"[] 0")),
    (r"set_map", r"#set($x = {'a': 1, 'b': [2]})$x $x.b", Out(r"{a=1, b=[2]} [2]")),
    (r"set_empty_map", r"#set($x = {})$x", Out(r"{}")),
    (r"set_range", r"#set($x = [1..4])$x", Out(r"[1, 2, 3, 4]")),
    (r"set_range_desc", r"#set($x = [3..-1])$x", Out(r"[3, 2, 1, 0, -1]")),
    (r"set_range_refs", r"#set($a = 2)#set($b = 4)#set($x = [$a..$b])$x", Out(r"[2, 3, 4]")),
    (r"set_null_keeps_old", r"#set($x = 'old')#set($x = $nope)$x", Out(r"old")),
    (r"set_null_undefined_stays", r"#set($x = $nope)$x", Out(r"$x")),
    (r"set_copy_ref", r"#set($x = $list)$x.add(9)$list", Out(r"true[1, 2, 3, 9]")),
    (r"set_map_property", r"#set($m.c = 3)$m", Out(r"{a=1, b=x, c=3}")),
    (r"set_nested_map_property", r"#set($x = {})#set($x.a = {})#set($x.a.b = 'c')$x", Out(r"{a={b=c}}")),
    (r"set_list_index", r"#set($list[1] = 'two')$list", Out(r"[1, two, 3]")),
    (r"set_map_index", r"#set($m['k'] = 'v')$m", Out(r"{a=1, b=x, k=v}")),
    (r"set_property_of_null_ignored", r"#set($nope.a = 1)$nope", Out(r"$nope")),
    (r"set_spaces", r"#set( $x = 1 )$x", Out(r"1")),
    (r"set_space_before_paren", r"#set ($x = 1)$x", Out(r"1")),
    (r"set_no_spaces", r"#set($x=1)$x", Out(r"1")),
    (r"set_in_string", r#"#set($x = "n=$n")$x"#, Out(r"n=5")),
    (r"set_string_concat", r"#set($x = $s + '!')$x", Out(r"Hello World!")),
    (r"set_multiline_map", r"#set($x = {
  'a': 1,
  'b': 2
})$x", Out(r"{a=1, b=2}")),
    (r"set_expression_bool", r"#set($x = 1 < 2)$x", Out(r"true")),
    (r"set_not", r"#set($x = !$t)$x", Out(r"false")),
    (r"dq_interpolation", r#"#set($x = "a $s b")$x"#, Out(r"a Hello World b")),
    (r"dq_undefined_literal", r#"#set($x = "a $nope b")$x"#, Out(r"a $nope b")),
    (r"dq_quiet", r#"#set($x = "a $!nope b")$x"#, Out(r"a  b")),
    (r"sq_no_interpolation", r"#set($x = 'a $s b')$x", Out(r"a $s b")),
    (r"dq_doubled_quote", r#"#set($x = "say ""hi""")$x"#, Out(r#"say "hi""#)),
    (r"sq_doubled_quote", r"#set($x = 'it''s')$x", Out(r"it's")),
    (r"dq_directive_inside", r##"#set($x = "#if($t)yes#{else}no#end")$x"##, Out(r"yes")),
    (r"dq_backslash_literal", r#"#set($x = "a\nb")$x"#, Out(r"a\nb")),
    (r"dq_formal_ref", r#"#set($x = "${n}px")$x"#, Out(r"5px")),
    (r"dq_method_inside", r#"#set($x = "len=$s.length()")$x"#, Out(r"len=11")),
    (r"dq_arg_interpolated", r#"$m.get("$m.b")|$m.get("${m.b}a")|#set($k = "b")$m.get("$k")"#, Out(r#"$m.get("$m.b")|$m.get("${m.b}a")|x"#)),
    (r"add_int", r"#set($x = 2 + 3)$x", Out(r"5")),
    (r"sub_int", r"#set($x = 2 - 5)$x", Out(r"-3")),
    (r"mul_int", r"#set($x = 6 * 7)$x", Out(r"42")),
    (r"div_int_truncates", r"#set($x = 7 / 2)$x", Out(r"3")),
    (r"div_negative_truncates", r"#set($x = -7 / 2)$x", Out(r"-3")),
    (r"mod_int", r"#set($x = 7 % 3)$x", Out(r"1")),
    (r"div_by_zero_null", r"#set($x = 1 / 0)$x", Out(r"$x")),
    (r"mod_by_zero_null", r"#set($x = 1 % 0)$x", Out(r"$x")),
    (r"int_overflow_widens", r"#set($x = 2147483647 + 1)$x", Out(r"2147483648")),
    (r"float_add", r"#set($x = 1.5 + 1)$x", Out(r"2.5")),
    (r"float_div", r"#set($x = 10 / 4.0)$x", Out(r"2.5")),
    (r"float_mul_integral", r"#set($x = 1.5 * 2)$x", Out(r"3.0")),
    (r"float_precision", r"#set($x = 0.1 + 0.2)$x", Out(r"0.30000000000000004")),
    (r"float_large_sci", r"#set($x = 1.0E10 * 1000)$x", Out(r"1.0E13")),
    (r"float_small_sci", r"#set($x = 0.0001 * 1)$x", Out(r"1.0E-4")),
    (r"float_1e7", r"#set($x = 10000000.0)$x", Out(r"1.0E7")),
    (r"float_below_1e7", r"#set($x = 9999999.5)$x", Out(r"9999999.5")),
    (r"precedence", r"#set($x = 2 + 3 * 4)$x", Out(r"14")),
    (r"parens", r"#set($x = (2 + 3) * 4)$x", Out(r"20")),
    (r"arith_refs", r"#set($x = $n * $n - $list.size())$x", Out(r"22")),
    (r"string_plus_int", r"#set($x = 'a' + 1)$x", Out(r"a1")),
    (r"int_plus_string", r"#set($x = 1 + 'a')$x", Out(r"1a")),
    (r"null_plus_int", r"#set($x = 'keep')#set($x = $nope + 1)$x", Out(r"keep")),
    (r"string_minus_null", r"#set($x = 'keep')#set($x = 'a' - 1)$x", Out(r"keep")),
    (r"float_mod", r"#set($x = 10 % 4.5)$x", Out(r"1.0")),
    (r"float_zero", r"#set($x = 1 - 1.0)$x", Out(r"0.0")),
    (r"counter_loop", r"#set($c = 0)#foreach($i in [1..5])#set($c = $c + $i)#end$c", Out(r"15")),
    (r"eq_strings", r"#if('a' == 'a')Y#end", Out(r"Y")),
    (r"eq_int_float", r"#if(1 == 1.0)Y#end", Out(r"Y")),
    (r"eq_string_int_tostring", r"#if('1' == 1)Y#end", Out(r"Y")),
    (r"eq_string_float_tostring", r"#if('1' == 1.0)Y#else N#end", Out(r" N")),
    (r"eq_bool_string", r"#if(true == 'true')Y#end", Out(r"Y")),
    (r"eq_list_string", r"#if($list == '[1, 2, 3]')Y#end", Out(r"Y")),
    (r"eq_list_list", r"#if($list == [1, 2, 3])Y#end", Out(r"Y")),
    (r"eq_null_null", r"#if($nope == $nope2)Y#end", Out(r"Y")),
    (r"eq_null_empty", r"#if($nope == '')Y#else N#end", Out(r" N")),
    (r"ne", r"#if(1 != 2)Y#end #if('a' != 'a')X#else N#end", Out(r"Y  N")),
    (r"lt_gt", r"#if(1 < 2 && 3 > 2)Y#end", Out(r"Y")),
    (r"le_ge", r"#if(2 <= 2 && 2 >= 3)Y#else N#end", Out(r" N")),
    (r"word_ops", r"#if(1 lt 2 and 2 le 2 and 3 gt 2 and 3 ge 3 and 1 ne 2 and 1 eq 1)Y#end", Out(r"Y")),
    (r"string_lt_false", r"#if('a' < 'b')Y#else N#end", Out(r" N")),
    (r"mixed_lt_false", r"#if(1 < 'a')Y#else N#end", Out(r" N")),
    (r"and_or", r"#if(false || true && true)Y#end", Out(r"Y")),
    (r"or_word", r"#if($nope or $t)Y#end", Out(r"Y")),
    (r"not_bang", r"#if(!$nope)Y#end", Out(r"Y")),
    (r"not_word", r"#if(not $t)X#else N#end", Out(r" N")),
    (r"not_not", r"#if(!!$t)Y#end", Out(r"Y")),
    (r"if_undefined_false", r"#if($nope)X#else N#end", Out(r" N")),
    (r"if_empty_string_ref_true", r"#if($e)Y#else N#end", Out(r"Y")),
    (r"if_zero_ref_true", r"#set($z = 0)#if($z)Y#else N#end", Out(r"Y")),
    (r"if_false_ref", r"#set($z = false)#if($z)Y#else N#end", Out(r" N")),
    (r"if_string_literal_false", r"#if('x')Y#else N#end", Out(r" N")),
    (r"if_int_literal_false", r"#if(1)Y#else N#end", Out(r" N")),
    (r"if_list_ref_true", r"#if($empty)Y#else N#end", Out(r"Y")),
    (r"if_method_result", r"#if($s.startsWith('H'))Y#end", Out(r"Y")),
    (r"if_eq_method", r"#if($list.size() == 3)Y#end", Out(r"Y")),
    (r"if_true", r"#if(true)yes#end", Out(r"yes")),
    (r"if_false", r"[#if(false)yes#end]", Out(r"[]")),
    (r"if_else", r"#if(false)a#else b#end", Out(r" b")),
    (r"elseif_chain", r"#set($v = 2)#if($v == 1)one#elseif($v == 2)two#elseif($v == 3)three#else other#end", Out(r"two")),
    (r"elseif_last", r"#set($v = 5)#if($v == 1)one#elseif($v == 2)two#else other#end", Out(r" other")),
    (r"braced_directives", r"#{if}(true)X#{else}Y#{end}", Out(r"X")),
    (r"braced_else_glued", r"#if(false)a#{else}b#end", Out(r"b")),
    (r"if_space_before_paren", r"#if (true)Y#end", Out(r"Y")),
    (r"if_spaces_inside", r"#if( $t )Y#end", Out(r"Y")),
    (r"nested_if", r"#if(true)#if(false)a#else b#end#end", Out(r" b")),
    (r"if_multiline_cond", r"#if($t &&
 $n == 5)Y#end", Out(r"Y")),
    (r"foreach_list", r"#foreach($i in $list)$i,#end", Out(r"1,2,3,")),
    (r"foreach_literal", r"#foreach($i in ['a', 'b'])[$i]#end", Out(r"[a][b]")),
    (r"foreach_range", r"#foreach($i in [1..3])$i#end", Out(r"123")),
    (r"foreach_range_desc", r"#foreach($i in [3..1])$i#end", Out(r"321")),
    (r"foreach_index_count", r"#foreach($i in $names)$foreach.index:$foreach.count #end", Out(r"0:1 1:2 2:3 ")),
    (r"foreach_hasnext", r"#foreach($i in $names)$i#if($foreach.hasNext), #end#end", Out(r"ann, bob, cy")),
    (r"foreach_first_last", r"#foreach($i in $list)$foreach.first/$foreach.last #end", Out(r"true/false false/false false/true ")),
    (r"foreach_velocitycount", r"#foreach($i in $names)$velocityCount#end", Out(r"123")),
    (r"foreach_velocitycount_outside", r"$velocityCount", Out(r"$velocityCount")),
    (r"foreach_var_restored_undefined", r"#foreach($x in [1])#end$x", Out(r"$x")),
    (r"foreach_var_restored_value", r"#set($x = 9)#foreach($x in [1, 2])$x#end $x", Out(r"12 9")),
    (r"foreach_map_values", r"#foreach($v in $m)$v #end", Out(r"1 x ")),
    (r"foreach_keyset", r"#foreach($k in $m.keySet())$k=$m.get($k);#end", Out(r"a=1;b=x;")),
    (r"foreach_entryset", r"#foreach($e in $m.entrySet())$e.key:$e.value #end", Out(r"a:1 b:x ")),
    (r"foreach_null_nothing", r"[#foreach($i in $nope)x#end]", Out(r"[]")),
    (r"foreach_string_nothing", r"[#foreach($c in 'abc')$c#end]", Out(r"[]")),
    (r"foreach_empty", r"[#foreach($i in $empty)x#end]", Out(r"[]")),
    (r"foreach_nested", r"#foreach($a in [1, 2])#foreach($b in ['x', 'y'])$a$b#end;#end", Out(r"1x1y;2x2y;")),
    (r"foreach_nested_index", r"#foreach($a in [1, 2])#foreach($b in [1, 2])$foreach.index#end|$foreach.index #end", Out(r"01|0 01|1 ")),
    (r"foreach_parent", r"#foreach($a in [1, 2])#foreach($b in [1, 2])$foreach.parent.index$foreach.index #end#end", Out(r"00 01 10 11 ")),
    (r"foreach_parent_top_literal", r"#foreach($a in [1])$foreach.parent#end", Out(r"$foreach.parent")),
    (r"foreach_break", r"#foreach($i in [1..5])#if($i == 3)#break#end$i#end", Out(r"12")),
    (r"foreach_break_inner_only", r"#foreach($i in [1..3])#foreach($j in [1..3])#if($j == 2)#break#end$i$j #end#end", Out(r"11 21 31 ")),
    (r"foreach_set_global", r"#foreach($i in [1, 2])#set($last = $i)#end$last", Out(r"2")),
    (r"foreach_nested_objects", r"#foreach($d in $nested.k.deep)x=$d.x #end", Out(r"x=1 x=2 ")),
    (r"foreach_modify_copy", r"#foreach($i in $list)#if($i == 1)$list.add(4)#end$i#end $list", Render),
    (r"foreach_space_paren", r"#foreach ($i in [1])$i#end", Out(r"1")),
    (r"foreach_in_spaces", r"#foreach( $i   in   $list )$i#end", Out(r"123")),
    (r"stop", r"a#stop b", Out(r"a")),
    (r"stop_in_loop", r"#foreach($i in [1..3])$i#if($i == 2)#stop#end#end after", Out(r"12")),
    (r"break_top_level", r"a#break b", Out(r"a")),
    (r"line_comment", r"a ## comment
b", Out(r"a b")),
    (r"line_comment_eof", r"a ## comment", Out(r"a ")),
    (r"block_comment", r"a #* x
y *# b", Out(r"a  b")),
    (r"block_comment_keeps_newline", r"a #* x *#
b", Out(r"a 
b")),
    (r"indented_line_comment", r"x
   ## c
y", Out(r"x
   y")),
    (r"double_hash_in_text", r"a##b
c", Out(r"ac")),
    (r"literal_block", r"#[[ $s #if(x) ]]# $s", Out(r" $s #if(x)  Hello World")),
    (r"comment_in_directive_line", r"#if(true)## c
Y#end", Out(r"Y")),
    (r"escape_defined", r"\$s", Out(r"$s")),
    (r"escape_undefined", r"\$nope", Out(r"\$nope")),
    (r"escape_double_defined", r"\\$s", Out(r"\Hello World")),
    (r"escape_double_undefined", r"\\$nope", Out(r"\\$nope")),
    (r"escape_triple_defined", r"\\\$s", Out(r"\$s")),
    (r"escape_formal", r"\${s}", Out(r"${s}")),
    (r"escape_quiet_undefined", r"\$!nope", Out(r"\$!nope")),
    (r"escape_directive", r"\#if(true)x\#end", Out(r"#if(true)x#end")),
    (r"escape_set", r"\#set($x = 1)", Out(r"#set($x = 1)")),
    (r"escape_double_directive", r"\\#if(true)x#end", Out(r"\x")),
    (r"backslash_text", r"a\b c\\d", Out(r"a\b c\\d")),
    (r"hash_text", r"#1 and # and #x and", Out(r"#1 and # and #x and")),
    (r"unknown_directive_text", r"#foo bar", Out(r"#foo bar")),
    (r"hash_before_brace", r"#{ x", Out(r"#{ x")),
    (r"ws_set_line", r"#set($x = 1)
next", Out(r"next")),
    (r"ws_set_trailing_spaces", r"#set($x = 1)   
next", Out(r"next")),
    (r"ws_set_text_after", r"#set($x = 1)  text", Out(r"  text")),
    (r"ws_set_indented", r"  #set($x = 1)
next", Out(r"next")),
    (r"ws_if_block_lines", r"#if(true)
A
#else
B
#end
end", Out(r"A
end")),
    (r"ws_if_indented", r"  #if(true)
  a
  #else
  b
  #end
x", Out(r"    a
  x")),
    (r"ws_foreach_lines", r"#foreach($i in [1, 2])
  item $i
#end
done", Out(r"  item 1
  item 2
done")),
    (r"ws_inline", r"#if(true) A #else B #end|", Out(r" A |")),
    (r"ws_end_trailing_space", r"#if(true)a#end  
b", Out(r"ab")),
    (r"ws_else_trailing", r"#if(false)a#else  
b#end", Out(r"b")),
    (r"ws_elseif_line", r"#if(false)
a
#elseif(true)
b
#end
", Out(r"b
")),
    (r"ws_crlf", "#set($x = 1)\r\nA\r\n#if(true)\r\nB\r\n#end\r\nC", Out("A\r\nB\r\nC")),
    (r"ws_break_line", r"#foreach($i in [1, 2])
$i
#break
#end
z", Out(r"1
z")),
    (r"ws_stop_line", r"a
#stop
b", Out(r"a
")),
    (r"ws_json_foreach", r#"[
#foreach($i in $list)
  {"v": $i}#if($foreach.hasNext),#end

#end
]"#, Out(r#"[
  {"v": 1},
  {"v": 2},
  {"v": 3}
]"#)),
    (r"ws_comment_line", r"a
## c
b", Out(r"a
b")),
    (r"ws_directive_middle", r"x #set($a = 1) y
z", Out(r"x  y
z")),
    (r"tpl_passthrough", r#"#set($allParams = {'path': {'id': '1'}, 'querystring': {'a': 'x', 'b': 'y'}, 'header': {}})
{
"params" : {
#foreach($type in $allParams.keySet())
    #set($params = $allParams.get($type))
"$type" : {
    #foreach($paramName in $params.keySet())
    "$paramName" : "$params.get($paramName)"
        #if($foreach.hasNext),#end
    #end
}
    #if($foreach.hasNext),#end
#end
}
}"#, Out(r#"{
"params" : {
"path" : {
        "id" : "1"
            }
    ,"querystring" : {
        "a" : "x"
        ,        "b" : "y"
            }
    ,"header" : {
    }
    }
}"#)),
    (r"tpl_nested_json", r#"{
  "items": [
  #foreach($d in $nested.k.deep)
    {"x": $d.x, "sq": #set($sq = $d.x * $d.x)$sq}#if($foreach.hasNext),#end
  #end
  ]
}"#, Out(r#"{
  "items": [
      {"x": 1, "sq": 1},      {"x": 2, "sq": 4}    ]
}"#)),
    (r"tpl_if_chain_lines", r"#set($v = 'b')
#if($v == 'a')
  A
#elseif($v == 'b')
  B
#else
  C
#end
end", Out(r"  B
end")),
    (r"tpl_set_in_if_indented", r"#if(true)
    #set($x = 'in')
    x=$x
#end", Out(r"    x=in
")),
    (r"tpl_tabs", "\t#set($x = 1)\n\t#if($x == 1)\n\tone\n\t#end\n", Out("\t\tone\n\t")),
    (r"tpl_comment_lines", r"## header comment
#set($x = 1)
#* block
 comment *#
value: $x
## trailing", Out(r"
value: 1
")),
    (r"tpl_foreach_inline_join", r##"[#foreach($n in $names)"$n"#if($foreach.hasNext), #end#end]"##, Out(r#"["ann", "bob", "cy"]"#)),
    (r"tpl_quiet_in_json", r#"{"a": "$!nope", "b": "$!{m.b}", "c": $!m.zz}"#, Out(r#"{"a": "", "b": "x", "c": }"#)),
    (r"tpl_map_building", r#"#set($out = {})
#foreach($k in $m.keySet())
#set($_ = $out.put("k_$k", $m.get($k)))
#end
$out"#, Out(r"{k_a=1, k_b=x}")),
    (r"tpl_list_building", r"#set($out = [])
#foreach($i in [1..4])
  #if($i % 2 == 0)
    #set($_ = $out.add($i))
  #end
#end
$out", Out(r"            [2, 4]")),
    (r"tpl_string_building", r#"#set($acc = '')
#foreach($n in $names)
#set($acc = "$acc$n.toUpperCase()")
#end
$acc"#, Out(r"ANNBOBCY")),
    (r"tpl_escaped_json_quotes", r#"{"msg": "$s.replace('o', '\\"')"}"#, Out(r#"{"msg": "Hell\\" W\\"rld"}"#)),
    (r"tpl_directive_after_text_same_line", r"a #if(true)b#end c
  #foreach($i in [1])d#end e", Out(r"a b c
  d e")),
    (r"tpl_nested_foreach_break", r"#foreach($a in [1..3])
#foreach($b in [1..3])
#if($b > $a)#break#end
$a$b
#end
#end", Out(r"11
21
22
31
32
33
")),
    (r"tpl_elseif_indented", r"  #if(false)
  a
  #elseif(true)
  b
  #end
", Out(r"    b
  ")),
    (r"tpl_crlf_json", "{\r\n#foreach($i in $list)\r\n  \"k$i\": $i#if($foreach.hasNext),#end\r\n\r\n#end\r\n}", Out("{\r\n  \"k1\": 1,\r\n  \"k2\": 2,\r\n  \"k3\": 3\r\n}")),
    (r"err_unclosed_if", r"#if(true)
abc", Parse),
    (r"err_unclosed_foreach", r"line1
#foreach($i in $list)", Parse),
    (r"err_stray_end", r"a
 #end", Parse),
    (r"err_stray_else", r"#else", Parse),
    (r"err_if_no_paren", r"#if true", Parse),
    (r"err_unclosed_formal", r"${s", Parse),
    (r"err_bad_expr", r"#set($x = )", Parse),
    (r"err_unterminated_string", r"#set($x = 'abc)", Parse),
    (r"err_unclosed_comment", r"a #* never closed", Out(r"a ")),
    (r"err_if_eof", r"#if(", Parse),
    (r"err_set_no_ref", r"#set(x = 1)", Parse),
    (r"err_double_else", r"#if(true)a#else b#else c#end", Parse),
];
