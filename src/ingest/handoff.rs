//! The MTA pipe's fast path: `postdesk ingest` with one mail on stdin hands it to the running daemon over a Unix
//! socket in the state directory and exits with the daemon's answer, the way RT's mailgate posts to the running RT
//! and Dovecot's LMTP serves what `dovecot-lda` would start a process for. A fresh process spends ~30 ms building
//! the parser's regexes and opening the database before its first mail; the daemon has both ready.
//!
//! The daemon answers only after the mail's transaction has committed, so an answer of "ok" is what a successful
//! in-process ingest would mean. When no daemon answers (none running, an old socket, a connection that breaks
//! before the answer, a request the daemon does not understand), the caller does the work itself with the same
//! pipeline. A mail the daemon committed but could not confirm is then found by its SHA-256 and reported as a
//! duplicate: nothing is lost and nothing doubles.
//!
//! Wire format (one request per connection, both sides this binary): the client sends `postdesk-ingest 1\n`, the
//! mail's length in decimal and `\n`, then the mail's bytes; the daemon answers one line, `ok <outcome>` or
//! `tempfail <why>`, and closes.

use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncReadExt};

const GREETING: &str = "postdesk-ingest 1";
const SOCKET_NAME: &str = "ingest.sock";

/// Larger mail is ingested by the calling process: start-up is then a small part of its cost, and the daemon's memory
/// stays bounded by what it fetches itself. The same bound as one batch of a batch `ingest`.
pub const MAX_HANDOFF_BYTES: usize = 8 << 20;

/// How long a client waits for the daemon to commit. Past it the MTA is told to retry (75): the daemon may still
/// commit, and the retry is then a duplicate.
const ANSWER_TIMEOUT: Duration = Duration::from_secs(120);

/// How long the daemon waits for a client to send its mail.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// Where the daemon listens: the state directory is private to the service user, which is also the user Postfix's
/// pipe runs `postdesk ingest` as.
pub fn socket_path(state_dir: &Path) -> PathBuf {
    state_dir.join(SOCKET_NAME)
}

/// What the daemon answered.
#[derive(Debug, PartialEq, Eq)]
pub enum Answer {
    /// Committed: what became of the mail, as `ingest` prints it.
    Done(String),
    /// Not committed: the mail stays with the MTA, which retries.
    TempFail(String),
}

impl Answer {
    pub fn to_line(&self) -> String {
        let (word, text) = match self {
            Answer::Done(t) => ("ok", t),
            Answer::TempFail(t) => ("tempfail", t),
        };
        // One line whatever the text holds: an outcome can quote a header.
        let text: String = text.chars().map(|c| if c.is_control() { ' ' } else { c }).collect();
        format!("{word} {text}\n")
    }

    pub fn parse(line: &str) -> Option<Answer> {
        let line = line.strip_suffix('\n')?;
        match line.split_once(' ') {
            Some(("ok", text)) => Some(Answer::Done(text.to_string())),
            Some(("tempfail", text)) => Some(Answer::TempFail(text.to_string())),
            _ => None,
        }
    }
}

/// Offers one mail to the daemon listening at `socket`. `None`: no daemon took it (none listening, or the connection
/// failed before an answer), and the caller must ingest the mail itself.
pub fn offer(socket: &Path, raw: &[u8]) -> Option<Answer> {
    if raw.len() > MAX_HANDOFF_BYTES {
        return None;
    }
    let mut stream = UnixStream::connect(socket).ok()?;
    stream.set_write_timeout(Some(REQUEST_TIMEOUT)).ok()?;
    stream.set_read_timeout(Some(ANSWER_TIMEOUT)).ok()?;
    stream.write_all(&request(raw)).ok()?;
    let mut line = String::new();
    match BufReader::new(stream).read_line(&mut line) {
        Ok(_) => Answer::parse(&line),
        Err(e) if matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut) => {
            Some(Answer::TempFail(format!("the daemon did not answer within {} s", ANSWER_TIMEOUT.as_secs())))
        }
        Err(_) => None,
    }
}

/// One request as the client sends it.
fn request(raw: &[u8]) -> Vec<u8> {
    let mut request = Vec::with_capacity(raw.len() + 32);
    request.extend_from_slice(format!("{GREETING}\n{}\n", raw.len()).as_bytes());
    request.extend_from_slice(raw);
    request
}

#[derive(Debug, thiserror::Error)]
pub enum RequestError {
    #[error("not a postdesk ingest request")]
    Greeting,
    #[error("bad length line")]
    Length,
    #[error("{0} bytes is over the hand-off limit of {MAX_HANDOFF_BYTES}")]
    TooLarge(usize),
    #[error("{0}")]
    Io(#[from] std::io::Error),
}

/// Reads one request (the daemon's side): the mail's bytes.
pub async fn read_request(stream: impl tokio::io::AsyncRead + Unpin) -> Result<Vec<u8>, RequestError> {
    let mut reader = tokio::io::BufReader::new(stream);
    let mut line = String::new();
    // Bounded reads: a peer that sends no newline cannot make the daemon buffer without end.
    (&mut reader).take(GREETING.len() as u64 + 1).read_line(&mut line).await?;
    if line != format!("{GREETING}\n") {
        return Err(RequestError::Greeting);
    }
    line.clear();
    (&mut reader).take(24).read_line(&mut line).await?;
    let len: usize = line.strip_suffix('\n').and_then(|n| n.parse().ok()).ok_or(RequestError::Length)?;
    if len > MAX_HANDOFF_BYTES {
        return Err(RequestError::TooLarge(len));
    }
    let mut raw = vec![0; len];
    reader.read_exact(&mut raw).await?;
    Ok(raw)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    #[test]
    fn answers_survive_the_wire_whatever_their_text() {
        for answer in [
            Answer::Done("new ticket 2026120110000001".into()),
            Answer::TempFail("database: disk full".into()),
            Answer::Done(String::new()),
        ] {
            assert_eq!(Answer::parse(&answer.to_line()), Some(answer));
        }
        let line = Answer::Done("quarantined #3: bad\r\nheader".into()).to_line();
        assert_eq!(line.matches('\n').count(), 1, "{line:?}");
        assert_eq!(Answer::parse(&line), Some(Answer::Done("quarantined #3: bad  header".into())));
        for garbage in ["", "ok", "ok done", "maybe later\n", "ok\n"] {
            assert_eq!(Answer::parse(garbage), None, "{garbage:?}");
        }
    }

    /// The client's request, read by the daemon's reader over a real socket: the same bytes, whatever they hold.
    #[tokio::test]
    async fn a_request_carries_the_exact_bytes() {
        let (client, server) = tokio::net::UnixStream::pair().unwrap();
        let mail = b"From: a@example.org\r\n\r\nbody with \0 and \xff\r\n".to_vec();
        let sent = request(&mail);
        let writer = tokio::spawn(async move {
            let mut client = client;
            tokio::io::AsyncWriteExt::write_all(&mut client, &sent).await.unwrap();
            client
        });
        assert_eq!(read_request(server).await.unwrap(), mail);
        drop(writer.await.unwrap());
    }

    #[tokio::test]
    async fn requests_that_are_not_ours_or_too_big_are_refused() {
        let cases: [(&[u8], &str); 4] = [
            (b"GET / HTTP/1.0\r\n\r\n", "not a postdesk"),
            (b"postdesk-ingest 1\nlots\n", "bad length"),
            (b"postdesk-ingest 1\n99999999999\n", "over the hand-off limit"),
            (b"postdesk-ingest 1\n10\nshort", "early eof"),
        ];
        for (request, why) in cases {
            let err = read_request(request).await.unwrap_err();
            assert!(err.to_string().contains(why), "{request:?}: {err}");
        }
    }

    #[test]
    fn no_daemon_means_the_caller_does_the_work() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(offer(&socket_path(dir.path()), b"From: a@example.org\r\n\r\nhi\r\n"), None);
        // A socket file left by a daemon that is gone: connecting is refused.
        drop(std::os::unix::net::UnixListener::bind(socket_path(dir.path())).unwrap());
        assert_eq!(offer(&socket_path(dir.path()), b"From: a@example.org\r\n\r\nhi\r\n"), None);
    }

    #[test]
    fn a_daemon_that_hangs_up_before_answering_leaves_the_work_to_the_caller() {
        let dir = tempfile::tempdir().unwrap();
        let listener = std::os::unix::net::UnixListener::bind(socket_path(dir.path())).unwrap();
        let daemon = std::thread::spawn(move || {
            let (mut stream, _) = listener.accept().unwrap();
            // Reads what arrives and hangs up without a word.
            let _ = stream.read(&mut [0u8; 64]);
        });
        assert_eq!(offer(&socket_path(dir.path()), b"From: a@example.org\r\n\r\nhi\r\n"), None);
        daemon.join().unwrap();
    }
}
