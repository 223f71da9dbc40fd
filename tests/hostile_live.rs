//! Hostile surroundings against the real Dovecot (issue 10): no secret at any log level.

mod common;

use std::process::{Command, Stdio};
use std::time::Duration;

use common::stack::*;

/// The IMAP library traces every command it sends, `LOGIN` with the password included; at `POSTDESK_LOG=trace` in
/// every output format the password must not appear, in any form, and the login must still have happened.
#[test]
fn secret_in_logs_imap_login_at_trace_level_never_shows_the_password() {
    let stack = Stack::start();
    let password = stack.var("PD_PASSWORD").to_string();
    let b64 = {
        use base64::Engine;
        base64::engine::general_purpose::STANDARD.encode(&password)
    };
    for format in ["text", "json"] {
        let state = stack.dir.path().join(format!("pd-{format}"));
        // Plain IMAP on loopback: the LOGIN command travels (and is traced) as written, no TLS in between.
        let config = stack.postdesk_config(&state, "", false);
        let log = state.join("trace.log");
        let mut child = Command::new(env!("CARGO_BIN_EXE_postdesk"))
            .arg("--config")
            .arg(&config)
            .arg("run")
            .env("POSTDESK_LOG", "trace")
            .env("POSTDESK_LOG_FORMAT", format)
            .env_remove("JOURNAL_STREAM")
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .unwrap();
        let text = || std::fs::read_to_string(&log).unwrap_or_default();
        let logged_in =
            wait_until(Duration::from_secs(20), || text().contains("connected") && text().contains("LOGIN"));
        let _ = child.kill();
        let _ = child.wait();
        let text = text();
        assert!(logged_in.is_some(), "{format}: no traced login within 20 s:\n{text}");
        assert!(text.contains("[redacted]"), "{format}: the LOGIN line was not traced redacted:\n{text}");
        assert!(!text.contains(&password), "{format}: the password is in the trace log");
        assert!(!text.contains(&b64), "{format}: the password's base64 is in the trace log");
    }
}
