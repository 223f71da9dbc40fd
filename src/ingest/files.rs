//! Mail from stdin, `.eml` files, mbox files and Maildir folders.

use std::fs;
use std::io::{BufRead, Read};
use std::path::{Path, PathBuf};

use crate::pipeline::Incoming;

#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    #[error("{path}: {source}")]
    Io { path: PathBuf, source: std::io::Error },
}

/// One input named on the command line, expanded to the mails it holds.
pub enum Input {
    /// A mail already read: the one on stdin.
    Mail(Incoming),
    Path(PathBuf),
}

/// The one mail on stdin, as an MTA pipes it.
pub fn stdin_mail() -> Result<Incoming, SourceError> {
    let mut raw = Vec::new();
    // Read all of it even when it is over the size limit: the quarantine keeps the whole mail.
    std::io::stdin().lock().read_to_end(&mut raw).map_err(|source| SourceError::Io { path: "-".into(), source })?;
    Ok(Incoming::new("stdin", raw))
}

/// Hands every mail an input holds to `each`, one at a time: an mbox is read message by message and a folder file by
/// file, so memory is bounded by the largest mail (and what the caller keeps), not by the size of the input.
/// A Maildir or a directory yields one mail per file, an mbox one per message, anything else one mail.
pub fn each_mail<E: From<SourceError>>(input: Input, each: &mut dyn FnMut(Incoming) -> Result<(), E>) -> Result<(), E> {
    match input {
        Input::Mail(mail) => each(mail),
        Input::Path(path) => each_in_path(&path, each),
    }
}

/// Every mail an input holds, read into memory at once.
#[cfg(test)]
pub fn read_input(input: Input) -> Result<Vec<Incoming>, SourceError> {
    let mut mails = Vec::new();
    each_mail(input, &mut |m| {
        mails.push(m);
        Ok::<(), SourceError>(())
    })?;
    Ok(mails)
}

fn each_in_path<E: From<SourceError>>(path: &Path, each: &mut dyn FnMut(Incoming) -> Result<(), E>) -> Result<(), E> {
    let io = |source| SourceError::Io { path: path.to_path_buf(), source };
    let meta = fs::metadata(path).map_err(io)?;
    if meta.is_dir() {
        let mut files = Vec::new();
        let sub = ["new", "cur"];
        if sub.iter().all(|s| path.join(s).is_dir()) {
            for s in sub {
                files.extend(list_files(&path.join(s))?);
            }
        } else {
            files = list_files(path)?;
        }
        for f in files {
            let raw = fs::read(&f).map_err(|source| SourceError::Io { path: f.clone(), source })?;
            each(Incoming::new(f.display().to_string(), raw))?;
        }
        return Ok(());
    }
    let mut reader = std::io::BufReader::with_capacity(1 << 16, fs::File::open(path).map_err(io)?);
    let mut first = Vec::new();
    reader.read_until(b'\n', &mut first).map_err(io)?;
    if first.starts_with(b"From ") {
        return each_in_mbox(path, reader, first, each);
    }
    reader.read_to_end(&mut first).map_err(io)?;
    each(Incoming::new(path.display().to_string(), first))
}

/// Streams an mbox (mboxrd: `>From ` lines are unescaped by one `>`; the `From ` separator lines are not part of
/// the mails). A file with a single message is not an mbox but a mail that starts with a `From ` line: it is
/// taken whole, as it is, so until the second separator the verbatim bytes are kept too.
fn each_in_mbox<E: From<SourceError>>(
    path: &Path,
    mut reader: impl BufRead,
    separator: Vec<u8>,
    each: &mut dyn FnMut(Incoming) -> Result<(), E>,
) -> Result<(), E> {
    let io = |source| SourceError::Io { path: path.to_path_buf(), source };
    let label = path.display().to_string();
    let mut verbatim = Some(separator);
    let (mut current, mut line, mut count, mut previous_blank) = (Vec::new(), Vec::new(), 0usize, false);
    loop {
        line.clear();
        if reader.read_until(b'\n', &mut line).map_err(io)? == 0 {
            break;
        }
        if line.starts_with(b"From ") && previous_blank {
            count += 1;
            verbatim = None;
            each(Incoming::new(format!("{label}#{count}"), trim_separator_blank(std::mem::take(&mut current))))?;
            previous_blank = false;
            continue;
        }
        previous_blank = line == b"\n" || line == b"\r\n";
        if let Some(v) = verbatim.as_mut() {
            v.extend_from_slice(&line);
        }
        unescape_line(&line, &mut current);
    }
    match verbatim {
        Some(whole) => each(Incoming::new(label, whole)),
        None => each(Incoming::new(format!("{label}#{}", count + 1), trim_separator_blank(current))),
    }
}

fn unescape_line(line: &[u8], mail: &mut Vec<u8>) {
    let quoted = line.iter().take_while(|&&b| b == b'>').count();
    if quoted > 0 && line[quoted..].starts_with(b"From ") {
        mail.extend_from_slice(&line[1..]);
    } else {
        mail.extend_from_slice(line);
    }
}

fn list_files(dir: &Path) -> Result<Vec<PathBuf>, SourceError> {
    let entries = fs::read_dir(dir).map_err(|source| SourceError::Io { path: dir.to_path_buf(), source })?;
    let mut files: Vec<PathBuf> = entries
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .filter(|p| p.is_file() && !p.file_name().is_some_and(|n| n.to_string_lossy().starts_with('.')))
        .collect();
    files.sort();
    Ok(files)
}

/// The blank line before the next `From ` belongs to the mbox format, not to the mail.
fn trim_separator_blank(mut mail: Vec<u8>) -> Vec<u8> {
    if mail.ends_with(b"\r\n\r\n") {
        mail.truncate(mail.len() - 2);
    } else if mail.ends_with(b"\n\n") {
        mail.truncate(mail.len() - 1);
    }
    mail
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read_file(bytes: &[u8]) -> Vec<Incoming> {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("in");
        fs::write(&path, bytes).unwrap();
        read_input(Input::Path(path)).unwrap()
    }

    #[test]
    fn splits_mboxrd_and_unescapes_from_lines() {
        let mbox = b"From a@b Mon Jan 1 00:00:00 2026\nSubject: one\n\n>From the start\n\nFrom c@d Mon Jan 1 00:00:00 2026\nSubject: two\n\nbody\n";
        let mails = read_file(mbox);
        assert_eq!(mails.len(), 2);
        assert_eq!(mails[0].raw, b"Subject: one\n\nFrom the start\n");
        assert_eq!(mails[1].raw, b"Subject: two\n\nbody\n");
        assert!(mails[1].source.ends_with("#2"), "{}", mails[1].source);
    }

    #[test]
    fn single_mail_with_from_line_is_not_an_mbox() {
        let mail = b"From a@b Mon Jan 1 00:00:00 2026\nSubject: x\n\n>From here\n";
        let mails = read_file(mail);
        assert_eq!(mails.len(), 1);
        assert_eq!(mails[0].raw, mail, "taken whole, as it is");
    }

    #[test]
    fn mbox_with_crlf_lines_and_many_messages_streams_every_one() {
        let mut mbox = Vec::new();
        for n in 0..300 {
            mbox.extend_from_slice(
                format!("From x@y Mon Jan 1 00:00:00 2026\r\nSubject: {n}\r\n\r\nbody {n}\r\n\r\n").as_bytes(),
            );
        }
        let mails = read_file(&mbox);
        assert_eq!(mails.len(), 300);
        assert_eq!(mails[299].raw, b"Subject: 299\r\n\r\nbody 299\r\n");
    }

    #[test]
    fn maildir_reads_new_and_cur() {
        let dir = tempfile::tempdir().unwrap();
        for s in ["new", "cur", "tmp"] {
            fs::create_dir(dir.path().join(s)).unwrap();
        }
        fs::write(dir.path().join("new/1"), "Subject: a\n\nx\n").unwrap();
        fs::write(dir.path().join("cur/2:2,S"), "Subject: b\n\nx\n").unwrap();
        fs::write(dir.path().join("tmp/3"), "Subject: c\n\nx\n").unwrap();
        let mails = read_input(Input::Path(dir.path().into())).unwrap();
        assert_eq!(mails.len(), 2);
    }
}
