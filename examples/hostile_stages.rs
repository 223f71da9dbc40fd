//! Stage times for one mail, for `scripts/hostile-bench.sh`: where the time of a large mail goes.
//!
//!     cargo run --release --example hostile_stages -- MAIL.eml...
//!
//! Runs the stages the pipeline runs, each timed on its own: the limits pre-scan, mail-parser, the whole parse
//! (pre-scan, MIME tree, HTML to text, reply stripping, classification), reply stripping again alone, HTML to text
//! alone, the shipped rules, the acknowledgement's excerpt and rendering, and building an answer to the sender and
//! every Cc of the mail (uncapped: this times the builder, not the party cap). No database, no network.
//!
//! Each stage shows its wall time and, in brackets, the CPU time this thread spent in it (Linux
//! `/proc/thread-self/schedstat`): on a busy machine the wall time also counts the waiting for a CPU.

use std::path::Path;
use std::time::Instant;

use postdesk::config::Limits;
use postdesk::model::Address;
use postdesk::outbound::templates::{ArticleInfo, excerpt};
use postdesk::outbound::{OutgoingMail, TemplateContext, Templates, build};
use postdesk::parse::{html, limits, parse_mail_hashed, strip};
use postdesk::rules::{RouteContext, RuleSet, Vocabulary};

fn main() -> anyhow::Result<()> {
    let repo = Path::new(env!("CARGO_MANIFEST_DIR"));
    let templates = Templates::load(&repo.join("templates")).map_err(|e| anyhow::anyhow!("{e}"))?;
    let queues = ["support", "billing", "sales", "vip"].map(String::from).to_vec();
    let vocab = Vocabulary { queues, templates: templates.names() };
    let rules = RuleSet::load_dir(&repo.join("rules"), &vocab).map_err(|e| anyhow::anyhow!("{e}"))?;
    let limits = Limits::default();
    for path in std::env::args().skip(1) {
        let raw = std::fs::read(&path)?;
        let mut times: Vec<(&str, f64, f64)> = Vec::new();
        let mut cpu = cpu_seconds();
        let mut time = |name, start: Instant| {
            let now = cpu_seconds();
            times.push((name, start.elapsed().as_secs_f64(), now - cpu));
            cpu = now;
        };

        let t = Instant::now();
        limits::prescan(&raw, &limits).map_err(|e| anyhow::anyhow!("{e}"))?;
        time("prescan", t);
        let t = Instant::now();
        let parsed = mail_parser::MessageParser::default().parse(&raw).map(|m| m.parts.len());
        time("mail-parser", t);
        let t = Instant::now();
        let mail = parse_mail_hashed(&raw, &limits).map_err(|e| anyhow::anyhow!("{e}"))?;
        time("parse(all)", t);
        let t = Instant::now();
        let visible = strip::visible_text(&mail.text);
        time("strip", t);
        let t = Instant::now();
        let _ = mail.html.as_deref().map(html::html_to_text);
        time("html", t);
        let t = Instant::now();
        let ctx = RouteContext { is_followup: false, current_queue: None, default_queue: "support" };
        let decision = rules.route(&mail, &ctx);
        time("rules", t);
        let t = Instant::now();
        let quoted = excerpt(&mail.visible_text, limits.max_quoted_bytes);
        time("excerpt", t);
        let t = Instant::now();
        let mut context = TemplateContext::sample();
        context.article = ArticleInfo {
            subject: mail.subject.clone(),
            text: quoted.clone(),
            visible_text: quoted,
            ..context.article
        };
        let rendered = templates.render("default", "acknowledgement", &context)?;
        time("render", t);
        let t = Instant::now();
        let outgoing = OutgoingMail {
            from: Address::new(Some("Bench Support"), "support@example.test"),
            to: mail.from.iter().cloned().collect(),
            cc: mail.cc.clone(),
            reply_to: None,
            subject: rendered.subject,
            message_id: "pd.bench.0123456789abcdef.00@example.test".into(),
            in_reply_to: mail.message_id.clone(),
            references: Vec::new(),
            auto_submitted: None,
            loop_marker: "support@example.test".into(),
            date: 0,
            text: rendered.text,
            html: rendered.html,
        };
        let built = build(&outgoing)?;
        time("build", t);

        let stages: Vec<String> = times.iter().map(|(n, wall, cpu)| format!("{n} {wall:.3} ({cpu:.3})")).collect();
        println!(
            "{path}: {} bytes, {} MIME parts, text {} bytes, visible {} bytes, {} Cc, queue {}, answer {} bytes",
            raw.len(),
            parsed.unwrap_or(0),
            mail.text.len(),
            visible.len(),
            mail.cc.len(),
            decision.queue,
            built.len()
        );
        println!("  {}", stages.join(", "));
    }
    Ok(())
}

/// CPU time of this thread so far: the first field of `/proc/thread-self/schedstat`, in nanoseconds.
fn cpu_seconds() -> f64 {
    std::fs::read_to_string("/proc/thread-self/schedstat")
        .ok()
        .and_then(|s| s.split_whitespace().next()?.parse::<f64>().ok())
        .map_or(0.0, |ns| ns / 1e9)
}
