//! Parser and renderer on arbitrary input: the first NUL-separated part is the template,
//! the second the request body. Any panic is a bug; errors are fine.
#![no_main]

use apigw_vtl::aws::{AwsInput, render};
use apigw_vtl::{Context, Limits, Template, Value};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let (template, body) = text.split_once('\0').unwrap_or((&text, r#"{"a":[1,{"b":"c"}]}"#));
    let Ok(t) = Template::parse(template) else {
        return;
    };
    let limits = Limits {
        max_output_bytes: 1 << 20,
        max_steps: 100_000,
        max_collection_len: 10_000,
        ..Limits::default()
    };
    let mut ctx = Context::new();
    ctx.insert("list", Value::list(vec![Value::Int(1), Value::string("x")]));
    ctx.insert("s", Value::string(body));
    let _ = t.render(&mut ctx, &limits);
    let input = AwsInput {
        body: body.to_string(),
        query: vec![("q".into(), "v".into())],
        ..AwsInput::default()
    };
    let _ = render(&t, &input, &limits);
});
