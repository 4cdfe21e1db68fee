//! Renders the benchmark's template N times (default 20,000) and prints the wall time per
//! render. On a shared machine, run it under `perf stat -e task-clock` and divide the
//! task-clock by N: the CPU time per render, which other processes' load barely moves.
//!
//! `cargo build --release -p apigw-vtl --example render_loop`
//! `perf stat -e task-clock target/release/examples/render_loop 50000`

use apigw_vtl::aws::render;

// The allocator of the `apigw` binary, which will run these renders.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;
use apigw_vtl::{Limits, Template};
#[path = "../benches/fixture.rs"]
mod fixture;
use fixture::{TEMPLATE, input};

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
