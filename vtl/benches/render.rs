//! Render time of a typical response mapping template (PetStore-like, ~20 lines, `#foreach`
//! over 10 items), parsed once and rendered per iteration the way the data plane will: a
//! fresh `$input` over the backend's body each time (the body's JSON is parsed per render).
//!
//! `cargo bench -p apigw-vtl --bench render`

use criterion::{Criterion, criterion_group, criterion_main};
use std::hint::black_box;

use apigw_vtl::aws::render;

// The allocator of the `apigw` binary, which will run these renders.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;
use apigw_vtl::{Limits, Template};

#[path = "fixture.rs"]
mod fixture;
use fixture::{TEMPLATE, input};

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
