//! The IMAP edge: connect (TLS, STARTTLS or loopback plaintext), list, download, move, and wait for new mail with
//! IDLE or polling. No ticket logic here: the daemon hands what this fetches to the pipeline.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use async_imap::Session;
use async_imap::extensions::idle::IdleResponse;
use futures::TryStreamExt;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;
use tokio::time::timeout;

use crate::config::{ImapConfig, Secret, TlsMode, is_loopback};

/// The keyword that marks mail as done on servers with neither MOVE nor UIDPLUS, where it stays in the mailbox.
const DONE_KEYWORD: &str = "PostdeskDone";
const CONNECT_TIMEOUT: Duration = Duration::from_secs(15);
const COMMAND_TIMEOUT: Duration = Duration::from_secs(120);
/// RFC 2177 §3 lets servers drop an IDLE after 30 minutes. We re-issue it far sooner, with a fresh search each
/// time: a notification lost anywhere (a proxy, a server bug) then delays mail by minutes, not half an hour.
pub const IDLE_REFRESH: Duration = Duration::from_secs(5 * 60);

pub trait Stream: AsyncRead + AsyncWrite + Unpin + Send + fmt::Debug {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send + fmt::Debug> Stream for T {}
type ImapSession = Session<Box<dyn Stream>>;

#[derive(Debug, thiserror::Error)]
pub enum ImapError {
    /// The server refused our login: retrying with the same password will not help.
    #[error("IMAP login as {user} failed: {message}; check imap.username and the password file")]
    Auth { user: String, message: String },
    #[error("IMAP server certificate for {host} not trusted: {message}; if it uses a private CA, set imap.ca_file")]
    Certificate { host: String, message: String },
    #[error("{0}")]
    Setup(String),
    /// Network trouble, timeouts, server restarts: reconnect with backoff.
    #[error("{0}")]
    Transient(String),
}

impl ImapError {
    pub fn is_fatal(&self) -> bool {
        !matches!(self, ImapError::Transient(_))
    }
}

fn transient(what: &str) -> impl FnOnce(async_imap::error::Error) -> ImapError + '_ {
    move |e| ImapError::Transient(format!("IMAP {what}: {e}"))
}

async fn timed<T, F: Future<Output = Result<T, ImapError>>>(what: &str, limit: Duration, f: F) -> Result<T, ImapError> {
    timeout(limit, f)
        .await
        .map_err(|_| ImapError::Transient(format!("IMAP {what}: no answer in {}s", limit.as_secs())))?
}

/// Server features that decide how mail leaves the inbox.
#[derive(Debug, Clone, Copy, Default)]
pub struct Features {
    pub idle: bool,
    pub moves: bool,
    pub uidplus: bool,
}

pub struct Connection {
    session: ImapSession,
    pub features: Features,
    pub uidvalidity: u32,
    mailbox: String,
    /// The last wait skipped IDLE because new mail had been reported; see [`Connection::wait`].
    rechecked: bool,
}

/// A NO that says "not now" rather than "never" (RFC 5530 response codes): retried after a reconnect instead of
/// stopping the daemon, which systemd would not restart after a configuration error.
fn is_passing_trouble(no_message: &str) -> bool {
    ["[UNAVAILABLE]", "[INUSE]", "[SERVERBUG]"].iter().any(|code| no_message.contains(code))
}

/// Whether a response the server sent beside another command's tells of new mail.
fn announces_new_mail(response: &async_imap::types::UnsolicitedResponse) -> bool {
    use async_imap::types::UnsolicitedResponse::{Exists, Recent};
    matches!(response, Exists(n) | Recent(n) if *n > 0)
}

pub struct WaitOutcome {
    /// True when the server told us about new mail (or we polled); false after a quiet IDLE period.
    pub maybe_new: bool,
}

pub async fn connect(
    cfg: &ImapConfig,
    password: &Secret,
    tls: Option<Arc<rustls::ClientConfig>>,
) -> Result<Connection, ImapError> {
    let port = cfg.port.unwrap_or(if cfg.tls == TlsMode::Tls { 993 } else { 143 });
    if cfg.tls == TlsMode::Plain && !is_loopback(&cfg.host) {
        return Err(ImapError::Setup(format!("imap.tls = \"plain\" is only allowed to loopback, not {}", cfg.host)));
    }
    let tcp = timeout(CONNECT_TIMEOUT, TcpStream::connect((cfg.host.as_str(), port)))
        .await
        .map_err(|_| ImapError::Transient(format!("IMAP connect to {}:{port}: timed out", cfg.host)))?
        .map_err(|e| ImapError::Transient(format!("IMAP connect to {}:{port}: {e}", cfg.host)))?;
    let _ = tcp.set_nodelay(true);
    let stream: Box<dyn Stream> = match cfg.tls {
        TlsMode::Plain => Box::new(tcp),
        TlsMode::Tls => Box::new(handshake(cfg, tcp, tls).await?),
        TlsMode::Starttls => {
            let mut client = async_imap::Client::new(tcp);
            read_greeting(&mut client).await?;
            // Never a silent downgrade: STARTTLS refused means no connection at all.
            timed("STARTTLS", COMMAND_TIMEOUT, async {
                client.run_command_and_check_ok("STARTTLS", None).await.map_err(|e| {
                    ImapError::Setup(format!(
                        "IMAP server {} refused STARTTLS ({e}); imap.tls = \"starttls\" requires it",
                        cfg.host
                    ))
                })
            })
            .await?;
            Box::new(handshake(cfg, client.into_inner(), tls).await?)
        }
    };
    let mut client = async_imap::Client::new(stream);
    if cfg.tls != TlsMode::Starttls {
        read_greeting(&mut client).await?;
    }
    let login = timeout(COMMAND_TIMEOUT, client.login(&cfg.username, password.expose()))
        .await
        .map_err(|_| ImapError::Transient("IMAP login: no answer".into()))?;
    let mut session = match login {
        Ok(s) => s,
        // Dovecot answers NO [UNAVAILABLE] when its auth service is busy or restarting: not a wrong password.
        Err((async_imap::error::Error::No(message), _)) if !is_passing_trouble(&message) => {
            return Err(ImapError::Auth { user: cfg.username.clone(), message: message.to_string() });
        }
        Err((e, _)) => return Err(ImapError::Transient(format!("IMAP login: {e}"))),
    };
    let caps =
        timed("CAPABILITY", COMMAND_TIMEOUT, async { session.capabilities().await.map_err(transient("CAPABILITY")) })
            .await?;
    let features =
        Features { idle: caps.has_str("IDLE"), moves: caps.has_str("MOVE"), uidplus: caps.has_str("UIDPLUS") };
    let mailbox = timed("SELECT", COMMAND_TIMEOUT, async {
        session.select(&cfg.mailbox).await.map_err(|e| match e {
            async_imap::error::Error::No(m) if !is_passing_trouble(&m) => {
                ImapError::Setup(format!("IMAP mailbox \"{}\" cannot be selected: {m}", cfg.mailbox))
            }
            e => ImapError::Transient(format!("IMAP SELECT: {e}")),
        })
    })
    .await?;
    let uidvalidity = mailbox
        .uid_validity
        .ok_or_else(|| ImapError::Setup(format!("IMAP mailbox \"{}\" has no UIDVALIDITY", cfg.mailbox)))?;
    let mut conn = Connection { session, features, uidvalidity, mailbox: cfg.mailbox.clone(), rechecked: false };
    for folder in [&cfg.processed_mailbox, &cfg.quarantine_mailbox] {
        conn.ensure_folder(folder).await?;
    }
    Ok(conn)
}

async fn read_greeting<T: Stream>(client: &mut async_imap::Client<T>) -> Result<(), ImapError> {
    match timeout(COMMAND_TIMEOUT, client.read_response()).await {
        Ok(Ok(Some(_))) => Ok(()),
        Ok(Ok(None)) => Err(ImapError::Transient("IMAP server closed the connection before its greeting".into())),
        Ok(Err(e)) => Err(ImapError::Transient(format!("IMAP greeting: {e}"))),
        Err(_) => Err(ImapError::Transient("IMAP greeting: no answer".into())),
    }
}

async fn handshake(
    cfg: &ImapConfig,
    tcp: TcpStream,
    tls: Option<Arc<rustls::ClientConfig>>,
) -> Result<tokio_rustls::client::TlsStream<TcpStream>, ImapError> {
    let tls = tls.ok_or_else(|| ImapError::Setup("TLS requested but no TLS settings were built".into()))?;
    let name = rustls::pki_types::ServerName::try_from(cfg.host.trim_matches(['[', ']']).to_string())
        .map_err(|e| ImapError::Setup(format!("imap.host \"{}\" is not a valid TLS server name: {e}", cfg.host)))?;
    let connector = tokio_rustls::TlsConnector::from(tls);
    match timeout(CONNECT_TIMEOUT, connector.connect(name, tcp)).await {
        Err(_) => Err(ImapError::Transient(format!("TLS handshake with {}: timed out", cfg.host))),
        Ok(Ok(s)) => Ok(s),
        Ok(Err(e)) => match crate::tls::is_certificate_error(&e) {
            Some(message) => Err(ImapError::Certificate { host: cfg.host.clone(), message }),
            None => Err(ImapError::Transient(format!("TLS handshake with {}: {e}", cfg.host))),
        },
    }
}

/// `1:3,7,9:10` from sorted UIDs: one command line instead of one per mail.
pub fn uid_set(uids: &[u32]) -> String {
    let mut out = String::new();
    let mut i = 0;
    while i < uids.len() {
        let start = uids[i];
        let mut end = start;
        while i + 1 < uids.len() && uids[i + 1] == end + 1 {
            i += 1;
            end = uids[i];
        }
        if !out.is_empty() {
            out.push(',');
        }
        if start == end {
            out.push_str(&start.to_string());
        } else {
            out.push_str(&format!("{start}:{end}"));
        }
        i += 1;
    }
    out
}

impl Connection {
    /// Creates `folder` unless it is there. A CREATE refused because the folder exists after all (another client
    /// made it meanwhile, or the server's LIST lagged behind its disk: Dovecot has answered both ways within one
    /// session) is success; only a folder that is still missing afterwards stops the daemon.
    async fn ensure_folder(&mut self, folder: &str) -> Result<(), ImapError> {
        if self.folder_exists(folder).await? {
            return Ok(());
        }
        let session = &mut self.session;
        let created = timed("CREATE", COMMAND_TIMEOUT, async {
            match session.create(folder).await {
                Ok(()) => Ok(None),
                Err(async_imap::error::Error::No(message)) => Ok(Some(message)),
                // BAD: the server cannot take this name at all; waiting will not change that.
                Err(async_imap::error::Error::Bad(message)) => Err(ImapError::Setup(format!(
                    "IMAP folder \"{folder}\" cannot be created: {message}; check imap.processed_mailbox and \
                     imap.quarantine_mailbox"
                ))),
                Err(e) => Err(ImapError::Transient(format!("IMAP CREATE: {e}"))),
            }
        })
        .await?;
        match created {
            None => Ok(()),
            Some(_) if self.folder_exists(folder).await? => Ok(()),
            Some(message) if is_passing_trouble(&message) => {
                Err(ImapError::Transient(format!("IMAP CREATE \"{folder}\": {message}")))
            }
            Some(message) => {
                Err(ImapError::Setup(format!("IMAP folder \"{folder}\" is missing and cannot be created: {message}")))
            }
        }
    }

    async fn folder_exists(&mut self, folder: &str) -> Result<bool, ImapError> {
        let session = &mut self.session;
        timed("LIST", COMMAND_TIMEOUT, async {
            let names = session.list(Some(""), Some(folder)).await.map_err(transient("LIST"))?;
            let names: Vec<_> = names.try_collect().await.map_err(transient("LIST"))?;
            Ok(!names.is_empty())
        })
        .await
    }

    /// Every mail waiting in the mailbox, oldest first, with its size: `(uid, size)`.
    pub async fn list(&mut self) -> Result<Vec<(u32, u32)>, ImapError> {
        while self.session.unsolicited_responses.try_recv().is_ok() {}
        let flag_mode = !self.features.moves && !self.features.uidplus;
        let query = if flag_mode { format!("UNKEYWORD {DONE_KEYWORD}") } else { "ALL".to_string() };
        let session = &mut self.session;
        let mut uids: Vec<u32> = timed("SEARCH", COMMAND_TIMEOUT, async {
            Ok(session.uid_search(&query).await.map_err(transient("UID SEARCH"))?.into_iter().collect())
        })
        .await?;
        if uids.is_empty() {
            return Ok(Vec::new());
        }
        uids.sort_unstable();
        let set = uid_set(&uids);
        let mut sized: Vec<(u32, u32)> = timed("FETCH sizes", COMMAND_TIMEOUT, async {
            let fetches = session.uid_fetch(&set, "(UID RFC822.SIZE)").await.map_err(transient("UID FETCH"))?;
            let fetches: Vec<_> = fetches.try_collect().await.map_err(transient("UID FETCH"))?;
            Ok(fetches.iter().filter_map(|f| Some((f.uid?, f.size.unwrap_or(0)))).collect())
        })
        .await?;
        sized.sort_unstable();
        self.rechecked = false;
        Ok(sized)
    }

    /// Downloads whole mails without setting \Seen (`BODY.PEEK[]`): `(uid, raw)`.
    pub async fn download(&mut self, uids: &[u32]) -> Result<Vec<(u32, Vec<u8>)>, ImapError> {
        let mut mails = Vec::with_capacity(uids.len());
        self.download_each(uids, |uid, raw| mails.push((uid, raw))).await?;
        mails.sort_unstable_by_key(|(uid, _)| *uid);
        Ok(mails)
    }

    /// [`Self::download`], handing each mail to `each` as it arrives (in the server's order), so its processing can
    /// start while the rest of the batch downloads.
    pub async fn download_each(&mut self, uids: &[u32], mut each: impl FnMut(u32, Vec<u8>)) -> Result<(), ImapError> {
        if uids.is_empty() {
            return Ok(());
        }
        let set = uid_set(uids);
        let session = &mut self.session;
        timed("FETCH", COMMAND_TIMEOUT * 3, async {
            let mut fetches = session.uid_fetch(&set, "(UID BODY.PEEK[])").await.map_err(transient("UID FETCH"))?;
            // Each response is copied out and dropped as it arrives: the batch is held once, not twice.
            while let Some(f) = fetches.try_next().await.map_err(transient("UID FETCH"))? {
                if let (Some(uid), Some(body)) = (f.uid, f.body()) {
                    each(uid, body.to_vec());
                }
            }
            Ok(())
        })
        .await
    }

    /// Takes mail out of the mailbox into `folder`, only ever after its commit: UID MOVE (RFC 6851), else
    /// UID COPY + UID EXPUNGE of exactly these UIDs (RFC 4315), else a keyword. Never a bare EXPUNGE, which would
    /// also remove mail other clients marked deleted.
    pub async fn move_to(&mut self, uids: &[u32], folder: &str) -> Result<(), ImapError> {
        if uids.is_empty() {
            return Ok(());
        }
        let set = uid_set(uids);
        let features = self.features;
        let session = &mut self.session;
        timed("MOVE", COMMAND_TIMEOUT, async {
            if features.moves {
                session.uid_mv(&set, folder).await.map_err(transient("UID MOVE"))
            } else if features.uidplus {
                session.uid_copy(&set, folder).await.map_err(transient("UID COPY"))?;
                let stored =
                    session.uid_store(&set, "+FLAGS.SILENT (\\Deleted)").await.map_err(transient("UID STORE"))?;
                let _: Vec<_> = stored.try_collect().await.map_err(transient("UID STORE"))?;
                let expunged = session.uid_expunge(&set).await.map_err(transient("UID EXPUNGE"))?;
                let _: Vec<_> = expunged.try_collect().await.map_err(transient("UID EXPUNGE"))?;
                Ok(())
            } else {
                let stored = session
                    .uid_store(&set, format!("+FLAGS.SILENT ({DONE_KEYWORD})"))
                    .await
                    .map_err(transient("UID STORE"))?;
                let _: Vec<_> = stored.try_collect().await.map_err(transient("UID STORE"))?;
                Ok(())
            }
        })
        .await
    }

    /// Waits for new mail: IDLE when the server has it and `use_idle`, else a plain sleep of `poll`. Returns early
    /// (with the connection) when `stop` fires.
    ///
    /// Mail that arrives while our last SEARCH runs is announced (`* n EXISTS`) with that command's answer, not
    /// again when IDLE starts: IDLE would sit on it until its refresh. So a report received since the search sends
    /// us back to search once more. Once: a server that repeats EXISTS without change must not make us spin.
    pub async fn wait(
        mut self,
        use_idle: bool,
        poll: Duration,
        stop: &mut tokio::sync::watch::Receiver<bool>,
    ) -> Result<(Connection, WaitOutcome), ImapError> {
        let mut reported = false;
        while let Ok(response) = self.session.unsolicited_responses.try_recv() {
            reported |= announces_new_mail(&response);
        }
        if reported && !self.rechecked {
            self.rechecked = true;
            return Ok((self, WaitOutcome { maybe_new: true }));
        }
        let Connection { session, features, uidvalidity, mailbox, .. } = self;
        if !(use_idle && features.idle) {
            tokio::select! {
                _ = tokio::time::sleep(poll) => {}
                _ = stop.changed() => {}
            }
            let mut conn = Connection { session, features, uidvalidity, mailbox, rechecked: false };
            let session = &mut conn.session;
            timed("NOOP", COMMAND_TIMEOUT, async { session.noop().await.map_err(transient("NOOP")) }).await?;
            return Ok((conn, WaitOutcome { maybe_new: true }));
        }
        let mut idle = session.idle();
        timed("IDLE", COMMAND_TIMEOUT, async { idle.init().await.map_err(transient("IDLE")) }).await?;
        let (wait, interrupt) = idle.wait_with_timeout(IDLE_REFRESH);
        let outcome = tokio::select! {
            r = wait => match r.map_err(transient("IDLE"))? {
                IdleResponse::NewData(_) => WaitOutcome { maybe_new: true },
                IdleResponse::Timeout => WaitOutcome { maybe_new: false },
                IdleResponse::ManualInterrupt => WaitOutcome { maybe_new: false },
            },
            _ = stop.changed() => WaitOutcome { maybe_new: false },
        };
        drop(interrupt);
        let session =
            timed("DONE", COMMAND_TIMEOUT, async { idle.done().await.map_err(transient("IDLE DONE")) }).await?;
        Ok((Connection { session, features, uidvalidity, mailbox, rechecked: false }, outcome))
    }

    pub fn source_key(&self, uid: u32) -> String {
        source_key(&self.mailbox, self.uidvalidity, uid)
    }

    /// [`Self::source_key`] as a function that does not borrow the connection (which a download holds).
    pub fn source_keys(&self) -> impl Fn(u32) -> String + Send + 'static {
        let (mailbox, uidvalidity) = (self.mailbox.clone(), self.uidvalidity);
        move |uid| source_key(&mailbox, uidvalidity, uid)
    }

    pub fn mailbox(&self) -> &str {
        &self.mailbox
    }

    pub async fn logout(mut self) {
        let _ = timeout(Duration::from_secs(5), self.session.logout()).await;
    }
}

/// A mail's stable identity in the ledger: mailbox, UIDVALIDITY and UID.
fn source_key(mailbox: &str, uidvalidity: u32, uid: u32) -> String {
    format!("imap:{mailbox}:{uidvalidity}:{uid}")
}

#[cfg(test)]
mod tests {
    use super::{announces_new_mail, is_passing_trouble, uid_set};
    use async_imap::types::UnsolicitedResponse;

    #[test]
    fn uid_sets_compress_runs() {
        assert_eq!(uid_set(&[1, 2, 3, 7, 9, 10]), "1:3,7,9:10");
        assert_eq!(uid_set(&[5]), "5");
        assert_eq!(uid_set(&[]), "");
    }

    #[test]
    fn only_exists_and_recent_with_mail_announce_new_mail() {
        assert!(announces_new_mail(&UnsolicitedResponse::Exists(3)));
        assert!(announces_new_mail(&UnsolicitedResponse::Recent(1)));
        assert!(!announces_new_mail(&UnsolicitedResponse::Exists(0)));
        assert!(!announces_new_mail(&UnsolicitedResponse::Expunge(2)));
    }

    #[test]
    fn temporary_refusals_are_retried_and_permanent_ones_are_not() {
        assert!(is_passing_trouble("[UNAVAILABLE] Temporary internal error occurred"));
        assert!(is_passing_trouble("[INUSE] Mailbox is locked"));
        assert!(is_passing_trouble("[UNAVAILABLE] Temporary authentication failure. [mail:2026-11-24 01:46:55]"));
        assert!(!is_passing_trouble("[AUTHENTICATIONFAILED] Authentication failed."));
        assert!(!is_passing_trouble("[NONEXISTENT] Mailbox doesn't exist: Support"));
        assert!(!is_passing_trouble("[NOPERM] Permission denied"));
    }
}
