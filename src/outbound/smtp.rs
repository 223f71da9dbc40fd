//! The SMTP relay client: the network edge of outgoing mail. Hands finished bytes ([`super::build`]) to the
//! configured relay and says whether a failure is worth retrying.
//!
//! TLS is never downgraded: `tls` is implicit TLS (RFC 8314 §3.3, port 465), `starttls` requires the STARTTLS
//! upgrade (RFC 3207, port 587) and fails if the server does not offer it, and `plain` is refused unless the relay
//! is on loopback (port 25). Certificates are checked against the system store plus an optional private CA file.

use std::fmt;
use std::net::IpAddr;
use std::path::PathBuf;
use std::time::Duration;

use lettre::address::Envelope;
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Certificate, Tls, TlsParameters};
use lettre::transport::smtp::extension::ClientId;
use lettre::{AsyncSmtpTransport, AsyncTransport, Tokio1Executor};

use crate::config::{Secret, SmtpConfig, TlsMode, is_loopback};

/// Per-step limit (connect, each command, the data transfer): a stuck relay must not stall the sender loop.
const TIMEOUT: Duration = Duration::from_secs(30);

#[derive(Debug, thiserror::Error)]
pub enum SmtpSetupError {
    #[error("smtp.tls = \"plain\" is only allowed to a loopback host, not \"{0}\"; use \"tls\" or \"starttls\"")]
    PlainNotLoopback(String),
    #[error("smtp.username is set but there is no password (smtp.password_file or the smtp-password credential)")]
    MissingPassword,
    #[error("{path}: cannot read CA file: {source}")]
    CaRead { path: PathBuf, source: std::io::Error },
    #[error("{path}: no PEM certificate found in the CA file")]
    CaEmpty { path: PathBuf },
    #[error("TLS setup for {host}: {message}")]
    Tls { host: String, message: String },
}

/// Why a send failed, and whether to try again later (4xx replies, network trouble, timeouts, TLS failures) or give
/// up on this mail (5xx replies, addresses the relay can never accept).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct SendError {
    pub transient: bool,
    /// The relay itself could not be reached or refused service as a whole (connection refused or dropped,
    /// timeout, TLS, 421 per RFC 5321 §3.8): every mail waits for it, not just this one.
    pub relay_down: bool,
    pub message: String,
}

impl SendError {
    fn permanent(message: String) -> SendError {
        SendError { transient: false, relay_down: false, message }
    }

    /// Only a 5xx reply is permanent (RFC 5321 §4.2.1). Everything else — 4xx, refused or dropped connections,
    /// timeouts, TLS failures (usually a configuration problem the admin will fix) — keeps the mail for a retry.
    fn from_lettre(e: &lettre::transport::smtp::Error) -> SendError {
        let transient = !e.is_permanent();
        let kind = if e.is_timeout() {
            "timeout: "
        } else if e.is_tls() {
            "TLS: "
        } else {
            ""
        };
        // A 4xx reply is about this mail (a busy mailbox, greylisting), except 421, the relay closing for everyone.
        let relay_down = transient && e.status().is_none_or(|code| code.to_string() == "421");
        // lettre's Display already appends the source error.
        SendError { transient, relay_down, message: format!("{kind}{e}") }
    }
}

pub struct Relay {
    transport: AsyncSmtpTransport<Tokio1Executor>,
    host: String,
    port: u16,
    tls: TlsMode,
}

/// Shows where mail goes, never the credentials.
impl fmt::Debug for Relay {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Relay").field("host", &self.host).field("port", &self.port).field("tls", &self.tls).finish()
    }
}

impl Relay {
    /// Builds the client; connects only when sending. Reads `cfg.ca_file` now, so a bad file fails at startup.
    pub fn new(cfg: &SmtpConfig, password: Option<Secret>, hello_name: &str) -> Result<Relay, SmtpSetupError> {
        let host = cfg.host.trim().to_string();
        let port = cfg.port.unwrap_or(match cfg.tls {
            TlsMode::Tls => 465,
            TlsMode::Starttls => 587,
            TlsMode::Plain => 25,
        });
        let tls = match cfg.tls {
            TlsMode::Plain if !is_loopback(&host) => return Err(SmtpSetupError::PlainNotLoopback(host)),
            TlsMode::Plain => Tls::None,
            TlsMode::Tls => Tls::Wrapper(tls_parameters(cfg, &host)?),
            TlsMode::Starttls => Tls::Required(tls_parameters(cfg, &host)?),
        };
        let mut builder = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(host.clone())
            .port(port)
            .tls(tls)
            .timeout(Some(TIMEOUT))
            .hello_name(client_id(hello_name));
        match (&cfg.username, password) {
            (Some(user), Some(pass)) => {
                builder = builder.credentials(Credentials::new(user.clone(), pass.expose().to_string()));
            }
            (Some(_), None) => return Err(SmtpSetupError::MissingPassword),
            // A password without a username is ignored: there is nobody to log in as.
            (None, _) => {}
        }
        Ok(Relay { transport: builder.build(), host, port, tls: cfg.tls })
    }

    /// Sends `raw` (a complete message) to `recipients`. `envelope_from` is the SMTP MAIL FROM; empty means the
    /// null sender `<>` (RFC 5321 §4.5.5), for mail that must never be answered with a bounce. Returns the relay's
    /// answer to the message (`250 2.0.0 Ok: queued as …`), for the log: it names the relay's queue id.
    pub async fn send(&self, envelope_from: &str, recipients: &[String], raw: &[u8]) -> Result<String, SendError> {
        let from = match envelope_from.trim() {
            "" | "<>" => None,
            addr => Some(parse_address("envelope sender", addr)?),
        };
        let to = recipients.iter().map(|r| parse_address("recipient", r)).collect::<Result<Vec<_>, _>>()?;
        let envelope = Envelope::new(from, to).map_err(|e| SendError::permanent(format!("envelope: {e}")))?;
        let response = self.transport.send_raw(&envelope, raw).await.map_err(|e| SendError::from_lettre(&e))?;
        let text: Vec<&str> = response.message().collect();
        Ok(format!("{} {}", response.code(), text.join(" ")))
    }
}

impl Relay {
    /// A cheap look at whether the relay answers: connect, greet (and STARTTLS, AUTH as configured), NOOP, QUIT.
    /// Sends no mail.
    pub async fn probe(&self) -> Result<(), SendError> {
        match self.transport.test_connection().await {
            Ok(true) => Ok(()),
            Ok(false) => {
                Err(SendError { transient: true, relay_down: true, message: "relay did not answer NOOP".into() })
            }
            Err(e) => Err(SendError::from_lettre(&e)),
        }
    }

    /// `host:port`, for logs and status.
    pub fn address(&self) -> String {
        format!("{}:{}", self.host, self.port)
    }
}

fn parse_address(what: &str, address: &str) -> Result<lettre::Address, SendError> {
    address
        .trim()
        .trim_start_matches('<')
        .trim_end_matches('>')
        .parse()
        .map_err(|e| SendError::permanent(format!("{what} \"{address}\" is not a valid address: {e}")))
}

fn client_id(hello_name: &str) -> ClientId {
    match hello_name.trim().parse::<IpAddr>() {
        Ok(IpAddr::V4(ip)) => ClientId::Ipv4(ip),
        Ok(IpAddr::V6(ip)) => ClientId::Ipv6(ip),
        Err(_) => ClientId::Domain(hello_name.trim().to_string()),
    }
}

/// The system roots (lettre's `rustls-native-certs` store) plus the PEM certificates of `cfg.ca_file`, if any.
fn tls_parameters(cfg: &SmtpConfig, host: &str) -> Result<TlsParameters, SmtpSetupError> {
    let mut builder = TlsParameters::builder(host.to_string());
    if let Some(path) = &cfg.ca_file {
        let pem = std::fs::read(path).map_err(|source| SmtpSetupError::CaRead { path: path.clone(), source })?;
        // lettre accepts a file without certificates silently; count them so a wrong file is reported.
        let count = rustls_pemfile::certs(&mut pem.as_slice()).filter(Result::is_ok).count();
        if count == 0 {
            return Err(SmtpSetupError::CaEmpty { path: path.clone() });
        }
        let certs = Certificate::from_pem(&pem)
            .map_err(|e| SmtpSetupError::Tls { host: host.into(), message: format!("{}: {e}", path.display()) })?;
        builder = builder.add_root_certificate(certs);
    }
    builder.build_rustls().map_err(|e| SmtpSetupError::Tls { host: host.into(), message: e.to_string() })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(host: &str, tls: TlsMode) -> SmtpConfig {
        SmtpConfig {
            host: host.into(),
            port: None,
            tls,
            ca_file: None,
            username: None,
            password_file: None,
            retry_base_seconds: 30,
            retry_max_seconds: 3600,
            relay_probe_max_seconds: 30,
        }
    }

    #[test]
    fn plain_is_refused_to_a_remote_host() {
        let err = Relay::new(&cfg("smtp.example.com", TlsMode::Plain), None, "desk.example.com").unwrap_err();
        assert!(matches!(err, SmtpSetupError::PlainNotLoopback(_)), "{err}");
        for host in ["127.0.0.1", "localhost", "::1", "[::1]"] {
            Relay::new(&cfg(host, TlsMode::Plain), None, "desk.example.com").unwrap();
        }
    }

    #[test]
    fn default_ports_follow_the_tls_mode() {
        let port = |tls| Relay::new(&cfg("smtp.example.com", tls), None, "desk.example.com").unwrap().port;
        assert_eq!(port(TlsMode::Tls), 465);
        assert_eq!(port(TlsMode::Starttls), 587);
        assert_eq!(Relay::new(&cfg("127.0.0.1", TlsMode::Plain), None, "x").unwrap().port, 25);
    }

    #[test]
    fn username_without_password_is_refused_and_debug_hides_credentials() {
        let mut c = cfg("smtp.example.com", TlsMode::Starttls);
        c.username = Some("desk".into());
        assert!(matches!(Relay::new(&c, None, "x"), Err(SmtpSetupError::MissingPassword)));
        let relay = Relay::new(&c, Some(Secret::new("hunter2".into())), "x").unwrap();
        let shown = format!("{relay:?}");
        assert!(!shown.contains("hunter2") && shown.contains("smtp.example.com"), "{shown}");
    }

    #[test]
    fn ca_file_must_exist_and_hold_certificates() {
        let dir = tempfile::tempdir().unwrap();
        let mut c = cfg("smtp.example.com", TlsMode::Tls);
        c.ca_file = Some(dir.path().join("missing.pem"));
        assert!(matches!(Relay::new(&c, None, "x"), Err(SmtpSetupError::CaRead { .. })));
        let empty = dir.path().join("empty.pem");
        std::fs::write(&empty, "not a certificate\n").unwrap();
        c.ca_file = Some(empty);
        assert!(matches!(Relay::new(&c, None, "x"), Err(SmtpSetupError::CaEmpty { .. })));
    }

    /// A one-connection SMTP server that accepts everything up to RCPT, then answers RCPT with `rcpt_reply`.
    async fn scripted_server(rcpt_reply: &'static str) -> u16 {
        use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        tokio::spawn(async move {
            let (socket, _) = listener.accept().await.unwrap();
            let (read, mut write) = socket.into_split();
            let mut lines = BufReader::new(read).lines();
            write.write_all(b"220 fake ESMTP\r\n").await.unwrap();
            while let Ok(Some(line)) = lines.next_line().await {
                let verb = line.split([' ', ':']).next().unwrap_or("").to_ascii_uppercase();
                let reply = match verb.as_str() {
                    "EHLO" | "HELO" => "250 fake\r\n".to_string(),
                    "RCPT" => format!("{rcpt_reply}\r\n"),
                    "QUIT" => "221 bye\r\n".to_string(),
                    _ => "250 ok\r\n".to_string(),
                };
                write.write_all(reply.as_bytes()).await.unwrap();
                if verb == "QUIT" {
                    break;
                }
            }
        });
        port
    }

    #[tokio::test]
    async fn smtp_replies_map_to_transient_and_permanent() {
        for (reply, transient) in [("450 4.2.0 mailbox busy", true), ("550 5.1.1 no such user", false)] {
            let mut c = cfg("127.0.0.1", TlsMode::Plain);
            c.port = Some(scripted_server(reply).await);
            let relay = Relay::new(&c, None, "desk.example.com").unwrap();
            let err = relay.send("support@example.com", &["x@customer.test".into()], b"x\r\n").await.unwrap_err();
            assert_eq!(err.transient, transient, "{reply}: {err:?}");
            assert!(!err.relay_down, "a reply about one mail does not mean the relay is down: {err:?}");
            assert!(err.message.contains(&reply[4..]), "{reply}: {err:?}");
        }
    }

    #[tokio::test]
    async fn refused_connection_is_transient_and_bad_addresses_are_permanent() {
        // Bind then drop a listener: the port is free, so connecting is refused.
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let mut c = cfg("127.0.0.1", TlsMode::Plain);
        c.port = Some(port);
        let relay = Relay::new(&c, None, "desk.example.com").unwrap();
        let err = relay.send("support@example.com", &["carol@customer.test".into()], b"Subject: x\r\n\r\nx\r\n").await;
        assert!(err.as_ref().unwrap_err().transient && err.as_ref().unwrap_err().relay_down, "{err:?}");
        assert!(relay.probe().await.unwrap_err().relay_down);
        let err = relay.send("support@example.com", &["not an address".into()], b"x").await.unwrap_err();
        assert!(!err.transient, "{err:?}");
        let err = relay.send("support@example.com", &[], b"x").await.unwrap_err();
        assert!(!err.transient, "{err:?}");
    }
}
