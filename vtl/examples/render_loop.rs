//! Renders the benchmark's template N times (default 20,000) and prints the wall time per
//! render. On a shared machine, run it under `perf stat -e task-clock` and divide the
//! task-clock by N: the CPU time per render, which other processes' load barely moves.
//!
//! `cargo build --release -p apigw-vtl --example render_loop`
//! `perf stat -e task-clock target/release/examples/render_loop 50000`

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
fn main() {
    let t = Template::parse(TEMPLATE).unwrap();
    let input = input();
    let limits = Limits::default();
    let n: usize = std::env::args()
        .nth(1)
        .map_or(20000, |a| a.parse().unwrap());
    let start = std::time::Instant::now();
    let mut total = 0;
    for _ in 0..n {
        total += render(&t, &input, &limits).unwrap().body.len();
    }
    eprintln!(
        "{} renders, {:?} per render (wall), {total}",
        n,
        start.elapsed() / n as u32
    );
}
