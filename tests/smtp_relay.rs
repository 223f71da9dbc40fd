//! Live test of the SMTP relay client against a real Postfix (scripts/mailstack.sh) that delivers into Dovecot.
//! Skipped with a note when the script is missing or we are not root (the stack needs it). `PD_MAILSTACK` overrides
//! the script's path.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use postdesk::config::{SmtpConfig, TlsMode};
use postdesk::model::Address;
use postdesk::outbound::{AutoSubmitted, OutgoingMail, Relay, build};

struct MailStack {
    script: PathBuf,
    dir: tempfile::TempDir,
    env: Vec<(String, String)>,
}

impl MailStack {
    fn start() -> Option<MailStack> {
        let script = std::env::var_os("PD_MAILSTACK")
            .map(PathBuf::from)
            .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/mailstack.sh"));
        if !script.exists() {
            eprintln!("skipped: {} not found", script.display());
            return None;
        }
        let uid = Command::new("id").arg("-u").output().ok()?;
        if String::from_utf8_lossy(&uid.stdout).trim() != "0" {
            eprintln!("skipped: the mail stack needs root");
            return None;
        }
        let dir = tempfile::tempdir().unwrap();
        let stack_dir = dir.path().join("stack");
        let out = Command::new(&script).arg("start").arg(&stack_dir).output().unwrap();
        let mut stack = MailStack { script, dir, env: Vec::new() };
        assert!(out.status.success(), "mailstack start: {}", String::from_utf8_lossy(&out.stderr));
        let env = std::fs::read_to_string(stack_dir.join("env")).unwrap();
        stack.env = env
            .lines()
            .filter_map(|l| l.strip_prefix("export "))
            .filter_map(|l| l.split_once('='))
            .map(|(k, v)| (k.to_string(), v.trim_matches('"').to_string()))
            .collect();
        Some(stack)
    }

    fn var(&self, name: &str) -> &str {
        self.env.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str()).unwrap_or_else(|| panic!("no {name}"))
    }

    fn stack_dir(&self) -> PathBuf {
        self.dir.path().join("stack")
    }

    fn count(&self, address: &str) -> usize {
        let out = Command::new(&self.script).arg("count").arg(self.stack_dir()).arg(address).output().unwrap();
        assert!(out.status.success(), "mailstack count: {}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8_lossy(&out.stdout).trim().parse().unwrap()
    }

    fn fetch(&self, address: &str) -> Vec<Vec<u8>> {
        let out = Command::new(&self.script).arg("fetch").arg(self.stack_dir()).arg(address).output().unwrap();
        assert!(out.status.success(), "mailstack fetch: {}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8_lossy(&out.stdout).lines().map(|p| std::fs::read(p.trim()).unwrap()).collect()
    }

    fn wait_for(&self, address: &str, n: usize) -> usize {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let got = self.count(address);
            if got >= n || Instant::now() > deadline {
                return got;
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    fn smtp(&self, tls: TlsMode) -> SmtpConfig {
        SmtpConfig {
            host: self.var("PD_SMTP_HOST").into(),
            port: Some(self.var("PD_SMTP_PORT").parse().unwrap()),
            tls,
            ca_file: Some(self.var("PD_CA_FILE").into()),
            username: None,
            password_file: None,
        }
    }
}

impl Drop for MailStack {
    fn drop(&mut self) {
        let _ = Command::new(&self.script).arg("stop").arg(self.stack_dir()).output();
    }
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
    let Some(stack) = MailStack::start() else { return };
    let rcpt = vec!["customer@example.test".to_string()];

    // Plain SMTP to loopback delivers.
    let relay = Relay::new(&stack.smtp(TlsMode::Plain), None, "desk.example.test").unwrap();
    let raw = build(&mail("Live relay test – ä")).unwrap();
    relay.send("support@example.test", &rcpt, &raw).await.unwrap();
    assert_eq!(stack.wait_for("customer@example.test", 1), 1, "delivered once");
    let delivered = String::from_utf8_lossy(&stack.fetch("customer@example.test")[0]).into_owned();
    assert!(delivered.contains("X-Postdesk-Loop: support@example.test"), "{delivered}");
    assert!(delivered.contains("Auto-Submitted: auto-replied"), "{delivered}");

    // This Postfix offers no STARTTLS: a required upgrade fails (for a retry) instead of sending in clear.
    let relay = Relay::new(&stack.smtp(TlsMode::Starttls), None, "desk.example.test").unwrap();
    let err = relay.send("support@example.test", &rcpt, &build(&mail("must not arrive")).unwrap()).await.unwrap_err();
    assert!(err.transient, "{err:?}");

    // Implicit TLS against a plain-text server fails the handshake.
    let relay = Relay::new(&stack.smtp(TlsMode::Tls), None, "desk.example.test").unwrap();
    let err = relay.send("support@example.test", &rcpt, &build(&mail("must not arrive")).unwrap()).await.unwrap_err();
    assert!(err.transient, "{err:?}");

    std::thread::sleep(Duration::from_secs(1));
    assert_eq!(stack.count("customer@example.test"), 1, "nothing went out without the TLS asked for");
}
