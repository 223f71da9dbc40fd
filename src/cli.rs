//! The command line. Raw flags (clap) are turned into built objects (config, store, pipeline) here, and every
//! failure becomes a sysexits code: 75 (EX_TEMPFAIL) for what an MTA should retry, 78 (EX_CONFIG) for bad config.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use crate::admin::{AgentCommand, QueueCommand, RoleCommand};
use crate::config::{self, Config};
use crate::exit::{EX_CANTCREAT, EX_CONFIG, EX_DATAERR, EX_NOINPUT, EX_SOFTWARE, EX_USAGE, Failure};
use crate::inert::line;
use crate::ingest::files::{Input, SourceError, each_mail, stdin_mail};
use crate::ingest::handoff;
use crate::pipeline::{Incoming, Pipeline};
use crate::report::print_json;
use crate::setup::{Setup, load_config, load_setup, load_signer, open_store};
use crate::store::integrity::Thoroughness;
use crate::store::{Store, TicketFilter};

#[derive(Parser)]
#[command(name = "postdesk", version, about = "An email-driven helpdesk daemon")]
pub struct Cli {
    /// The config file.
    #[arg(long, global = true, env = "POSTDESK_CONFIG", default_value = config::DEFAULT_PATH)]
    pub config: PathBuf,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand)]
pub enum Command {
    /// Run the daemon: watch the IMAP mailbox and turn mail into tickets (what systemd starts).
    Run,
    /// Take mail from stdin (one message, as an MTA pipes it) or from files: .eml, mbox, Maildir folders.
    ///
    /// A message on stdin is handed to the running daemon when one listens on the state directory's ingest.sock
    /// (it answers once the mail is committed); otherwise this process takes it in itself.
    Ingest {
        /// Files or folders; none means one message on stdin.
        files: Vec<PathBuf>,
    },
    /// Look at tickets, or act on one: reply, note, close, reopen, assign, queue, priority, merge.
    Ticket {
        #[command(subcommand)]
        command: TicketCommand,
    },
    /// Validate config, rules and templates, and that this user can use the state directory, database and secrets.
    Check,
    /// What the daemon is doing, at a glance.
    Status {
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Routing rules: validate them, or see how a mail would be routed.
    Rules {
        #[command(subcommand)]
        command: RulesCommand,
    },
    /// Outgoing mail waiting, sent or failed.
    Outbox {
        #[command(subcommand)]
        command: OutboxCommand,
    },
    /// The hard-bounce list: addresses we no longer mail.
    Suppress {
        #[command(subcommand)]
        command: SuppressCommand,
    },
    /// Agents: who may answer customers and run commands by mail.
    Agent {
        #[command(subcommand)]
        command: AgentCommand,
    },
    /// Roles grant queues to agents.
    Role {
        #[command(subcommand)]
        command: RoleCommand,
    },
    /// Queues beside those in the config.
    Queue {
        #[command(subcommand)]
        command: QueueCommand,
    },
    /// The database: online backups, restore, integrity check.
    Db {
        #[command(subcommand)]
        command: crate::ops::db::DbCommand,
    },
    /// Mail refused into quarantine.
    Quarantine {
        #[command(subcommand)]
        command: QuarantineCommand,
    },
    /// A person's data: export it, erase it (GDPR), and the audit log of erasures and retention purges.
    Customer {
        #[command(subcommand)]
        command: crate::privacy::CustomerCommand,
    },
}

#[derive(Subcommand)]
pub enum TicketCommand {
    /// List tickets, newest activity first.
    List {
        /// Only tickets in this queue.
        #[arg(long)]
        queue: Option<String>,
        /// Only tickets in this state: new, open, pending or closed.
        #[arg(long)]
        state: Option<String>,
        /// At most this many tickets.
        #[arg(long)]
        limit: Option<u32>,
        /// Print JSON (see docs/json.md) instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// One ticket with all its articles.
    Show {
        /// The ticket number, e.g. 2026112310000012.
        number: String,
        /// Print JSON (see docs/json.md) instead of text.
        #[arg(long)]
        json: bool,
    },
    /// The exact bytes of an article's mail as it arrived (article ids are in `ticket show`).
    Raw {
        /// The article id, as `ticket show` lists it.
        article: i64,
    },
    /// An attachment's content, by the SHA-256 (or its first 8+ hex digits) that `ticket show` lists.
    Attachment {
        /// The ticket number.
        number: String,
        /// The attachment's SHA-256, or its first 8 or more hex digits.
        sha256: String,
        /// Write to this file instead of standard output. The sender's filename is never used as a path.
        #[arg(long, short)]
        output: Option<PathBuf>,
    },
    #[command(flatten)]
    Act(crate::act::TicketAction),
}

#[derive(Subcommand)]
pub enum RulesCommand {
    /// Validate every rule file; exit 78 naming file, line and problem.
    Check {
        /// Rules directory (default: rules.dir from the config).
        dir: Option<PathBuf>,
    },
    /// Route a mail without side effects and explain every rule's verdict.
    Test {
        /// The mail to route, an .eml file.
        mail: PathBuf,
        /// Rules directory (default: rules.dir from the config).
        #[arg(long)]
        rules: Option<PathBuf>,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Subcommand)]
pub enum OutboxCommand {
    /// Outgoing mail, newest first, with the relay's last answer.
    List {
        /// Only rows in this state: queued, sent, failed, held or cancelled.
        #[arg(long)]
        state: Option<String>,
        /// At most this many rows.
        #[arg(long, default_value_t = 50)]
        limit: u32,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Send a failed (or waiting) mail again now; the running daemon picks it up.
    Retry {
        /// The outbox row's id, as `outbox list` shows it (#id).
        id: i64,
    },
    /// Keep a queued or failed mail from being sent until `outbox release` (like `postsuper -h`).
    Hold {
        /// The outbox row's id, as `outbox list` shows it (#id).
        id: i64,
        /// Why, kept with the row.
        #[arg(long)]
        reason: Option<String>,
    },
    /// Queue a held mail again, due now (like `postsuper -H`).
    Release {
        /// The outbox row's id, as `outbox list` shows it (#id).
        id: i64,
    },
    /// Never send this mail; the row stays, marked cancelled, with the reason (`postsuper -d` that keeps a record).
    Cancel {
        /// The outbox row's id, as `outbox list` shows it (#id).
        id: i64,
        /// Why, kept with the row.
        #[arg(long)]
        reason: String,
    },
}

#[derive(Subcommand)]
pub enum SuppressCommand {
    /// Every suppressed address, with the bounce that put it there.
    List {
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Mail this address again.
    Remove {
        /// The address to take off the list.
        address: String,
    },
}

#[derive(Subcommand)]
pub enum QuarantineCommand {
    /// Quarantined mail, newest first, with the reason.
    List {
        /// At most this many entries.
        #[arg(long, default_value_t = 50)]
        limit: u32,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
    #[command(flatten)]
    Act(crate::ops::quarantine::QuarantineAct),
}

// An unreadable input is a transient failure for an MTA (it keeps the mail and retries).
impl From<SourceError> for Failure {
    fn from(e: SourceError) -> Failure {
        Failure::new(EX_NOINPUT, e.to_string())
    }
}

pub fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => return crate::exit::usage_exit(e),
    };
    // One message on stdin is how an MTA delivers: never a code it would bounce on (see `as_mta_delivery`).
    let from_mta = matches!(&cli.command, Command::Ingest { files } if files.is_empty());
    // The daemon tells the journal what it does with each mail; one-shot commands speak only when something is wrong.
    // The format may come from the config; a config that does not load is reported by the command itself.
    let format = crate::config::Config::load(&cli.config).ok().map(|c| c.logging.format);
    crate::logging::init(if matches!(cli.command, Command::Run) { "info" } else { "warn" }, format);
    let result = if from_mta { crate::exit::as_mta_delivery(|| run(cli)) } else { run(cli) };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(f) => {
            eprintln!("postdesk: {}", crate::inert::text(&f.message));
            ExitCode::from(f.code)
        }
    }
}

pub fn run(cli: Cli) -> Result<(), Failure> {
    match cli.command {
        Command::Run => crate::daemon::run(&cli.config),
        Command::Ingest { files } => ingest(&cli.config, &files),
        Command::Ticket { command: TicketCommand::Act(action) } => crate::act::run(&cli.config, action),
        Command::Ticket { command } => ticket(&cli.config, command),
        Command::Check => check(&cli.config),
        Command::Rules { command: RulesCommand::Check { dir } } => rules_check(&cli.config, dir.as_deref()),
        Command::Rules { command: RulesCommand::Test { mail, rules, json } } => {
            rules_test(&cli.config, &mail, rules.as_deref(), json)
        }
        Command::Status { json } => status(&cli.config, json),
        Command::Outbox { command } => outbox(&cli.config, command),
        Command::Agent { command } => crate::admin::agent(&cli.config, command),
        Command::Role { command } => crate::admin::role(&cli.config, command),
        Command::Queue { command } => crate::admin::queue(&cli.config, command),
        Command::Suppress { command } => suppress(&cli.config, command),
        Command::Customer { command } => crate::privacy::customer(&cli.config, command),
        Command::Quarantine { command: QuarantineCommand::List { limit, json } } => {
            quarantine_list(&cli.config, limit, json)
        }
        Command::Quarantine { command: QuarantineCommand::Act(act) } => crate::ops::quarantine::run(&cli.config, act),
        Command::Db { command } => crate::ops::db::run(&cli.config, command),
    }
}

/// Mails per transaction for `ingest` of many files: enough to amortise the commit (one fsync per batch), small
/// enough to bound memory. Inputs are streamed mail by mail, so a batch is all `ingest` holds.
const INGEST_BATCH: usize = 64;
/// A batch is also flushed once it holds this many raw bytes: a few large mails must not make it huge.
const INGEST_BATCH_BYTES: usize = 8 << 20;

fn ingest(config_path: &Path, files: &[PathBuf]) -> Result<(), Failure> {
    if files.is_empty() {
        return ingest_stdin(config_path);
    }
    let inputs: Vec<Input> = files.iter().cloned().map(Input::Path).collect();
    ingest_here(load_setup(config_path)?, inputs)
}

/// One mail on stdin, as an MTA delivers: handed to the running daemon when one listens (see
/// [`crate::ingest::handoff`]), else taken in by this process.
fn ingest_stdin(config_path: &Path) -> Result<(), Failure> {
    let mail = stdin_mail()?;
    let config = load_config(config_path)?;
    match handoff::offer(&handoff::socket_path(&config.storage.state_dir), &mail.raw) {
        Some(handoff::Answer::Done(outcome)) => {
            crate::say!("stdin: {outcome}");
            return Ok(());
        }
        Some(handoff::Answer::TempFail(why)) => return Err(Failure::new(crate::exit::EX_TEMPFAIL, why)),
        None => {}
    }
    // Alone: the regexes are built on the other core while the rules load and the database opens.
    crate::parse::warm_up_on_the_side();
    ingest_here(crate::setup::setup_for(config)?, vec![Input::Mail(mail)])
}

/// Takes mail in with this process's own pipeline and database connection.
fn ingest_here(setup: Setup, inputs: Vec<Input>) -> Result<(), Failure> {
    // A damaged or lost database is refused with 75: the MTA keeps the mail until the admin has restored.
    let (mut store, _db_use) =
        crate::setup::open_checked_store(&setup.config, Thoroughness::WhenChanged).map_err(|f| {
            if f.code == crate::exit::EX_DATAERR { Failure::new(crate::exit::EX_TEMPFAIL, f.message) } else { f }
        })?;
    crate::admin::seed_from_config(&mut store, &setup.config)?;
    let signer = load_signer(&setup.config)?;
    let pipeline = Pipeline::new(setup, signer);
    let mut batch: Vec<Incoming> = Vec::new();
    let mut bytes = 0;
    for input in inputs {
        each_mail(input, &mut |mail: Incoming| {
            bytes += mail.raw.len();
            batch.push(mail);
            if batch.len() >= INGEST_BATCH || bytes >= INGEST_BATCH_BYTES {
                bytes = 0;
                flush(&pipeline, &mut store, &mut batch)?;
            }
            Ok::<(), Failure>(())
        })?;
    }
    flush(&pipeline, &mut store, &mut batch)?;
    // The mail is committed: emptying the WAL is housekeeping, and a failure here must not make the MTA retry.
    if let Err(e) = store.release_wal() {
        tracing::warn!("could not empty the write-ahead log: {e}");
    }
    // Our own commits (and the checkpoints they caused) changed the file; it was whole before them.
    crate::store::integrity::still_whole(&pipeline.config().database_path());
    Ok(())
}

fn flush(pipeline: &Pipeline, store: &mut Store, batch: &mut Vec<Incoming>) -> Result<(), Failure> {
    if batch.is_empty() {
        return Ok(());
    }
    let outcomes = pipeline.process_batch(store, batch)?;
    for (mail, outcome) in batch.iter().zip(outcomes) {
        crate::say!("{}: {outcome}", mail.source);
    }
    batch.clear();
    Ok(())
}

fn ticket(config_path: &Path, command: TicketCommand) -> Result<(), Failure> {
    let config = load_config(config_path)?;
    let store = open_store(&config)?;
    match command {
        TicketCommand::List { queue, state, limit, json } => {
            let tickets = store.list_tickets(&TicketFilter { queue, state, limit })?;
            if json {
                print_json(&tickets);
            } else if tickets.is_empty() {
                crate::say!("no tickets");
            } else {
                crate::say!(
                    "{:<18} {:<8} {:<12} {:<9} {:<28} SUBJECT",
                    "NUMBER",
                    "STATE",
                    "QUEUE",
                    "PRIORITY",
                    "CUSTOMER"
                );
                for t in tickets {
                    crate::say!(
                        "{:<18} {:<8} {:<12} {:<9} {:<28} {}",
                        t.number,
                        t.state,
                        t.queue,
                        t.priority,
                        line(&t.customer),
                        line(&t.subject)
                    );
                }
            }
        }
        TicketCommand::Raw { article } => {
            let raw = store.raw_message(article)?.ok_or_else(|| {
                Failure::new(EX_NOINPUT, format!("article {article} has no stored mail (or does not exist)"))
            })?;
            // Exact bytes for a pipe or file; on a terminal the mail is shown with its control characters escaped.
            if std::io::IsTerminal::is_terminal(&std::io::stdout()) {
                crate::say_raw!("{}", String::from_utf8_lossy(&raw));
            } else {
                let _ = std::io::Write::write_all(&mut std::io::stdout().lock(), &raw);
            }
        }
        TicketCommand::Attachment { number, sha256, output } => {
            let bytes = attachment_of_ticket(&store, &config, &number, &sha256)?;
            match output {
                Some(path) => std::fs::write(&path, &bytes)
                    .map_err(|e| Failure::new(EX_CANTCREAT, format!("{}: {e}", path.display())))?,
                None if std::io::IsTerminal::is_terminal(&std::io::stdout()) => {
                    return Err(Failure::new(
                        EX_USAGE,
                        format!("not writing {} bytes to a terminal; use --output FILE or a redirect", bytes.len()),
                    ));
                }
                None => {
                    let _ = std::io::Write::write_all(&mut std::io::stdout().lock(), &bytes);
                }
            }
        }
        TicketCommand::Act(_) => unreachable!("ticket actions are dispatched by run()"),
        TicketCommand::Show { number, json } => {
            let detail =
                store.ticket_detail(&number)?.ok_or_else(|| Failure::new(EX_NOINPUT, format!("no ticket {number}")))?;
            if json {
                print_json(&detail);
            } else {
                crate::say_raw!("{}", crate::report::ticket_text(&detail));
            }
        }
    }
    Ok(())
}

/// Finds the attachment among the ticket's (so a hash prefix is only ever matched within one ticket) and reads it.
fn attachment_of_ticket(store: &Store, config: &Config, number: &str, sha256: &str) -> Result<Vec<u8>, Failure> {
    let wanted = sha256.to_ascii_lowercase();
    if wanted.len() < 8 || !wanted.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(Failure::new(EX_USAGE, format!("\"{sha256}\": give at least 8 hex digits of the SHA-256")));
    }
    let detail = store.ticket_detail(number)?.ok_or_else(|| Failure::new(EX_NOINPUT, format!("no ticket {number}")))?;
    let mut matches: Vec<String> = detail
        .articles
        .iter()
        .flat_map(|a| &a.attachments)
        .filter(|f| f.sha256.starts_with(&wanted))
        .map(|f| f.sha256.clone())
        .collect();
    matches.sort();
    matches.dedup();
    let full = match matches.as_slice() {
        [one] => one.clone(),
        [] => return Err(Failure::new(EX_NOINPUT, format!("ticket {number} has no attachment {sha256}"))),
        _ => return Err(Failure::new(EX_USAGE, format!("{sha256} matches several attachments; give more digits"))),
    };
    match crate::attachments::content(store, &full, &config.limits) {
        Ok(Some(bytes)) => Ok(bytes),
        Ok(None) => Err(Failure::new(EX_SOFTWARE, format!("attachment {full} is listed but not stored"))),
        Err(crate::attachments::AttachmentError::Store(e)) => Err(e.into()),
        Err(e) => Err(Failure::new(EX_SOFTWARE, e.to_string())),
    }
}

fn check(config_path: &Path) -> Result<(), Failure> {
    let setup = load_setup(config_path)?;
    let c = &setup.config;
    crate::say!("{}: ok", config_path.display());
    crate::say!("  rules:     {} rules in {}", setup.rules.len(), c.rules.dir.display());
    crate::say!("  templates: sets {} in {}", setup.templates.sets().join(", "), c.templates.dir.display());
    crate::say!("  queues:    {}", c.queue_names().join(", "));
    let checkup = crate::checkup::run(c);
    for note in &checkup.notes {
        crate::say!("{note}");
    }
    if checkup.problems.is_empty() {
        return Ok(());
    }
    // A busy database is worth a retry (75); anything else is the admin's to fix (78).
    let code = if checkup.transient { crate::exit::EX_TEMPFAIL } else { EX_CONFIG };
    Err(Failure::new(code, checkup.problems.join("\n")))
}

fn rules_check(config_path: &Path, dir: Option<&Path>) -> Result<(), Failure> {
    let config = load_config(config_path)?;
    let templates = crate::outbound::Templates::load(&config.templates.dir).ok();
    let dir = dir.map(Path::to_path_buf).unwrap_or_else(|| config.rules.dir.clone());
    match Setup::load_rules(&config, templates.as_ref(), &dir) {
        Ok(rules) => {
            crate::say!("{}: ok, {} rules", dir.display(), rules.len());
            for (file, name) in rules.rule_names() {
                crate::say!("  {file}: {name}");
            }
            Ok(())
        }
        Err(e) => Err(Failure::new(EX_CONFIG, e.to_string())),
    }
}

fn rules_test(config_path: &Path, mail_path: &Path, dir: Option<&Path>, json: bool) -> Result<(), Failure> {
    let config = load_config(config_path)?;
    let templates = crate::outbound::Templates::load(&config.templates.dir).ok();
    let dir = dir.map(Path::to_path_buf).unwrap_or_else(|| config.rules.dir.clone());
    let rules =
        Setup::load_rules(&config, templates.as_ref(), &dir).map_err(|e| Failure::new(EX_CONFIG, e.to_string()))?;
    let raw =
        std::fs::read(mail_path).map_err(|e| Failure::new(EX_NOINPUT, format!("{}: {e}", mail_path.display())))?;
    let mail = crate::parse::parse_mail(&raw, &config.limits)
        .map_err(|e| Failure::new(EX_DATAERR, format!("{}: would be quarantined: {e}", mail_path.display())))?;
    // Read-only look at the database, when there is one, to know whether this mail would be a follow-up.
    let current_queue = existing_ticket_queue(&config, &mail);
    let ctx = crate::rules::RouteContext {
        is_followup: current_queue.is_some(),
        current_queue: current_queue.as_ref().map(|(_, q)| q.as_str()),
        default_queue: &config.tickets.default_queue,
    };
    let explanation = rules.explain(&mail, &ctx);
    if json {
        print_json(&serde_json::json!({
            "followup_of": current_queue.as_ref().map(|(n, _)| n),
            "classification": mail.classification.as_str(),
            "explanation": explanation,
        }));
    } else {
        match &current_queue {
            Some((number, queue)) => crate::say!("follow-up on ticket {number} (queue {queue})"),
            None => crate::say!("new ticket"),
        }
        crate::say!("classification: {}", mail.classification.as_str());
        crate::say_raw!("{explanation}");
    }
    Ok(())
}

/// The ticket (number, queue) this mail would join, looked up without writing anything.
fn existing_ticket_queue(config: &Config, mail: &crate::model::InboundMail) -> Option<(String, String)> {
    let path = config.database_path();
    if !path.exists() {
        return None;
    }
    let store = Store::open_read_only(&path).ok()?;
    let tokens = crate::token::TokenFormat::new(&config.tickets.token_format);
    store.peek_thread(mail, &tokens).ok().flatten()
}

fn status(config_path: &Path, json: bool) -> Result<(), Failure> {
    let config = load_config(config_path)?;
    let store = open_store(&config)?;
    let counts = store.status_counts()?;
    let outbox = store.outbox_counts()?;
    let running = crate::daemon::InstanceLock::is_held(&config.storage.state_dir);
    let now = chrono::Utc::now().timestamp();
    let budget = store.reply_budget(now, config.replies.max_unknown_senders_per_hour)?;
    // The daemon's own account, kept outside the database so that a full or locked database can still be reported.
    let health = if running { crate::health::read(&config.storage.state_dir) } else { None };
    if json {
        print_json(&serde_json::json!({
            "running": running, "counts": counts, "outbox": outbox, "auto_replies": budget, "health": health
        }));
    } else {
        crate::say_raw!("{}", crate::report::status_text(&counts, &outbox, running, now));
        crate::say_raw!("{}", crate::report::reply_budget_text(&budget));
        if let Some(h) = &health {
            crate::say_raw!("{}", crate::report::health_text(h, now));
        }
    }
    Ok(())
}

fn outbox(config_path: &Path, command: OutboxCommand) -> Result<(), Failure> {
    let config = load_config(config_path)?;
    let mut store = open_store(&config)?;
    match command {
        OutboxCommand::List { state, limit, json } => {
            let rows = store.outbox_list(state.as_deref(), limit)?;
            if json {
                print_json(&rows);
            } else if rows.is_empty() {
                crate::say!("outbox is empty");
            } else {
                for r in rows {
                    let error =
                        r.last_error.as_deref().map(|e| format!("  last error: {}", line(e))).unwrap_or_default();
                    let bounced = r.bounced.as_deref().map(|b| format!("  BOUNCED: {}", line(b))).unwrap_or_default();
                    let note = r.admin_note.as_deref().map(|n| format!("  note: {}", line(n))).unwrap_or_default();
                    let bounced = format!("{bounced}{note}");
                    crate::say!(
                        "#{:<5} {:<7} {:<16} ticket {:<18} to {}  attempts {}{error}{bounced}",
                        r.id,
                        r.state,
                        r.kind,
                        r.ticket.as_deref().unwrap_or("-"),
                        line(&r.recipients.join(", ")),
                        r.attempts
                    );
                }
            }
        }
        OutboxCommand::Retry { id } => {
            let tx = store.begin()?;
            let found = tx.retry_outbox(id, chrono::Utc::now().timestamp())?;
            tx.commit()?;
            if !found {
                return Err(Failure::new(EX_NOINPUT, format!("no unsent outbox row {id}")));
            }
            crate::say!("outbox #{id} queued for sending now");
        }
        OutboxCommand::Hold { id, reason } => {
            outbox_control(&mut store, id, "held", |tx| tx.hold_outbox(id, reason.as_deref()))?;
        }
        OutboxCommand::Release { id } => {
            let now = chrono::Utc::now().timestamp();
            outbox_control(&mut store, id, "released: queued for sending now", |tx| tx.release_outbox(id, now))?;
        }
        OutboxCommand::Cancel { id, reason } => {
            outbox_control(&mut store, id, "cancelled; it will not be sent", |tx| tx.cancel_outbox(id, &reason))?;
        }
    }
    Ok(())
}

fn outbox_control(
    store: &mut Store,
    id: i64,
    done: &str,
    action: impl FnOnce(&crate::store::Tx<'_>) -> Result<crate::store::Control, crate::store::StoreError>,
) -> Result<(), Failure> {
    use crate::store::Control;
    let tx = store.begin()?;
    let outcome = action(&tx)?;
    tx.commit()?;
    match outcome {
        Control::Done => {
            crate::say!("outbox #{id} {done}");
            Ok(())
        }
        Control::NoSuchRow => Err(Failure::new(EX_NOINPUT, format!("no outbox row {id}"))),
        Control::WrongState(state) => {
            Err(Failure::new(EX_DATAERR, format!("outbox #{id} is {state}; that does not apply to it")))
        }
    }
}

fn suppress(config_path: &Path, command: SuppressCommand) -> Result<(), Failure> {
    let config = load_config(config_path)?;
    let mut store = open_store(&config)?;
    match command {
        SuppressCommand::List { json } => {
            let rows = store.suppression_list()?;
            if json {
                print_json(&rows);
            } else if rows.is_empty() {
                crate::say!("no suppressed addresses");
            } else {
                for r in rows {
                    crate::say!(
                        "{:<40} {}  since {}",
                        line(&r.address),
                        line(&r.reason),
                        crate::report::format_time(r.created_at)
                    );
                }
            }
        }
        SuppressCommand::Remove { address } => {
            let tx = store.begin()?;
            let found = tx.remove_suppression(&address)?;
            tx.commit()?;
            if !found {
                return Err(Failure::new(EX_NOINPUT, format!("{address} is not suppressed")));
            }
            crate::say!("{address} removed from the hard-bounce list");
        }
    }
    Ok(())
}

fn quarantine_list(config_path: &Path, limit: u32, json: bool) -> Result<(), Failure> {
    let config = load_config(config_path)?;
    let store = open_store(&config)?;
    let items = store.quarantine_list(limit)?;
    if json {
        print_json(&items);
    } else {
        for q in items {
            crate::say!("#{:<5} {:<8} {:>10} bytes  {}  {}", q.id, q.status, q.size, line(&q.source), line(&q.reason));
        }
    }
    Ok(())
}
