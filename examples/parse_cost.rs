//! What each stage of taking in a mail costs in CPU, on a directory of mail (a Maildir's cur/ and new/, or any files):
//! `cargo run --release --example parse_cost -- DIR [RUNS]`. Best of RUNS (default 5) per stage, so other work
//! on the machine inflates the figures as little as it can. Used for docs/benchmark.md.

use std::time::{Duration, Instant};

use postdesk::config::Limits;

/// A stage's name and what it does to one mail.
type Stage<'a> = (&'a str, &'a dyn Fn(&[u8]));

fn main() {
    let mut args = std::env::args().skip(1);
    let dir = args.next().expect("usage: parse_cost DIR [RUNS]");
    let runs: usize = args.next().map_or(5, |r| r.parse().expect("RUNS is a number"));
    let mails = read_mails(std::path::Path::new(&dir));
    let bytes: usize = mails.iter().map(Vec::len).sum();
    println!("{} mails, {:.1} MB", mails.len(), bytes as f64 / 1e6);
    let limits = Limits::default();
    let stages: [Stage<'_>; 5] = [
        ("prescan", &|m| drop(postdesk::parse::limits::prescan(m, &limits))),
        ("sha256 of the raw mail", &|m| drop(postdesk::model::sha256_hex(m))),
        ("zstd level 1", &|m| drop(postdesk::store::pack_raw(m))),
        ("mail-parser alone", &|m| drop(mail_parser::MessageParser::default().parse(m))),
        ("parse_mail_hashed (all of parsing)", &|m| drop(postdesk::parse::parse_mail_hashed(m, &limits))),
    ];
    for (name, stage) in stages {
        let best = (0..runs)
            .map(|_| {
                let started = Instant::now();
                mails.iter().for_each(|m| stage(m));
                started.elapsed()
            })
            .min()
            .unwrap_or(Duration::ZERO);
        let mb_s = bytes as f64 / 1e6 / best.as_secs_f64();
        println!("{name:<36} {:>8.1} ms {:>8.0} MB/s", best.as_secs_f64() * 1e3, mb_s);
    }
}

fn read_mails(dir: &std::path::Path) -> Vec<Vec<u8>> {
    let mut files = Vec::new();
    for sub in [dir.join("cur"), dir.join("new"), dir.to_path_buf()] {
        let Ok(entries) = std::fs::read_dir(&sub) else { continue };
        files.extend(entries.flatten().map(|e| e.path()).filter(|p| p.is_file()));
    }
    files.sort();
    files.iter().map(|p| std::fs::read(p).expect("readable mail")).collect()
}
