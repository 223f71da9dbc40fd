//! Live test of the SMTP relay client against a real Postfix (scripts/mailstack.sh) that delivers into Dovecot.

mod common;

use std::time::Duration;

use common::stack::{Stack, wait_until};

use postdesk::config::{SmtpConfig, TlsMode};
use postdesk::model::Address;
use postdesk::outbound::{AutoSubmitted, OutgoingMail, Relay, build};

fn smtp(stack: &Stack, tls: TlsMode) -> SmtpConfig {
    SmtpConfig {
        host: stack.var("PD_SMTP_HOST").into(),
        port: Some(stack.port("PD_SMTP_PORT")),
        tls,
        ca_file: Some(stack.var("PD_CA_FILE").into()),
        username: None,
        password_file: None,
        retry_base_seconds: 1,
        retry_max_seconds: 2,
        relay_probe_max_seconds: 2,
    }
}

fn wait_for(stack: &Stack, user: &str, n: usize) -> usize {
    wait_until(Duration::from_secs(20), || stack.count(user, "INBOX") >= n);
    stack.count(user, "INBOX")
}

fn mail(subject: &str) -> OutgoingMail {
    OutgoingMail {
        from: Address::new(Some("Example Support"), "support@example.test"),
        to: vec![Address::new(Some("Carol Customer"), "customer@example.test")],
        cc: vec![],
        reply_to: None,
        subject: subject.into(),
        message_id: format!("pd.2026112310000012.{:016x}.00112233445566778899@example.test", rand_u64()),
        in_reply_to: None,
        references: vec![],
        auto_submitted: Some(AutoSubmitted::AutoReplied),
        loop_marker: "support@example.test".into(),
        date: 1_763_856_000,
        text: "Grüße aus dem Test.\n".into(),
        html: None,
    }
}

fn rand_u64() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos() as u64
}

#[tokio::test(flavor = "multi_thread")]
async fn relay_delivers_through_postfix_and_never_downgrades_tls() {
    let stack = Stack::start();
    let rcpt = vec!["customer@example.test".to_string()];

    // Plain SMTP to loopback delivers.
    let relay = Relay::new(&smtp(&stack, TlsMode::Plain), None, "desk.example.test").unwrap();
    let raw = build(&mail("Live relay test – ä")).unwrap();
    relay.send("support@example.test", &rcpt, &raw).await.unwrap();
    assert_eq!(wait_for(&stack, "customer", 1), 1, "delivered once");
    let delivered = String::from_utf8_lossy(&stack.mails("customer", "INBOX")[0]).into_owned();
    assert!(delivered.contains("X-Postdesk-Loop: support@example.test"), "{delivered}");
    assert!(delivered.contains("Auto-Submitted: auto-replied"), "{delivered}");

    // This Postfix offers no STARTTLS: a required upgrade fails (for a retry) instead of sending in clear.
    let relay = Relay::new(&smtp(&stack, TlsMode::Starttls), None, "desk.example.test").unwrap();
    let err = relay.send("support@example.test", &rcpt, &build(&mail("must not arrive")).unwrap()).await.unwrap_err();
    assert!(err.transient, "{err:?}");

    // Implicit TLS against a plain-text server fails the handshake.
    let relay = Relay::new(&smtp(&stack, TlsMode::Tls), None, "desk.example.test").unwrap();
    let err = relay.send("support@example.test", &rcpt, &build(&mail("must not arrive")).unwrap()).await.unwrap_err();
    assert!(err.transient, "{err:?}");

    std::thread::sleep(Duration::from_secs(1));
    assert_eq!(stack.count("customer", "INBOX"), 1, "nothing went out without the TLS asked for");
}
