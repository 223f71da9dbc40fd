//! Everything an admin edits, loaded and validated as one unit: the config file, the rule files and the templates.
//! `postdesk check` prints every problem at once; the daemon swaps a whole new [`Setup`] in on reload, or keeps
//! the running one when anything is wrong.

use std::fmt;
use std::path::Path;
use std::sync::Arc;

use crate::config::{Config, ConfigError};
use crate::exit::{EX_CONFIG, Failure};
use crate::outbound::{TemplateErrors, Templates};
use crate::rules::{RuleErrors, RuleSet, Vocabulary};
use crate::store::Store;
use crate::store::integrity::{Thoroughness, UseLock};

#[derive(Clone)]
pub struct Setup {
    pub config: Arc<Config>,
    pub rules: Arc<RuleSet>,
    pub templates: Arc<Templates>,
}

#[derive(Debug)]
pub enum SetupError {
    Config(ConfigError),
    /// Problems in rule files, templates or how the config refers to them; all of them, one per line.
    Files(Vec<String>),
}

impl fmt::Display for SetupError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SetupError::Config(e) => write!(f, "{e}"),
            SetupError::Files(lines) => f.write_str(&lines.join("\n")),
        }
    }
}

impl From<ConfigError> for SetupError {
    fn from(e: ConfigError) -> Self {
        SetupError::Config(e)
    }
}

impl Setup {
    pub fn load(config_path: &Path) -> Result<Setup, SetupError> {
        Self::with_cli_queues(Config::load(config_path)?)
    }

    /// A loaded config's setup, with the queues added by `postdesk queue add` (see [`add_cli_queues`]).
    pub fn with_cli_queues(mut config: Config) -> Result<Setup, SetupError> {
        add_cli_queues(&mut config);
        Self::from_config(config)
    }

    pub fn from_config(config: Config) -> Result<Setup, SetupError> {
        let mut problems = Vec::new();
        let templates = match Templates::load(&config.templates.dir) {
            Ok(t) => Some(t),
            Err(e) => {
                problems.extend(template_lines(&e));
                None
            }
        };
        if let Some(t) = &templates {
            let sets = t.sets();
            for q in &config.queues {
                if let Some(set) = &q.templates
                    && !sets.contains(set)
                {
                    problems.push(format!(
                        "{}: queues \"{}\": template set \"{set}\" does not exist under {}; known sets: {}",
                        config.source.display(),
                        q.name,
                        config.templates.dir.display(),
                        sets.join(", ")
                    ));
                }
            }
        }
        let rules = match Self::load_rules(&config, templates.as_ref(), &config.rules.dir) {
            Ok(r) => Some(r),
            Err(e) => {
                problems.extend(e.0.iter().map(|r| r.to_string()));
                None
            }
        };
        match (rules, templates) {
            (Some(rules), Some(templates)) if problems.is_empty() => {
                Ok(Setup { config: Arc::new(config), rules: Arc::new(rules), templates: Arc::new(templates) })
            }
            _ => Err(SetupError::Files(problems)),
        }
    }

    /// Rules from `dir`, validated against the config's queues and the templates' names. A missing directory is an
    /// error: a typo in `rules.dir` must not silently route everything to the default queue.
    pub fn load_rules(config: &Config, templates: Option<&Templates>, dir: &Path) -> Result<RuleSet, RuleErrors> {
        let vocab = vocabulary(config, templates);
        if !dir.is_dir() {
            return Err(RuleErrors(vec![crate::rules::RuleError {
                file: dir.to_path_buf(),
                line: 0,
                column: 0,
                rule: None,
                message: "rules directory does not exist; create it (it may be empty) or fix rules.dir".into(),
            }]));
        }
        RuleSet::load_dir(dir, &vocab).map(|rules| rules.with_body_limit(config.limits.max_rule_body_bytes))
    }

    /// The same config and templates with another rule set (hot reload of rules).
    pub fn with_rules(&self, rules: RuleSet) -> Setup {
        Setup { config: self.config.clone(), rules: Arc::new(rules), templates: self.templates.clone() }
    }
}

/// Queues added with `postdesk queue add` live in the database; the config's own [[queues]] win on a name clash.
/// Read-only, and only when the database exists: loading a setup never creates one.
pub fn add_cli_queues(config: &mut Config) {
    let path = config.database_path();
    if !path.exists() {
        return;
    }
    let Ok(rows) = crate::store::Store::open_read_only(&path).and_then(|s| s.queue_rows()) else { return };
    for row in rows {
        if config.queue(&row.name).is_none() {
            config.queues.push(crate::config::QueueConfig {
                name: row.name,
                address: row.address,
                templates: row.templates,
                comment_address: None,
            });
        }
    }
}

pub fn vocabulary(config: &Config, templates: Option<&Templates>) -> Vocabulary {
    Vocabulary { queues: config.queue_names(), templates: templates.map(Templates::names).unwrap_or_default() }
}

fn template_lines(e: &TemplateErrors) -> Vec<String> {
    e.0.iter().map(|t| t.to_string()).collect()
}

pub fn load_config(path: &Path) -> Result<Config, Failure> {
    Ok(Config::load(path)?)
}

/// Config, rules and templates together; every problem in one message, exit 78.
pub fn load_setup(path: &Path) -> Result<Setup, Failure> {
    Setup::load(path).map_err(setup_failure)
}

/// [`load_setup`] for a config already loaded.
pub fn setup_for(config: Config) -> Result<Setup, Failure> {
    Setup::with_cli_queues(config).map_err(setup_failure)
}

fn setup_failure(e: SetupError) -> Failure {
    Failure::new(EX_CONFIG, e.to_string())
}

/// The HMAC key that signs our Message-IDs and reply addresses: made on first use, kept in the state directory.
pub fn load_signer(config: &Config) -> Result<std::sync::Arc<crate::outbound::Signer>, Failure> {
    std::fs::create_dir_all(&config.storage.state_dir)
        .map_err(|e| Failure::new(EX_CONFIG, format!("{}: {e}", config.storage.state_dir.display())))?;
    crate::outbound::Signer::load_or_create(&config.storage.state_dir)
        .map(std::sync::Arc::new)
        .map_err(|e| Failure::new(EX_CONFIG, format!("{}: signing key: {e}", config.storage.state_dir.display())))
}

pub fn open_store(config: &Config) -> Result<Store, Failure> {
    use crate::store::integrity::{UseLock, missing_or_empty, preflight};
    let path = prepare_state_dir(config)?;
    // A database made here (`ticket list` before the daemon's first start) is made as `run` and `ingest` make
    // theirs: alone, so that a daemon starting at the same moment never meets the file at 0 bytes and refuses it.
    let _making = if missing_or_empty(&path) { UseLock::to_create(&path)? } else { None };
    // Never an empty database in place of a lost one: `run` would then carry on without the history.
    preflight(&path, &config.storage.state_dir)?;
    Ok(Store::open(&path)?)
}

/// What `run`, `ingest` and the quarantine actions open: the state directory made, then the database checked
/// (`store::integrity::open_checked`), with the use lock that a restore waits for.
pub fn open_checked_store(config: &Config, thoroughness: Thoroughness) -> Result<(Store, UseLock), Failure> {
    let path = prepare_state_dir(config)?;
    Ok(crate::store::integrity::open_checked(&path, &config.storage.state_dir, thoroughness)?)
}

/// The database's path, once its directory exists. A state directory that cannot be made is the admin's to fix
/// (78), not a bug in postdesk (70); root never makes one inside the service user's directory.
fn prepare_state_dir(config: &Config) -> Result<std::path::PathBuf, Failure> {
    let path = config.database_path();
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        crate::checkup::refuse_root_creating_database(dir, &path)?;
        std::fs::create_dir_all(dir).map_err(|e| {
            Failure::new(
                EX_CONFIG,
                format!("{}: cannot create the state directory: {e}; fix storage.state_dir", dir.display()),
            )
        })?;
    }
    Ok(path)
}
