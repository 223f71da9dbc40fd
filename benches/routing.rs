//! How long routing takes next to parsing: `cargo bench --bench routing`.
//!
//! Parses a ~5 KB multipart mail, then routes it through 10 and 1,000 generated rules (a mix of every operator,
//! regexes included, nearly all of them not matching, as in a real rule set) and prints ns per mail.

use std::hint::black_box;
use std::time::{Duration, Instant};

use postdesk::config::Limits;
use postdesk::parse::parse_mail;
use postdesk::rules::{RouteContext, RuleSet, Vocabulary};

fn raw_mail() -> Vec<u8> {
    let mut text = String::new();
    for i in 0..18 {
        text.push_str(&format!(
            "Line {i}: our invoice for order 4711 does not match the delivery note, please check.\r\n"
        ));
    }
    let html = format!("<html><body><p>{}</p></body></html>", text.replace("\r\n", "<br>\r\n"));
    let attachment: String =
        (0..16).map(|_| "JVBERi0xLjQKJcfsj6IKNSAwIG9iago8PC9MZW5ndGggNiAwIFI+PgpzdHJlYW0K\r\n").collect();
    format!(
        "Return-Path: <alice@customer.example>\r\n\
         Received: from mx1.example.net by mail.example.com with ESMTPS; Mon, 3 Mar 2025 10:00:00 +0000\r\n\
         Received: from client.customer.example by mx1.example.net; Mon, 3 Mar 2025 09:59:58 +0000\r\n\
         Delivered-To: billing@example.com\r\n\
         From: Alice Smith <alice@customer.example>\r\n\
         To: Example Billing <billing@example.com>\r\n\
         Cc: bob@customer.example\r\n\
         Subject: Invoice #123456 does not match delivery\r\n\
         Date: Mon, 3 Mar 2025 10:00:00 +0000\r\n\
         Message-ID: <abc123@customer.example>\r\n\
         X-Spam-Flag: NO\r\n\
         X-Mailer: Thunderbird 128\r\n\
         MIME-Version: 1.0\r\n\
         Content-Type: multipart/mixed; boundary=\"outer\"\r\n\r\n\
         --outer\r\nContent-Type: multipart/alternative; boundary=\"inner\"\r\n\r\n\
         --inner\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n{text}\r\n\
         --inner\r\nContent-Type: text/html; charset=utf-8\r\n\r\n{html}\r\n\
         --inner--\r\n\
         --outer\r\nContent-Type: application/pdf; name=\"invoice.pdf\"\r\n\
         Content-Disposition: attachment; filename=\"invoice.pdf\"\r\nContent-Transfer-Encoding: base64\r\n\r\n\
         {attachment}--outer--\r\n"
    )
    .into_bytes()
}

/// `n` rules cycling through condition shapes; rule 3 matches (billing@), the rest almost never do.
fn rules(n: usize) -> String {
    let mut out = String::new();
    for i in 0..n {
        let when = match i % 10 {
            0 => format!("from_domain = \"customer{i}.example\""),
            1 => format!("recipient = {{ ends_with = \"team{i}@example.com\" }}"),
            2 => format!("subject = {{ contains = \"project {i}\" }}"),
            3 if i == 3 => "recipient = { ends_with = \"billing@example.com\" }".to_string(),
            3 => format!("subject = {{ regex = '^\\[case-{i}\\] (\\d+)' }}"),
            4 => format!("body = {{ contains = \"reference code {i}x\" }}"),
            5 => format!("header = {{ name = \"X-Customer-Id\", equals = \"{i}\" }}"),
            6 => format!("from = {{ in = [\"a{i}@x.example\", \"b{i}@x.example\", \"c{i}@x.example\"] }}"),
            7 => format!(
                "any = [{{ subject = {{ glob = \"*ticket {i}*\" }} }}, {{ from_name = {{ starts_with = \"robot {i}\" }} }}]"
            ),
            8 => format!("subject = {{ regex = 'order (?:no\\.? )?{i}\\b' }}\nnot = {{ classification = \"bounce\" }}"),
            _ => format!(
                "all = [{{ has_attachment = true }}, {{ attachment_ext = \"x{i}\" }}, {{ size = {{ greater_than = \"5MB\" }} }}]"
            ),
        };
        out.push_str(&format!(
            "[[rule]]\nname = \"rule {i}\"\n[rule.when]\n{when}\n[rule.then]\nqueue = \"billing\"\ntags = [\"t{i}\"]\n\n"
        ));
    }
    out
}

/// Runs `f` repeatedly for about `budget`, returns ns per call.
fn time(budget: Duration, mut f: impl FnMut()) -> (f64, u64) {
    if budget.is_zero() {
        // Smoke run under `cargo test --all-targets`: prove it works, measure nothing.
        let start = Instant::now();
        f();
        return (start.elapsed().as_nanos() as f64, 1);
    }
    for _ in 0..100 {
        f();
    }
    let start = Instant::now();
    let mut n = 0u64;
    while start.elapsed() < budget {
        for _ in 0..100 {
            f();
        }
        n += 100;
    }
    (start.elapsed().as_nanos() as f64 / n as f64, n)
}

fn main() {
    let raw = raw_mail();
    let limits = Limits::default();
    let mail = parse_mail(&raw, &limits).expect("bench mail parses");
    let vocab = Vocabulary {
        queues: ["support", "billing", "sales", "vip"].map(String::from).to_vec(),
        templates: vec!["acknowledgement".into()],
    };
    let ctx = RouteContext { is_followup: false, current_queue: None, default_queue: "support" };
    // `cargo bench` passes --bench; `cargo test --all-targets` runs this too, where one pass each is enough.
    let measuring = std::env::args().any(|a| a == "--bench");
    let budget = if measuring { Duration::from_secs(2) } else { Duration::ZERO };

    println!("mail: {} bytes, subject {:?}", raw.len(), mail.subject);
    println!("{:<28} {:>12} {:>12}", "", "ns/mail", "iterations");
    let (ns, n) = time(budget, || {
        black_box(parse_mail(black_box(&raw), &limits).unwrap());
    });
    println!("{:<28} {:>12.0} {:>12}", "parse_mail", ns, n);
    for count in [10, 1_000] {
        let set = RuleSet::load_str("bench.toml", &rules(count), &vocab).expect("generated rules load");
        let d = set.route(&mail, &ctx);
        assert_eq!(d.fired.len(), 1, "exactly the billing rule should fire: {d:?}");
        let (ns, n) = time(budget, || {
            black_box(set.route(black_box(&mail), &ctx));
        });
        println!("{:<28} {:>12.0} {:>12}", format!("route, {count} rules"), ns, n);
    }
    let set = RuleSet::load_str("bench.toml", &rules(1_000), &vocab).unwrap();
    let (ns, n) = time(budget, || {
        black_box(set.explain(black_box(&mail), &ctx));
    });
    println!("{:<28} {:>12.0} {:>12}", "explain, 1000 rules", ns, n);
    let (ns, n) = time(budget, || {
        black_box(RuleSet::load_str("bench.toml", &rules(1_000), &vocab).unwrap());
    });
    println!("{:<28} {:>12.0} {:>12}", "load_str, 1000 rules", ns, n);
}
