//! Is the database whole, and is it the one this installation expects? `run` and `ingest` ask before they write
//! (a damaged file must not be written into, a missing one must not be silently replaced by an empty one), and
//! ticket numbers are recorded outside the database too, so that restoring an older copy never hands a number out
//! twice.

use std::collections::BTreeMap;
use std::fmt;
use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use fs2::FileExt;
use rusqlite::{Connection, ErrorCode, OpenFlags, params};

use super::{Result, Store, StoreError};

/// Beside the database: the highest ticket counter handed out per day, one `YYYYMMDD N` line each.
pub const NUMBERS_FILE: &str = "ticket-numbers";
/// Files in the state directory that only an installation with history has.
const HISTORY_MARKERS: &[&str] = &["hmac.key", NUMBERS_FILE];
/// How long `run` or `ingest` waits for a `db restore` in progress to finish before giving up (ingest: exit 75).
const USE_LOCK_WAIT: Duration = Duration::from_secs(30);

/// `PRAGMA quick_check` on a read-only connection: the problems found, none when the file is whole. O(size) but
/// skips the index-to-table cross-checks that make `integrity_check` slow.
pub fn quick_check(path: &Path) -> Result<Vec<String>> {
    check(path, "quick_check")
}

/// `PRAGMA integrity_check`: everything `quick_check` does, plus every index matched against its table.
pub fn integrity_check(path: &Path) -> Result<Vec<String>> {
    check(path, "integrity_check")
}

fn check(path: &Path, pragma: &str) -> Result<Vec<String>> {
    let conn = Connection::open_with_flags(path, OpenFlags::SQLITE_OPEN_READ_ONLY)
        .map_err(|source| StoreError::Open { path: path.display().to_string(), source })?;
    conn.busy_timeout(Duration::from_secs(10))?;
    let run = || -> rusqlite::Result<Vec<String>> {
        // `pragma` is one of the two fixed names above. At most 100 problems: enough to judge, bounded output.
        let mut stmt = conn.prepare(&format!("PRAGMA {pragma}(100)"))?;
        let rows = stmt.query_map([], |r| r.get::<_, String>(0))?;
        rows.collect()
    };
    match run() {
        Ok(rows) if rows.len() == 1 && rows[0] == "ok" => Ok(Vec::new()),
        Ok(rows) => Ok(rows),
        // Damage bad enough that the check cannot even start is a finding, not a failure to check.
        Err(e) if matches!(e.sqlite_error_code(), Some(ErrorCode::DatabaseCorrupt | ErrorCode::NotADatabase)) => {
            Ok(vec![e.to_string()])
        }
        Err(e) => Err(e.into()),
    }
}

/// Why `run` or `ingest` will not use the database.
#[derive(Debug)]
pub enum IntegrityError {
    /// A 0-byte file: SQLite would take it as a new, empty database and start ticket numbers again.
    Empty(PathBuf),
    /// No database, but the state directory has history (`marker`): it was lost or moved, not never made.
    Missing {
        path: PathBuf,
        marker: PathBuf,
    },
    Damaged {
        path: PathBuf,
        problems: Vec<String>,
    },
    /// A `db restore` holds the database; it did not finish in time.
    Busy(PathBuf),
    Store(StoreError),
}

impl IntegrityError {
    /// Worth retrying later without anyone's help (locked, busy): everything else needs the admin.
    pub fn is_transient(&self) -> bool {
        match self {
            IntegrityError::Busy(_) => true,
            IntegrityError::Store(e) => e.is_transient(),
            _ => false,
        }
    }
}

impl From<StoreError> for IntegrityError {
    fn from(e: StoreError) -> Self {
        IntegrityError::Store(e)
    }
}

const RESTORE_HINT: &str = "restore the newest good backup with `postdesk db restore FILE` (daemon stopped)";

impl fmt::Display for IntegrityError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            IntegrityError::Empty(p) => write!(
                f,
                "database {} is an empty (0-byte) file, not a database; refusing to start a new one in its place \
                 (ticket numbers would be issued again); {RESTORE_HINT}, or remove the file to start afresh",
                p.display()
            ),
            IntegrityError::Missing { path, marker } => write!(
                f,
                "database {} is missing, but {} shows this installation has history; refusing to start an empty \
                 database; {RESTORE_HINT}, or run `postdesk db init` to start an empty one on purpose",
                path.display(),
                marker.display()
            ),
            IntegrityError::Damaged { path, problems } => write!(
                f,
                "database {} is damaged (PRAGMA quick_check: {}); nothing was written to it; {RESTORE_HINT}",
                path.display(),
                problems.iter().take(3).cloned().collect::<Vec<_>>().join("; ")
            ),
            IntegrityError::Busy(p) => {
                write!(f, "database {} is being restored (`postdesk db restore`); try again later", p.display())
            }
            IntegrityError::Store(e) => write!(f, "{e}"),
        }
    }
}

/// Held while a process writes the database: shared by `run` and every `ingest`, exclusive for `db restore`, so a
/// restore never swaps the file under a writer (whose mail would land in the file moved aside). It is a lock on
/// the database's directory: no extra file whose owner or mode could lock a user out.
pub struct UseLock {
    _dir: File,
}

impl UseLock {
    pub fn shared(db: &Path) -> std::result::Result<UseLock, IntegrityError> {
        Self::take(db, false, false).map(|lock| lock.expect("only given up for a database made meanwhile"))
    }

    pub fn exclusive(db: &Path) -> std::result::Result<UseLock, IntegrityError> {
        Self::take(db, true, false).map(|lock| lock.expect("only given up for a database made meanwhile"))
    }

    /// For a process that found no database (or a 0-byte one) and will make it: the exclusive lock, so that no
    /// other process meets the file while it is still 0 bytes; or None once another process has made it meanwhile
    /// (a daemon keeps its lock for as long as it runs, so waiting for it would only time out).
    pub fn to_create(db: &Path) -> std::result::Result<Option<UseLock>, IntegrityError> {
        Self::take(db, true, true)
    }

    /// From exclusive to shared, on the same open file (flock converts the lock in place).
    fn downgrade(&self) -> std::io::Result<()> {
        FileExt::lock_shared(&self._dir)
    }

    fn take(db: &Path, exclusive: bool, unless_made: bool) -> std::result::Result<Option<UseLock>, IntegrityError> {
        let dir = database_dir(db);
        std::fs::create_dir_all(&dir).map_err(|e| StoreError::Invalid(format!("{}: {e}", dir.display())))?;
        let file = File::open(&dir).map_err(|e| StoreError::Invalid(format!("{}: {e}", dir.display())))?;
        let started = Instant::now();
        loop {
            let got = if exclusive { FileExt::try_lock_exclusive(&file) } else { FileExt::try_lock_shared(&file) };
            if got.is_ok() {
                return Ok(Some(UseLock { _dir: file }));
            }
            if unless_made && !missing_or_empty(db) {
                return Ok(None);
            }
            if started.elapsed() > USE_LOCK_WAIT {
                return Err(IntegrityError::Busy(db.to_path_buf()));
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

/// No database file, or one of 0 bytes: what a process that is about to make the database finds.
pub fn missing_or_empty(db: &Path) -> bool {
    std::fs::metadata(db).map_or(true, |m| m.len() == 0)
}

fn database_dir(db: &Path) -> PathBuf {
    match db.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    }
}

/// The ticket-numbers record beside a database.
pub fn numbers_path(db: &Path) -> PathBuf {
    database_dir(db).join(NUMBERS_FILE)
}

/// Refuses a 0-byte database, and a missing one where the state directory shows history. A database that does
/// not exist on a fresh installation is fine: `Store::open` creates it.
pub fn preflight(db: &Path, state_dir: &Path) -> std::result::Result<(), IntegrityError> {
    match std::fs::metadata(db) {
        Ok(meta) if meta.len() == 0 => Err(IntegrityError::Empty(db.to_path_buf())),
        Ok(_) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let markers = HISTORY_MARKERS.iter().map(|m| state_dir.join(m)).chain([numbers_path(db)]);
            match markers.into_iter().find(|m| m.exists()) {
                Some(marker) => Err(IntegrityError::Missing { path: db.to_path_buf(), marker }),
                None => Ok(()),
            }
        }
        Err(e) => Err(StoreError::Invalid(format!("{}: {e}", db.display())).into()),
    }
}

/// How much checking a start needs. `run` starts rarely and checks the whole file every time; `ingest` starts once
/// per mail from an MTA, and a full `quick_check` per mail would cost O(database size) each (0.2 s at 110 MB).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Thoroughness {
    Always,
    /// Only when the file is not the one last found whole (another inode, size or modification time: replaced,
    /// restored, written by a checkpoint or by anything else), or that check is older than [`RECHECK_UNCHANGED`].
    WhenChanged,
}

/// An unchanged database is checked again after this long anyway: damage need not change the file's metadata.
pub const RECHECK_UNCHANGED: Duration = Duration::from_secs(3600);

/// What `run` and `ingest` open: the use lock, then the checks, then the store with ticket counters raised to what
/// the record beside it says was handed out (a copy restored by hand cannot reissue them either).
pub fn open_checked(
    db: &Path,
    state_dir: &Path,
    thoroughness: Thoroughness,
) -> std::result::Result<(Store, UseLock), IntegrityError> {
    // Whoever creates the database does so alone: a second process must not meet the file while it is still
    // 0 bytes (refused as an emptied database) when two mails arrive on a fresh installation at once. One that
    // found it missing but sees it made meanwhile uses it alongside its maker: a daemon that made it keeps its
    // lock for as long as it runs, so waiting for that would only time out (and make the MTA retry).
    let made_here = if missing_or_empty(db) { UseLock::to_create(db)? } else { None };
    let creating = made_here.is_some();
    let lock = match made_here {
        Some(lock) => lock,
        None => UseLock::shared(db)?,
    };
    preflight(db, state_dir)?;
    if db.exists() {
        let fingerprint = fingerprint(db);
        let known_good = thoroughness == Thoroughness::WhenChanged && fingerprint.is_some() && {
            let stamp = std::fs::read_to_string(checked_stamp_path(db)).unwrap_or_default();
            stamp_is_fresh(&stamp, fingerprint.as_deref().unwrap_or_default(), unix_now())
        };
        if !known_good {
            let problems = quick_check(db)?;
            if !problems.is_empty() {
                return Err(IntegrityError::Damaged { path: db.to_path_buf(), problems });
            }
            if let Some(fp) = fingerprint {
                record_checked(db, &fp);
            }
        }
    }
    let mut store = Store::open(db)?;
    store.sync_ticket_numbers(&numbers_path(db))?;
    if creating {
        // Made now: the others may use it alongside (a daemon holds its lock for as long as it runs).
        lock.downgrade().map_err(|e| StoreError::Invalid(format!("{}: {e}", db.display())))?;
    }
    Ok((store, lock))
}

/// After a start that found the database whole, its own writes (and any checkpoint they caused) change the file's
/// modification time; this records the file as it is now, so that the next `ingest` does not read the whole
/// database again only because of them. Best effort, like the stamp itself; the hourly re-check still applies.
pub fn still_whole(db: &Path) {
    let stamp = std::fs::read_to_string(checked_stamp_path(db)).unwrap_or_default();
    let Some((_, at)) = stamp.trim().split_once(' ') else { return };
    let Ok(at) = at.parse::<i64>() else { return };
    if let Some(fingerprint) = fingerprint(db) {
        write_stamp(db, &fingerprint, at);
    }
}

/// Beside the database: the fingerprint of the file as last found whole, and when.
fn checked_stamp_path(db: &Path) -> PathBuf {
    let mut name = db.file_name().unwrap_or_default().to_os_string();
    name.push(".checked");
    db.with_file_name(name)
}

/// Device, inode, size and modification time (ns) of the database file.
fn fingerprint(db: &Path) -> Option<String> {
    use std::os::unix::fs::MetadataExt;
    let m = std::fs::metadata(db).ok()?;
    Some(format!("{}:{}:{}:{}.{}", m.dev(), m.ino(), m.len(), m.mtime(), m.mtime_nsec()))
}

fn unix_now() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs() as i64)
}

/// A stamp reads `FINGERPRINT CHECKED_AT`; fresh when it names this very file and is recent.
fn stamp_is_fresh(stamp: &str, fingerprint: &str, now: i64) -> bool {
    let Some((fp, at)) = stamp.trim().split_once(' ') else { return false };
    let Ok(at) = at.parse::<i64>() else { return false };
    fp == fingerprint && (0..RECHECK_UNCHANGED.as_secs() as i64).contains(&(now - at))
}

/// Best effort: without a stamp the next start simply checks again.
fn record_checked(db: &Path, fingerprint: &str) {
    write_stamp(db, fingerprint, unix_now());
}

/// `checked_at` is when the whole file was last read and found whole, kept as it was when only our writes followed.
fn write_stamp(db: &Path, fingerprint: &str, checked_at: i64) {
    let path = checked_stamp_path(db);
    let tmp = path.with_extension(format!("tmp.{}", std::process::id()));
    let written = std::fs::write(&tmp, format!("{fingerprint} {checked_at}\n"));
    if written.and_then(|()| std::fs::rename(&tmp, &path)).is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
}

/// Reads `YYYYMMDD N` lines; a missing file is empty, a line that does not parse is skipped.
pub fn read_numbers(path: &Path) -> BTreeMap<String, i64> {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    text.lines()
        .filter_map(|l| {
            let (day, n) = l.trim().split_once(' ')?;
            let valid_day = day.len() == 8 && day.bytes().all(|b| b.is_ascii_digit());
            Some((day.to_string(), n.trim().parse::<i64>().ok()?)).filter(|_| valid_day)
        })
        .collect()
}

/// Raises the record to at least `issued` (it never goes down), written whole to a temporary file and renamed over,
/// so a crash leaves the old record or the new one.
pub fn record_numbers(path: &Path, issued: &BTreeMap<String, i64>) -> std::io::Result<()> {
    let mut all = read_numbers(path);
    let mut changed = false;
    for (day, n) in issued {
        let entry = all.entry(day.clone()).or_insert(0);
        if *n > *entry {
            *entry = *n;
            changed = true;
        }
    }
    if !changed {
        return Ok(());
    }
    // One write: the record has a line per day ever numbered (hundreds on a database with years of tickets), and
    // it is rewritten after every batch; written line by line it was four system calls a line.
    let text: String = all.iter().map(|(day, n)| format!("{day} {n}\n")).collect();
    let tmp = path.with_extension(format!("tmp.{}", std::process::id()));
    {
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create(true).truncate(true);
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        options.open(&tmp)?.write_all(text.as_bytes())?;
    }
    std::fs::rename(&tmp, path)
}

impl Store {
    /// Ticket counters per day, as the database has them.
    pub fn ticket_counters(&self) -> Result<BTreeMap<String, i64>> {
        let mut stmt = self.conn.prepare("SELECT day, last FROM ticket_counters")?;
        let rows = stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// Raises the database's counters to the record's and the record to the database's: both end at the highest
    /// number ever handed out, whichever side knew it.
    pub fn sync_ticket_numbers(&mut self, record: &Path) -> Result<()> {
        let mut counters = self.ticket_counters()?;
        // Only days the record knows better: on the usual start there is nothing to write.
        let behind: BTreeMap<String, i64> =
            read_numbers(record).into_iter().filter(|(day, n)| counters.get(day).is_none_or(|have| n > have)).collect();
        if !behind.is_empty() {
            raise_counters(&self.conn, &behind)?;
            counters.extend(behind);
        }
        record_numbers(record, &counters)
            .map_err(|e| StoreError::Invalid(format!("{}: cannot record ticket numbers: {e}", record.display())))
    }
}

/// Raises the counters of a database file that is not in use (a restore's staged copy).
pub fn carry_counters(path: &Path, counters: &BTreeMap<String, i64>) -> Result<()> {
    let conn =
        Connection::open(path).map_err(|source| StoreError::Open { path: path.display().to_string(), source })?;
    // A rollback journal, so nothing is left in a WAL beside the file when it is renamed into place.
    conn.pragma_update(None, "journal_mode", "DELETE")?;
    raise_counters(&conn, counters)
}

/// `ticket_counters[day] = max(current, n)` for each day given.
pub fn raise_counters(conn: &Connection, counters: &BTreeMap<String, i64>) -> Result<()> {
    let tx = conn.unchecked_transaction()?;
    for (day, n) in counters {
        tx.execute(
            "INSERT INTO ticket_counters (day, last) VALUES (?1, ?2) \
             ON CONFLICT(day) DO UPDATE SET last = max(last, ?2)",
            params![day, n],
        )?;
    }
    tx.commit()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::sha256_hex;

    #[test]
    fn the_record_only_goes_up_and_skips_garbage() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(NUMBERS_FILE);
        record_numbers(&path, &BTreeMap::from([("20261201".into(), 5), ("20261202".into(), 2)])).unwrap();
        record_numbers(&path, &BTreeMap::from([("20261201".into(), 3)])).unwrap();
        std::fs::write(&path, std::fs::read_to_string(&path).unwrap() + "garbage\n2026 x\n").unwrap();
        assert_eq!(read_numbers(&path), BTreeMap::from([("20261201".into(), 5), ("20261202".into(), 2)]));
    }

    #[test]
    fn a_zero_byte_file_and_a_lost_database_with_history_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("postdesk.db");
        assert!(preflight(&db, dir.path()).is_ok(), "a fresh installation starts");
        std::fs::write(&db, b"").unwrap();
        assert!(matches!(preflight(&db, dir.path()), Err(IntegrityError::Empty(_))));
        std::fs::remove_file(&db).unwrap();
        std::fs::write(dir.path().join("hmac.key"), [7u8; 32]).unwrap();
        let e = preflight(&db, dir.path()).unwrap_err();
        assert!(matches!(e, IntegrityError::Missing { .. }), "{e}");
        assert!(e.to_string().contains("db restore"), "{e}");
    }

    #[test]
    fn making_the_database_waits_for_its_maker_and_not_for_a_daemon_that_made_it() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("postdesk.db");
        let maker = UseLock::to_create(&db).unwrap();
        assert!(maker.is_some(), "no one else: this process makes it");
        // Another process (a daemon) made the database and keeps its shared lock: no wait, no lock needed.
        drop(maker);
        let daemon = UseLock::shared(&db).unwrap();
        std::fs::write(&db, [0u8; 4096]).unwrap();
        let started = Instant::now();
        assert!(UseLock::to_create(&db).unwrap().is_none());
        assert!(started.elapsed() < Duration::from_secs(5), "gave up at once, not after the lock wait");
        drop(daemon);
    }

    #[test]
    fn a_process_that_found_no_database_uses_the_one_a_daemon_made_meanwhile() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("postdesk.db");
        // The daemon is making the database (0 bytes so far) under its lock, which it keeps while it runs. An
        // `ingest` starting now finds the file empty; the daemon finishes making it a moment later.
        std::fs::write(&db, b"").unwrap();
        let daemon = UseLock::shared(&db).unwrap();
        let making = {
            let db = db.clone();
            std::thread::spawn(move || {
                std::thread::sleep(Duration::from_millis(300));
                drop(Store::open(&db).unwrap());
            })
        };
        let started = Instant::now();
        let opened = open_checked(&db, dir.path(), Thoroughness::WhenChanged);
        making.join().unwrap();
        let waited = started.elapsed();
        assert!(opened.is_ok(), "{:?}", opened.err().map(|e| e.to_string()));
        assert!(waited < Duration::from_secs(5), "used it once made, not after the lock wait: {waited:?}");
        drop(daemon);
    }

    #[test]
    fn counters_rise_to_the_record_and_the_record_to_the_counters() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("postdesk.db");
        let mut store = Store::open(&db).unwrap();
        let tx = store.begin().unwrap();
        tx.next_ticket_number("20261201", 10).unwrap();
        tx.next_ticket_number("20261201", 10).unwrap();
        tx.commit().unwrap();
        let record = numbers_path(&db);
        assert_eq!(read_numbers(&record)["20261201"], 2, "a commit records the numbers it handed out");
        record_numbers(&record, &BTreeMap::from([("20261201".into(), 9), ("20261130".into(), 4)])).unwrap();
        store.sync_ticket_numbers(&record).unwrap();
        assert_eq!(store.ticket_counters().unwrap()["20261201"], 9);
        let tx = store.begin().unwrap();
        let next = tx.next_ticket_number("20261201", 10).unwrap();
        assert_eq!(next, crate::token::ticket_number("20261201", 10, 10));
    }

    /// A database of 400 rows of 3 KB, its WAL folded in, so that damage lands on pages SQLite really reads. The
    /// rows are hash output, which does not compress, so they keep their size in the file.
    fn database_of_1_2_mb() -> (tempfile::TempDir, PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("postdesk.db");
        {
            let mut store = Store::open(&db).unwrap();
            let tx = store.begin().unwrap();
            for i in 0..400 {
                let row: Vec<u8> =
                    (0..94).flat_map(|k| hex::decode(sha256_hex(format!("{i}/{k}").as_bytes())).unwrap()).collect();
                tx.insert_raw(&row[..3000], &format!("{i:064}")).unwrap();
            }
            tx.commit().unwrap();
            store.conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(())).unwrap();
        }
        (dir, db)
    }

    #[test]
    fn quick_check_finds_pages_overwritten_in_the_middle() {
        let (_dir, db) = database_of_1_2_mb();
        assert!(quick_check(&db).unwrap().is_empty());
        damage_middle(&db);
        assert!(!quick_check(&db).unwrap().is_empty(), "overwritten pages went unnoticed");
    }

    #[test]
    fn a_stamp_is_fresh_only_for_the_same_file_and_within_the_hour() {
        let now = 1_800_000_000;
        assert!(stamp_is_fresh("1:2:4096:5.6 1799999000\n", "1:2:4096:5.6", now));
        assert!(!stamp_is_fresh("1:2:4096:5.6 1799999000", "1:2:4096:5.7", now), "modified since");
        assert!(!stamp_is_fresh("1:2:4096:5.6 1799996000", "1:2:4096:5.6", now), "older than an hour");
        assert!(!stamp_is_fresh("1:2:4096:5.6 1800000100", "1:2:4096:5.6", now), "from the future");
        assert!(!stamp_is_fresh("", "1:2:4096:5.6", now));
        assert!(!stamp_is_fresh("garbage", "1:2:4096:5.6", now));
    }

    #[test]
    fn damage_after_a_good_check_is_found_by_the_next_start_that_checks_only_changes() {
        let (dir, db) = database_of_1_2_mb();
        drop(open_checked(&db, dir.path(), Thoroughness::WhenChanged).unwrap());
        let stamp = std::fs::read_to_string(checked_stamp_path(&db)).unwrap();
        assert!(stamp_is_fresh(&stamp, &fingerprint(&db).unwrap(), unix_now()), "{stamp}");
        damage_middle(&db);
        let refused = open_checked(&db, dir.path(), Thoroughness::WhenChanged).map(|_| ()).unwrap_err();
        assert!(matches!(refused, IntegrityError::Damaged { .. }), "{refused}");
    }

    #[test]
    fn our_own_writes_after_a_good_check_keep_the_stamp_fresh_and_its_time() {
        let (_dir, db) = database_of_1_2_mb();
        record_checked(&db, &fingerprint(&db).unwrap());
        let checked_at = |s: &str| s.trim().split_once(' ').unwrap().1.to_string();
        let before = std::fs::read_to_string(checked_stamp_path(&db)).unwrap();
        std::thread::sleep(std::time::Duration::from_millis(20));
        {
            let mut store = Store::open(&db).unwrap();
            let tx = store.begin().unwrap();
            tx.insert_raw(b"Subject: x\r\n\r\ny", &"f".repeat(64)).unwrap();
            tx.commit().unwrap();
            store.conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(())).unwrap();
        }
        let now = fingerprint(&db).unwrap();
        assert!(!stamp_is_fresh(&before, &now, unix_now()), "the checkpoint changed the file");
        still_whole(&db);
        let after = std::fs::read_to_string(checked_stamp_path(&db)).unwrap();
        assert!(stamp_is_fresh(&after, &now, unix_now()), "{after}");
        assert_eq!(checked_at(&after), checked_at(&before), "the hour counts from the last real check");
    }

    /// Overwrites pages in the middle of a database file with noise, as a failing disk might.
    pub(crate) fn damage_middle(path: &Path) {
        use std::io::{Seek, SeekFrom};
        let len = std::fs::metadata(path).unwrap().len();
        let mut f = std::fs::OpenOptions::new().write(true).open(path).unwrap();
        let mut noise = 0x1234_5678u32;
        for page in 0..8u64 {
            f.seek(SeekFrom::Start(len / 3 + page * 4096 * 3)).unwrap();
            let bytes: Vec<u8> = (0..4096)
                .map(|_| {
                    noise ^= noise << 13;
                    noise ^= noise >> 17;
                    noise ^= noise << 5;
                    noise as u8
                })
                .collect();
            f.write_all(&bytes).unwrap();
        }
    }
}
