//! `postdesk run`: the long-running process systemd starts. It owns the state directory (lock file), watches the
//! mailbox over IMAP, and shuts down cleanly on SIGTERM: a batch in hand is either committed or never was, and
//! mail leaves the mailbox only after its commit, so a stop at any instant loses and duplicates nothing.

use std::collections::HashSet;
use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use fs2::FileExt;
use rand::Rng;
use tokio::sync::{Notify, watch};
use tracing::{debug, error, info, warn};

use crate::config::{ImapConfig, Secret, TlsMode, read_secret};
use crate::exit::{EX_CONFIG, EX_SOFTWARE, EX_TEMPFAIL, Failure};
use crate::health::Health;
use crate::ingest::imap::{self, Connection, ImapError};
use crate::metrics::Metrics;
use crate::outbound::Relay;
use crate::outbound::sender::Sender;
use crate::pipeline::{Incoming, Outcome, Parsed, ParsedMail, Pipeline, Refusal};
use crate::setup::Setup;
use crate::store::{Store, StoreError};
use crate::supervise::{Liveness, Monitor, around_reload, storage_failpoint};

pub const LOCK_FILE: &str = "postdesk.lock";
/// Tries at taking the lock, 50 ms apart, before deciding another instance holds it.
const LOCK_ATTEMPTS: u32 = 10;

/// Holds the state directory's lock for the life of the process.
pub struct InstanceLock {
    _file: File,
}

impl InstanceLock {
    pub fn acquire(state_dir: &Path) -> Result<InstanceLock, Failure> {
        std::fs::create_dir_all(state_dir).map_err(|e| {
            Failure::new(EX_CONFIG, format!("{}: cannot create state directory: {e}", state_dir.display()))
        })?;
        let path = state_dir.join(LOCK_FILE);
        let mut file = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .read(true)
            .write(true)
            .open(&path)
            .map_err(|e| Failure::new(EX_CONFIG, format!("{}: {e}", path.display())))?;
        // `postdesk status` probes the lock with a shared lock for an instant: a start that meets the probe tries
        // again rather than reporting a running daemon that is not there.
        let mut attempts = 0;
        while file.try_lock_exclusive().is_err() {
            attempts += 1;
            if attempts < LOCK_ATTEMPTS {
                std::thread::sleep(Duration::from_millis(50));
                continue;
            }
            let holder = std::fs::read_to_string(&path).unwrap_or_default();
            return Err(Failure::new(
                EX_TEMPFAIL,
                format!(
                    "another postdesk is already running for {} (pid {}); stop it first",
                    state_dir.display(),
                    holder.trim()
                ),
            ));
        }
        let _ = file.set_len(0);
        let _ = writeln!(file, "{}", std::process::id());
        Ok(InstanceLock { _file: file })
    }

    /// Whether a daemon holds the lock right now (for `postdesk status`).
    pub fn is_held(state_dir: &Path) -> bool {
        let Ok(file) = File::open(state_dir.join(LOCK_FILE)) else { return false };
        let held = file.try_lock_shared().is_err();
        let _ = FileExt::unlock(&file);
        held
    }
}

/// What the IMAP loop needs; rebuilt from the config on start and on SIGHUP.
struct Shared {
    store: Arc<Mutex<Store>>,
    pipeline: RwLock<Arc<Pipeline>>,
    /// Poked after a commit that may have queued mail, so the sender need not poll.
    outbox_wake: Arc<Notify>,
    health: Arc<Health>,
    metrics: Arc<Metrics>,
    liveness: Arc<Liveness>,
    /// Failed store operations in a row (IMAP side): the wait before the next try doubles with each.
    storage_failures: std::sync::atomic::AtomicU32,
    storage_delay: Mutex<Option<Duration>>,
}

impl Shared {
    fn pipeline(&self) -> Arc<Pipeline> {
        self.pipeline.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// A store operation of the IMAP loop failed (disk full, locked, I/O): recorded for status and metrics, and the
    /// loop waits a growing, capped time before it tries again, instead of reconnecting at once.
    fn storage_failed(&self, e: StoreError) -> ImapError {
        use std::sync::atomic::Ordering;
        let mut pending = self.storage_delay.lock().unwrap_or_else(|e| e.into_inner());
        // One step of backoff per failed round: a second failure before the loop has waited (its own status
        // write, say) keeps the wait already chosen.
        let delay = *pending.get_or_insert_with(|| {
            let n = self.storage_failures.fetch_add(1, Ordering::Relaxed);
            let cap = self.pipeline().config().storage.error_backoff_max_seconds.max(1);
            Backoff { attempt: n, max: Duration::from_secs(cap) }.next()
        });
        drop(pending);
        self.health.database_failed(&e, delay.as_secs().max(1), chrono::Utc::now().timestamp());
        self.metrics.database_error(&e);
        ImapError::Transient(format!("database: {e}"))
    }

    /// The wait a storage failure asked for, once.
    fn take_storage_delay(&self) -> Option<Duration> {
        self.storage_delay.lock().unwrap_or_else(|e| e.into_inner()).take()
    }

    fn imap_connected(&self, up: bool) {
        self.health.imap_connected(up);
        self.metrics.imap_connected(up);
    }

    /// Atomic swap: a batch in progress keeps the pipeline it started with.
    fn swap(&self, pipeline: Pipeline) {
        *self.pipeline.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(pipeline);
    }
}

pub fn run(config_path: &Path) -> Result<(), Failure> {
    let setup = crate::setup::load_setup(config_path)?;
    let config = setup.config.clone();
    if config.imap.is_none() && config.smtp.is_none() {
        return Err(Failure::new(
            EX_CONFIG,
            format!(
                "{}: `postdesk run` needs an [imap] section to watch and/or an [smtp] relay to send through",
                config_path.display()
            ),
        ));
    }
    let imap = match &config.imap {
        Some(cfg) => Some(ImapEdge {
            cfg: cfg.clone(),
            password: imap_password(cfg)?,
            tls: tls_for(cfg.tls, cfg.ca_file.as_deref())?,
        }),
        None => None,
    };
    let relay = match &config.smtp {
        Some(cfg) => Some(relay_for(cfg, &config.address)?),
        None => None,
    };
    let _lock = InstanceLock::acquire(&config.storage.state_dir)?;
    // Not in the first mail's time: a piped mail waits for its answer.
    crate::parse::warm_up_on_the_side();
    // Checked before the signing key is made: on a fresh installation neither exists yet.
    let (mut store, _db_use) =
        crate::setup::open_checked_store(&config, crate::store::integrity::Thoroughness::Always)?;
    let signer = crate::setup::load_signer(&config)?;
    crate::admin::seed_from_config(&mut store, &config)?;
    store.manual_checkpoints()?;
    let _checkpointer = crate::store::Checkpointer::spawn(&config.database_path())?;
    let shared = Arc::new(Shared {
        store: Arc::new(Mutex::new(store)),
        pipeline: RwLock::new(Arc::new(Pipeline::new(setup, signer))),
        outbox_wake: Arc::new(Notify::new()),
        health: Arc::new(Health::new(chrono::Utc::now().timestamp())),
        metrics: Arc::new(Metrics::new()),
        liveness: Arc::new(Liveness::default()),
        storage_failures: Default::default(),
        storage_delay: Mutex::new(None),
    });
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| Failure::new(EX_SOFTWARE, format!("cannot start the async runtime: {e}")))?;
    let result = runtime.block_on(serve(config_path.to_path_buf(), shared, imap, relay));
    // A commit still running on the blocking pool finishes before we exit.
    runtime.shutdown_timeout(Duration::from_secs(10));
    result
}

/// What the IMAP side needs, built and checked before anything starts.
struct ImapEdge {
    cfg: ImapConfig,
    password: Secret,
    tls: Option<Arc<rustls::ClientConfig>>,
}

pub(crate) fn tls_for(mode: TlsMode, ca_file: Option<&Path>) -> Result<Option<Arc<rustls::ClientConfig>>, Failure> {
    match mode {
        TlsMode::Plain => Ok(None),
        _ => crate::tls::client_config(ca_file).map(Some).map_err(|e| Failure::new(EX_CONFIG, e.to_string())),
    }
}

pub(crate) fn imap_password(cfg: &ImapConfig) -> Result<Secret, Failure> {
    read_secret(cfg.password_file.as_deref(), "imap", "imap-password")
        .map_err(|e| Failure::new(EX_CONFIG, e.to_string()))
}

fn relay_for(cfg: &crate::config::SmtpConfig, site_address: &str) -> Result<Relay, Failure> {
    let password = match &cfg.username {
        Some(_) => Some(
            read_secret(cfg.password_file.as_deref(), "smtp", "smtp-password")
                .map_err(|e| Failure::new(EX_CONFIG, e.to_string()))?,
        ),
        None => None,
    };
    let hello = site_address.rsplit_once('@').map_or("localhost", |(_, d)| d);
    Relay::new(cfg, password, hello).map_err(|e| Failure::new(EX_CONFIG, format!("smtp: {e}")))
}

async fn serve(
    config_path: PathBuf,
    shared: Arc<Shared>,
    imap: Option<ImapEdge>,
    relay: Option<Relay>,
) -> Result<(), Failure> {
    let (stop_tx, stop_rx) = watch::channel(false);
    spawn_signal_handlers(config_path, shared.clone(), stop_tx)?;
    spawn_rules_watcher(shared.clone(), stop_rx.clone());
    let config = shared.pipeline().config().clone();
    let sender = match relay {
        Some(relay) => {
            let smtp = config.smtp.as_ref().expect("relay built from [smtp]");
            // Its own connection: a row is marked sent right after the relay's 250, in a transaction of its own,
            // without queueing behind the ingest connection's work (a crash in between duplicates that one mail).
            let store = Arc::new(Mutex::new(Store::open(&config.database_path())?));
            let (wake, health, metrics) = (shared.outbox_wake.clone(), shared.health.clone(), shared.metrics.clone());
            let sender = Sender::new(store, relay, smtp, wake, health, metrics);
            info!(relay = %smtp.host, "outbox sender running");
            Some(tokio::spawn(sender.run(stop_rx.clone())))
        }
        None => None,
    };
    spawn_housekeeping(shared.clone(), stop_rx.clone());
    if let Some(m) = &config.metrics {
        let listener = crate::metrics::bind(m.listen)
            .await
            .map_err(|e| Failure::new(EX_CONFIG, format!("metrics.listen {}: cannot listen: {e}", m.listen)))?;
        let (metrics, health) = (shared.metrics.clone(), shared.health.clone());
        tokio::spawn(crate::metrics::serve(listener, metrics, health, config.database_path(), stop_rx.clone()));
    }
    Monitor {
        store: shared.store.clone(),
        health: shared.health.clone(),
        liveness: shared.liveness.clone(),
        state_dir: config.storage.state_dir.clone(),
    }
    .spawn(stop_rx.clone());
    let handoff = spawn_handoff(shared.clone(), &config.storage.state_dir, stop_rx.clone());
    let _ = sd_notify::notify(false, &[sd_notify::NotifyState::Ready]);
    let result = match imap {
        Some(edge) => {
            info!(host = %edge.cfg.host, mailbox = %edge.cfg.mailbox, "postdesk running");
            let r = imap_loop(&shared, &edge.cfg, &edge.password, edge.tls, stop_rx).await;
            let _ = write_status(&shared, vec![("connected", "no".into()), ("last_error", "stopped".into())]).await;
            r
        }
        None => {
            info!("postdesk running without [imap]: sending only (mail arrives through `postdesk ingest`)");
            let mut stop = stop_rx;
            while !*stop.borrow() {
                if stop.changed().await.is_err() {
                    break;
                }
            }
            Ok(())
        }
    };
    let _ = sd_notify::notify(false, &[sd_notify::NotifyState::Stopping]);
    if let Some(socket) = handoff {
        // From now on `postdesk ingest` does its own work instead of waiting for a daemon that is going away.
        let _ = std::fs::remove_file(socket);
    }
    if let Some(task) = sender {
        // The sender stops at its next await; a send in flight finishes or is retried after restart.
        let _ = tokio::time::timeout(Duration::from_secs(5), task).await;
    }
    match result {
        Ok(()) => {
            info!("stopped");
            Ok(())
        }
        Err(e) => {
            error!(error = %e, "giving up");
            Err(Failure::new(EX_CONFIG, e.to_string()))
        }
    }
}

/// Listens for mail handed over by `postdesk ingest` (see [`crate::ingest::handoff`]). Returns the socket's path,
/// or `None` when it cannot listen: `ingest` then does its own work, only slower.
fn spawn_handoff(shared: Arc<Shared>, state_dir: &Path, mut stop: watch::Receiver<bool>) -> Option<PathBuf> {
    let path = crate::ingest::handoff::socket_path(state_dir);
    // A socket file left by an earlier run: no other daemon can be using it, this one holds the instance lock.
    let _ = std::fs::remove_file(&path);
    let listener = match tokio::net::UnixListener::bind(&path) {
        Ok(l) => l,
        Err(e) => {
            warn!(socket = %path.display(), error = %e, "cannot listen for `postdesk ingest`; it will work alone");
            return None;
        }
    };
    let own_uid = socket_owner(&path);
    tokio::spawn(async move {
        loop {
            let stream = tokio::select! {
                accepted = listener.accept() => match accepted {
                    Ok((stream, _)) => stream,
                    Err(e) => {
                        warn!(error = %e, "ingest socket: accept failed");
                        tokio::time::sleep(Duration::from_millis(100)).await;
                        continue;
                    }
                },
                _ = stop.changed() => break,
            };
            // Only the service user (and root) may hand mail over: the socket lives in a private directory, and
            // this holds even where that directory was opened up.
            let peer = stream.peer_cred().map(|c| c.uid()).ok();
            if !matches!(peer, Some(uid) if uid == 0 || Some(uid) == own_uid) {
                warn!(peer_uid = ?peer, "ingest socket: refused a connection from another user");
                continue;
            }
            tokio::spawn(answer_handoff(shared.clone(), stream));
        }
    });
    Some(path)
}

/// The user the daemon runs as, read from the socket it just created (std has no safe `getuid`).
fn socket_owner(path: &Path) -> Option<u32> {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata(path).ok().map(|m| m.uid())
}

/// Takes one handed-over mail through the pipeline and answers once it is committed (or not).
async fn answer_handoff(shared: Arc<Shared>, mut stream: tokio::net::UnixStream) {
    use crate::ingest::handoff::{Answer, REQUEST_TIMEOUT, read_request};
    use tokio::io::AsyncWriteExt;
    let started = Instant::now();
    let raw = match tokio::time::timeout(REQUEST_TIMEOUT, read_request(&mut stream)).await {
        Ok(Ok(raw)) => raw,
        Ok(Err(e)) => {
            // No answer: a client that speaks another version of the protocol (an upgrade half done) then takes
            // the mail in itself rather than having the MTA retry until the daemon is restarted.
            warn!(error = %e, "ingest socket: bad request; hung up");
            return;
        }
        Err(_) => {
            warn!("ingest socket: the client sent no whole mail within {} s", REQUEST_TIMEOUT.as_secs());
            return;
        }
    };
    let (store, pipeline) = (shared.store.clone(), shared.pipeline());
    let work = tokio::task::spawn_blocking(move || {
        let batch = [Incoming::new("stdin", raw)];
        // Parsed before the lock is taken: another mail (or the IMAP loop's batch) commits meanwhile.
        let parsed = pipeline.parse_batch(&batch);
        storage_failpoint()?;
        let mut store = store.lock().unwrap_or_else(|e| e.into_inner());
        pipeline.store_batch(&mut store, &batch, parsed)
    });
    let answer = match work.await {
        Ok(Ok(outcomes)) => {
            shared.outbox_wake.notify_one();
            shared.health.database_ok();
            shared.metrics.batch_processed(started.elapsed().as_secs_f64());
            let outcome = outcomes.into_iter().next().map(|o| o.to_string()).unwrap_or_default();
            info!(source = "ingest socket", %outcome, "mail handed over");
            Answer::Done(outcome)
        }
        Ok(Err(e)) => {
            error!(error = %e, "ingest socket: not committed; the MTA will retry");
            shared.metrics.database_error(&e);
            Answer::TempFail(format!("database: {e}"))
        }
        Err(e) => {
            error!(error = %e, "ingest socket: the store task failed; the MTA will retry");
            Answer::TempFail(format!("internal error: {e}"))
        }
    };
    let _ = stream.write_all(answer.to_line().as_bytes()).await;
}

fn spawn_signal_handlers(
    config_path: PathBuf,
    shared: Arc<Shared>,
    stop_tx: watch::Sender<bool>,
) -> Result<(), Failure> {
    use tokio::signal::unix::{SignalKind, signal};
    let sig = |kind| signal(kind).map_err(|e| Failure::new(EX_SOFTWARE, format!("cannot install signal handler: {e}")));
    let mut term = sig(SignalKind::terminate())?;
    let mut int = sig(SignalKind::interrupt())?;
    let mut hup = sig(SignalKind::hangup())?;
    tokio::spawn(async move {
        loop {
            tokio::select! {
                _ = term.recv() => break,
                _ = int.recv() => break,
                _ = hup.recv() => reload(&config_path, &shared),
            }
        }
        info!("stop requested; finishing the batch in hand");
        let _ = stop_tx.send(true);
    });
    Ok(())
}

/// SIGHUP: take changed config, rules and templates for the next batch. Anything bad refuses the whole reload and
/// the running set stays: a message is always routed by one consistent setup.
fn reload(config_path: &Path, shared: &Shared) {
    let result = around_reload(&shared.health, || {
        let setup = Setup::load(config_path)?;
        let rules = setup.rules.len();
        let signer = shared.pipeline().signer().clone();
        shared.swap(Pipeline::new(setup, signer));
        Ok::<_, crate::setup::SetupError>(rules)
    });
    match result {
        Ok(rules) => {
            info!(config = %config_path.display(), rules, "reloaded config, rules and templates (IMAP connection settings apply after a restart)")
        }
        Err(e) => error!(error = %e, "reload refused; keeping the running config, rules and templates"),
    }
}

/// The longest one step of the IMAP loop (a connect, a batch, an IDLE beyond its poll) may take before the watchdog
/// counts the loop as stuck; every IMAP command has its own, shorter timeout.
const STEP_LIMIT: Duration = Duration::from_secs(600);

/// Lock timeouts and pending tickets are checked this often.
const HOUSEKEEPING: Duration = Duration::from_secs(30);

fn spawn_housekeeping(shared: Arc<Shared>, mut stop: watch::Receiver<bool>) {
    tokio::spawn(async move {
        loop {
            tokio::select! {
                _ = tokio::time::sleep(HOUSEKEEPING) => {}
                _ = stop.changed() => return,
            }
            let pipeline = shared.pipeline();
            let store = shared.store.clone();
            let done = tokio::task::spawn_blocking(move || {
                pipeline.housekeeping(&mut store.lock().unwrap_or_else(|e| e.into_inner()))
            })
            .await;
            match done {
                Ok(Ok(0)) => {}
                Ok(Ok(n)) => {
                    info!(tickets = n, "lock timeouts and pending tickets handled");
                    shared.outbox_wake.notify_one();
                }
                Ok(Err(e)) => warn!(error = %e, "housekeeping failed; will retry"),
                Err(e) => warn!(error = %e, "housekeeping task failed"),
            }
        }
    });
}

/// How often the rules directory is checked for edits. Polling (not inotify) needs no extra dependency, works on
/// every filesystem and inside any sandbox, and two seconds is quick enough for an admin saving a file.
const RULES_POLL: Duration = Duration::from_secs(2);

/// Reloads the rules when a file under the rules directory changes; a bad set is refused and logged, the rules in
/// force stay.
fn spawn_rules_watcher(shared: Arc<Shared>, mut stop: watch::Receiver<bool>) {
    tokio::spawn(async move {
        let mut seen = rules_fingerprint(&shared.pipeline().config().rules.dir);
        loop {
            tokio::select! {
                _ = tokio::time::sleep(RULES_POLL) => {}
                _ = stop.changed() => return,
            }
            let current = shared.pipeline();
            let dir = current.config().rules.dir.clone();
            let now = rules_fingerprint(&dir);
            if now == seen {
                continue;
            }
            seen = now;
            let setup = current.setup();
            match Setup::load_rules(&setup.config, Some(&setup.templates), &dir) {
                Ok(rules) => {
                    let count = rules.len();
                    shared.swap(Pipeline::new(setup.with_rules(rules), current.signer().clone()));
                    shared.health.reload_ok(chrono::Utc::now().timestamp());
                    info!(dir = %dir.display(), rules = count, "rules changed on disk; reloaded");
                }
                Err(e) => {
                    shared
                        .health
                        .reload_refused(&format!("rules changed on disk: {e}"), chrono::Utc::now().timestamp());
                    error!(
                        dir = %dir.display(),
                        in_force = setup.rules.len(),
                        "rules changed on disk but were refused; keeping the rules in force:\n{e}"
                    )
                }
            }
        }
    });
}

/// Names, sizes and modification times of the rule files: a change in any means "reload".
fn rules_fingerprint(dir: &Path) -> Vec<(String, u64, Option<std::time::SystemTime>)> {
    let mut files: Vec<_> = std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .filter_map(|e| e.ok())
                .filter_map(|e| {
                    let meta = e.metadata().ok()?;
                    Some((e.file_name().to_string_lossy().into_owned(), meta.len(), meta.modified().ok()))
                })
                .collect()
        })
        .unwrap_or_default();
    files.sort();
    files
}

struct Backoff {
    attempt: u32,
    max: Duration,
}

impl Backoff {
    /// Exponential from 1 s, capped, with jitter so many clients do not reconnect in step.
    fn next(&mut self) -> Duration {
        let base = Duration::from_secs(1u64 << self.attempt.min(16)).min(self.max);
        self.attempt += 1;
        let jitter = rand::rng().random_range(0.5..=1.0);
        base.mul_f64(jitter)
    }
}

async fn imap_loop(
    shared: &Arc<Shared>,
    cfg: &ImapConfig,
    password: &Secret,
    tls: Option<Arc<rustls::ClientConfig>>,
    mut stop: watch::Receiver<bool>,
) -> Result<(), ImapError> {
    let mut backoff = Backoff { attempt: 0, max: Duration::from_secs(cfg.reconnect_max_seconds.max(1)) };
    while !*stop.borrow() {
        shared.liveness.beat(STEP_LIMIT);
        let result = session(shared, cfg, password, tls.clone(), &mut stop, &mut backoff).await;
        if result.is_err() {
            shared.imap_connected(false);
        }
        match result {
            Ok(()) => break,
            Err(e) if e.is_fatal() => {
                let _ = write_status(shared, vec![("connected", "no".into()), ("last_error", e.to_string())]).await;
                return Err(e);
            }
            Err(e) => {
                let _ = write_status(shared, vec![("connected", "no".into()), ("last_error", e.to_string())]).await;
                let delay = match shared.take_storage_delay() {
                    Some(delay) => {
                        warn!(error = %e, retry_in_ms = delay.as_millis() as u64, "database failed; mail stays in the mailbox until it works again");
                        delay
                    }
                    None => {
                        let delay = backoff.next();
                        warn!(error = %e, retry_in_ms = delay.as_millis() as u64, "IMAP connection lost; reconnecting");
                        delay
                    }
                };
                shared.liveness.beat(delay + STEP_LIMIT);
                tokio::select! {
                    _ = tokio::time::sleep(delay) => {}
                    _ = stop.changed() => {}
                }
            }
        }
    }
    Ok(())
}

/// One connection's life: drain the mailbox, wait for more, repeat until stopped or the connection fails.
async fn session(
    shared: &Arc<Shared>,
    cfg: &ImapConfig,
    password: &Secret,
    tls: Option<Arc<rustls::ClientConfig>>,
    stop: &mut watch::Receiver<bool>,
    backoff: &mut Backoff,
) -> Result<(), ImapError> {
    let mut conn = imap::connect(cfg, password, tls).await?;
    backoff.attempt = 0;
    shared.imap_connected(true);
    info!(uidvalidity = conn.uidvalidity, idle = conn.features.idle, r#move = conn.features.moves, "connected");
    write_status(
        shared,
        vec![("connected", "yes".into()), ("server", format!("{}:{}", cfg.host, cfg.port.unwrap_or(0)))],
    )
    .await
    .map_err(ImapError::Transient)?;
    check_uidvalidity(shared, &conn).await?;
    loop {
        drain(shared, cfg, &mut conn, stop).await?;
        if *stop.borrow() {
            conn.logout().await;
            return Ok(());
        }
        let poll = Duration::from_secs(cfg.poll_seconds.max(1));
        shared.liveness.beat(poll + STEP_LIMIT);
        let (next, _) = conn.wait(cfg.idle, poll, stop).await?;
        conn = next;
    }
}

/// A new UIDVALIDITY means the server renumbered the mailbox: our source keys no longer match, so mail still in it
/// is matched again by content (the ledger's SHA-256), which stores nothing twice.
async fn check_uidvalidity(shared: &Arc<Shared>, conn: &Connection) -> Result<(), ImapError> {
    let store = shared.store.clone();
    let mailbox = conn.mailbox().to_string();
    let uidvalidity = conn.uidvalidity;
    let previous = blocking(shared, move || {
        let mut store = store.lock().unwrap_or_else(|e| e.into_inner());
        let tx = store.begin()?;
        let previous = tx.imap_state(&mailbox)?;
        tx.set_imap_state(&mailbox, uidvalidity, 0)?;
        tx.commit()?;
        Ok(previous)
    })
    .await?;
    if let Some((old, _)) = previous
        && old != uidvalidity
    {
        warn!(old, new = uidvalidity, "UIDVALIDITY changed; mail still in the mailbox is re-matched by content");
    }
    Ok(())
}

/// Processes everything waiting in the mailbox. Batches overlap: while one commits on the blocking pool, the next
/// finishes its parse and the one after it downloads (parsed as it arrives). A batch leaves the inbox only after
/// its own commit.
async fn drain(
    shared: &Arc<Shared>,
    cfg: &ImapConfig,
    conn: &mut Connection,
    stop: &watch::Receiver<bool>,
) -> Result<(), ImapError> {
    loop {
        let listed = conn.list().await?;
        shared.health.backlog(listed.len());
        write_status(shared, vec![("backlog", listed.len().to_string())]).await.map_err(ImapError::Transient)?;
        if listed.is_empty() {
            // Nothing to commit and the status write went through: the database works.
            shared.storage_failures.store(0, std::sync::atomic::Ordering::Relaxed);
            shared.health.database_ok();
        }
        if listed.is_empty() || *stop.borrow() {
            return Ok(());
        }
        let pipeline = shared.pipeline();
        let max_size = pipeline.config().limits.max_message_bytes;
        // Mail committed before a crash or restart but not yet moved: move it, nothing else.
        let keys: Vec<String> = listed.iter().map(|(uid, _)| conn.source_key(*uid)).collect();
        let store = shared.store.clone();
        let known: HashSet<String> =
            blocking(shared, move || store.lock().unwrap_or_else(|e| e.into_inner()).known_source_keys(&keys)).await?;
        let (already, todo): (Listed, Listed) =
            listed.into_iter().partition(|(uid, _)| known.contains(&conn.source_key(*uid)));
        let already: Vec<u32> = already.into_iter().map(|(uid, _)| uid).collect();
        conn.move_to(&already, &cfg.processed_mailbox).await?;

        let mut rest: &[(u32, u32)] = &todo;
        // Three batches at most: one downloading (and parsing as it arrives), the one before it finishing its
        // parse, and the one before that committing. The connection never waits for a parse to start the next
        // download; the store commits batches in order, and a batch leaves the inbox only after its own commit.
        let mut parsing: Option<Parsing> = None;
        let mut in_flight: Option<InFlight> = None;
        let mut handled = already.len();
        while !rest.is_empty() && !*stop.borrow() {
            shared.liveness.beat(STEP_LIMIT);
            let batch = plan_batch(rest, cfg.batch_size as usize, cfg.batch_bytes, max_size);
            rest = &rest[batch.len()..];
            let started = Instant::now();
            let task = fetch_and_parse(conn, &batch, max_size, &pipeline).await?;
            debug!(mails = batch.len(), download_ms = started.elapsed().as_millis() as u64, "batch downloaded");
            if let Some(previous) = parsing.replace(Parsing { task, started }) {
                handled += store_next(shared, cfg, conn, &pipeline, previous, &mut in_flight).await?;
            }
        }
        if let Some(last) = parsing.take() {
            handled += store_next(shared, cfg, conn, &pipeline, last, &mut in_flight).await?;
        }
        if let Some(previous) = in_flight.take() {
            let batch = committed(shared, previous).await?;
            handled += move_committed(cfg, conn, batch).await?;
        }
        write_status(shared, vec![("last_fetch", handled.to_string())]).await.map_err(ImapError::Transient)?;
    }
}

/// Mail in the mailbox as `(uid, size)`.
type Listed = Vec<(u32, u32)>;

/// A downloaded batch whose parse may still be running on the blocking pool.
struct Parsing {
    task: tokio::task::JoinHandle<(Vec<u32>, Vec<Incoming>, Parsed)>,
    started: Instant,
}

/// Starts committing a parsed batch once the batch before it has committed, then moves that one out of the inbox
/// (the store thread sets the pace: the move goes to the server while this batch commits). Returns how many mails
/// were moved.
async fn store_next(
    shared: &Arc<Shared>,
    cfg: &ImapConfig,
    conn: &mut Connection,
    pipeline: &Arc<Pipeline>,
    batch: Parsing,
    in_flight: &mut Option<InFlight>,
) -> Result<usize, ImapError> {
    let committed = match in_flight.take() {
        Some(previous) => Some(committed(shared, previous).await?),
        None => None,
    };
    let (uids, mails, parsed) = batch.task.await.map_err(|e| ImapError::Transient(format!("parse task: {e}")))?;
    debug!(mails = uids.len(), parse_ms = batch.started.elapsed().as_millis() as u64, "batch parsed");
    let store = shared.store.clone();
    let writer = pipeline.clone();
    let (mailbox, uidvalidity) = (conn.mailbox().to_string(), conn.uidvalidity);
    let last_uid = uids.last().copied().unwrap_or(0);
    let storing = tokio::task::spawn_blocking(move || {
        storage_failpoint()?;
        let mut store = store.lock().unwrap_or_else(|e| e.into_inner());
        writer.store_batch_and(&mut store, &mails, parsed, |tx| tx.set_imap_state(&mailbox, uidvalidity, last_uid))
    });
    *in_flight = Some(InFlight { uids, storing, started: batch.started });
    match committed {
        Some(batch) => move_committed(cfg, conn, batch).await,
        None => Ok(0),
    }
}

/// A batch whose transaction is running on the blocking pool.
struct InFlight {
    uids: Vec<u32>,
    started: Instant,
    storing: tokio::task::JoinHandle<Result<Vec<Outcome>, crate::store::StoreError>>,
}

/// A batch whose transaction has committed: its mail may now leave the inbox.
struct Committed {
    uids: Vec<u32>,
    outcomes: Vec<Outcome>,
}

/// Waits for a batch's commit.
async fn committed(shared: &Arc<Shared>, batch: InFlight) -> Result<Committed, ImapError> {
    let outcomes = match batch.storing.await {
        Ok(Ok(outcomes)) => outcomes,
        Ok(Err(e)) => return Err(shared.storage_failed(e)),
        Err(e) => return Err(ImapError::Transient(format!("store task failed: {e}"))),
    };
    shared.outbox_wake.notify_one();
    shared.health.database_ok();
    shared.storage_failures.store(0, std::sync::atomic::Ordering::Relaxed);
    shared.metrics.batch_processed(batch.started.elapsed().as_secs_f64());
    Ok(Committed { uids: batch.uids, outcomes })
}

/// Moves a committed batch's mail out of the inbox (never before its commit: see [`committed`]).
async fn move_committed(cfg: &ImapConfig, conn: &mut Connection, batch: Committed) -> Result<usize, ImapError> {
    let mut processed = Vec::new();
    let mut quarantined = Vec::new();
    for (uid, outcome) in batch.uids.iter().zip(&batch.outcomes) {
        if outcome.is_quarantined() { quarantined.push(*uid) } else { processed.push(*uid) }
    }
    let moving = Instant::now();
    conn.move_to(&processed, &cfg.processed_mailbox).await?;
    conn.move_to(&quarantined, &cfg.quarantine_mailbox).await?;
    debug!(mails = batch.uids.len(), move_ms = moving.elapsed().as_millis() as u64, "batch moved");
    Ok(batch.uids.len())
}

/// Downloads one batch and parses each mail as it arrives, on the blocking pool, so parsing overlaps the download
/// (and the batch in memory is mostly compressed by the time it is whole: [`Pipeline::parse_releasing`]). Mail over
/// the size limit is refused from its size alone, never downloaded (it stays whole in the quarantine folder).
/// Returns the parse task once the download is done; it yields UIDs, mails and their parses in UID order.
async fn fetch_and_parse(
    conn: &mut Connection,
    batch: &[(u32, u32)],
    max_size: usize,
    pipeline: &Arc<Pipeline>,
) -> Result<tokio::task::JoinHandle<(Vec<u32>, Vec<Incoming>, Parsed)>, ImapError> {
    let mailbox = conn.mailbox().to_string();
    let source = move |uid: u32| format!("imap:{mailbox}/{uid}");
    let (arrived, arrivals) = std::sync::mpsc::channel::<(u32, Incoming)>();
    let parser = pipeline.clone();
    let expected = batch.len();
    let parsing = tokio::task::spawn_blocking(move || {
        let mut done: Vec<(u32, Incoming, Option<ParsedMail>)> = Vec::with_capacity(expected);
        for (uid, mut mail) in arrivals {
            let parsed = parser.parse_releasing(&mut mail);
            done.push((uid, mail, parsed));
        }
        done.sort_by_key(|(uid, ..)| *uid);
        let mut out = (Vec::with_capacity(done.len()), Vec::with_capacity(done.len()), Vec::with_capacity(done.len()));
        for (uid, mail, parsed) in done {
            out.0.push(uid);
            out.1.push(mail);
            out.2.push(parsed);
        }
        out
    });
    let source_key = conn.source_keys();
    let mut to_download = Vec::new();
    for &(uid, size) in batch {
        if size as usize > max_size {
            let refused = Refusal {
                size: size as usize,
                reason: format!("message is {size} bytes, over the limit of {max_size} (limits.max_message_bytes)"),
            };
            let mail = Incoming {
                source: source(uid),
                source_key: Some(source_key(uid)),
                raw: Vec::new(),
                refused: Some(refused),
            };
            // The parse task ends only when `arrived` is dropped, so it is still receiving.
            let _ = arrived.send((uid, mail));
        } else {
            to_download.push(uid);
        }
    }
    conn.download_each(&to_download, |uid, raw| {
        let mail = Incoming { source: source(uid), source_key: Some(source_key(uid)), raw, refused: None };
        let _ = arrived.send((uid, mail));
    })
    .await?;
    Ok(parsing)
}

/// The next batch: oldest first, at most `max_count` mails and about `max_bytes` of download (at least one mail).
/// Oversized mail costs nothing to "download", so it does not count against the byte budget.
pub fn plan_batch(listed: &[(u32, u32)], max_count: usize, max_bytes: usize, max_size: usize) -> Vec<(u32, u32)> {
    let mut bytes = 0usize;
    let mut batch = Vec::new();
    for &(uid, size) in listed.iter().take(max_count.max(1)) {
        let cost = if size as usize > max_size { 0 } else { size as usize };
        if !batch.is_empty() && bytes + cost > max_bytes {
            break;
        }
        bytes += cost;
        batch.push((uid, size));
    }
    batch
}

/// Runs store work on the blocking pool: the SQLite connection is never held across an `.await`.
async fn blocking<T: Send + 'static>(
    shared: &Shared,
    work: impl FnOnce() -> Result<T, crate::store::StoreError> + Send + 'static,
) -> Result<T, ImapError> {
    match tokio::task::spawn_blocking(move || storage_failpoint().and_then(|()| work())).await {
        Ok(Ok(v)) => Ok(v),
        // A database problem (locked, disk full) is retried after a growing wait: the mail stays put.
        Ok(Err(e)) => Err(shared.storage_failed(e)),
        Err(e) => Err(ImapError::Transient(format!("store task failed: {e}"))),
    }
}

async fn write_status(shared: &Arc<Shared>, facts: Vec<(&'static str, String)>) -> Result<(), String> {
    let store = shared.store.clone();
    let now = chrono::Utc::now().timestamp();
    let r = blocking(shared, move || {
        let mut store = store.lock().unwrap_or_else(|e| e.into_inner());
        let tx = store.begin()?;
        for (k, v) in &facts {
            tx.set_status(k, v, now)?;
        }
        tx.commit()
    })
    .await;
    r.map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn batches_respect_count_bytes_and_let_oversized_mail_through() {
        let listed = [(1, 10), (2, 10), (3, 1_000_000), (4, 10), (5, 10)];
        assert_eq!(plan_batch(&listed, 2, 100, 500).len(), 2);
        assert_eq!(plan_batch(&listed, 10, 25, 2_000_000), vec![(1, 10), (2, 10)]);
        // The 1 MB mail is over the size limit: refused without download, so it costs no budget.
        assert_eq!(plan_batch(&listed, 10, 25, 500).len(), 3);
        assert_eq!(plan_batch(&[(9, 5000)], 10, 10, 10_000), vec![(9, 5000)]);
    }

    #[test]
    fn backoff_grows_to_the_cap_with_jitter() {
        let mut b = Backoff { attempt: 0, max: Duration::from_secs(8) };
        let delays: Vec<Duration> = (0..8).map(|_| b.next()).collect();
        assert!(delays[0] <= Duration::from_secs(1));
        assert!(delays.iter().all(|d| *d <= Duration::from_secs(8)));
        assert!(delays[7] >= Duration::from_secs(4));
    }

    #[test]
    fn a_second_instance_is_refused_with_75() {
        let dir = tempfile::tempdir().unwrap();
        let first = InstanceLock::acquire(dir.path()).unwrap();
        let second = InstanceLock::acquire(dir.path()).err().unwrap();
        assert_eq!(second.code, EX_TEMPFAIL);
        assert!(second.message.contains("already running"), "{}", second.message);
        assert!(InstanceLock::is_held(dir.path()));
        drop(first);
        assert!(!InstanceLock::is_held(dir.path()));
    }

    #[test]
    fn a_start_that_meets_a_status_probe_waits_for_it() {
        use fs2::FileExt;
        let dir = tempfile::tempdir().unwrap();
        drop(InstanceLock::acquire(dir.path()).unwrap());
        // What `is_held` does, held long enough for the start to meet it.
        let probe = File::open(dir.path().join(LOCK_FILE)).unwrap();
        probe.try_lock_shared().unwrap();
        let release = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(150));
            FileExt::unlock(&probe).unwrap();
        });
        assert!(InstanceLock::acquire(dir.path()).is_ok(), "a status probe is not a running daemon");
        release.join().unwrap();
    }
}
