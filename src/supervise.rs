//! The daemon watching itself, for systemd and for `postdesk status`: `WATCHDOG=1` pings while the main loop and
//! the store both answer, `STATUS=` lines with what the daemon is doing, the health file, and the failpoints that
//! let tests make the store fail or hang on purpose.
//!
//! Pings follow `sd_watchdog_enabled(3)`: only when `WATCHDOG_USEC` is set (and `WATCHDOG_PID`, if set, is us), at
//! half that interval. Each ping needs a fresh answer from the store (a count of queued mail, taken through the
//! same mutex every write takes) and the main loop within the deadline it last announced: a wedged store thread or
//! a stuck loop stops the pings, and systemd restarts the service.

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use sd_notify::NotifyState;
use tokio::sync::watch;
use tracing::{debug, warn};

use crate::health::{Health, HealthFile, HealthView, activity_line};
use crate::store::{Store, StoreError};

/// How often the monitor looks; pings are sent at half the watchdog interval, never less often than this.
const TICK: Duration = Duration::from_millis(500);
/// The health file is rewritten at least this often (its `updated_at` shows the daemon is alive).
const REFRESH: Duration = Duration::from_secs(10);

/// `POSTDESK_FAILPOINT` values (tests only; unset in production):
/// - `storage-full:PATH`: while PATH exists, every store operation of the IMAP loop fails with SQLITE_FULL.
/// - `wedge-store`: three seconds after start the store's mutex is taken and never given back.
const FAILPOINT_ENV: &str = "POSTDESK_FAILPOINT";

/// Fails like a full disk while the failpoint's file exists.
pub fn storage_failpoint() -> Result<(), StoreError> {
    let Ok(value) = std::env::var(FAILPOINT_ENV) else { return Ok(()) };
    match value.strip_prefix("storage-full:") {
        Some(path) if std::path::Path::new(path).exists() => Err(StoreError::Sql(rusqlite::Error::SqliteFailure(
            rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_FULL),
            Some("database or disk is full (failpoint)".into()),
        ))),
        _ => Ok(()),
    }
}

fn wedge_failpoint(store: &Arc<Mutex<Store>>) {
    if std::env::var(FAILPOINT_ENV).is_ok_and(|v| v == "wedge-store") {
        let store = store.clone();
        std::thread::spawn(move || {
            std::thread::sleep(Duration::from_secs(3));
            let _held = store.lock();
            warn!("failpoint wedge-store: the store is stuck from now on");
            loop {
                std::thread::park();
            }
        });
    }
}

/// The main loop's promise to be back within a deadline: before each step it says how long the step may take.
pub struct Liveness {
    start: Instant,
    deadline_ms: AtomicU64,
}

impl Default for Liveness {
    fn default() -> Self {
        Liveness { start: Instant::now(), deadline_ms: AtomicU64::new(u64::MAX) }
    }
}

impl Liveness {
    /// The loop will report again within `limit`.
    pub fn beat(&self, limit: Duration) {
        let at = self.start.elapsed().saturating_add(limit).as_millis() as u64;
        self.deadline_ms.store(at, Ordering::Relaxed);
    }

    fn on_time(&self) -> bool {
        (self.start.elapsed().as_millis() as u64) <= self.deadline_ms.load(Ordering::Relaxed)
    }
}

pub struct Monitor {
    pub store: Arc<Mutex<Store>>,
    pub health: Arc<Health>,
    pub liveness: Arc<Liveness>,
    pub state_dir: PathBuf,
}

/// The watchdog interval systemd asked for, if any, read as libsystemd's `sd_watchdog_enabled(3)` does:
/// `WATCHDOG_USEC` set and positive, and `WATCHDOG_PID`, when present, naming this process. (The `sd-notify`
/// crate's version also demands `WATCHDOG_PID`, which `systemd-run` style wrappers and tests may leave out.)
fn watchdog_interval() -> Option<Duration> {
    let usec: u64 = std::env::var("WATCHDOG_USEC").ok()?.trim().parse().ok().filter(|u| *u > 0)?;
    match std::env::var("WATCHDOG_PID") {
        Ok(pid) if pid.trim().parse::<u32>().ok() != Some(std::process::id()) => None,
        _ => Some(Duration::from_micros(usec)),
    }
}

impl Monitor {
    pub fn spawn(self, stop: watch::Receiver<bool>) {
        wedge_failpoint(&self.store);
        tokio::spawn(self.run(stop));
    }

    async fn run(self, mut stop: watch::Receiver<bool>) {
        let ping_every = watchdog_interval().map(|d| d / 2);
        if let Some(every) = ping_every {
            debug!(every_ms = every.as_millis() as u64, "watchdog pings on");
        }
        let mut file = HealthFile::create(&self.state_dir)
            .map_err(|e| warn!(error = %e, "cannot write the health file; `postdesk status` will lack daemon facts"))
            .ok();
        let mut probe: Option<tokio::task::JoinHandle<Result<i64, StoreError>>> = None;
        let (mut queued, mut answered, mut last_ping) = (0i64, Instant::now(), Instant::now());
        let mut told = String::new();
        let mut written: Option<(Instant, HealthView)> = None;
        loop {
            if let Some(p) = probe.take_if(|p| p.is_finished()) {
                if let Ok(Ok(n)) = p.await {
                    queued = n;
                }
                // An error answer still proves the store thread is not stuck (a full disk is not a wedge).
                answered = Instant::now();
            }
            if probe.is_none() {
                let store = self.store.clone();
                probe = Some(tokio::task::spawn_blocking(move || {
                    store.lock().unwrap_or_else(|e| e.into_inner()).queued_count()
                }));
            }
            let line = activity_line(&self.health.snapshot(), queued);
            if line != told {
                let _ = sd_notify::notify(false, &[NotifyState::Status(&line)]);
                self.health.set_activity(line.clone(), chrono::Utc::now().timestamp());
                told = line;
            }
            if let Some(every) = ping_every
                && last_ping.elapsed() >= every
                && answered.elapsed() < every + TICK
                && self.liveness.on_time()
            {
                let _ = sd_notify::notify(false, &[NotifyState::Watchdog]);
                last_ping = Instant::now();
            }
            if let Some(f) = file.as_mut() {
                self.write_health(f, &mut written);
            }
            let tick = ping_every.map_or(TICK, |every| every.min(TICK));
            tokio::select! {
                _ = tokio::time::sleep(tick) => {}
                _ = stop.changed() => return,
            }
        }
    }

    /// Rewrites the health file when a fact changed, and every [`REFRESH`] so `updated_at` shows we are alive.
    fn write_health(&self, file: &mut HealthFile, written: &mut Option<(Instant, HealthView)>) {
        let mut snapshot = self.health.snapshot();
        if let Some((at, last)) = written.as_ref() {
            snapshot.updated_at = last.updated_at;
            if at.elapsed() < REFRESH && *last == snapshot {
                return;
            }
        }
        snapshot.updated_at = chrono::Utc::now().timestamp();
        match file.write(&snapshot) {
            Ok(()) => *written = Some((Instant::now(), snapshot)),
            Err(e) => debug!(error = %e, "health file"),
        }
    }
}

/// `RELOADING=1` with the `MONOTONIC_USEC=` systemd 253+ expects (Type=notify-reload), then the reload's work,
/// then `READY=1`; a refused reload also says so on the STATUS line until the monitor's next look.
pub fn around_reload<T, E: std::fmt::Display>(health: &Health, work: impl FnOnce() -> Result<T, E>) -> Result<T, E> {
    let mut states = vec![NotifyState::Reloading];
    if let Ok(now) = NotifyState::monotonic_usec_now() {
        states.push(now);
    }
    let _ = sd_notify::notify(false, &states);
    let result = work();
    let now = chrono::Utc::now().timestamp();
    match &result {
        Ok(_) => health.reload_ok(now),
        Err(e) => {
            health.reload_refused(&e.to_string(), now);
            let line = format!("reload refused, running config kept: {}", e.to_string().lines().next().unwrap_or(""));
            let _ = sd_notify::notify(false, &[NotifyState::Status(&line)]);
        }
    }
    let _ = sd_notify::notify(false, &[NotifyState::Ready]);
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_loop_is_on_time_until_its_announced_deadline_passes() {
        let alive = Liveness::default();
        assert!(alive.on_time(), "no deadline announced yet (no IMAP loop): only the store decides");
        alive.beat(Duration::from_secs(60));
        assert!(alive.on_time());
        alive.beat(Duration::ZERO);
        std::thread::sleep(Duration::from_millis(5));
        assert!(!alive.on_time(), "a step that overran its deadline stops the pings");
    }
}
