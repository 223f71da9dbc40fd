//! What the running daemon knows about itself and the world around it: relay up or down and why, database errors
//! (disk full, locks), the last refused reload. Kept in memory, told to systemd as `STATUS=`, exported as metrics,
//! and written to `<state_dir>/postdesk.health` for `postdesk status`.
//!
//! The file is outside the database on purpose: "the database is full" or "the database is locked" cannot be
//! recorded in that database. It is written in place over a preallocated region (no new file, no rename), so the
//! write needs no new disk blocks and still works on a full filesystem.

use std::io::{Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use serde::{Deserialize, Serialize};

pub const HEALTH_FILE: &str = "postdesk.health";
/// Bytes reserved for the health file; the JSON is far smaller (error texts are cut to [`MAX_ERROR`]).
const FILE_SIZE: usize = 16 * 1024;
const MAX_ERROR: usize = 500;

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct RelayHealth {
    /// `unknown` (nothing sent or probed yet), `up`, or `down`.
    pub state: String,
    /// Since when the relay has been in this state.
    pub since: Option<i64>,
    pub last_error: Option<String>,
    pub last_error_at: Option<i64>,
    /// Failed sends and probes since the daemon started.
    pub errors: u64,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct DatabaseHealth {
    /// `ok` or `failing` (the last write failed; ingest waits with a growing backoff).
    pub state: String,
    pub failing_since: Option<i64>,
    pub last_error: Option<String>,
    pub last_error_at: Option<i64>,
    /// Errors of any kind since start.
    pub errors: u64,
    /// Of those, "database or disk is full".
    pub disk_full: u64,
    /// Of those, the database stayed locked by another process past the busy timeout.
    pub lock_waits: u64,
    pub last_lock_wait_at: Option<i64>,
    /// While failing: the next attempt is this many seconds after `last_error_at`.
    pub retry_in_seconds: Option<u64>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct ReloadHealth {
    pub last_ok_at: Option<i64>,
    pub last_refused_at: Option<i64>,
    pub last_refused_error: Option<String>,
}

/// The snapshot written to the health file; documented in docs/json.md (`status --json`, `health`).
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct HealthView {
    pub pid: u32,
    pub started_at: i64,
    pub updated_at: i64,
    /// What the daemon is doing, as told to systemd (`STATUS=`).
    pub activity: String,
    /// Whether the IMAP connection is up; `null` without an `[imap]` section.
    pub imap_connected: Option<bool>,
    /// Mails in the mailbox at the last look (0 when idle); `null` without an `[imap]` section.
    pub backlog: Option<usize>,
    pub relay: RelayHealth,
    pub database: DatabaseHealth,
    pub reload: ReloadHealth,
}

/// Shared by the daemon's tasks. Every method takes the lock for an instant; none does I/O.
pub struct Health {
    inner: Mutex<HealthView>,
}

fn cut(text: &str) -> String {
    let mut end = text.len().min(MAX_ERROR);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    text[..end].to_string()
}

impl Health {
    pub fn new(now: i64) -> Health {
        let view = HealthView {
            pid: std::process::id(),
            started_at: now,
            updated_at: now,
            activity: "starting".into(),
            imap_connected: None,
            backlog: None,
            relay: RelayHealth { state: "unknown".into(), ..Default::default() },
            database: DatabaseHealth { state: "ok".into(), ..Default::default() },
            reload: ReloadHealth::default(),
        };
        Health { inner: Mutex::new(view) }
    }

    fn with<T>(&self, f: impl FnOnce(&mut HealthView) -> T) -> T {
        f(&mut self.inner.lock().unwrap_or_else(|e| e.into_inner()))
    }

    pub fn snapshot(&self) -> HealthView {
        self.with(|h| h.clone())
    }

    pub fn relay_is_up(&self) -> bool {
        self.with(|h| h.relay.state == "up")
    }

    /// A send or probe reached the relay. True when it was down (or unknown) until now.
    pub fn relay_up(&self, now: i64) -> bool {
        self.with(|h| {
            let changed = h.relay.state != "up";
            if changed {
                h.relay.state = "up".into();
                h.relay.since = Some(now);
            }
            changed
        })
    }

    /// The relay could not be reached. True when it was up (or unknown) until now.
    pub fn relay_down(&self, error: &str, now: i64) -> bool {
        self.with(|h| {
            h.relay.errors += 1;
            h.relay.last_error = Some(cut(error));
            h.relay.last_error_at = Some(now);
            let changed = h.relay.state != "down";
            if changed {
                h.relay.state = "down".into();
                h.relay.since = Some(now);
            }
            changed
        })
    }

    /// A relay answer for one mail (4xx/5xx) that does not mean the relay is down.
    pub fn relay_refused(&self, error: &str, now: i64) {
        self.with(|h| {
            h.relay.errors += 1;
            h.relay.last_error = Some(cut(error));
            h.relay.last_error_at = Some(now);
        })
    }

    pub fn database_failed(&self, error: &crate::store::StoreError, retry_in: u64, now: i64) {
        let code = match error {
            crate::store::StoreError::Sql(e) | crate::store::StoreError::Open { source: e, .. } => {
                e.sqlite_error_code()
            }
            _ => None,
        };
        use rusqlite::ErrorCode::{DatabaseBusy, DatabaseLocked, DiskFull};
        self.with(|h| {
            let d = &mut h.database;
            d.errors += 1;
            match code {
                Some(DiskFull) => d.disk_full += 1,
                Some(DatabaseBusy | DatabaseLocked) => {
                    d.lock_waits += 1;
                    d.last_lock_wait_at = Some(now);
                }
                _ => {}
            }
            if d.state != "failing" {
                d.state = "failing".into();
                d.failing_since = Some(now);
            }
            d.last_error = Some(cut(&error.to_string()));
            d.last_error_at = Some(now);
            d.retry_in_seconds = Some(retry_in);
        })
    }

    /// A write went through: the database works again. True when it was failing until now.
    pub fn database_ok(&self) -> bool {
        self.with(|h| {
            let changed = h.database.state != "ok";
            h.database.state = "ok".into();
            h.database.failing_since = None;
            h.database.retry_in_seconds = None;
            changed
        })
    }

    pub fn reload_ok(&self, now: i64) {
        self.with(|h| h.reload.last_ok_at = Some(now))
    }

    pub fn reload_refused(&self, error: &str, now: i64) {
        self.with(|h| {
            h.reload.last_refused_at = Some(now);
            h.reload.last_refused_error = Some(cut(error));
        })
    }

    pub fn backlog(&self, mails: usize) {
        self.with(|h| h.backlog = Some(mails))
    }

    pub fn imap_connected(&self, up: bool) {
        self.with(|h| h.imap_connected = Some(up))
    }

    pub fn set_activity(&self, activity: String, now: i64) {
        self.with(|h| {
            h.activity = activity;
            h.updated_at = now;
        })
    }
}

/// One line for systemd's `STATUS=` and the top of `postdesk status`: the most pressing fact first.
pub fn activity_line(h: &HealthView, queued: i64) -> String {
    let time = |at: Option<i64>| at.map(crate::report::format_time).unwrap_or_default();
    let mut parts = Vec::new();
    if h.database.state == "failing" {
        let why = h.database.last_error.as_deref().unwrap_or("unknown error");
        parts.push(format!("database failing since {}: {why}", time(h.database.failing_since)));
    }
    if h.relay.state == "down" {
        parts.push(format!("relay down since {}", time(h.relay.since)));
    }
    if h.imap_connected == Some(false) {
        parts.push("IMAP not connected".into());
    }
    if let (Some(at), true) = (h.reload.last_refused_at, h.reload.last_refused_at > h.reload.last_ok_at) {
        parts.push(format!("last reload refused at {}", time(Some(at))));
    }
    if parts.is_empty() {
        match h.backlog {
            Some(n) if n > 0 => parts.push(format!("taking in {n} mails")),
            _ => parts.push("idle".into()),
        }
    }
    parts.push(format!("{queued} queued"));
    parts.join(", ")
}

/// The health file, held open by the daemon and overwritten in place.
pub struct HealthFile {
    file: std::fs::File,
}

impl HealthFile {
    pub fn create(state_dir: &Path) -> std::io::Result<HealthFile> {
        let mut file = std::fs::OpenOptions::new().create(true).truncate(false).write(true).open(path(state_dir))?;
        // Allocate every block now, while there is room: later writes reuse them.
        file.write_all(&[b' '; FILE_SIZE])?;
        file.sync_data()?;
        Ok(HealthFile { file })
    }

    pub fn write(&mut self, view: &HealthView) -> std::io::Result<()> {
        let mut text = serde_json::to_vec(view).map_err(std::io::Error::other)?;
        if text.len() > FILE_SIZE {
            return Err(std::io::Error::other("health snapshot larger than its file"));
        }
        text.resize(FILE_SIZE, b' ');
        self.file.seek(SeekFrom::Start(0))?;
        self.file.write_all(&text)
    }
}

pub fn path(state_dir: &Path) -> PathBuf {
    state_dir.join(HEALTH_FILE)
}

/// Reads the daemon's last snapshot. A read that meets a write half-done does not parse: try again briefly.
pub fn read(state_dir: &Path) -> Option<HealthView> {
    for _ in 0..5 {
        let text = std::fs::read(path(state_dir)).ok()?;
        if let Ok(view) = serde_json::from_slice(text.trim_ascii_end()) {
            return Some(view);
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_health_file_round_trips_and_a_shorter_snapshot_leaves_no_tail() {
        let dir = tempfile::tempdir().unwrap();
        let health = Health::new(100);
        let mut file = HealthFile::create(dir.path()).unwrap();
        health.relay_down(&"x".repeat(2000), 110);
        file.write(&health.snapshot()).unwrap();
        assert_eq!(read(dir.path()).unwrap().relay.last_error.unwrap().len(), MAX_ERROR);
        health.relay_up(120);
        health.relay_refused("450 busy", 121);
        file.write(&health.snapshot()).unwrap();
        let back = read(dir.path()).unwrap();
        assert_eq!(back, health.snapshot());
        assert_eq!(std::fs::metadata(path(dir.path())).unwrap().len(), FILE_SIZE as u64);
    }

    #[test]
    fn the_activity_line_puts_trouble_first() {
        let health = Health::new(0);
        assert_eq!(activity_line(&health.snapshot(), 0), "idle, 0 queued");
        health.relay_down("connection refused", 1_795_480_513);
        health.reload_refused("rules/x.toml:3: bad", 1_795_480_600);
        let line = activity_line(&health.snapshot(), 37);
        assert_eq!(
            line,
            "relay down since 2026-11-24 00:35:13 UTC, last reload refused at 2026-11-24 00:36:40 UTC, 37 queued"
        );
        health.reload_ok(1_795_480_700);
        health.relay_up(1_795_480_701);
        health.imap_connected(false);
        assert_eq!(activity_line(&health.snapshot(), 0), "IMAP not connected, 0 queued");
        health.imap_connected(true);
        health.backlog(120);
        assert_eq!(activity_line(&health.snapshot(), 3), "taking in 120 mails, 3 queued");
    }
}
