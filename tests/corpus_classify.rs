//! The shared real-world corpus (`$POSTDESK_CORPUS`, see its README.md) run through `parse_mail`: no panics on any
//! file, auto-reply vs human accuracy on `autoreply/`, bounce detection and recipient/status extraction on
//! `bounces/`. Floors sit just under what the classifier reaches, so a regression fails CI.
//!
//! Labels: every file under `bounces/` is expected to classify as Bounce, including ARF feedback reports and
//! "delivered" DSNs (DSN-shaped automatic mail, recipients carry the action). The two BounceParser files labelled
//! `bounce=0` (out-of-office replies) only need to be automatic.

use std::collections::{BTreeMap, HashMap};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};

use postdesk::config::Limits;
use postdesk::model::{Classification, InboundMail, Permanence};
use postdesk::parse::{Rejection, parse_mail};

const FLOOR_AUTO_VS_HUMAN: f64 = 1.0;
const FLOOR_BOUNCE_DETECTION: f64 = 0.99;
const FLOOR_RECIPIENTS: f64 = 0.945;
const FLOOR_STATUS: f64 = 0.88;
/// Against the DSN's own Action field where it has one, else the labels' action; most of the rest are sisimai's
/// "expired means delayed" convention where the notice itself says "This is a permanent error".
const FLOOR_PERMANENCE: f64 = 0.94;

fn corpus_dir() -> Option<PathBuf> {
    match std::env::var_os("POSTDESK_CORPUS") {
        Some(dir) => Some(PathBuf::from(dir)),
        None if std::env::var_os("CI").is_some() => {
            panic!("POSTDESK_CORPUS is not set, but CI is: point it at the shared corpus (e.g. ../shared/corpus)")
        }
        None => {
            eprintln!("corpus_classify: POSTDESK_CORPUS is not set; corpus test not configured, nothing checked");
            None
        }
    }
}

enum Outcome {
    Parsed(Box<InboundMail>),
    Rejected,
    Panicked,
}

fn run(path: &Path) -> Outcome {
    let raw = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    match catch_unwind(AssertUnwindSafe(|| parse_mail(&raw, &Limits::default()))) {
        Ok(Ok(mail)) => Outcome::Parsed(Box::new(mail)),
        Ok(Err(Rejection::ParserFailed(_))) | Err(_) => Outcome::Panicked,
        Ok(Err(_)) => Outcome::Rejected,
    }
}

fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else { return };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            if path.file_name().is_some_and(|n| n != "LICENSES") {
                walk(&path, out);
            }
        } else if !matches!(path.extension().and_then(|e| e.to_str()), Some("json" | "tsv" | "md")) {
            out.push(path);
        }
    }
}

fn pct(n: usize, d: usize) -> f64 {
    if d == 0 { 1.0 } else { n as f64 / d as f64 }
}

fn row(name: &str, n: usize, d: usize) {
    println!("  {name:<34} {n:>5} / {d:<5} {:>6.1} %", 100.0 * pct(n, d));
}

#[test]
fn corpus_classify() {
    let Some(dir) = corpus_dir() else { return };
    assert!(dir.join("MANIFEST.tsv").is_file(), "{}: no MANIFEST.tsv; is POSTDESK_CORPUS right?", dir.display());

    // (1) Every file: no panics.
    let mut files = Vec::new();
    walk(&dir, &mut files);
    files.sort();
    let (mut panics, mut rejected) = (Vec::new(), 0usize);
    let mut results: HashMap<String, Outcome> = HashMap::new();
    for path in &files {
        let rel = path.strip_prefix(&dir).unwrap().to_string_lossy().into_owned();
        let outcome = run(path);
        match &outcome {
            Outcome::Panicked => panics.push(rel.clone()),
            Outcome::Rejected => rejected += 1,
            Outcome::Parsed(_) => {}
        }
        results.insert(rel, outcome);
    }
    println!(
        "corpus: {} files, {} parsed, {} rejected, {} panics",
        files.len(),
        files.len() - rejected - panics.len(),
        rejected,
        panics.len()
    );

    // (2) autoreply/: auto vs human.
    let automatic = |c: Classification| matches!(c, Classification::AutoReply | Classification::Bounce);
    let mut by_dir: BTreeMap<&str, (usize, usize)> = BTreeMap::new();
    let mut misclassified = Vec::new();
    for (rel, outcome) in &results {
        let want_auto = if rel.starts_with("autoreply/auto/") {
            true
        } else if rel.starts_with("autoreply/human/") {
            false
        } else {
            continue;
        };
        let got = match outcome {
            Outcome::Parsed(m) => Some(m.classification),
            _ => None,
        };
        let ok = got.is_some_and(|c| automatic(c) == want_auto);
        let entry = by_dir.entry(if want_auto { "autoreply/auto" } else { "autoreply/human" }).or_default();
        entry.1 += 1;
        if ok {
            entry.0 += 1;
        } else {
            misclassified.push(format!("{rel}: {got:?}"));
        }
    }

    // (3) bounces/: detection, recipients, status.
    let labels: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("bounces/labels.json")).expect("bounces/labels.json"))
            .expect("labels.json is JSON");
    let manifest = std::fs::read_to_string(dir.join("MANIFEST.tsv")).expect("MANIFEST.tsv");
    let manifest_label: HashMap<&str, &str> =
        manifest.lines().skip(1).filter_map(|l| l.split('\t').next().zip(l.split('\t').nth(5))).collect();
    // detected, total, rcpt ok, rcpt n, status ok, status n, permanence ok, permanence n
    let mut bounce_stats: BTreeMap<String, [usize; 8]> = BTreeMap::new();
    let mut wrong_permanence = Vec::new();
    let mut wrong_status = Vec::new();
    let mut missed = Vec::new();
    let mut wrong_rcpt = Vec::new();
    for (rel, outcome) in &results {
        if !rel.starts_with("bounces/") {
            continue;
        }
        let family = rel.split('/').nth(1).unwrap_or("").to_string();
        let s = bounce_stats.entry(family).or_default();
        s[1] += 1;
        let Outcome::Parsed(mail) = outcome else {
            missed.push(format!("{rel}: not parsed"));
            continue;
        };
        // BounceParser labels its delay warnings that are really out-of-office mail `bounce=0`: automatic will do.
        let not_a_bounce = manifest_label.get(rel.as_str()).is_some_and(|l| l.starts_with("bounce=0"));
        if mail.classification == Classification::Bounce || not_a_bounce && automatic(mail.classification) {
            s[0] += 1;
        } else {
            missed.push(format!("{rel}: {:?}", mail.classification));
        }
        let label = &labels[rel.as_str()];
        let got: Vec<String> =
            mail.bounce.iter().flat_map(|b| b.recipients.iter().map(|r| r.address.to_ascii_lowercase())).collect();
        let want = expected_recipients(label);
        if !want.is_empty() {
            s[3] += 1;
            if want.iter().all(|w| got.contains(w)) {
                s[2] += 1;
            } else {
                wrong_rcpt.push(format!("{rel}: want {want:?} got {got:?}"));
            }
        }
        let raw = String::from_utf8_lossy(&std::fs::read(dir.join(rel)).unwrap_or_default()).into_owned();
        if let Some(want) = expected_permanence(label, &raw) {
            s[7] += 1;
            let got = mail.bounce.iter().flat_map(|b| b.recipients.iter()).find_map(|r| r.permanence);
            if got == Some(want) {
                s[6] += 1;
            } else {
                wrong_permanence.push(format!("{rel}: want {want:?} got {got:?}"));
            }
        }
        if let Some(status) = expected_status(label) {
            s[5] += 1;
            if mail.bounce.iter().flat_map(|b| b.recipients.iter()).any(|r| r.status.as_deref() == Some(&status)) {
                s[4] += 1;
            } else {
                let got: Vec<_> = mail.bounce.iter().flat_map(|b| b.recipients.iter()).map(|r| &r.status).collect();
                wrong_status.push(format!("{rel}: want {status} got {got:?}"));
            }
        }
    }

    println!("\nauto vs human (autoreply/):");
    let (mut ah_ok, mut ah_n) = (0, 0);
    for (d, (ok, n)) in &by_dir {
        row(d, *ok, *n);
        ah_ok += ok;
        ah_n += n;
    }
    row("total", ah_ok, ah_n);
    let human = by_dir.get("autoreply/human").copied().unwrap_or_default();
    row("human classed automatic", human.1 - human.0, human.1);
    println!("\nbounces/ (detected as Bounce | recipients all found | status matches):");
    let mut tot = [0usize; 8];
    for (family, s) in &bounce_stats {
        println!("  {family}:");
        row("detected", s[0], s[1]);
        row("recipients", s[2], s[3]);
        row("status", s[4], s[5]);
        row("permanent vs temporary", s[6], s[7]);
        for i in 0..8 {
            tot[i] += s[i];
        }
    }
    println!("  total:");
    row("detected", tot[0], tot[1]);
    row("recipients", tot[2], tot[3]);
    row("status", tot[4], tot[5]);
    row("permanent vs temporary", tot[6], tot[7]);
    for (title, list) in
        [("panics", &panics), ("auto/human misclassified", &misclassified), ("bounces missed", &missed)]
    {
        if !list.is_empty() {
            println!("\n{title}:");
            list.iter().for_each(|l| println!("  {l}"));
        }
    }
    if std::env::var_os("POSTDESK_CORPUS_VERBOSE").is_some() {
        println!("\nwrong recipients:");
        wrong_rcpt.iter().for_each(|l| println!("  {l}"));
        println!("\nwrong status:");
        wrong_status.iter().for_each(|l| println!("  {l}"));
        println!("\nwrong permanence:");
        wrong_permanence.iter().for_each(|l| println!("  {l}"));
    }

    assert!(panics.is_empty(), "parse_mail panicked on {panics:?}");
    assert_eq!(human.0, human.1, "human mail classified as automatic: {misclassified:?}");
    assert!(pct(ah_ok, ah_n) >= FLOOR_AUTO_VS_HUMAN, "auto vs human accuracy below floor: {misclassified:?}");
    assert!(pct(tot[0], tot[1]) >= FLOOR_BOUNCE_DETECTION, "bounce detection below floor: {missed:?}");
    assert!(pct(tot[2], tot[3]) >= FLOOR_RECIPIENTS, "bounce recipient accuracy below floor");
    assert!(pct(tot[4], tot[5]) >= FLOOR_STATUS, "bounce status accuracy below floor");
    assert!(pct(tot[6], tot[7]) >= FLOOR_PERMANENCE, "bounce permanence accuracy below floor: {wrong_permanence:?}");
}

/// Our own fixtures (`tests/fixtures/classify/`, written from RFCs 3464/3834/5965/8098 and the MTAs' and clients'
/// shapes): classification, failed recipients in order, and each one's permanence, as `expected.tsv` says.
#[test]
fn classify_fixtures() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/classify");
    let table = std::fs::read_to_string(dir.join("expected.tsv")).expect("expected.tsv");
    let mut count = 0;
    for line in table.lines().filter(|l| !l.starts_with('#') && !l.trim().is_empty()) {
        let cols: Vec<&str> = line.split('\t').collect();
        let [file, class, rcpts, perms] = cols[..] else { panic!("bad expected.tsv line {line:?}") };
        let raw = std::fs::read(dir.join(file)).unwrap_or_else(|e| panic!("{file}: {e}"));
        for (ending, raw) in [("LF", raw.clone()), ("CRLF", String::from_utf8_lossy(&raw).replace('\n', "\r\n").into())]
        {
            let mail = parse_mail(&raw, &Limits::default()).unwrap_or_else(|e| panic!("{file} ({ending}): {e}"));
            assert_eq!(mail.classification.as_str(), class, "{file} ({ending}): {:?}", mail.classification_reason);
            let recipients: Vec<_> = mail.bounce.iter().flat_map(|b| b.recipients.iter()).collect();
            let got: Vec<String> = recipients.iter().map(|r| r.address.to_ascii_lowercase()).collect();
            let want: Vec<&str> = rcpts.split(',').filter(|r| *r != "-").collect();
            assert_eq!(got, want, "{file} ({ending}): recipients");
            let got: Vec<&str> = recipients
                .iter()
                .map(|r| match r.permanence {
                    Some(Permanence::Permanent) => "permanent",
                    Some(Permanence::Temporary) => "temporary",
                    None => "-",
                })
                .collect();
            let want: Vec<&str> = if want.is_empty() { Vec::new() } else { perms.split(',').collect() };
            assert_eq!(got, want, "{file} ({ending}): permanence");
        }
        count += 1;
    }
    assert!(count >= 19, "only {count} fixtures in expected.tsv");
}

/// Recipients from labels.json: sisimai's derived output, BounceParser's test addresses (else derived), or the
/// DSN Final-Recipient fields of the mikel/mail samples.
fn expected_recipients(label: &serde_json::Value) -> Vec<String> {
    let strings = |v: &serde_json::Value| -> Vec<String> {
        v.as_array().into_iter().flatten().filter_map(|s| s.as_str()).map(str::to_ascii_lowercase).collect()
    };
    if let Some(rows) = label["derived_sisimai_p5"].as_array() {
        return rows.iter().filter_map(|r| r["recipient"].as_str()).map(str::to_ascii_lowercase).collect();
    }
    let tested = strings(&label["expected_from_tests"]["addresses"]);
    if !tested.is_empty() {
        return tested;
    }
    let derived = strings(&label["derived_bounceparser"]["addresses"]);
    if !derived.is_empty() {
        return derived;
    }
    strings(&label["derived_from_dsn_fields"]["final_recipient"])
}

/// Permanent or temporary, where the DSN or a label tells: the mail's own DSN `Action:` field first, then the
/// labels (mikel/mail's DSN fields, sisimai's derived action, BounceParser's reported action). `failed` is permanent, `delayed` temporary (RFC 3464 §2.3.3).
fn expected_permanence(label: &serde_json::Value, raw: &str) -> Option<Permanence> {
    static ACTION: std::sync::LazyLock<regex::Regex> =
        std::sync::LazyLock::new(|| regex::Regex::new(r"(?mi)^Action:[ \t]*([a-z]+)").expect("valid regex"));
    let in_dsn = ACTION.captures(raw).map(|c| c.get(1).map_or("", |m| m.as_str()));
    let action = in_dsn
        .filter(|a| ["failed", "delayed"].contains(&a.to_ascii_lowercase().as_str()))
        .or_else(|| label["derived_from_dsn_fields"]["action"][0].as_str())
        .or_else(|| label["derived_sisimai_p5"][0]["action"].as_str())
        .or_else(|| label["derived_bounceparser"]["reports"][0]["action"].as_str())?;
    match action.to_ascii_lowercase().as_str() {
        "failed" => Some(Permanence::Permanent),
        "delayed" => Some(Permanence::Temporary),
        _ => None,
    }
}

/// A labelled enhanced status code (RFC 3463). sisimai's own pseudo codes (`5.0.9xx`) are not in any mail, skip them.
fn expected_status(label: &serde_json::Value) -> Option<String> {
    let status = label["expected_from_tests"]
        .as_array()
        .and_then(|rows| rows.first())
        .and_then(|r| r["status"].as_str())
        .map(str::to_string)
        .or_else(|| label["derived_from_dsn_fields"]["status"][0].as_str().map(str::to_string))?;
    let parts: Vec<u32> = status.split('.').filter_map(|p| p.parse().ok()).collect();
    (parts.len() == 3 && parts[1] < 10 && parts[2] < 100).then_some(status)
}
