//! The one TOML config file, turned into a validated [`Config`]. Unknown keys are errors, and every error names the
//! file, the line and column, the key and what is expected, so an admin can fix it without reading source.

use std::fmt;
use std::path::{Path, PathBuf};

use serde::Deserialize;

pub const DEFAULT_PATH: &str = "/etc/postdesk/postdesk.toml";

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("{file}: cannot read: {source}")]
    Read { file: PathBuf, source: std::io::Error },
    #[error("{file}:{line}:{column}: {message}")]
    Invalid { file: PathBuf, line: usize, column: usize, message: String },
    #[error("{file}: {key}: {message}")]
    Value { file: PathBuf, key: String, message: String },
    /// More than one of the above, in the order they occur: an admin fixes them all in one go.
    #[error("{}", .0.iter().map(ToString::to_string).collect::<Vec<_>>().join("\n"))]
    Several(Vec<ConfigError>),
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Shown to customers in templates ("Example Corp Support").
    #[serde(default = "default_site_name")]
    pub site_name: String,
    /// The support address customers write to; also the default queue address.
    pub address: String,
    #[serde(default)]
    pub storage: Storage,
    #[serde(default)]
    pub tickets: Tickets,
    #[serde(default)]
    pub limits: Limits,
    #[serde(default)]
    pub rules: RulesConfig,
    #[serde(default)]
    pub templates: TemplatesConfig,
    #[serde(default)]
    pub replies: RepliesConfig,
    #[serde(default)]
    pub agents: AgentsConfig,
    pub imap: Option<ImapConfig>,
    /// The relay for everything we send. Without it nothing is queued or sent.
    pub smtp: Option<SmtpConfig>,
    #[serde(default)]
    pub queues: Vec<QueueConfig>,
    /// Roles to create or extend when postdesk starts (optional: `postdesk role` does the same).
    #[serde(default, rename = "role")]
    pub seed_roles: Vec<RoleSeed>,
    /// Agents to create or update when postdesk starts (optional: `postdesk agent` does the same). Agents added from
    /// the CLI are left alone, and seeding never re-enables a disabled agent.
    #[serde(default, rename = "agent")]
    pub seed_agents: Vec<AgentSeed>,
    #[serde(default)]
    pub retention: Retention,
    #[serde(default)]
    pub logging: LoggingConfig,
    /// An optional Prometheus endpoint; off unless `[metrics] listen` is set.
    pub metrics: Option<MetricsConfig>,
    /// Where this config was read from; relative paths in it are resolved against its directory.
    #[serde(skip)]
    pub source: PathBuf,
}

fn default_site_name() -> String {
    "Support".into()
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Storage {
    #[serde(default = "default_state_dir")]
    pub state_dir: PathBuf,
    /// SQLite database; default `<state_dir>/postdesk.db`.
    pub database: Option<PathBuf>,
    /// Longest wait before trying again after the database failed (disk full, locked, I/O): the wait doubles from
    /// 1 s up to this, and mail stays in the mailbox meanwhile.
    #[serde(default = "default_error_backoff_max_seconds")]
    pub error_backoff_max_seconds: u64,
}

fn default_error_backoff_max_seconds() -> u64 {
    300
}

fn default_state_dir() -> PathBuf {
    "/var/lib/postdesk".into()
}

impl Default for Storage {
    fn default() -> Self {
        Storage {
            state_dir: default_state_dir(),
            database: None,
            error_backoff_max_seconds: default_error_backoff_max_seconds(),
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Tickets {
    /// How the ticket number appears in subjects; must contain `{number}` once.
    #[serde(default = "default_token_format")]
    pub token_format: String,
    /// Two digits in every ticket number, so numbers from two installations never collide.
    #[serde(default = "default_system_id")]
    pub system_id: u8,
    #[serde(default = "default_queue")]
    pub default_queue: String,
}

fn default_token_format() -> String {
    "[Ticket#{number}]".into()
}
fn default_system_id() -> u8 {
    10
}
fn default_queue() -> String {
    "support".into()
}

impl Default for Tickets {
    fn default() -> Self {
        Tickets { token_format: default_token_format(), system_id: default_system_id(), default_queue: default_queue() }
    }
}

#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct Limits {
    #[serde(default = "default_max_message_bytes")]
    pub max_message_bytes: usize,
    #[serde(default = "default_max_mime_parts")]
    pub max_mime_parts: usize,
    #[serde(default = "default_max_nesting_depth")]
    pub max_nesting_depth: usize,
    /// At most this many addresses are parties of one ticket (customer and Cc): answers go to at most this many.
    #[serde(default = "default_max_ticket_parties")]
    pub max_ticket_parties: usize,
    /// Rules match `body` conditions against at most this many bytes from the start of the new text.
    #[serde(default = "default_max_rule_body_bytes")]
    pub max_rule_body_bytes: usize,
    /// Mail we write quotes at most this many bytes of a customer's text (acknowledgements, notifications).
    #[serde(default = "default_max_quoted_bytes")]
    pub max_quoted_bytes: usize,
}

fn default_max_message_bytes() -> usize {
    25 * 1024 * 1024
}
fn default_max_mime_parts() -> usize {
    500
}
fn default_max_nesting_depth() -> usize {
    16
}
fn default_max_ticket_parties() -> usize {
    100
}
fn default_max_rule_body_bytes() -> usize {
    64 * 1024
}
fn default_max_quoted_bytes() -> usize {
    4 * 1024
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_message_bytes: default_max_message_bytes(),
            max_mime_parts: default_max_mime_parts(),
            max_nesting_depth: default_max_nesting_depth(),
            max_ticket_parties: default_max_ticket_parties(),
            max_rule_body_bytes: default_max_rule_body_bytes(),
            max_quoted_bytes: default_max_quoted_bytes(),
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RulesConfig {
    #[serde(default = "default_rules_dir")]
    pub dir: PathBuf,
}

fn default_rules_dir() -> PathBuf {
    "/etc/postdesk/rules".into()
}

impl Default for RulesConfig {
    fn default() -> Self {
        RulesConfig { dir: default_rules_dir() }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TemplatesConfig {
    #[serde(default = "default_templates_dir")]
    pub dir: PathBuf,
}

fn default_templates_dir() -> PathBuf {
    "/etc/postdesk/templates".into()
}

impl Default for TemplatesConfig {
    fn default() -> Self {
        TemplatesConfig { dir: default_templates_dir() }
    }
}

/// Agents working by mail.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AgentsConfig {
    /// The authserv-id your own MTA writes into Authentication-Results (RFC 8601), e.g. "mx.example.com". When set,
    /// a DKIM/DMARC pass for the agent's domain recorded by that MTA also proves an agent's mail. Set it only if the
    /// MTA removes such headers arriving from outside.
    pub authserv_id: Option<String>,
    /// How long `#take` locks a ticket; an unanswered lock then times out and its owner is told.
    #[serde(default = "default_lock_minutes")]
    pub lock_minutes: u64,
    /// Show the answering agent's name (never their address) in the From of replies to customers.
    #[serde(default)]
    pub show_agent_name: bool,
    /// Which notifications agents get unless they chose otherwise (`postdesk agent notify`).
    #[serde(default)]
    pub notify: NotifyDefaults,
}

fn default_lock_minutes() -> u64 {
    60
}

impl Default for AgentsConfig {
    fn default() -> Self {
        AgentsConfig {
            authserv_id: None,
            lock_minutes: default_lock_minutes(),
            show_agent_name: false,
            notify: NotifyDefaults::default(),
        }
    }
}

#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NotifyDefaults {
    #[serde(default = "default_true")]
    pub new_ticket: bool,
    #[serde(default = "default_true")]
    pub followup: bool,
    #[serde(default = "default_true")]
    pub moved: bool,
    #[serde(default = "default_true")]
    pub assigned: bool,
    #[serde(default = "default_true")]
    pub lock_timeout: bool,
}

impl Default for NotifyDefaults {
    fn default() -> Self {
        NotifyDefaults { new_ticket: true, followup: true, moved: true, assigned: true, lock_timeout: true }
    }
}

/// Automatic replies to customers (RFC 3834 rules and the rate limit apply to all of them).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RepliesConfig {
    /// Acknowledge a new ticket (template `acknowledgement`, or the one a rule names).
    #[serde(default = "default_true")]
    pub acknowledge_new: bool,
    /// Tell the customer their follow-up was received (template `followup`).
    #[serde(default = "default_true")]
    pub acknowledge_followups: bool,
    /// At most this many automatic replies to one address per window, across tickets.
    #[serde(default = "default_max_auto_replies")]
    pub max_auto_replies: u32,
    #[serde(default = "default_window_hours")]
    pub window_hours: u32,
    /// At most this many automatic replies per hour to first-time senders (no party of an earlier ticket), all of
    /// them together: the cap on backscatter from forged senders. 0 sends them none.
    #[serde(default = "default_max_unknown_senders_per_hour")]
    pub max_unknown_senders_per_hour: u32,
}

fn default_max_unknown_senders_per_hour() -> u32 {
    100
}

fn default_max_auto_replies() -> u32 {
    5
}
fn default_window_hours() -> u32 {
    24
}

impl Default for RepliesConfig {
    fn default() -> Self {
        RepliesConfig {
            acknowledge_new: true,
            acknowledge_followups: true,
            max_auto_replies: default_max_auto_replies(),
            window_hours: default_window_hours(),
            max_unknown_senders_per_hour: default_max_unknown_senders_per_hour(),
        }
    }
}

#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq, Default)]
#[serde(rename_all = "lowercase")]
pub enum TlsMode {
    /// Implicit TLS from the first byte (IMAPS 993, SMTPS 465).
    #[default]
    Tls,
    /// STARTTLS, and the connection fails if the server does not offer it: never a silent downgrade.
    Starttls,
    /// No TLS at all: refused unless the host is a loopback address.
    Plain,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ImapConfig {
    pub host: String,
    pub port: Option<u16>,
    #[serde(default)]
    pub tls: TlsMode,
    /// Extra PEM CA certificates trusted beside the system store (private CAs).
    pub ca_file: Option<PathBuf>,
    pub username: String,
    /// A file holding the password; refused if group- or world-readable. Without it, the password is read from
    /// systemd's `$CREDENTIALS_DIRECTORY/imap-password`.
    pub password_file: Option<PathBuf>,
    #[serde(default = "default_mailbox")]
    pub mailbox: String,
    #[serde(default = "default_processed")]
    pub processed_mailbox: String,
    #[serde(default = "default_quarantine_mailbox")]
    pub quarantine_mailbox: String,
    #[serde(default = "default_batch_size")]
    pub batch_size: u32,
    /// Seconds between polls when the server has no IDLE.
    #[serde(default = "default_poll_seconds")]
    pub poll_seconds: u64,
    /// Use IDLE when offered; false forces polling.
    #[serde(default = "default_true")]
    pub idle: bool,
    /// Most bytes downloaded per batch: bounds memory however large the backlog.
    #[serde(default = "default_batch_bytes")]
    pub batch_bytes: usize,
    /// Longest wait between reconnection attempts (the wait doubles from 1 s up to this, with jitter).
    #[serde(default = "default_reconnect_max_seconds")]
    pub reconnect_max_seconds: u64,
}

fn default_batch_bytes() -> usize {
    4 * 1024 * 1024
}
fn default_reconnect_max_seconds() -> u64 {
    30
}

fn default_mailbox() -> String {
    "INBOX".into()
}
fn default_processed() -> String {
    "postdesk/processed".into()
}
fn default_quarantine_mailbox() -> String {
    "postdesk/quarantine".into()
}
fn default_batch_size() -> u32 {
    100
}
fn default_poll_seconds() -> u64 {
    60
}
fn default_true() -> bool {
    true
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SmtpConfig {
    pub host: String,
    pub port: Option<u16>,
    #[serde(default)]
    pub tls: TlsMode,
    pub ca_file: Option<PathBuf>,
    pub username: Option<String>,
    pub password_file: Option<PathBuf>,
    /// First wait after a temporary failure (4xx, relay down); doubles per attempt, with jitter.
    #[serde(default = "default_retry_base_seconds")]
    pub retry_base_seconds: u64,
    /// Longest wait between attempts.
    #[serde(default = "default_retry_max_seconds")]
    pub retry_max_seconds: u64,
    /// While the relay is unreachable it is probed (connect, EHLO, NOOP, QUIT; no mail) from every 1 s doubling up
    /// to this; when it answers, every mail waiting for it is sent at once, whatever its own backoff says.
    #[serde(default = "default_relay_probe_max_seconds")]
    pub relay_probe_max_seconds: u64,
}

fn default_relay_probe_max_seconds() -> u64 {
    30
}

fn default_retry_base_seconds() -> u64 {
    30
}
fn default_retry_max_seconds() -> u64 {
    3600
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MetricsConfig {
    /// Loopback address and port to serve `GET /metrics` on, e.g. "127.0.0.1:9187". Only loopback is accepted:
    /// the page has no authentication, so a local Prometheus or an SSH tunnel reads it.
    pub listen: std::net::SocketAddr,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RoleSeed {
    pub name: String,
    pub queues: Vec<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AgentSeed {
    pub address: String,
    pub name: String,
    #[serde(default)]
    pub roles: Vec<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct QueueConfig {
    pub name: String,
    /// The queue's own address: replies for its tickets are sent from it.
    pub address: Option<String>,
    /// Template set (sub-directory of the templates dir) used for this queue; default `default`.
    pub templates: Option<String>,
    /// Mail from an agent to this address becomes an internal note (as if it started with `#note`).
    pub comment_address: Option<String>,
}

impl Config {
    /// Reads and validates a config file. Relative paths inside it are taken relative to the file's directory.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read { file: path.into(), source })?;
        Self::parse(&text, path)
    }

    /// Parses and validates, reporting every problem it can find in one go (see [`crate::config_errors`]).
    pub fn parse(text: &str, path: &Path) -> Result<Config, ConfigError> {
        let (config, mut errors) = crate::config_errors::deserialize_all(text, path);
        if let Some(mut config) = config {
            config.source = path.into();
            config.resolve_paths();
            errors.extend(config.validate().into_iter().map(|(key, message)| ConfigError::Value {
                file: path.into(),
                key,
                message,
            }));
            if errors.is_empty() {
                return Ok(config);
            }
        }
        Err(if errors.len() == 1 { errors.remove(0) } else { ConfigError::Several(errors) })
    }

    fn resolve_paths(&mut self) {
        let base = self.source.parent().map(Path::to_path_buf).unwrap_or_default();
        let resolve = |p: &mut PathBuf| {
            if p.is_relative() {
                *p = base.join(&*p);
            }
        };
        resolve(&mut self.storage.state_dir);
        if let Some(db) = self.storage.database.as_mut() {
            resolve(db);
        }
        resolve(&mut self.rules.dir);
        resolve(&mut self.templates.dir);
        if let Some(imap) = self.imap.as_mut() {
            imap.ca_file.iter_mut().chain(imap.password_file.iter_mut()).for_each(resolve);
        }
        if let Some(smtp) = self.smtp.as_mut() {
            smtp.ca_file.iter_mut().chain(smtp.password_file.iter_mut()).for_each(resolve);
        }
    }

    /// Every problem with the values, as (key, message): all of them, not just the first.
    fn validate(&self) -> Vec<(String, String)> {
        let mut problems = Vec::new();
        let mut bad = |key: &str, msg: String| problems.push((key.to_string(), msg));
        if !self.address.contains('@') {
            bad(
                "address",
                format!("\"{}\" is not a mail address; expected e.g. \"support@example.com\"", self.address),
            );
        }
        if self.tickets.token_format.matches("{number}").count() != 1 {
            bad(
                "tickets.token_format",
                format!(
                    "\"{}\" must contain {{number}} exactly once, e.g. \"[Ticket#{{number}}]\"",
                    self.tickets.token_format
                ),
            );
        } else if crate::token::TokenFormat::new(&self.tickets.token_format).prefix().trim().is_empty() {
            bad("tickets.token_format", "needs some text before {number}, e.g. \"[Ticket#{number}]\"".into());
        }
        if let Some(m) = &self.metrics
            && !m.listen.ip().is_loopback()
        {
            bad(
                "metrics.listen",
                format!("{} is not a loopback address; use e.g. \"127.0.0.1:9187\" (the page has no login)", m.listen),
            );
        }
        if self.tickets.system_id > 99 {
            bad("tickets.system_id", format!("{} is out of range; expected 0 to 99", self.tickets.system_id));
        }
        let l = &self.limits;
        if l.max_message_bytes < 1024 {
            bad("limits.max_message_bytes", "must be at least 1024 bytes".into());
        }
        if l.max_mime_parts == 0 || l.max_nesting_depth == 0 {
            bad("limits", "max_mime_parts and max_nesting_depth must be at least 1".into());
        }
        if l.max_ticket_parties == 0 {
            bad("limits.max_ticket_parties", "must be at least 1: the customer is a party".into());
        }
        let mut names: Vec<&str> = self.queues.iter().map(|q| q.name.as_str()).collect();
        names.sort_unstable();
        if let Some(w) = names.windows(2).find(|w| w[0] == w[1]) {
            bad("queues", format!("queue \"{}\" is defined twice; give each [[queues]] a unique name", w[0]));
        }
        let queues = self.queue_names();
        for role in &self.seed_roles {
            if let Some(q) = role.queues.iter().find(|q| !queues.contains(q)) {
                bad(
                    "role",
                    format!(
                        "role \"{}\" grants queue \"{q}\", which is not defined; known: {}",
                        role.name,
                        queues.join(", ")
                    ),
                );
            }
        }
        for agent in &self.seed_agents {
            if !agent.address.contains('@') {
                bad("agent", format!("\"{}\" is not a mail address", agent.address));
            }
        }
        if let Some(imap) = &self.imap {
            if imap.tls == TlsMode::Plain && !is_loopback(&imap.host) {
                bad(
                    "imap.tls",
                    format!(
                        "\"plain\" is only allowed to a loopback host, not \"{}\"; use \"tls\" or \"starttls\"",
                        imap.host
                    ),
                );
            }
            if imap.batch_size == 0 {
                bad("imap.batch_size", "must be at least 1".into());
            }
        }
        if let Some(smtp) = &self.smtp
            && smtp.tls == TlsMode::Plain
            && !is_loopback(&smtp.host)
        {
            bad(
                "smtp.tls",
                format!(
                    "\"plain\" is only allowed to a loopback host, not \"{}\"; use \"tls\" or \"starttls\"",
                    smtp.host
                ),
            );
        }
        problems
    }

    pub fn database_path(&self) -> PathBuf {
        self.storage.database.clone().unwrap_or_else(|| self.storage.state_dir.join("postdesk.db"))
    }

    /// All queue names known to the system: configured ones plus the default queue.
    pub fn queue_names(&self) -> Vec<String> {
        let mut names: Vec<String> = self.queues.iter().map(|q| q.name.clone()).collect();
        if !names.contains(&self.tickets.default_queue) {
            names.push(self.tickets.default_queue.clone());
        }
        names
    }

    pub fn queue(&self, name: &str) -> Option<&QueueConfig> {
        self.queues.iter().find(|q| q.name == name)
    }

    /// The address mail of a queue goes out from.
    pub fn queue_address(&self, name: &str) -> &str {
        self.queue(name).and_then(|q| q.address.as_deref()).unwrap_or(&self.address)
    }

    /// Every address that is ours: mail from these is never answered automatically.
    pub fn own_addresses(&self) -> Vec<String> {
        let mut all: Vec<String> = std::iter::once(self.address.clone())
            .chain(self.queues.iter().filter_map(|q| q.address.clone()))
            .map(|a| a.to_ascii_lowercase())
            .collect();
        all.sort();
        all.dedup();
        all
    }
}

pub fn is_loopback(host: &str) -> bool {
    host.eq_ignore_ascii_case("localhost")
        || host.trim_matches(['[', ']']).parse::<std::net::IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

/// 1-based line and column of a byte offset.
pub fn line_column(text: &str, offset: usize) -> (usize, usize) {
    let before = &text[..offset.min(text.len())];
    let line = before.matches('\n').count() + 1;
    let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    (line, column)
}

/// `[logging]`: how log lines are written (src/logging.rs). The level is `POSTDESK_LOG`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LoggingConfig {
    /// `auto` (journald when stderr is the journal, else text), `text`, `json` or `journald`.
    #[serde(default)]
    pub format: crate::logging::LogFormat,
}

/// A secret read from a file: never printed, never logged.
#[derive(Clone)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: String) -> Self {
        // Known to the log filter from the moment it exists, so no library trace can show it.
        crate::logging::register_secret(&value);
        Secret(value)
    }
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(***)")
    }
}

#[derive(Debug, thiserror::Error)]
pub enum SecretError {
    #[error("{path}: cannot read password file: {source}")]
    Read { path: PathBuf, source: std::io::Error },
    #[error("{path}: password file is readable by group or others (mode {mode:o}); run `chmod 600 {path}`")]
    TooOpen { path: PathBuf, mode: u32 },
    #[error("{path}: password file is empty")]
    Empty { path: PathBuf },
    #[error(
        "no password: set {what}.password_file, or pass the credential `{credential}` with systemd's LoadCredential="
    )]
    Missing { what: &'static str, credential: &'static str },
}

/// Reads a password from `file`, or else from systemd's `$CREDENTIALS_DIRECTORY/<credential>`.
pub fn read_secret(file: Option<&Path>, what: &'static str, credential: &'static str) -> Result<Secret, SecretError> {
    use std::os::unix::fs::PermissionsExt;
    let path = match file {
        Some(p) => p.to_path_buf(),
        None => match std::env::var_os("CREDENTIALS_DIRECTORY") {
            Some(dir) => Path::new(&dir).join(credential),
            None => return Err(SecretError::Missing { what, credential }),
        },
    };
    let meta = std::fs::metadata(&path).map_err(|source| SecretError::Read { path: path.clone(), source })?;
    let mode = meta.permissions().mode() & 0o777;
    if file.is_some() && mode & 0o077 != 0 {
        return Err(SecretError::TooOpen { path, mode });
    }
    let text = std::fs::read_to_string(&path).map_err(|source| SecretError::Read { path: path.clone(), source })?;
    let value = text.trim_end_matches(['\r', '\n']).to_string();
    if value.is_empty() {
        return Err(SecretError::Empty { path });
    }
    Ok(Secret::new(value))
}

/// `[retention]`: how long closed tickets are kept. Off unless set.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Retention {
    /// Closed tickets with no activity for this many days are deleted with their mail, attachments, ledger and
    /// outbox rows by the daemon's housekeeping; one audit line each remains. Absent: kept for ever.
    pub closed_ticket_days: Option<std::num::NonZeroU32>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Config, ConfigError> {
        Config::parse(text, Path::new("/etc/postdesk/postdesk.toml"))
    }

    #[test]
    fn minimal_config_gets_defaults_and_resolves_paths() {
        let c = parse("address = \"support@example.com\"\n[storage]\nstate_dir = \"state\"\n").unwrap();
        assert_eq!(c.storage.state_dir, Path::new("/etc/postdesk/state"));
        assert_eq!(c.database_path(), Path::new("/etc/postdesk/state/postdesk.db"));
        assert_eq!(c.tickets.token_format, "[Ticket#{number}]");
        assert_eq!(c.queue_names(), vec!["support".to_string()]);
    }

    #[test]
    fn unknown_key_names_file_line_and_key() {
        let err = parse("address = \"a@b.c\"\n\n[limits]\nmax_mesage_bytes = 5\n").unwrap_err().to_string();
        assert!(err.starts_with("/etc/postdesk/postdesk.toml:4:1:"), "{err}");
        assert!(err.contains("max_mesage_bytes") && err.contains("remove or rename"), "{err}");
    }

    #[test]
    fn metrics_are_off_by_default_and_only_listen_on_loopback() {
        assert!(parse("address = \"a@b.c\"\n").unwrap().metrics.is_none());
        let ok = parse("address = \"a@b.c\"\n[metrics]\nlisten = \"127.0.0.1:9187\"\n").unwrap();
        assert_eq!(ok.metrics.unwrap().listen.port(), 9187);
        parse("address = \"a@b.c\"\n[metrics]\nlisten = \"[::1]:9187\"\n").unwrap();
        let err = parse("address = \"a@b.c\"\n[metrics]\nlisten = \"0.0.0.0:9187\"\n").unwrap_err().to_string();
        assert!(err.contains("metrics.listen") && err.contains("loopback"), "{err}");
    }

    #[test]
    fn wrong_type_names_line() {
        let err = parse("address = \"a@b.c\"\n[limits]\nmax_mime_parts = \"many\"\n").unwrap_err().to_string();
        assert!(err.contains(":3:"), "{err}");
    }

    #[test]
    fn value_errors_name_the_key_and_the_fix() {
        let err = parse("address = \"a@b.c\"\n[tickets]\ntoken_format = \"[Ticket]\"\n").unwrap_err().to_string();
        assert!(err.contains("tickets.token_format") && err.contains("{number}"), "{err}");
        let err =
            parse("address = \"a@b.c\"\n[imap]\nhost = \"mail.example.com\"\ntls = \"plain\"\nusername = \"x\"\n")
                .unwrap_err()
                .to_string();
        assert!(err.contains("imap.tls") && err.contains("loopback"), "{err}");
    }

    #[test]
    fn secret_debug_never_shows_the_value() {
        assert_eq!(format!("{:?}", Secret::new("hunter2".into())), "Secret(***)");
    }

    #[test]
    fn group_readable_password_file_is_refused() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("pw");
        std::fs::write(&p, "secret\n").unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o640)).unwrap();
        let err = read_secret(Some(&p), "imap", "imap-password").unwrap_err();
        assert!(matches!(err, SecretError::TooOpen { .. }), "{err}");
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o600)).unwrap();
        assert_eq!(read_secret(Some(&p), "imap", "imap-password").unwrap().expose(), "secret");
    }
}
