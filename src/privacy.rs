//! Retention and the rights of the people who write to the desk: `[retention]` purges closed tickets after N days
//! (run by the daemon's housekeeping), `postdesk customer export ADDRESS` hands over everything stored about a
//! person, `postdesk customer erase ADDRESS` removes it (GDPR art. 15 and 17), and `customer audit` shows the
//! audit lines both leave. The SQL is in `store/privacy.rs`.

use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};

use clap::Subcommand;
use serde::Serialize;
use tracing::info;

use crate::config::Config;
use crate::exit::{EX_CANTCREAT, EX_DATAERR, EX_NOINPUT, Failure};
use crate::report::{format_time, print_json};
use crate::setup::{load_config, open_store};
use crate::store::{ArticleView, Purged, Store, StoreError, SuppressionView, TicketDetail};

/// Tickets purged per housekeeping pass at most: the first pass after retention is switched on may find years of
/// closed tickets, and the writer lock must not be held for minutes while mail waits.
pub const RETENTION_BATCH: u32 = 100;

/// One retention pass: purges up to [`RETENTION_BATCH`] closed tickets older than `[retention]` allows, in one
/// transaction. Does nothing when retention is off.
pub fn retention_pass(store: &mut Store, config: &Config, now: i64) -> Result<Vec<Purged>, StoreError> {
    let Some(days) = config.retention.closed_ticket_days else { return Ok(Vec::new()) };
    let cutoff = now - i64::from(days.get()) * 86_400;
    let tx = store.begin()?;
    let why = format!("closed with no activity for {days} days ([retention] closed_ticket_days)");
    let mut purged = Vec::new();
    for id in tx.retention_due(cutoff, RETENTION_BATCH)? {
        purged.push(tx.purge_ticket(id, now, "system", &why)?);
    }
    // The rate limit's log names addresses and is only read for its last window: past retention it goes too.
    tx.forget_auto_replies(cutoff.min(now - i64::from(config.replies.window_hours) * 3600))?;
    tx.commit()?;
    for p in &purged {
        info!(ticket = %p.number, articles = p.articles, raw_mails = p.raw_mails, "retention: ticket purged");
    }
    Ok(purged)
}

#[derive(Subcommand)]
pub enum CustomerCommand {
    /// Everything stored about ADDRESS: customer.json (tickets, articles, history) and the mail as .eml files.
    /// Of others' tickets they were Cc'd on, only the articles from, to or about them.
    Export {
        /// The person's mail address.
        address: String,
        /// Directory to create (must not exist or be empty); default ./postdesk-export-<date>.
        #[arg(long)]
        to: Option<PathBuf>,
    },
    /// Erase ADDRESS: tickets stay as skeletons, the address, names, texts, raw mail, attachments, outbox,
    /// suppression and rate-limit rows go. Cannot be undone; one audit line remains.
    Erase {
        /// The person's mail address.
        address: String,
        /// Kept in the audit line, e.g. the request's reference. Never put the address here.
        #[arg(long, default_value = "erasure requested")]
        reason: String,
        /// Show what would be erased and change nothing.
        #[arg(long)]
        dry_run: bool,
    },
    /// The audit lines of erasures and retention purges, newest first.
    Audit {
        /// At most this many lines.
        #[arg(long, default_value_t = 50)]
        limit: u32,
        /// Print them as JSON.
        #[arg(long)]
        json: bool,
    },
}

pub fn customer(config_path: &Path, command: CustomerCommand) -> Result<(), Failure> {
    let config = load_config(config_path)?;
    let mut store = open_store(&config)?;
    match command {
        CustomerCommand::Export { address, to } => export(&store, &address, to),
        CustomerCommand::Erase { address, reason, dry_run } => erase(&mut store, &address, &reason, dry_run),
        CustomerCommand::Audit { limit, json } => {
            let lines = store.audit_list(limit)?;
            if json {
                print_json(&lines);
            }
            for l in lines.iter().filter(|_| !json) {
                crate::say!("{}  {:<7} {:<7} {}", format_time(l.at), l.actor, l.action, l.detail);
            }
            Ok(())
        }
    }
}

/// `customer.json`: what an access request (GDPR art. 15) is answered with, beside the .eml files.
#[derive(Serialize)]
struct Export {
    address: String,
    exported_at: i64,
    tickets: Vec<TicketDetail>,
    /// The raw mail of the tickets' articles, as files under `mail/`.
    mail_files: Vec<String>,
    /// Mail we wrote to the address (answers, acknowledgements), as files under `sent/`.
    sent_files: Vec<String>,
    suppressed: Option<SuppressionView>,
    /// When automatic replies went to the address (the rate limit's log).
    auto_replies: Vec<i64>,
}

fn export(store: &Store, address: &str, to: Option<PathBuf>) -> Result<(), Failure> {
    let address = address.trim().to_ascii_lowercase();
    let numbers = store.tickets_of(&address)?;
    let sent = store.outbox_to(&address)?;
    let suppressed = store.suppression_list()?.into_iter().find(|s| s.address == address);
    let auto_replies = store.auto_replies_to(&address)?;
    if numbers.is_empty() && sent.is_empty() && suppressed.is_none() && auto_replies.is_empty() {
        return Err(Failure::new(EX_NOINPUT, format!("nothing is stored about {address}")));
    }
    let now = chrono::Utc::now();
    let dir = to.unwrap_or_else(|| PathBuf::from(format!("postdesk-export-{}", now.format("%Y%m%d-%H%M%S"))));
    let cant = |p: &Path, e: std::io::Error| Failure::new(EX_CANTCREAT, format!("{}: {e}", p.display()));
    if std::fs::read_dir(&dir).is_ok_and(|mut d| d.next().is_some()) {
        return Err(Failure::new(EX_CANTCREAT, format!("{}: exists and is not empty", dir.display())));
    }
    // Personal data: readable by the exporting user only.
    for sub in ["mail", "sent"] {
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir.join(sub))
            .map_err(|e| cant(&dir.join(sub), e))?;
    }
    let mut export = Export {
        address,
        exported_at: now.timestamp(),
        tickets: Vec::new(),
        mail_files: Vec::new(),
        sent_files: Vec::new(),
        suppressed,
        auto_replies,
    };
    for number in numbers {
        let Some(mut detail) = store.ticket_detail(&number)? else { continue };
        if detail.ticket.customer != export.address {
            // Someone else's ticket they were Cc'd on: only what concerns them, never the rest of that person's case.
            detail.articles.retain(|a| concerns(a, &export.address));
            detail.history.clear();
            detail.rules.clear();
        }
        for article in &detail.articles {
            if let Some(raw) = store.raw_message(article.id)? {
                let name = format!("mail/{number}-{}.eml", article.id);
                write_private(&dir.join(&name), &raw).map_err(|e| cant(&dir.join(&name), e))?;
                export.mail_files.push(name);
            }
        }
        export.tickets.push(detail);
    }
    for s in sent {
        let name = format!("sent/{}-{}-{}.eml", s.outbox_id, s.kind, s.state);
        write_private(&dir.join(&name), &s.raw).map_err(|e| cant(&dir.join(&name), e))?;
        export.sent_files.push(name);
    }
    let json = serde_json::to_vec_pretty(&export).map_err(|e| Failure::new(EX_DATAERR, e.to_string()))?;
    write_private(&dir.join("customer.json"), &json).map_err(|e| cant(&dir.join("customer.json"), e))?;
    crate::say!(
        "{}: {} tickets, {} received mails, {} sent mails",
        dir.display(),
        export.tickets.len(),
        export.mail_files.len(),
        export.sent_files.len()
    );
    Ok(())
}

/// Whether an article was from, to or about `address` (lowercase).
fn concerns(a: &ArticleView, address: &str) -> bool {
    let has = |text: &str| text.to_lowercase().contains(address);
    a.sender.as_deref().is_some_and(has)
        || a.to.iter().chain(&a.cc).any(|r| has(r))
        || has(&a.subject)
        || has(&a.body_text)
}

fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut file = std::fs::OpenOptions::new().write(true).create_new(true).mode(0o600).open(path)?;
    file.write_all(bytes)
}

fn erase(store: &mut Store, address: &str, reason: &str, dry_run: bool) -> Result<(), Failure> {
    let address = address.trim().to_ascii_lowercase();
    if reason.to_ascii_lowercase().contains(&address) {
        return Err(Failure::new(EX_DATAERR, "the reason must not name the address: it is kept after the erasure"));
    }
    // Raw mail is read through the store's accessor, outside the write transaction, so mail stored compressed is
    // searched too; the transaction then also catches mail that names the address in its parsed fields.
    let raw_hits = store.raw_ids_mentioning(&address)?;
    let tx = store.begin()?;
    let erased =
        tx.erase_customer(&address, &raw_hits, chrono::Utc::now().timestamp(), reason).map_err(|e| match e {
            StoreError::Invalid(m) => Failure::new(EX_DATAERR, m),
            e => Failure::from(e),
        })?;
    if erased == crate::store::Erased::default() {
        return Err(Failure::new(EX_NOINPUT, format!("nothing is stored about {address}")));
    }
    let what = format!(
        "{} tickets kept as skeletons, {} articles emptied, {} raw mails, {} outbox rows and {} party, suppression \
         and rate-limit rows deleted, {} other values replaced",
        erased.tickets, erased.articles, erased.raw_mails, erased.outbox_rows, erased.rows, erased.scrubbed
    );
    if dry_run {
        crate::say!("would erase {address}: {what} (nothing changed)");
        return Ok(());
    }
    tx.commit()?;
    crate::say!("erased {address}: {what}");
    Ok(())
}
