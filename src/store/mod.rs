//! All SQL lives here and in `schema.sql`. The connection belongs to one thread at a time; callers in async code
//! reach it through `spawn_blocking`, never across an `.await`.

mod agents;
pub mod backup;
mod budget;
pub mod integrity;
mod migrate;
mod outbox;
mod outbox_control;
mod parties;
mod privacy;
mod quarantine;
mod raw;
mod read;
mod write;

use std::path::Path;
use std::time::Duration;

use rusqlite::{Connection, ErrorCode};

pub use agents::{AgentRow, AgentView, QueueRow, RoleView};
pub use budget::ReplyBudget;
pub use outbox::{Due, NewOutgoing, OutboxCounts, OutboxView, SuppressionView};
pub use outbox_control::{Control, WaitReason};
pub use privacy::{AuditLine, ERASED, Erased, Purged, SentTo};
pub use quarantine::{QuarantineAction, QuarantineItem};
#[cfg(test)]
use raw::compress as compress_raw;
pub use raw::{Packed, pack as pack_raw};
pub use read::{
    ArticleView, AttachmentView, MetricsCounts, QuarantineView, RuleHitView, StatusCounts, TicketDetail, TicketFilter,
    TicketSummary,
};
pub use write::{LedgerEntry, NewArticle, NewTicket, Tx};

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database: {0}")]
    Sql(#[from] rusqlite::Error),
    #[error("database {path}: {source}")]
    Open { path: String, source: rusqlite::Error },
    #[error("database schema version {found} is newer than this postdesk understands ({known}); upgrade postdesk")]
    TooNew { found: i64, known: i64 },
    #[error("{0}")]
    Invalid(String),
}

impl StoreError {
    /// Failures worth retrying later (locked, busy, disk full, I/O): an MTA piping to `ingest` gets EX_TEMPFAIL.
    pub fn is_transient(&self) -> bool {
        let code = match self {
            StoreError::Sql(e) | StoreError::Open { source: e, .. } => e.sqlite_error_code(),
            _ => None,
        };
        matches!(
            code,
            Some(
                ErrorCode::DatabaseBusy
                    | ErrorCode::DatabaseLocked
                    | ErrorCode::DiskFull
                    | ErrorCode::SystemIoFailure
                    | ErrorCode::CannotOpen
                    | ErrorCode::OutOfMemory
            )
        )
    }
}

pub type Result<T> = std::result::Result<T, StoreError>;

/// How long a statement waits for another process's write lock before failing with "database is locked". Long: on
/// a busy disk four MTA pipes queueing behind each other's fsyncs once waited out 10 s, and an `ingest` that
/// waits is better than one the MTA must retry (Postfix gives a pipe command 1000 s).
const BUSY_TIMEOUT: Duration = Duration::from_secs(60);

/// WAL pages after which a commit copies the log into the database (see `setup`).
const WAL_AUTOCHECKPOINT_PAGES: i64 = 256;

pub struct Store {
    conn: Connection,
}

impl Store {
    /// Opens (creating if needed) the database and brings its schema up to date.
    pub fn open(path: &Path) -> Result<Store> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|e| StoreError::Invalid(format!("{}: {e}", dir.display())))?;
        }
        let conn =
            Connection::open(path).map_err(|source| StoreError::Open { path: path.display().to_string(), source })?;
        Self::setup(conn)
    }

    /// Opens an existing database for reading only: nothing is created or migrated.
    pub fn open_read_only(path: &Path) -> Result<Store> {
        let conn = Connection::open_with_flags(path, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
            .map_err(|source| StoreError::Open { path: path.display().to_string(), source })?;
        conn.busy_timeout(BUSY_TIMEOUT)?;
        Ok(Store { conn })
    }

    pub fn open_in_memory() -> Result<Store> {
        Self::setup(Connection::open_in_memory()?)
    }

    fn setup(conn: Connection) -> Result<Store> {
        // WAL lets `postdesk status` and `ticket list` read while the daemon writes; FULL makes a commit survive
        // power loss, which is what lets us acknowledge the mail source after it.
        conn.busy_timeout(BUSY_TIMEOUT)?;
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "synchronous", "FULL")?;
        conn.pragma_update(None, "foreign_keys", "ON")?;
        // Statement journals (a savepoint per mail) in memory: no temporary file created and deleted per batch.
        conn.pragma_update(None, "temp_store", "MEMORY")?;
        // The last connection to close would copy the whole WAL into the database and fsync both: the bulk of an
        // MTA pipe's `ingest` (one process per mail). The WAL is checkpointed anyway when it passes ~4 MB
        // (wal_autocheckpoint) or by the daemon's checkpointer, and a commit is durable once the WAL is synced.
        conn.set_db_config(rusqlite::config::DbConfig::SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE, true)?;
        // A WAL left behind is read whole by the next process to open the database (the MTA's next `ingest`):
        // checkpointing at 256 pages (1 MB) instead of 1000 keeps that read short. The daemon checkpoints itself.
        conn.pragma_update(None, "wal_autocheckpoint", WAL_AUTOCHECKPOINT_PAGES)?;
        // Every statement of a batch is prepared once per connection and reused (the default cache holds 16).
        conn.set_prepared_statement_cache_capacity(64);
        let mut store = Store { conn };
        migrate::migrate(&mut store.conn)?;
        Ok(store)
    }

    /// Starts a write transaction. `IMMEDIATE` takes the write lock up front, so two writers queue on
    /// busy_timeout instead of failing half-way with SQLITE_BUSY.
    pub fn begin(&mut self) -> Result<Tx<'_>> {
        let tx = rusqlite::Transaction::new(&mut self.conn, rusqlite::TransactionBehavior::Immediate)?;
        Ok(Tx::new(tx))
    }

    /// For a process that commits and exits (the MTA pipe's `ingest`): once the WAL has reached the
    /// auto-checkpoint size, empty it. SQLite only rewinds a WAL when a later write finds every frame copied, and a
    /// one-commit process never makes that later write; and each new process rebuilds its WAL index from the whole
    /// file and counts every frame as uncopied. Left alone the WAL grows by every mail (~12 KB each), every process
    /// reads all of it, and every commit copies it all into the database again with an extra fsync. The
    /// checkpoint inside our commit has just copied it, so this only truncates; it waits a moment for readers and
    /// otherwise leaves the work to the next process or the daemon.
    pub fn release_wal(&self) -> Result<()> {
        let Some(db) = self.conn.path().filter(|p| !p.is_empty()) else { return Ok(()) };
        let page_size: i64 = self.conn.pragma_query_value(None, "page_size", |r| r.get(0))?;
        let wal_len = std::fs::metadata(format!("{db}-wal")).map_or(0, |m| m.len() as i64);
        if wal_len < WAL_AUTOCHECKPOINT_PAGES * page_size {
            return Ok(());
        }
        self.conn.busy_timeout(Duration::from_millis(250))?;
        // A busy checkpoint is not an error: the row says so, and the WAL is simply truncated later.
        let checkpoint = self.conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()));
        self.conn.busy_timeout(BUSY_TIMEOUT)?;
        match checkpoint {
            Ok(())
            | Err(rusqlite::Error::SqliteFailure(
                rusqlite::ffi::Error { code: rusqlite::ErrorCode::DatabaseBusy, .. },
                _,
            )) => Ok(()),
            Err(e) => Err(e.into()),
        }
    }

    pub fn schema_version(&self) -> Result<i64> {
        Ok(self.conn.pragma_query_value(None, "user_version", |r| r.get(0))?)
    }
}

pub use crate::model::sha256_hex;

/// `execute` and `query_row` through the connection's statement cache. A batch runs the same statements for every
/// mail, and parsing their SQL again each time was a third of batch ingest's CPU.
pub(crate) trait CachedStatements {
    fn exec_cached<P: rusqlite::Params>(&self, sql: &str, params: P) -> rusqlite::Result<usize>;
    fn row_cached<T, P, F>(&self, sql: &str, params: P, f: F) -> rusqlite::Result<T>
    where
        P: rusqlite::Params,
        F: FnOnce(&rusqlite::Row<'_>) -> rusqlite::Result<T>;
}

impl CachedStatements for Connection {
    fn exec_cached<P: rusqlite::Params>(&self, sql: &str, params: P) -> rusqlite::Result<usize> {
        self.prepare_cached(sql)?.execute(params)
    }

    fn row_cached<T, P, F>(&self, sql: &str, params: P, f: F) -> rusqlite::Result<T>
    where
        P: rusqlite::Params,
        F: FnOnce(&rusqlite::Row<'_>) -> rusqlite::Result<T>,
    {
        self.prepare_cached(sql)?.query_row(params, f)
    }
}

#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_fast;

/// Moves WAL checkpoints off the writer's commit path. With `wal_autocheckpoint` the committing thread copies the
/// log into the database file every ~4 MB; here a second connection on its own thread does it, so a burst of mail is
/// committed at the speed of appending the log. Durability is unchanged: a commit is durable once its log is synced.
pub struct Checkpointer {
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    handle: Option<std::thread::JoinHandle<()>>,
}

impl Store {
    /// Hands checkpoints to a [`Checkpointer`]; call only when one runs.
    pub fn manual_checkpoints(&self) -> Result<()> {
        self.conn.pragma_update(None, "wal_autocheckpoint", 0)?;
        Ok(())
    }
}

impl Checkpointer {
    pub fn spawn(path: &Path) -> Result<Checkpointer> {
        use std::sync::atomic::{AtomicBool, Ordering};
        let conn =
            Connection::open(path).map_err(|source| StoreError::Open { path: path.display().to_string(), source })?;
        conn.busy_timeout(Duration::from_secs(10))?;
        let stop = std::sync::Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let handle = std::thread::Builder::new()
            .name("wal-checkpoint".into())
            .spawn(move || {
                while !flag.load(Ordering::Relaxed) {
                    std::thread::sleep(Duration::from_millis(200));
                    // PASSIVE never blocks the writer; what it cannot copy now it copies next time.
                    let _ = conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(()));
                }
                let _ = conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()));
            })
            .map_err(|e| StoreError::Invalid(format!("cannot start the checkpoint thread: {e}")))?;
        Ok(Checkpointer { stop, handle: Some(handle) })
    }
}

impl Drop for Checkpointer {
    fn drop(&mut self) {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
        if let Some(h) = self.handle.take() {
            let _ = h.join();
        }
    }
}
