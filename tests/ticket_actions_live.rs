//! `postdesk ticket reply` on the real stack: the answer written at the command line goes through the outbox of the
//! running daemon and Postfix into the customer's mailbox, threaded under the customer's mail.

mod common;

use std::io::Write;
use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use common::stack::*;
use postdesk::model::InboundMail;
use postdesk::store::{Store, TicketFilter};

fn parsed(raw: &[u8]) -> InboundMail {
    postdesk::parse::parse_mail(raw, &postdesk::config::Limits::default()).expect("a mail")
}

fn postdesk(config: &Path, args: &[&str], stdin: &str) -> String {
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_postdesk"))
        .arg("--config")
        .arg(config)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(stdin.as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "postdesk {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn ticket_reply_from_the_command_line_reaches_the_customers_mailbox() {
    let stack = Stack::start();
    let state = stack.dir.path().join("pd");
    let extra = format!(
        "##[smtp]\nhost = \"127.0.0.1\"\nport = {}\ntls = \"plain\"\nretry_base_seconds = 1\nretry_max_seconds = 2\n",
        stack.port("PD_SMTP_PORT")
    );
    let config = stack.postdesk_config(&state, &extra, false);
    postdesk(&config, &["role", "add", "first-level", "--queue", "support"], "");
    postdesk(&config, &["agent", "add", "agent1@example.test", "--name", "Agent One", "--role", "first-level"], "");
    let daemon = Daemon::start(&config);

    let mail = format!(
        "From: Carol <customer@example.test>\r\nTo: support@example.test\r\nSubject: Printer jams\r\n\
         Message-ID: <cli-reply.{}@example.test>\r\nContent-Type: text/plain\r\n\r\nThe printer jams.\r\n",
        std::process::id()
    );
    stack.deliver("support", mail.as_bytes());
    let acknowledged = wait_until(Duration::from_secs(25), || stack.count("customer", "INBOX") >= 1);
    assert!(acknowledged.is_some(), "no acknowledgement:\n{}", daemon.log_text());
    let store = Store::open(&state.join("postdesk.db")).unwrap();
    let number = store.list_tickets(&TicketFilter::default()).unwrap()[0].number.clone();

    let said = postdesk(
        &config,
        &["ticket", "reply", &number, "--from-agent", "agent1@example.test"],
        "Hello Carol,\nplease use the rear tray.\n",
    );
    assert!(said.contains("queued"), "{said}");
    // The daemon's sender finds the row on its own: it looks at least every 30 s, then Postfix delivers. The limit
    // leaves room for a loaded machine; it bounds a wait, it measures nothing.
    let delivered = wait_until(Duration::from_secs(120), || stack.count("customer", "INBOX") >= 2);
    assert!(delivered.is_some(), "the reply did not arrive:\n{}", daemon.log_text());
    std::thread::sleep(Duration::from_millis(300));
    let mails: Vec<InboundMail> = stack.mails("customer", "INBOX").iter().map(|m| parsed(m)).collect();
    let answer = mails.iter().find(|m| m.text.contains("rear tray")).expect("the answer");
    assert!(answer.subject.contains(&format!("[Ticket#{number}]")), "{}", answer.subject);
    assert_eq!(answer.from.as_ref().unwrap().email, "support@example.test", "never the agent's own address");
    assert_eq!(answer.in_reply_to, vec![format!("cli-reply.{}@example.test", std::process::id())]);
    assert_eq!(mails.len(), 2, "exactly one answer");
    let row = store.outbox_list(None, 10).unwrap().into_iter().find(|r| r.kind == "agent-reply").unwrap();
    assert_eq!(row.state, "sent");
    drop(daemon);
}
