//! Mail from stdin, `.eml` files, mbox files and Maildir folders.

use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};

use crate::pipeline::Incoming;

#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    #[error("{path}: {source}")]
    Io { path: PathBuf, source: std::io::Error },
}

/// One input named on the command line, expanded to the mails it holds.
pub enum Input {
    Stdin,
    Path(PathBuf),
}

/// Reads every mail an input holds. A Maildir or a directory yields one mail per file, an mbox one per message.
pub fn read_input(input: &Input) -> Result<Vec<Incoming>, SourceError> {
    match input {
        Input::Stdin => {
            let mut raw = Vec::new();
            // Read all of it even when it is over the size limit: the quarantine keeps the whole mail.
            std::io::stdin()
                .lock()
                .read_to_end(&mut raw)
                .map_err(|source| SourceError::Io { path: "-".into(), source })?;
            Ok(vec![Incoming::new("stdin", raw)])
        }
        Input::Path(path) => read_path(path),
    }
}

fn read_path(path: &Path) -> Result<Vec<Incoming>, SourceError> {
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
        let mut mails = Vec::with_capacity(files.len());
        for f in files {
            let raw = fs::read(&f).map_err(|source| SourceError::Io { path: f.clone(), source })?;
            mails.push(Incoming::new(f.display().to_string(), raw));
        }
        return Ok(mails);
    }
    let raw = fs::read(path).map_err(io)?;
    if is_mbox(&raw) {
        let label = path.display().to_string();
        return Ok(split_mbox(&raw)
            .into_iter()
            .enumerate()
            .map(|(i, m)| Incoming::new(format!("{label}#{}", i + 1), m))
            .collect());
    }
    Ok(vec![Incoming::new(path.display().to_string(), raw)])
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

/// An mbox starts with a `From ` separator line; a single mail starts with a header.
fn is_mbox(raw: &[u8]) -> bool {
    raw.starts_with(b"From ") && split_mbox(raw).len() > 1
}

/// Splits an mbox (mboxrd: `>From ` lines are unescaped by one `>`). The `From ` separator lines are not part of
/// the mails.
pub fn split_mbox(raw: &[u8]) -> Vec<Vec<u8>> {
    let mut mails: Vec<Vec<u8>> = Vec::new();
    let mut current: Option<Vec<u8>> = None;
    let mut previous_blank = true;
    for line in raw.split_inclusive(|&b| b == b'\n') {
        if line.starts_with(b"From ") && previous_blank {
            if let Some(mail) = current.take() {
                mails.push(trim_separator_blank(mail));
            }
            current = Some(Vec::new());
            previous_blank = false;
            continue;
        }
        previous_blank = line == b"\n" || line == b"\r\n";
        let Some(mail) = current.as_mut() else { continue };
        let quoted = line.iter().take_while(|&&b| b == b'>').count();
        if quoted > 0 && line[quoted..].starts_with(b"From ") {
            mail.extend_from_slice(&line[1..]);
        } else {
            mail.extend_from_slice(line);
        }
    }
    if let Some(mail) = current {
        mails.push(trim_separator_blank(mail));
    }
    mails
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

    #[test]
    fn splits_mboxrd_and_unescapes_from_lines() {
        let mbox = b"From a@b Mon Jan 1 00:00:00 2026\nSubject: one\n\n>From the start\n\nFrom c@d Mon Jan 1 00:00:00 2026\nSubject: two\n\nbody\n";
        let mails = split_mbox(mbox);
        assert_eq!(mails.len(), 2);
        assert_eq!(mails[0], b"Subject: one\n\nFrom the start\n");
        assert_eq!(mails[1], b"Subject: two\n\nbody\n");
    }

    #[test]
    fn single_mail_with_from_line_is_not_an_mbox() {
        assert!(!is_mbox(b"From a@b Mon Jan 1 00:00:00 2026\nSubject: x\n\nhi\n"));
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
        let mails = read_input(&Input::Path(dir.path().into())).unwrap();
        assert_eq!(mails.len(), 2);
    }
}
