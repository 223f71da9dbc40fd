//! `postdesk db backup | restore | check | init`.

use std::path::{Path, PathBuf};

use clap::Subcommand;

use crate::config::Config;
use crate::exit::{EX_CANTCREAT, EX_DATAERR, EX_NOINPUT, EX_USAGE, Failure};
use crate::report::print_json;
use crate::setup::load_config;
use crate::store::backup::{self, DbFacts};
use crate::store::integrity::{self, UseLock};

#[derive(Subcommand)]
pub enum DbCommand {
    /// A verified, compressed copy of the database, taken while the daemon runs; copies older than --keep-days go.
    Backup {
        /// Directory for the copies (default: <state_dir>/backups). Best on another disk.
        #[arg(long)]
        to: Option<PathBuf>,
        /// Copies older than this many days are deleted after a good copy is made.
        #[arg(long, default_value_t = 7)]
        keep_days: u32,
        /// Print the report as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Replace the database with a backup. The daemon must be stopped; the current database is kept aside.
    Restore {
        /// A backup file (`.sqlite.zst` as `db backup` writes it, or a plain SQLite file).
        file: PathBuf,
    },
    /// integrity_check, schema version and counts: of the database, or of a backup file.
    Check {
        /// A backup file to check instead of the live database.
        file: Option<PathBuf>,
        /// Print the report as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Start an empty database on purpose where `run` refuses because the expected one is missing.
    Init,
}

pub fn run(config_path: &Path, command: DbCommand) -> Result<(), Failure> {
    let config = load_config(config_path)?;
    match command {
        DbCommand::Backup { to, keep_days, json } => backup_cmd(&config, to, keep_days, json),
        DbCommand::Restore { file } => restore(&config, &file),
        DbCommand::Check { file, json } => check(&config, file.as_deref(), json),
        DbCommand::Init => init(&config),
    }
}

fn backup_cmd(config: &Config, to: Option<PathBuf>, keep_days: u32, json: bool) -> Result<(), Failure> {
    if keep_days == 0 {
        return Err(Failure::new(EX_USAGE, "--keep-days must be at least 1"));
    }
    let db = config.database_path();
    let dir = to.unwrap_or_else(|| config.storage.state_dir.join("backups"));
    let report = backup::backup(&db, &dir, chrono::Utc::now(), keep_days).map_err(|e| {
        Failure::new(if e.is_transient() { crate::exit::EX_TEMPFAIL } else { EX_CANTCREAT }, e.to_string())
    })?;
    if json {
        print_json(&report);
        return Ok(());
    }
    crate::say!("{}: {} bytes, integrity_check ok", report.path.display(), report.bytes);
    crate::say_raw!("{}", facts_text(&report.facts));
    for old in &report.removed {
        crate::say!("removed {} (older than {keep_days} days)", old.display());
    }
    Ok(())
}

fn facts_text(f: &DbFacts) -> String {
    format!(
        "  schema version {} (this postdesk: {})\n  tickets {} (highest {}), articles {}, raw mails {}, \
         quarantined {}, ledger rows {}, outbox queued {}\n  database {} bytes\n",
        f.schema_version,
        f.schema_known,
        f.tickets,
        f.highest_ticket.as_deref().unwrap_or("-"),
        f.articles,
        f.raw_messages,
        f.quarantined,
        f.ledger,
        f.outbox_queued,
        f.bytes
    )
}

/// A backup file is unpacked to a temporary file first (compressed files cannot be opened by SQLite).
fn check(config: &Config, file: Option<&Path>, json: bool) -> Result<(), Failure> {
    let (path, temp) = match file {
        None => (config.database_path(), None),
        Some(f) => {
            let temp = std::env::temp_dir().join(format!(".postdesk-check-{}.db", std::process::id()));
            backup::unpack(f, &temp).map_err(|e| Failure::new(EX_NOINPUT, e.to_string()))?;
            (temp.clone(), Some(temp))
        }
    };
    let shown = file.map(Path::to_path_buf).unwrap_or_else(|| path.clone());
    let result = examine(&path, &shown);
    if let Some(t) = temp {
        let _ = std::fs::remove_file(t);
    }
    let (problems, facts) = result?;
    if json {
        print_json(
            &serde_json::json!({ "file": shown, "ok": problems.is_empty(), "problems": problems, "facts": facts }),
        );
    } else if problems.is_empty() {
        crate::say!("{}: integrity_check ok", shown.display());
        if let Some(f) = &facts {
            crate::say_raw!("{}", facts_text(f));
        }
    }
    match problems.is_empty() {
        true => Ok(()),
        false => Err(Failure::new(
            EX_DATAERR,
            format!("{}: integrity_check failed:\n  {}", shown.display(), problems.join("\n  ")),
        )),
    }
}

/// integrity_check, then the counts when the file is whole (and a postdesk database).
fn examine(path: &Path, shown: &Path) -> Result<(Vec<String>, Option<DbFacts>), Failure> {
    if !path.exists() {
        return Err(Failure::new(EX_NOINPUT, format!("{}: no such database", shown.display())));
    }
    let problems = integrity::integrity_check(path).map_err(Failure::from)?;
    if !problems.is_empty() {
        return Ok((problems, None));
    }
    match backup::facts(path) {
        Ok(f) => Ok((Vec::new(), Some(f))),
        Err(e) => Ok((vec![format!("not a postdesk database: {e}")], None)),
    }
}

fn init(config: &Config) -> Result<(), Failure> {
    let db = config.database_path();
    if db.exists() {
        return Err(Failure::new(
            EX_USAGE,
            format!("{} exists; `db init` only starts a missing database", db.display()),
        ));
    }
    let _lock = UseLock::exclusive(&db).map_err(Failure::from)?;
    let mut store = crate::store::Store::open(&db)?;
    // Numbers handed out before the loss stay used: the record beside the database still has them.
    let record = integrity::numbers_path(&db);
    store.sync_ticket_numbers(&record)?;
    drop(store);
    give_to_directory_owner(&db, &[&db, &record]);
    crate::say!("{}: empty database created", db.display());
    Ok(())
}

fn restore(config: &Config, file: &Path) -> Result<(), Failure> {
    let db = config.database_path();
    let _instance = crate::daemon::InstanceLock::acquire(&config.storage.state_dir).map_err(|f| {
        Failure::new(f.code, format!("{}; `db restore` needs the daemon stopped (systemctl stop postdesk)", f.message))
    })?;
    let dir = db.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(Path::new(".")).to_path_buf();
    let staged = dir.join(format!(".postdesk-restore-{}.tmp", std::process::id()));
    let result = stage_and_swap(&db, file, &staged);
    let _ = std::fs::remove_file(&staged);
    let (facts, aside) = result?;
    crate::say!("{} restored from {}", db.display(), file.display());
    crate::say_raw!("{}", facts_text(&facts));
    match aside {
        Some(a) => crate::say!("the database it replaced is kept as {}", a.display()),
        None => crate::say!("there was no database to keep aside"),
    }
    Ok(())
}

fn stage_and_swap(db: &Path, file: &Path, staged: &Path) -> Result<(DbFacts, Option<PathBuf>), Failure> {
    if !file.is_file() {
        return Err(Failure::new(EX_NOINPUT, format!("{}: no such backup file", file.display())));
    }
    backup::unpack(file, staged).map_err(|e| {
        Failure::new(EX_DATAERR, format!("cannot unpack the backup, the database was not touched: {e}"))
    })?;
    let (problems, facts) = examine(staged, file)?;
    let facts = match facts {
        Some(f) if problems.is_empty() => f,
        _ => {
            return Err(Failure::new(
                EX_DATAERR,
                format!(
                    "{}: refusing to restore a damaged backup; the database was not touched:\n  {}",
                    file.display(),
                    problems.join("\n  ")
                ),
            ));
        }
    };
    if facts.schema_version > facts.schema_known {
        return Err(Failure::new(
            EX_DATAERR,
            format!(
                "{}: schema version {} is newer than this postdesk ({}); upgrade postdesk first",
                file.display(),
                facts.schema_version,
                facts.schema_known
            ),
        ));
    }
    // Ingest processes finish first and wait for the swap; none writes into the file being moved aside.
    let _use = UseLock::exclusive(db).map_err(Failure::from)?;
    // Numbers handed out after the backup was taken stay used: from the record and from the database replaced.
    let record = integrity::numbers_path(db);
    let mut high = integrity::read_numbers(&record);
    if let Ok(current) = crate::store::Store::open_read_only(db).and_then(|s| s.ticket_counters()) {
        for (day, n) in current {
            let e = high.entry(day).or_insert(0);
            *e = (*e).max(n);
        }
    }
    integrity::carry_counters(staged, &high)?;
    let aside = backup::swap_in(db, staged, chrono::Utc::now())?;
    integrity::record_numbers(&record, &high)
        .map_err(|e| Failure::new(EX_CANTCREAT, format!("{}: {e}", record.display())))?;
    give_to_directory_owner(db, &[db, &record]);
    Ok((facts, aside))
}

/// Run as root, a restored or new database would be root's and the daemon (User=postdesk) could not write it:
/// files made here go to the owner of the database's directory. Failing that (not root, same owner) changes nothing.
fn give_to_directory_owner(db: &Path, files: &[&Path]) {
    use std::os::unix::fs::MetadataExt;
    let dir = db.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(Path::new("."));
    let Ok(owner) = std::fs::metadata(dir) else { return };
    for file in files {
        let _ = std::os::unix::fs::chown(file, Some(owner.uid()), Some(owner.gid()));
    }
}
