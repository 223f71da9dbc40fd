//! The log as an admin reads it (issue 11): one info line per mail with its facts, one per sent mail with the
//! relay's answer; JSON when asked; never a body or a secret.

mod common;

use std::io::Write;
use std::process::Stdio;
use std::time::Duration;

use common::stack::*;

/// `postdesk ingest` at info level in JSON: one `processed` object per mail with the fields an admin filters on.
#[test]
fn one_json_line_per_mail_names_ticket_outcome_classification_queue_and_message_id() {
    let env = common::Env::new();
    let out = ingest_at_info(&env, Some("json"));
    assert!(out.status.success(), "{}", common::stderr(&out));
    let number = common::ticket_number(&common::stdout(&out));
    let log = common::stderr(&out);
    let lines: Vec<serde_json::Value> =
        log.lines().map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}"))).collect();
    let processed: Vec<&serde_json::Value> = lines.iter().filter(|l| l["fields"]["message"] == "processed").collect();
    assert_eq!(processed.len(), 1, "{log}");
    let (event, span) = (&processed[0]["fields"], &processed[0]["span"]);
    assert_eq!(processed[0]["level"], "INFO");
    assert_eq!(event["result"], "new", "{log}");
    assert_eq!(span["ticket"], number.as_str(), "{log}");
    assert_eq!(span["classification"], "human", "{log}");
    assert_eq!(span["queue"], "support", "{log}");
    assert_eq!(span["message_id"], "first-mail.4711@customer.example", "{log}");
    assert_eq!(span["from"], "alice@customer.example", "{log}");
    assert!(!log.contains("smoking"), "the body never reaches the log: {log}");
}

/// `postdesk run` with the real Postfix as relay: the acknowledgement's `sent` line carries the relay's answer.
#[test]
fn one_line_per_sent_mail_carries_the_relays_answer() {
    let stack = Stack::start();
    let state = stack.dir.path().join("pd");
    let smtp = format!("##[smtp]\nhost = \"127.0.0.1\"\nport = {}\ntls = \"plain\"\n", stack.port("PD_SMTP_PORT"));
    let config = stack.postdesk_config(&state, &smtp, false);
    let daemon = Daemon::start(&config);
    stack.deliver("support", &customer_mail(1, "log test"));
    let sent = wait_until(Duration::from_secs(30), || daemon.log_text().lines().any(|l| l.contains(" sent ")));
    let log = daemon.log_text();
    assert!(sent.is_some(), "no sent line:\n{log}");
    let line = log.lines().find(|l| l.contains(" sent ")).unwrap();
    // Postfix answers `250 2.0.0 Ok: queued as <queue id>`.
    assert!(line.contains("relay=250") && line.contains("queued as"), "{line}");
    let processed = log.lines().find(|l| l.contains("processed")).expect("a processed line");
    for field in ["ticket=", "classification=\"human\"", "queue=\"support\"", "message_id=", "result=\"new\""] {
        assert!(processed.contains(field), "{field} missing: {processed}");
    }
}

/// `[logging] format` in the config chooses the format when the environment does not.
#[test]
fn the_configs_logging_format_is_honoured() {
    let env = common::Env::with_extra("[logging]\nformat = \"json\"\n");
    let out = ingest_at_info(&env, None);
    let log = common::stderr(&out);
    assert!(!log.trim().is_empty() && log.lines().all(|l| l.starts_with('{')), "{log}");
}

/// `postdesk ingest` of one fixture mail at info level, outside journald; `format` sets POSTDESK_LOG_FORMAT.
fn ingest_at_info(env: &common::Env, format: Option<&str>) -> std::process::Output {
    let mut cmd = env.cmd(&["ingest"]);
    cmd.env("POSTDESK_LOG", "info").env_remove("JOURNAL_STREAM");
    match format {
        Some(f) => cmd.env("POSTDESK_LOG_FORMAT", f),
        None => cmd.env_remove("POSTDESK_LOG_FORMAT"),
    };
    let mut child = cmd.stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
    child.stdin.take().unwrap().write_all(&common::fixture("new-ticket.eml")).unwrap();
    child.wait_with_output().unwrap()
}
