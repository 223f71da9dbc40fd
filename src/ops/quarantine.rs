//! `postdesk quarantine show | raw | replay | drop | fetch`: quarantined mail an admin can look at and act on.
//!
//! Mail refused for its size by the IMAP daemon was never downloaded: its bytes are still in the IMAP quarantine
//! folder, and the database knows only its size. `quarantine fetch` (after limits.max_message_bytes was raised)
//! finds it there, downloads it, replays it, and only after the commit moves it on to the processed folder.

use std::collections::BTreeMap;
use std::path::Path;

use clap::Subcommand;

use crate::exit::{EX_CONFIG, EX_DATAERR, EX_NOINPUT, EX_USAGE, Failure};
use crate::pipeline::{Pipeline, Replayed};
use crate::report::print_json;
use crate::store::integrity::Thoroughness;
use crate::store::{QuarantineItem, Store};

#[derive(Subcommand)]
pub enum QuarantineAct {
    /// One quarantined mail: why, where from, its size and headers, and what was done about it.
    Show {
        /// The quarantine id, as `quarantine list` shows it.
        id: i64,
        /// Print it as JSON.
        #[arg(long)]
        json: bool,
    },
    /// The exact bytes as they arrived.
    Raw {
        /// The quarantine id, as `quarantine list` shows it.
        id: i64,
    },
    /// Take quarantined mail in again through the normal pipeline, once its cause is fixed. Exactly once.
    Replay {
        /// The quarantine id, as `quarantine list` shows it.
        #[arg(required_unless_present = "all")]
        id: Option<i64>,
        /// Every quarantined mail nobody has acted on yet.
        #[arg(long, conflicts_with = "id")]
        all: bool,
        /// With --all: only those whose quarantine reason contains this text.
        #[arg(long, requires = "all")]
        reason: Option<String>,
    },
    /// Give up on a quarantined mail: its bytes are deleted, the record and your reason kept.
    Drop {
        /// The quarantine id, as `quarantine list` shows it.
        id: i64,
        /// Why it is dropped, kept with the record.
        #[arg(long)]
        reason: String,
    },
    /// Mail refused for size before download is still in the IMAP quarantine folder: once the limit is raised,
    /// download it from there and replay it.
    Fetch {
        /// The quarantine id, as `quarantine list` shows it.
        #[arg(required_unless_present = "all")]
        id: Option<i64>,
        /// Every mail left in the IMAP quarantine folder for its size.
        #[arg(long, conflicts_with = "id")]
        all: bool,
    },
}

pub fn run(config_path: &Path, act: QuarantineAct) -> Result<(), Failure> {
    match act {
        QuarantineAct::Show { id, json } => show(config_path, id, json),
        QuarantineAct::Raw { id } => {
            let item = item(&open_reader(config_path)?, id)?;
            let data = item.data.clone().ok_or_else(|| Failure::new(EX_NOINPUT, no_bytes(&item)))?;
            let _ = std::io::Write::write_all(&mut std::io::stdout().lock(), &data);
            Ok(())
        }
        QuarantineAct::Replay { id, all, reason } => replay(config_path, id, all, reason.as_deref()),
        QuarantineAct::Drop { id, reason } => drop_one(config_path, id, &reason),
        QuarantineAct::Fetch { id, all } => fetch::run(config_path, if all { None } else { id }),
    }
}

fn open_reader(config_path: &Path) -> Result<Store, Failure> {
    let config = crate::setup::load_config(config_path)?;
    Ok(Store::open_read_only(&config.database_path())?)
}

fn item(store: &Store, id: i64) -> Result<QuarantineItem, Failure> {
    store.quarantine_item(id)?.ok_or_else(|| Failure::new(EX_NOINPUT, format!("no quarantined mail #{id}")))
}

fn no_bytes(item: &QuarantineItem) -> String {
    if let Some(a) = &item.action {
        match a.action.as_str() {
            "dropped" => "its bytes were deleted when it was dropped".into(),
            other => format!("already {other}: {}", a.detail),
        }
    } else if item.source.starts_with("imap:") {
        "refused for its size before download: it is in the IMAP quarantine folder; raise \
         limits.max_message_bytes and run `postdesk quarantine fetch ID`"
            .into()
    } else {
        "no bytes were kept".into()
    }
}

/// The header section as it arrived (up to the first empty line), at most 64 KiB of it.
pub fn header_block(raw: &[u8]) -> String {
    let end = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .or_else(|| raw.windows(2).position(|w| w == b"\n\n"))
        .unwrap_or(raw.len());
    String::from_utf8_lossy(&raw[..end.min(64 * 1024)]).replace("\r\n", "\n")
}

fn show(config_path: &Path, id: i64, json: bool) -> Result<(), Failure> {
    let item = item(&open_reader(config_path)?, id)?;
    let headers = item.data.as_deref().map(header_block);
    if json {
        print_json(&serde_json::json!({ "item": item, "headers": headers }));
        return Ok(());
    }
    crate::say!("quarantined mail #{}", item.id);
    crate::say!("  received: {}", crate::report::format_time(item.created_at));
    crate::say!("  source:   {}", item.source);
    crate::say!("  size:     {} bytes", item.size);
    crate::say!("  sha256:   {}", item.sha256.as_deref().unwrap_or("-"));
    crate::say!("  reason:   {}", item.reason);
    match &item.action {
        Some(a) => crate::say!("  {}:  {} by {}: {}", a.action, crate::report::format_time(a.at), a.actor, a.detail),
        None => crate::say!("  status:   waiting (replay, drop{})", if item.data.is_none() { " or fetch" } else { "" }),
    }
    match headers {
        Some(h) => crate::say!("\n{h}"),
        None => crate::say!("\n(no headers: {})", no_bytes(&item)),
    }
    Ok(())
}

/// The pipeline and a checked, writable store, as `ingest` has them.
fn pipeline_and_store(config_path: &Path) -> Result<(Pipeline, Store, crate::store::integrity::UseLock), Failure> {
    let setup = crate::setup::load_setup(config_path)?;
    let config = setup.config.clone();
    let (store, lock) = crate::setup::open_checked_store(&config, Thoroughness::WhenChanged)?;
    let signer = crate::setup::load_signer(&config)?;
    Ok((Pipeline::new(setup, signer), store, lock))
}

fn replay(config_path: &Path, id: Option<i64>, all: bool, reason: Option<&str>) -> Result<(), Failure> {
    let (pipeline, mut store, _lock) = pipeline_and_store(config_path)?;
    let ids = match (id, all) {
        (Some(id), false) => vec![id],
        (None, true) => store.quarantine_open_ids(reason)?,
        _ => return Err(Failure::new(EX_USAGE, "give one ID or --all")),
    };
    let mut refused = 0;
    for id in ids {
        let item = item(&store, id)?;
        if let Some(a) = &item.action {
            // Replaying again is harmless and says so; a dropped mail has no bytes left to replay.
            crate::say!("#{id}: nothing to do, already {} by {}: {}", a.action, a.actor, a.detail);
            refused += usize::from(a.action == "dropped");
            continue;
        }
        let Some(data) = item.data else {
            crate::say!("#{id}: skipped: {}", no_bytes(&item));
            refused += usize::from(!all);
            continue;
        };
        match pipeline.replay(&mut store, id, data, &super::actor())? {
            Replayed::Done(outcome) => crate::say!("#{id}: {outcome}"),
            Replayed::AlreadyDone(what) => crate::say!("#{id}: nothing to do, already {what}"),
            Replayed::StillRefused(why) => {
                refused += 1;
                crate::say!("#{id}: still refused, left in quarantine: {why}");
            }
        }
    }
    match refused {
        0 => Ok(()),
        n => Err(Failure::new(EX_DATAERR, format!("{n} mail(s) still refused; fix the cause and replay again"))),
    }
}

fn drop_one(config_path: &Path, id: i64, reason: &str) -> Result<(), Failure> {
    if reason.trim().is_empty() {
        return Err(Failure::new(EX_USAGE, "--reason must say why (it is kept for the audit trail)"));
    }
    let config = crate::setup::load_config(config_path)?;
    let (mut store, _lock) = crate::setup::open_checked_store(&config, Thoroughness::WhenChanged)?;
    item(&store, id)?;
    let tx = store.begin()?;
    let dropped = tx.drop_quarantined(id, reason, &super::actor(), chrono::Utc::now().timestamp())?;
    tx.commit()?;
    if !dropped {
        let done = item(&store, id)?.action.map(|a| format!("{} by {}", a.action, a.actor)).unwrap_or_default();
        return Err(Failure::new(EX_USAGE, format!("#{id} was already {done}")));
    }
    crate::say!("#{id} dropped: {reason}");
    Ok(())
}

/// Pairs quarantine rows refused for size with the mails of the IMAP quarantine folder. All the database knows of
/// such a mail is its size (it was never downloaded), and a move keeps the order: the k-th waiting row of a size,
/// by id, is the k-th mail of that size in the folder, by UID. Rows already acted on have left the folder.
pub fn pair_by_size(rows: &[(i64, u32)], folder: &[(u32, u32)]) -> Vec<(i64, u32)> {
    let mut by_size: BTreeMap<u32, Vec<u32>> = BTreeMap::new();
    for &(uid, size) in folder {
        by_size.entry(size).or_default().push(uid);
    }
    let mut taken: BTreeMap<u32, usize> = BTreeMap::new();
    rows.iter()
        .filter_map(|&(id, size)| {
            let next = taken.entry(size).or_insert(0);
            let uid = *by_size.get(&size)?.get(*next)?;
            *next += 1;
            Some((id, uid))
        })
        .collect()
}

mod fetch {
    //! The IMAP half of `quarantine fetch`.

    use super::*;
    use crate::config::ImapConfig;
    use crate::ingest::imap::{self, ImapError};

    pub fn run(config_path: &Path, id: Option<i64>) -> Result<(), Failure> {
        let (pipeline, mut store, _lock) = pipeline_and_store(config_path)?;
        let config = pipeline.config().clone();
        let Some(imap) = config.imap.clone() else {
            return Err(Failure::new(EX_CONFIG, format!("{}: no [imap] section to fetch from", config_path.display())));
        };
        let waiting = waiting(&store, id, config.limits.max_message_bytes)?;
        if waiting.is_empty() {
            return Ok(());
        }
        let password = crate::daemon::imap_password(&imap)?;
        let tls = crate::daemon::tls_for(imap.tls, imap.ca_file.as_deref())?;
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| Failure::new(crate::exit::EX_SOFTWARE, format!("async runtime: {e}")))?;
        runtime.block_on(async {
            // The quarantine folder is the mailbox this connection watches.
            let folder = ImapConfig { mailbox: imap.quarantine_mailbox.clone(), ..imap.clone() };
            let mut conn = imap::connect(&folder, &password, tls).await.map_err(tempfail)?;
            let result = take_in(&mut conn, &imap, &pipeline, &mut store, &waiting).await;
            conn.logout().await;
            result
        })
    }

    fn tempfail(e: ImapError) -> Failure {
        Failure::new(crate::exit::EX_TEMPFAIL, e.to_string())
    }

    /// `(id, size)` of the entries to fetch: refused for size by the IMAP daemon, not acted on, now within `limit`.
    fn waiting(store: &Store, id: Option<i64>, limit: usize) -> Result<Vec<(i64, u32)>, Failure> {
        // A named entry that cannot be fetched is worth a word; with --all, entries with bytes are silently not ours.
        let named = id.is_some();
        let ids = match id {
            Some(id) => vec![id],
            None => store.quarantine_open_ids(None)?,
        };
        let mut waiting = Vec::new();
        for id in ids {
            let item = item(store, id)?;
            if item.data.is_some() || item.action.is_some() || !item.source.starts_with("imap:") {
                if named {
                    crate::say!("#{id}: not waiting in the IMAP folder (see `quarantine show {id}`)");
                }
                continue;
            }
            if item.size as usize > limit {
                crate::say!(
                    "#{id}: {} bytes is still over limits.max_message_bytes ({limit}); raise it first",
                    item.size
                );
                continue;
            }
            waiting.push((id, item.size as u32));
        }
        Ok(waiting)
    }

    /// Downloads each paired mail, replays it, and moves it to the processed folder only after the commit.
    async fn take_in(
        conn: &mut imap::Connection,
        imap: &ImapConfig,
        pipeline: &Pipeline,
        store: &mut Store,
        waiting: &[(i64, u32)],
    ) -> Result<(), Failure> {
        let listed = conn.list().await.map_err(tempfail)?;
        let pairs = pair_by_size(waiting, &listed);
        for &(id, _) in waiting.iter().filter(|(id, _)| !pairs.iter().any(|(p, _)| p == id)) {
            crate::say!("#{id}: no mail of its size in {}; nothing fetched", imap.quarantine_mailbox);
        }
        for (id, uid) in pairs {
            let mut mails = conn.download(&[uid]).await.map_err(tempfail)?;
            let Some((_, raw)) = mails.pop() else { continue };
            match pipeline.replay(store, id, raw, &crate::ops::actor())? {
                Replayed::StillRefused(why) => crate::say!("#{id}: still refused, left in the folder: {why}"),
                Replayed::Done(outcome) => {
                    conn.move_to(&[uid], &imap.processed_mailbox).await.map_err(tempfail)?;
                    crate::say!("#{id}: fetched from IMAP: {outcome}");
                }
                // Another fetch or replay won the race: the mail is in; only the move is left to do.
                Replayed::AlreadyDone(_) => {
                    conn.move_to(&[uid], &imap.processed_mailbox).await.map_err(tempfail)?;
                    crate::say!("#{id}: already taken in; moved out of the quarantine folder");
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_pair_with_folder_mails_of_the_same_size_in_order() {
        let rows = [(3, 5000), (4, 7000), (9, 5000), (12, 8000)];
        let folder = [(10, 5000), (11, 6000), (14, 5000), (20, 7000)];
        assert_eq!(pair_by_size(&rows, &folder), vec![(3, 10), (4, 20), (9, 14)]);
        assert_eq!(pair_by_size(&rows, &[]), vec![]);
        assert_eq!(pair_by_size(&[(1, 5000), (2, 5000)], &[(7, 5000)]), vec![(1, 7)]);
    }

    #[test]
    fn the_header_block_ends_at_the_first_empty_line_either_line_ending() {
        assert_eq!(header_block(b"Subject: a\r\nFrom: b\r\n\r\nbody\r\n\r\nmore"), "Subject: a\nFrom: b");
        assert_eq!(header_block(b"Subject: a\n\nbody"), "Subject: a");
        assert_eq!(header_block(b"no body at all"), "no body at all");
    }
}
