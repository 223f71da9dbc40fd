//! Reply stripping on bodies near the size limit: `cargo bench --bench strip`.
//!
//! Prints min / median / max over several runs for each shape: a body of 1,000,000 short quoted lines ("> x"), a
//! ~20 MB plain-text body of prose lines, a ~20 MB body on one line, and shapes that would be quadratic if any step
//! looked ahead or back without a bound ("-Name" signature candidates, attribution openers, header-like lines).
//! The target (issue 10) is well under 1 s each in a release build; the unit tests count the work instead.

use std::hint::black_box;
use std::time::{Duration, Instant};

use postdesk::parse::strip::visible_text;

/// Each shape at `1/scale` of its full size: `cargo bench` measures at full size, while `cargo test --all-targets`
/// (CI) runs this file too, in a debug build, where a smoke pass over small bodies is enough.
fn shapes(scale: usize) -> Vec<(&'static str, String)> {
    let rep = |s: &str, n: usize| s.repeat(n / scale);
    let prose = "We checked the invoice again and the amounts still do not match the delivery note, sorry.\n";
    vec![
        ("1M quoted lines \"> x\"", "Thanks!\n\n".to_string() + &rep("> x\n", 1_000_000)),
        ("20 MB prose lines", rep(prose, 20_000_000 / prose.len())),
        ("20 MB one line", rep("word ", 4_000_000)),
        ("1M \"-Name\" lines", rep("-Abhishek Kona\n\n", 500_000)),
        ("1M attribution openers", rep("On Mon, 1 Feb 2016 at 10:00, A <a@example.org>\n", 1_000_000)),
        ("1M header-like lines", rep("From: a@example.org\nhello\n", 500_000)),
        ("1M lines ending in ':'", rep("On this day we wrote:\n", 1_000_000)),
        // The fuzzer's slow shape: non-ASCII attribution-like lines, each of which may end a wrapped attribution.
        ("200k Spanish attribution tails", rep(" las 10:12, support <support@example.ocribió:\n", 200_000)),
    ]
}

fn main() {
    // `cargo bench` passes --bench; `cargo test --all-targets` runs this too, where one small pass is enough.
    let measuring = std::env::args().any(|a| a == "--bench");
    let default_runs = if measuring { 5 } else { 1 };
    let runs = std::env::var("BENCH_RUNS").ok().and_then(|r| r.parse().ok()).unwrap_or(default_runs);
    println!("{:<28} {:>10} {:>12} {:>12} {:>12}", "shape", "MB", "min", "median", "max");
    for (name, body) in shapes(if measuring { 1 } else { 100 }) {
        let mut times: Vec<Duration> = (0..runs)
            .map(|_| {
                let started = Instant::now();
                black_box(visible_text(black_box(&body)));
                started.elapsed()
            })
            .collect();
        times.sort();
        let mb = body.len() as f64 / 1e6;
        println!(
            "{name:<28} {mb:>10.1} {:>12.3?} {:>12.3?} {:>12.3?}",
            times[0],
            times[times.len() / 2],
            times[times.len() - 1]
        );
    }
}
