//! Logging: where lines go, in which format, and the guard that keeps credentials out of them at every level.
//!
//! - **Format.** `journald` (structured fields: every tracing field becomes a journal field), `text` (one plain line
//!   per event on stderr) or `json` (one JSON object per line on stderr). `auto`, the default, picks journald when
//!   stderr *is* the journal's stream — `$JOURNAL_STREAM` names stderr's device:inode, as systemd.exec(5) says to
//!   check — and text otherwise. Chosen by `POSTDESK_LOG_FORMAT`, else `[logging] format` in the config.
//! - **Level.** `POSTDESK_LOG` (an `EnvFilter`: `debug`, `postdesk=trace`, …), else the caller's default.
//! - **Secrets.** The IMAP and TLS libraries log through the `log` crate; at trace level async-imap writes every
//!   command it sends, `LOGIN` with the password included (issue 10). Their records do not reach the subscriber
//!   directly: [`Bridge`] formats each one, passes it through [`redact`] and only then emits it as a tracing event
//!   (target `postdesk::library`, field `library`). Text and JSON output pass through [`redact`] once more on the way
//!   to stderr, which covers libraries that log through tracing themselves. [`redact`] removes every password read
//!   from a file ([`register_secret`], called by `config::Secret::new`) in the forms a protocol trace shows it (raw,
//!   escaped, quoted, base64), and the arguments of the commands that carry credentials (`LOGIN`, `AUTHENTICATE`,
//!   `AUTH`), so a secret it was never told about still does not show in those.

use std::borrow::Cow;
use std::io::{self, Write};
use std::sync::{LazyLock, RwLock};

use base64::Engine;
use regex::Regex;
use serde::Deserialize;
use tracing_subscriber::EnvFilter;
use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::layer::SubscriberExt;

/// `[logging] format`; `POSTDESK_LOG_FORMAT` overrides it.
#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq, Default)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    #[default]
    Auto,
    Text,
    Json,
    Journald,
}

impl LogFormat {
    fn from_env() -> Option<LogFormat> {
        match std::env::var("POSTDESK_LOG_FORMAT").ok()?.trim().to_ascii_lowercase().as_str() {
            "auto" => Some(LogFormat::Auto),
            "text" => Some(LogFormat::Text),
            "json" => Some(LogFormat::Json),
            "journald" => Some(LogFormat::Journald),
            _ => None,
        }
    }
}

/// Installs the global subscriber and the `log` bridge. `configured` is `[logging] format` when the config could be
/// read. Called once, first thing; a second call changes nothing.
pub fn init(default_level: &str, configured: Option<LogFormat>) {
    let filter = EnvFilter::try_from_env("POSTDESK_LOG").unwrap_or_else(|_| EnvFilter::new(default_level));
    let max = filter.max_level_hint().unwrap_or(tracing::level_filters::LevelFilter::TRACE);
    let format = match LogFormat::from_env().or(configured).unwrap_or_default() {
        LogFormat::Auto if under_journald() => LogFormat::Journald,
        LogFormat::Auto => LogFormat::Text,
        other => other,
    };
    let journald = match format {
        // Field names under one prefix (POSTDESK_TICKET, POSTDESK_OUTCOME, …): `journalctl POSTDESK_TICKET=…`
        // finds a ticket's lines, and no field can clash with journald's own (MESSAGE_ID is a catalog id there).
        LogFormat::Journald => tracing_journald::layer().ok().map(|l| l.with_field_prefix(Some("POSTDESK".into()))),
        _ => None,
    };
    let installed = if let Some(journald) = journald {
        let subscriber = tracing_subscriber::registry().with(filter).with(journald);
        tracing::subscriber::set_global_default(subscriber).is_ok()
    } else if format == LogFormat::Json {
        let layer = tracing_subscriber::fmt::layer().json().with_writer(RedactingStderr).with_target(false);
        tracing::subscriber::set_global_default(tracing_subscriber::registry().with(filter).with(layer)).is_ok()
    } else {
        // journald (when it was asked for but its socket is missing) adds its own timestamps; plain lines read well
        // there and in a terminal.
        let layer = tracing_subscriber::fmt::layer()
            .with_writer(RedactingStderr)
            .with_ansi(io::IsTerminal::is_terminal(&io::stderr()))
            .with_target(false);
        tracing::subscriber::set_global_default(tracing_subscriber::registry().with(filter).with(layer)).is_ok()
    };
    if installed && log::set_logger(&Bridge).is_ok() {
        log::set_max_level(match max.into_level() {
            None => log::LevelFilter::Off,
            Some(tracing::Level::ERROR) => log::LevelFilter::Error,
            Some(tracing::Level::WARN) => log::LevelFilter::Warn,
            Some(tracing::Level::INFO) => log::LevelFilter::Info,
            Some(tracing::Level::DEBUG) => log::LevelFilter::Debug,
            Some(tracing::Level::TRACE) => log::LevelFilter::Trace,
        });
    }
}

/// Whether stderr is the journal's stream: `$JOURNAL_STREAM` is `<device>:<inode>` of it (systemd.exec(5)).
fn under_journald() -> bool {
    let Ok(value) = std::env::var("JOURNAL_STREAM") else { return false };
    let Ok(stat) = rustix::fs::fstat(io::stderr()) else { return false };
    #[allow(clippy::unnecessary_cast)] // the field types differ between targets
    let (dev, ino) = (stat.st_dev as u64, stat.st_ino as u64);
    journal_stream_matches(&value, dev, ino)
}

fn journal_stream_matches(value: &str, dev: u64, ino: u64) -> bool {
    let Some((d, i)) = value.trim().split_once(':') else { return false };
    d.parse::<u64>().is_ok_and(|d| d == dev) && i.parse::<u64>().is_ok_and(|i| i == ino)
}

/// The `log` crate's records (async-imap, rustls), redacted, as tracing events.
struct Bridge;

impl log::Log for Bridge {
    fn enabled(&self, _: &log::Metadata) -> bool {
        // The subscriber's filter decides; `log::set_max_level` already cuts what it would drop anyway.
        true
    }

    fn log(&self, record: &log::Record) {
        let message = record.args().to_string();
        let message = redact(&message);
        let library = record.target();
        match record.level() {
            log::Level::Error => tracing::error!(target: "postdesk::library", library, "{message}"),
            log::Level::Warn => tracing::warn!(target: "postdesk::library", library, "{message}"),
            log::Level::Info => tracing::info!(target: "postdesk::library", library, "{message}"),
            log::Level::Debug => tracing::debug!(target: "postdesk::library", library, "{message}"),
            log::Level::Trace => tracing::trace!(target: "postdesk::library", library, "{message}"),
        }
    }

    fn flush(&self) {}
}

/// Every form of every registered secret, longest first (so a form containing another is replaced whole).
static SECRETS: RwLock<Vec<String>> = RwLock::new(Vec::new());

/// The commands whose arguments are credentials: IMAP `LOGIN user pass` and `AUTHENTICATE mech initial-response`
/// (RFC 9051 §6.2.3, §6.2.2), SMTP `AUTH mech initial-response` (RFC 4954 §4). The user name is kept. Upper
/// case only, as the libraries send them, so that prose such as "login failed: …" is left alone.
static CREDENTIAL_COMMANDS: LazyLock<[(Regex, &'static str); 2]> = LazyLock::new(|| {
    [
        (Regex::new(r#"(\bLOGIN\s+(?:\\?"(?:[^"\\]|\\.)*?\\?"|\S+)\s+)[^\r\n]*"#).expect("regex"), "$1[redacted]"),
        (Regex::new(r"(\bAUTH(?:ENTICATE)?\s+[A-Z0-9_-]+\s+)[^\r\n]*").expect("regex"), "$1[redacted]"),
    ]
});

/// Remembers `secret` so that [`redact`] removes it, in every form a protocol trace may show it in.
pub fn register_secret(secret: &str) {
    if secret.is_empty() {
        return;
    }
    let b64 = base64::engine::general_purpose::STANDARD;
    let quoted = secret.replace('\\', "\\\\").replace('"', "\\\"");
    let debug = |s: &str| format!("{s:?}").trim_matches('"').to_string();
    let forms = [secret.to_string(), debug(secret), quoted.clone(), debug(&quoted), b64.encode(secret)];
    let Ok(mut secrets) = SECRETS.write() else { return };
    for form in forms {
        if !form.is_empty() && !secrets.contains(&form) {
            secrets.push(form);
        }
    }
    secrets.sort_by_key(|s| std::cmp::Reverse(s.len()));
}

/// `text` without credentials: registered secrets become `[redacted]`, and so does everything after the user name
/// of a `LOGIN`, or after the mechanism of an `AUTH`/`AUTHENTICATE`.
pub fn redact(text: &str) -> Cow<'_, str> {
    let mut out = Cow::Borrowed(text);
    if let Ok(secrets) = SECRETS.read() {
        for secret in secrets.iter() {
            if out.contains(secret.as_str()) {
                out = Cow::Owned(out.replace(secret.as_str(), "[redacted]"));
            }
        }
    }
    for (pattern, replacement) in CREDENTIAL_COMMANDS.iter() {
        if let Cow::Owned(replaced) = pattern.replace_all(&out, *replacement) {
            out = Cow::Owned(replaced);
        }
    }
    out
}

/// Stderr through [`redact`]. The fmt layer writes each event with one `write_all`, so a secret is never split
/// between two calls.
struct RedactingStderr;

impl<'a> MakeWriter<'a> for RedactingStderr {
    type Writer = RedactingWriter;
    fn make_writer(&'a self) -> RedactingWriter {
        RedactingWriter
    }
}

struct RedactingWriter;

impl Write for RedactingWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let text = String::from_utf8_lossy(buf);
        io::stderr().write_all(redact(&text).as_bytes())?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        io::stderr().flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secret_in_logs_is_redacted_in_every_form_a_trace_shows() {
        register_secret("hunter\"2\\x");
        let cases = [
            // async-imap's encode trace: Debug of the command bytes.
            r#"encode: input: Some("A0001"), Ok("LOGIN \"pd@example.test\" \"hunter\\\"2\\\\x\"\r\n")"#,
            "plain: the password is hunter\"2\\x",
            "AUTH LOGIN continuation: aHVudGVyIjJceA==",
        ];
        for line in cases {
            let out = redact(line);
            assert!(!out.contains("hunter") && !out.contains("aHVudGVyIjJceA"), "{line} -> {out}");
            assert!(out.contains("[redacted]"), "{out}");
        }
    }

    #[test]
    fn credential_commands_lose_their_arguments_even_for_unknown_secrets() {
        let cases = [
            ("A1 LOGIN user s3cret", "A1 LOGIN user [redacted]"),
            (r#"A1 LOGIN "a b" "s3 cret""#, r#"A1 LOGIN "a b" [redacted]"#),
            (r#"Ok("A1 LOGIN \"u\" \"s3cret\"\r\n")"#, r#"Ok("A1 LOGIN \"u\" [redacted]"#),
            ("Wrote: AUTH PLAIN AHVzZXIAczNjcmV0\\r\\n", "Wrote: AUTH PLAIN [redacted]"),
            ("A2 AUTHENTICATE XOAUTH2 dXNlcj1...", "A2 AUTHENTICATE XOAUTH2 [redacted]"),
            ("SELECT INBOX", "SELECT INBOX"),
            ("a mail about the login page", "a mail about the login page"),
            ("imap login failed: NO [AUTHENTICATIONFAILED]", "imap login failed: NO [AUTHENTICATIONFAILED]"),
        ];
        for (line, want) in cases {
            assert_eq!(redact(line), want, "{line}");
        }
    }

    #[test]
    fn journal_stream_must_name_stderr_exactly() {
        assert!(journal_stream_matches("8:12345", 8, 12345));
        assert!(!journal_stream_matches("8:12345", 8, 1234));
        assert!(!journal_stream_matches("9:12345", 8, 12345));
        assert!(!journal_stream_matches("garbage", 8, 12345));
    }
}
