//! Garbage and hostile templates: parse + render must answer `Ok` or `Err` — never panic,
//! hang or exhaust memory. Deterministic pseudo-random generation so a failure reproduces.

use std::time::{Duration, Instant};

use apigw_vtl::aws::{AwsInput, render};
use apigw_vtl::{Context, Limits, Template, Value};

/// xorshift64*: small, deterministic, no dependency.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

const FRAGMENTS: &[&str] = &[
    "#if(",
    "#elseif(",
    "#else",
    "#end",
    "#foreach($i in ",
    "#set($x = ",
    "#set($x.a = ",
    "#break",
    "#stop",
    "#{if}",
    "#{end}",
    ")",
    "(",
    "[",
    "]",
    "{",
    "}",
    "..",
    ",",
    ":",
    "$",
    "$!",
    "${",
    "$x",
    "$x.add($x)",
    "$x$x",
    "\"$x$x\"",
    "$i",
    "$foreach.index",
    "$foreach.hasNext",
    "$velocityCount",
    "$list",
    "$m.keySet()",
    "$s.replaceAll('(a+)+', '$1')",
    "$s.split('')",
    "$s.substring(",
    "[1..100000]",
    "[1..1000]",
    "#*",
    "*#",
    "##",
    "#[[",
    "]]#",
    "\\",
    "\\\\$x",
    "'",
    "\"",
    " ",
    "\n",
    "\r\n",
    "\t",
    "1",
    "-1",
    "2147483647",
    "0.5",
    "1.0E308",
    "true",
    "false",
    "&&",
    "||",
    "!",
    "==",
    "!=",
    "<",
    ">=",
    "+",
    "-",
    "*",
    "/",
    "%",
    " and ",
    " not ",
    "$input.path('$')",
    "$input.json('$..*')",
    "$input.params()",
    "$util.parseJson($s)",
    "$util.base64Decode(",
    "$context.responseOverride.status",
    "é",
    "😀",
    "\u{0}",
    "x",
    "abc",
    "$m.put('k', $m)",
    "$m",
    "$list.add($list)",
    "#set($m = {",
    "#set($list = [",
];

fn generate(rng: &mut Rng) -> String {
    let n = 1 + rng.below(40);
    let mut s = String::new();
    for _ in 0..n {
        if rng.below(10) == 0 {
            // A random character, sometimes outside ASCII.
            let c = char::from_u32((rng.next() % 0x3000) as u32).unwrap_or('?');
            s.push(c);
        } else {
            s.push_str(FRAGMENTS[rng.below(FRAGMENTS.len())]);
        }
    }
    s
}

fn limits() -> Limits {
    Limits {
        max_output_bytes: 256 * 1024,
        max_steps: 50_000,
        max_collection_len: 20_000,
        ..Limits::default()
    }
}

fn context() -> Context {
    let mut ctx = Context::new();
    ctx.insert(
        "s",
        Value::string("aaaaaaaaaaaaaaaaaaaaaaaaaaaab{\"a\":[1,2]}"),
    );
    ctx.insert(
        "list",
        Value::list(vec![Value::Int(1), Value::string("two")]),
    );
    ctx.insert(
        "m",
        Value::map_from([("a", Value::Int(1)), ("b", Value::string("x"))]),
    );
    ctx
}

#[test]
fn random_templates_never_panic_or_hang() {
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    let input = AwsInput {
        body: r#"{"a":[1,{"b":"c"}],"s":"aaaa"}"#.into(),
        ..AwsInput::default()
    };
    let (mut parsed, mut rendered_ok) = (0, 0);
    let started = Instant::now();
    for case in 0..3000 {
        let src = generate(&mut rng);
        let t0 = Instant::now();
        if let Ok(t) = Template::parse(&src) {
            parsed += 1;
            if t.render(&mut context(), &limits()).is_ok() {
                rendered_ok += 1;
            }
            let _ = render(&t, &input, &limits());
        }
        assert!(
            t0.elapsed() < Duration::from_secs(5),
            "case {case} took {:?}: {src:?}",
            t0.elapsed()
        );
    }
    // The generator must exercise the renderer, not only the parser's error paths.
    assert!(parsed > 300, "only {parsed} of 3000 parsed");
    assert!(rendered_ok > 100, "only {rendered_ok} rendered");
    assert!(started.elapsed() < Duration::from_secs(120));
}

const ALPHABET: &[u8] = b"$#!{}()[]\\\"'.*=<>&|-+0123456789abcdefinset \n";

#[test]
fn random_bytes_never_panic() {
    let mut rng = Rng(42);
    for _ in 0..2000 {
        let len = rng.below(200);
        let bytes: Vec<u8> = (0..len)
            .map(|_| ALPHABET[rng.below(ALPHABET.len())])
            .collect();
        let src = String::from_utf8_lossy(&bytes);
        if let Ok(t) = Template::parse(&src) {
            let _ = t.render(&mut context(), &limits());
        }
    }
}

#[test]
fn pathological_templates_parse_in_bounded_time() {
    let cases = [
        "$a.b(".repeat(20_000),
        "$a[".repeat(20_000),
        "$a.b(\"$a.b(".repeat(5_000),
        "#set($x = [".repeat(5_000),
        "${a.b(".repeat(5_000),
        "\\".repeat(100_000) + "$x",
        "#if(true)".repeat(150) + &"#end".repeat(150),
        "$!{".repeat(20_000),
        "#*".repeat(20_000),
        "##\n".repeat(50_000),
    ];
    for src in cases {
        let start = Instant::now();
        if let Ok(t) = Template::parse(&src) {
            let _ = t.render(&mut context(), &limits());
        }
        assert!(
            start.elapsed() < Duration::from_secs(3),
            "{:?}… took {:?}",
            &src[..20.min(src.len())],
            start.elapsed()
        );
    }
}

#[test]
fn expensive_methods_in_loops_run_out_of_steps() {
    let steps = Limits {
        max_steps: 200_000,
        ..Limits::default()
    };
    let big = "é".repeat(500_000); // 1 MB, not ASCII: length() walks it
    let mut ctx = Context::new();
    ctx.insert("big", Value::string(big.as_str()));
    ctx.insert("list", Value::list((0..100_000).map(Value::Int).collect()));
    for src in [
        "#foreach($i in [1..1000])#foreach($j in [1..1000])$big.length()#end#end",
        "#foreach($i in [1..1000])#foreach($j in [1..1000])$list.contains(-1)#end#end",
        "#foreach($i in [1..1000])#foreach($j in [1..1000])$big.indexOf('x')#end#end",
    ] {
        let start = Instant::now();
        let r = Template::parse(src)
            .unwrap()
            .render(&mut ctx, &Limits::default());
        assert!(
            matches!(r, Err(apigw_vtl::RenderError::TooManySteps { .. })),
            "{src}: {r:?}"
        );
        assert!(
            start.elapsed() < Duration::from_secs(5),
            "{src}: {:?}",
            start.elapsed()
        );
    }
    // The same through API Gateway's objects: re-reading a big body is work too.
    let body = format!("[{}]", vec!["1"; 200_000].join(","));
    let input = AwsInput {
        body,
        ..AwsInput::default()
    };
    for src in [
        "#foreach($i in [1..1000])#foreach($j in [1..1000])$input.path('$').size()#end#end",
        "#foreach($i in [1..1000])#foreach($j in [1..1000])#set($x = $util.base64Encode($input.body))#end#end",
    ] {
        let start = Instant::now();
        let r = render(&Template::parse(src).unwrap(), &input, &steps);
        assert!(
            matches!(r, Err(apigw_vtl::RenderError::TooManySteps { .. })),
            "{src}: {r:?}"
        );
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "{src}: {:?}",
            start.elapsed()
        );
    }
}
