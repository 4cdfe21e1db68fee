//! Render time of a typical response mapping template (PetStore-like, ~20 lines, `#foreach`
//! over 10 items), parsed once and rendered per iteration the way the data plane will: a
//! fresh `$input` over the backend's body each time (the body's JSON is parsed per render).
//!
//! `cargo bench -p apigw-vtl --bench render`

use criterion::{Criterion, criterion_group, criterion_main};
use std::hint::black_box;

use apigw_vtl::aws::{AwsInput, render};

// The allocator of the `apigw` binary, which will run these renders.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;
use apigw_vtl::{Limits, Template};

const TEMPLATE: &str = r#"#set($inputRoot = $input.path('$'))
#set($count = $inputRoot.pets.size())
{
  "requestId": "$context.requestId",
  "stage": "$stageVariables.env",
  "total": $count,
  "pets": [
#foreach($pet in $inputRoot.pets)
    {
      "id": $pet.id,
      "name": "$util.escapeJavaScript($pet.name)",
      "kind": "$pet.type.toUpperCase()",
      "price": $pet.price,
#if($pet.price > 100)
      "tier": "premium",
#else
      "tier": "standard",
#end
      "link": "/pets/$pet.id?page=$input.params('page')"
    }#if($foreach.hasNext),#end
#end
  ]
}
"#;

fn input() -> AwsInput {
    let pets: Vec<String> = (1..=10)
        .map(|i| {
            format!(
                r#"{{"id":{i},"name":"pet {i}","type":"{}","price":{}.99}}"#,
                if i % 2 == 0 { "dog" } else { "cat" },
                40 * i
            )
        })
        .collect();
    AwsInput {
        body: format!(r#"{{"pets":[{}]}}"#, pets.join(",")),
        query: vec![("page".into(), "2".into())],
        context: serde_json::json!({"requestId": "c6af9ac6-7b61-11e6-9a41-93e8deadbeef"}),
        stage_variables: vec![("env".into(), "prod".into())],
        ..AwsInput::default()
    }
}

fn bench(c: &mut Criterion) {
    let t = Template::parse(TEMPLATE).expect("template parses");
    let input = input();
    let limits = Limits::default();
    let out = render(&t, &input, &limits).expect("renders");
    assert!(out.body.contains(r#""tier": "premium""#));
    c.bench_function("petstore_response_10_items", |b| {
        b.iter(|| render(black_box(&t), black_box(&input), &limits).unwrap())
    });
    c.bench_function("parse_petstore_template", |b| {
        b.iter(|| Template::parse(black_box(TEMPLATE)).unwrap())
    });
}

criterion_group!(benches, bench);
criterion_main!(benches);
