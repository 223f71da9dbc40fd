//! Fuzzing on stable Rust, for CI: a mutation loop over the seed corpus in `tests/fuzz-corpus/<target>/`.
//!
//!     cargo run --example fuzz -- [--seconds N] [--seed S] [--target NAME]...
//!     cargo run --example fuzz -- --replay NAME FILE...
//!
//! cargo-fuzz needs a nightly compiler (sanitizers, `-Z` flags) and rebuilds every dependency instrumented, which
//! CI's budget and the stable-only toolchain rule out. This is the blind half of a fuzzer: no coverage feedback,
//! but the same mutations (bit flips, interesting bytes, dictionary words of the syntax under test, deleted,
//! duplicated and repeated ranges, splices of two seeds), stacked 1 to 8 deep on a random seed, run for a fixed
//! time per target. Every seed is first run as it is.
//!
//! A run fails (exit 1) on any panic in postdesk's own code, even one it catches itself, and on any input that takes longer than `--slow` seconds (2 by
//! default); an input still running after five times that is a hang and ends the run at once. Failing inputs are written to `target/fuzz-failures/` for `--replay`. The random seed is printed, so a
//! run can be repeated exactly with `--seed`. A panic raised inside a dependency (mail-parser, html2text) that
//! postdesk's backstop contains (`parse_mail` quarantines the mail; nothing crashes) is reported as "contained" and
//! its input saved, but does not fail the run: the fix belongs upstream.

mod targets;

use std::panic::{self, AssertUnwindSafe};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};

use targets::Target;

/// The message of the last panic, caught or not, and whether it was raised inside a dependency (a crate from the
/// registry or `vendor/`): set by the hook, taken after each input.
static PANICKED: Mutex<Option<(String, bool)>> = Mutex::new(None);
/// The input being run, its target and since when: the watchdog saves it when it hangs.
static RUNNING: Mutex<Option<(&'static str, Vec<u8>, Instant)>> = Mutex::new(None);
/// An input still running after this many times `--slow` is a hang: saved, reported, and the run ends (exit 1).
const HANG_FACTOR: u32 = 5;

struct Options {
    seconds: f64,
    slow: Duration,
    seed: u64,
    only: Vec<String>,
    replay: Option<(String, Vec<PathBuf>)>,
}

#[derive(Default)]
struct Stats {
    executions: u64,
    panics: u64,
    /// Panics raised inside a dependency (mail-parser, html2text) that postdesk's own backstop caught: the mail is
    /// quarantined, nothing crashes. Reported, not failed: the fix belongs upstream.
    contained: u64,
    slow: u64,
    slowest: Duration,
}

fn main() {
    let options = match parse_args() {
        Ok(o) => o,
        Err(e) => {
            eprintln!("fuzz: {e}");
            std::process::exit(2);
        }
    };
    panic::set_hook(Box::new(|info| {
        let location = info.location().map(|l| format!(" at {}:{}", l.file(), l.line())).unwrap_or_default();
        // Registry crates, and the one crate built from vendor/ (mail-parser with postdesk's decoder patch).
        let in_dependency =
            info.location().is_some_and(|l| l.file().contains("/.cargo/registry/") || l.file().starts_with("vendor/"));
        let message = info
            .payload()
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| info.payload().downcast_ref::<String>().cloned())
            .unwrap_or_default();
        *PANICKED.lock().unwrap_or_else(|e| e.into_inner()) = Some((format!("{message}{location}"), in_dependency));
    }));
    start_watchdog(options.slow * HANG_FACTOR);
    let all = targets::all();
    if let Some((name, files)) = &options.replay {
        let Some(target) = all.iter().find(|t| t.name == name) else {
            eprintln!("fuzz: no target {name}");
            std::process::exit(2);
        };
        let mut stats = Stats::default();
        for file in files {
            let input = std::fs::read(file).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
            execute(target, &input, &options, &mut stats);
        }
        std::process::exit(i32::from(stats.panics + stats.slow > 0));
    }
    let chosen: Vec<&Target> =
        all.iter().filter(|t| options.only.is_empty() || options.only.iter().any(|o| o == t.name)).collect();
    let budget = Duration::from_secs_f64(options.seconds / chosen.len().max(1) as f64);
    println!(
        "fuzz: seed {}, {:.0} s per target, inputs over {:?} fail",
        options.seed,
        budget.as_secs_f64(),
        options.slow
    );
    let mut failed = false;
    for target in chosen {
        let stats = fuzz(target, budget, &options);
        println!(
            "fuzz {:<10} {:>9} executions  {} panics  {} contained  {} slow  slowest {:.3} s",
            target.name,
            stats.executions,
            stats.panics,
            stats.contained,
            stats.slow,
            stats.slowest.as_secs_f64()
        );
        failed |= stats.panics + stats.slow > 0;
    }
    if failed {
        println!("fuzz: FAILED; inputs are in target/fuzz-failures/ (replay with --replay TARGET FILE)");
        std::process::exit(1);
    }
}

fn fuzz(target: &Target, budget: Duration, options: &Options) -> Stats {
    let mut corpus = read_corpus(&Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fuzz-corpus").join(target.name));
    corpus.extend((target.seeds)());
    if corpus.is_empty() {
        corpus.push(Vec::new());
    }
    let mut stats = Stats::default();
    for seed in &corpus {
        execute(target, seed, options, &mut stats);
    }
    let mut rng = SmallRng::seed_from_u64(options.seed ^ hash(target.name));
    let start = Instant::now();
    while start.elapsed() < budget {
        let mut input = corpus[rng.random_range(0..corpus.len())].clone();
        for _ in 0..rng.random_range(1..=8) {
            mutate(&mut input, &corpus, target, &mut rng);
        }
        input.truncate(target.max_len);
        execute(target, &input, options, &mut stats);
    }
    stats
}

/// Runs one input; a panic or a slow run is counted and the input saved.
fn execute(target: &Target, input: &[u8], options: &Options, stats: &mut Stats) {
    PANICKED.lock().unwrap_or_else(|e| e.into_inner()).take();
    let start = Instant::now();
    *RUNNING.lock().unwrap_or_else(|e| e.into_inner()) = Some((target.name, input.to_vec(), start));
    let unwound = panic::catch_unwind(AssertUnwindSafe(|| (target.run)(input))).is_err();
    let took = start.elapsed();
    RUNNING.lock().unwrap_or_else(|e| e.into_inner()).take();
    stats.executions += 1;
    stats.slowest = stats.slowest.max(took);
    let panicked = PANICKED.lock().unwrap_or_else(|e| e.into_inner()).take();
    match panicked {
        // Raised inside a dependency and caught by postdesk's backstop: the call returned normally.
        Some((why, true)) if !unwound => {
            stats.contained += 1;
            let saved = save(target, input);
            println!("fuzz {}: contained dependency panic {why}; input saved as {}", target.name, saved.display());
        }
        Some((why, _)) => {
            stats.panics += 1;
            println!("fuzz {}: PANIC {why}; input saved as {}", target.name, save(target, input).display());
        }
        None if unwound => {
            stats.panics += 1;
            println!("fuzz {}: PANIC; input saved as {}", target.name, save(target, input).display());
        }
        None if took > options.slow && stats.executions > 1 => {
            // (The first input of a target also pays for one-time set-up, such as compiling lazy regexes.)
            stats.slow += 1;
            println!("fuzz {}: SLOW {took:?}; input saved as {}", target.name, save(target, input).display());
        }
        None => {}
    }
}

/// Ends the run when one input takes longer than `limit`: a hang would otherwise never report anything.
fn start_watchdog(limit: Duration) {
    std::thread::spawn(move || {
        loop {
            std::thread::sleep(Duration::from_millis(200));
            let running = RUNNING.lock().unwrap_or_else(|e| e.into_inner());
            if let Some((name, input, since)) = running.as_ref().filter(|(_, _, since)| since.elapsed() > limit) {
                let path = save_named(name, input);
                println!(
                    "fuzz {name}: HANG, still running after {:?}; input saved as {}",
                    since.elapsed(),
                    path.display()
                );
                println!("fuzz: FAILED; inputs are in target/fuzz-failures/ (replay with --replay TARGET FILE)");
                std::process::exit(1);
            }
        }
    });
}

fn mutate(input: &mut Vec<u8>, corpus: &[Vec<u8>], target: &Target, rng: &mut SmallRng) {
    const INTERESTING: &[u8] = b"\0\x1b\x7f\x80\xff\r\n\t :;,=-<>\"'\\#[]{}()?@";
    let len = input.len();
    let at = |rng: &mut SmallRng| rng.random_range(0..=len);
    let range = |rng: &mut SmallRng| {
        let a = rng.random_range(0..=len);
        let b = a + rng.random_range(0..=64.min(len - a));
        a..b
    };
    match rng.random_range(0..8) {
        0 if len > 0 => {
            let i = rng.random_range(0..len);
            input[i] ^= 1 << rng.random_range(0..8);
        }
        1 if len > 0 => {
            let i = rng.random_range(0..len);
            input[i] = INTERESTING[rng.random_range(0..INTERESTING.len())];
        }
        2 => {
            let r = range(rng);
            input.drain(r);
        }
        3 => {
            let r = range(rng);
            let copy = input[r].to_vec();
            let i = at(rng);
            input.splice(i..i, copy);
        }
        4 | 5 if !target.dictionary.is_empty() => {
            let word = target.dictionary[rng.random_range(0..target.dictionary.len())];
            let i = at(rng);
            input.splice(i..i, word.iter().copied());
        }
        6 => {
            // One range repeated many times: how many boundaries, quote levels or nested tags become super-linear.
            let r = range(rng);
            let times = rng.random_range(2..=1000);
            let copy = input[r.clone()].repeat(times);
            input.splice(r.end..r.end, copy);
        }
        _ => {
            let other = &corpus[rng.random_range(0..corpus.len())];
            let cut = at(rng);
            let from = rng.random_range(0..=other.len());
            input.truncate(cut);
            input.extend_from_slice(&other[from..]);
        }
    }
}

fn read_corpus(dir: &Path) -> Vec<Vec<u8>> {
    let Ok(entries) = std::fs::read_dir(dir) else { return Vec::new() };
    let mut files: Vec<PathBuf> = entries.flatten().map(|e| e.path()).filter(|p| p.is_file()).collect();
    files.sort();
    files.iter().filter_map(|p| std::fs::read(p).ok()).collect()
}

fn save(target: &Target, input: &[u8]) -> PathBuf {
    save_named(target.name, input)
}

fn save_named(name: &str, input: &[u8]) -> PathBuf {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/fuzz-failures");
    let _ = std::fs::create_dir_all(&dir);
    let path = dir.join(format!("{name}-{:016x}", hash_bytes(input)));
    let _ = std::fs::write(&path, input);
    path
}

fn hash(s: &str) -> u64 {
    hash_bytes(s.as_bytes())
}

/// FNV-1a: names failure files and separates the targets' random streams.
fn hash_bytes(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, &b| (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3))
}

fn parse_args() -> Result<Options, String> {
    let mut o = Options {
        seconds: 60.0,
        slow: Duration::from_secs(2),
        seed: std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(1, |d| d.as_secs()),
        only: Vec::new(),
        replay: None,
    };
    let mut args = std::env::args().skip(1);
    let number = |v: Option<String>, what: &str| -> Result<f64, String> {
        v.and_then(|v| v.parse::<f64>().ok()).filter(|n| *n >= 0.0).ok_or(format!("{what} needs a number"))
    };
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--seconds" => o.seconds = number(args.next(), "--seconds")?,
            "--slow" => o.slow = Duration::from_secs_f64(number(args.next(), "--slow")?),
            "--seed" => o.seed = args.next().and_then(|v| v.parse().ok()).ok_or("--seed needs a whole number")?,
            "--target" => o.only.push(args.next().ok_or("--target needs a name")?),
            "--replay" => {
                let name = args.next().ok_or("--replay needs a target name")?;
                o.replay = Some((name, args.by_ref().map(PathBuf::from).collect()));
            }
            other => return Err(format!("unknown argument {other}")),
        }
    }
    Ok(o)
}
