//! What `postdesk check` looks at beyond the files an admin edits: can the user running it (the service user, under
//! systemd's ExecStartPre) use the state directory and the database, is the database sound, are the secrets kept
//! private. Each problem is one line naming the path and the fix; every one is found in a single run.

use std::fs::OpenOptions;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;

use crate::config::{Config, read_secret};

/// The outcome: lines to show as they are (`notes`), and `problems`, each of which fails the check.
#[derive(Debug, Default)]
pub struct Checkup {
    pub notes: Vec<String>,
    pub problems: Vec<String>,
    /// A problem that goes away by itself (the database is busy): worth a retry, not an admin's attention.
    pub transient: bool,
}

pub fn run(config: &Config) -> Checkup {
    let mut c = Checkup::default();
    if state_dir(config, &mut c) {
        database(config, &mut c);
    }
    secrets(config, &mut c);
    c
}

/// The effective user id (Linux's /proc: no unsafe libc call for it).
fn effective_uid() -> Option<u32> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    status.lines().find_map(|l| l.strip_prefix("Uid:"))?.split_whitespace().nth(1)?.parse().ok()
}

/// Which user could not do something, for messages.
fn euid() -> String {
    effective_uid().map_or_else(|| "this user".into(), |u| format!("uid {u}"))
}

/// Root creating the database in a state directory that belongs to the service user would leave a root-owned
/// database the daemon cannot write: refuse, and say how to do it instead. (An existing database is safe to open
/// as root: SQLite gives the -wal and -shm files it creates the database file's owner.)
pub fn refuse_root_creating_database(dir: &Path, database: &Path) -> Result<(), crate::exit::Failure> {
    let owner = std::fs::metadata(dir).map(|m| m.uid());
    match (effective_uid(), owner) {
        (Some(0), Ok(owner)) if owner != 0 && !database.exists() => Err(crate::exit::Failure::new(
            crate::exit::EX_NOPERM,
            format!(
                "{} belongs to uid {owner}, not root: run this as its owner, e.g. `runuser -u postdesk -- postdesk ...`, \
                 so that no root-owned file ends up in the daemon's state",
                dir.display()
            ),
        )),
        _ => Ok(()),
    }
}

/// True when the directory is there and writable, so the database is worth looking at.
fn state_dir(config: &Config, c: &mut Checkup) -> bool {
    let dir = &config.storage.state_dir;
    let meta = match std::fs::metadata(dir) {
        Ok(m) if m.is_dir() => m,
        Ok(_) => {
            c.problems.push(format!("{}: state directory is not a directory; fix storage.state_dir", dir.display()));
            return false;
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            // postdesk makes it on first use (as systemd's StateDirectory= does), if it may.
            let parent = dir.parent().filter(|p| p.is_dir());
            match parent.map(can_write) {
                Some(Ok(())) => c.notes.push(format!("  state:     {} (created on first start)", dir.display())),
                _ => c.problems.push(format!(
                    "{}: state directory does not exist and {} cannot create it; create it for the service user \
                     (install -d -o postdesk -g postdesk -m 0700 {})",
                    dir.display(),
                    euid(),
                    dir.display()
                )),
            }
            return false;
        }
        Err(e) => {
            c.problems.push(format!("{}: state directory: {e}", dir.display()));
            return false;
        }
    };
    match can_write(dir) {
        Ok(()) => {}
        Err(e) => {
            c.problems.push(format!(
                "{}: state directory is not writable by {} ({e}); run postdesk as its owner (uid {}) or chown it",
                dir.display(),
                euid(),
                meta.uid()
            ));
            return false;
        }
    }
    let mode = meta.permissions().mode() & 0o777;
    if mode & 0o077 != 0 {
        c.notes.push(format!(
            "  warning: {} is open to group or others (mode {mode:o}); it holds customers' mail: chmod 700",
            dir.display()
        ));
    }
    c.notes.push(format!("  state:     {} (writable)", dir.display()));
    true
}

/// Writing is the only sure test: permissions, ACLs, read-only mounts and ownership all play a part.
fn can_write(dir: &Path) -> std::io::Result<()> {
    let probe = dir.join(format!(".postdesk-check.{}", std::process::id()));
    OpenOptions::new().write(true).create_new(true).open(&probe)?;
    std::fs::remove_file(&probe)
}

fn database(config: &Config, c: &mut Checkup) {
    let path = config.database_path();
    if !path.exists() {
        c.notes.push(format!("  database:  {} (created on first start)", path.display()));
        return;
    }
    // SQLite writes the database and, in WAL mode, its -wal and -shm files beside it.
    for file in [path.clone(), sidecar(&path, "-wal"), sidecar(&path, "-shm")] {
        if file.exists()
            && let Err(e) = OpenOptions::new().read(true).write(true).open(&file)
        {
            c.problems.push(format!(
                "{}: not writable by {} ({e}); chown it to the service user",
                file.display(),
                euid()
            ));
        }
    }
    match crate::store::integrity::quick_check(&path) {
        Ok(lines) if lines.is_empty() => c.notes.push(format!("  database:  {} (quick_check ok)", path.display())),
        Ok(lines) => c.problems.push(format!(
            "{}: database is damaged (PRAGMA quick_check: {}); stop postdesk and restore it from a backup",
            path.display(),
            lines.join("; ")
        )),
        Err(e) => {
            c.transient |= e.is_transient();
            c.problems.push(format!("{}: {e}", path.display()));
        }
    }
}

fn sidecar(path: &Path, suffix: &str) -> std::path::PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(suffix);
    name.into()
}

/// Password files must be private; the credentials systemd passes are checked when this runs under the unit.
fn secrets(config: &Config, c: &mut Checkup) {
    let mut one = |what: &'static str, credential: &'static str, file: Option<&Path>| {
        if file.is_none() && std::env::var_os("CREDENTIALS_DIRECTORY").is_none() {
            c.notes.push(format!(
                "  {what}:      password from systemd's credential {credential} (LoadCredential=), not visible here"
            ));
            return;
        }
        match read_secret(file, what, credential) {
            Ok(_) => c.notes.push(format!("  {what}:      password readable, not shared with group or others")),
            Err(e) => c.problems.push(e.to_string()),
        }
    };
    if let Some(imap) = &config.imap {
        one("imap", "imap-password", imap.password_file.as_deref());
    }
    if let Some(smtp) = config.smtp.as_ref().filter(|s| s.username.is_some()) {
        one("smtp", "smtp-password", smtp.password_file.as_deref());
    }
}
