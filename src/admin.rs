//! `postdesk agent | role | queue`: managing who works which queue. The database holds agents, roles and
//! CLI-added queues; the config's [[queues]] are always there too.

use std::path::Path;

use crate::agents::notify::Event;
use clap::Subcommand;

use crate::exit::{EX_CONFIG, EX_NOINPUT, EX_USAGE, Failure};
use crate::inert::line;
use crate::report::print_json;
use crate::setup::{load_config, open_store};

#[derive(Subcommand)]
pub enum AgentCommand {
    /// Add an agent (or rename one), with roles.
    Add {
        /// The agent's mail address.
        address: String,
        /// The agent's name, as customers may see it.
        #[arg(long)]
        name: String,
        /// Role to give (repeatable); created when missing.
        #[arg(long = "role")]
        roles: Vec<String>,
    },
    /// Every agent with roles, queues and notification settings.
    List {
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
    /// A disabled agent gets nothing and can do nothing.
    Disable {
        /// The agent's mail address.
        address: String,
    },
    /// Let a disabled agent work again.
    Enable {
        /// The agent's mail address.
        address: String,
    },
    /// Switch one notification on or off: new-ticket, followup, moved, assigned, lock-timeout.
    Notify {
        /// The agent's mail address.
        address: String,
        /// new-ticket, followup, moved, assigned or lock-timeout.
        event: String,
        /// on or off.
        setting: OnOff,
    },
}

#[derive(Clone, Copy, clap::ValueEnum)]
pub enum OnOff {
    On,
    Off,
}

#[derive(Subcommand)]
pub enum RoleCommand {
    /// Create a role granting queues (repeat --queue), or add queues to it.
    Add {
        /// The role's name.
        name: String,
        /// A queue the role grants (repeatable).
        #[arg(long = "queue")]
        queues: Vec<String>,
    },
    /// Give a role to an agent.
    Give {
        /// The role's name.
        role: String,
        /// The agent's mail address.
        agent: String,
    },
    /// Every role and the queues it grants.
    List {
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Subcommand)]
pub enum QueueCommand {
    /// Add a queue beside the config's [[queues]] (or change one added here).
    Add {
        /// The queue's name, as rules and `--queue` use it.
        name: String,
        /// The queue's own From address; default: the config's address.
        #[arg(long)]
        address: Option<String>,
        /// Template set under the templates directory.
        #[arg(long)]
        templates: Option<String>,
    },
    /// Every queue, from the config and from here, with its members.
    List {
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
}

fn now() -> i64 {
    chrono::Utc::now().timestamp()
}

pub fn agent(config_path: &Path, command: AgentCommand) -> Result<(), Failure> {
    let config = load_config(config_path)?;
    let mut store = open_store(&config)?;
    match command {
        AgentCommand::Add { address, name, roles } => {
            if !address.contains('@') {
                return Err(Failure::new(EX_USAGE, format!("\"{address}\" is not a mail address")));
            }
            let tx = store.begin()?;
            tx.upsert_agent(&address, &name, now())?;
            for role in &roles {
                tx.give_role(&address, role)?;
            }
            tx.commit()?;
            crate::say!("agent {} ({name}) with roles: {}", address.to_ascii_lowercase(), roles.join(", "));
        }
        AgentCommand::List { json } => {
            let agents = store.agent_list()?;
            if json {
                print_json(&agents);
            } else {
                for a in agents {
                    let off: Vec<&str> = a.notify.iter().filter(|(_, on)| !on).map(|(e, _)| e.as_str()).collect();
                    crate::say!(
                        "{:<32} {:<20} {:<8} roles: {:<20} queues: {}{}",
                        line(&a.address),
                        line(&a.name),
                        if a.enabled { "enabled" } else { "DISABLED" },
                        a.roles.join(","),
                        a.queues.join(","),
                        if off.is_empty() { String::new() } else { format!("  notifications off: {}", off.join(",")) }
                    );
                }
            }
        }
        AgentCommand::Disable { address } => set_enabled(&mut store, &address, false)?,
        AgentCommand::Enable { address } => set_enabled(&mut store, &address, true)?,
        AgentCommand::Notify { address, event, setting } => {
            if !Event::KEYS.contains(&event.as_str()) {
                return Err(Failure::new(
                    EX_USAGE,
                    format!("unknown event \"{event}\"; one of {}", Event::KEYS.join(", ")),
                ));
            }
            let tx = store.begin()?;
            if tx.agent(&address)?.is_none() {
                return Err(Failure::new(EX_NOINPUT, format!("no agent {address}")));
            }
            tx.set_agent_notify(&address, &event, matches!(setting, OnOff::On))?;
            tx.commit()?;
            crate::say!("{address}: {event} notifications {}", if matches!(setting, OnOff::On) { "on" } else { "off" });
        }
    }
    Ok(())
}

fn set_enabled(store: &mut crate::store::Store, address: &str, enabled: bool) -> Result<(), Failure> {
    let tx = store.begin()?;
    if !tx.set_agent_enabled(address, enabled)? {
        return Err(Failure::new(EX_NOINPUT, format!("no agent {address}")));
    }
    tx.commit()?;
    crate::say!("{address} {}", if enabled { "enabled" } else { "disabled" });
    Ok(())
}

pub fn role(config_path: &Path, command: RoleCommand) -> Result<(), Failure> {
    let mut config = load_config(config_path)?;
    crate::setup::add_cli_queues(&mut config);
    let mut store = open_store(&config)?;
    match command {
        RoleCommand::Add { name, queues } => {
            let known = config.queue_names();
            if let Some(bad) = queues.iter().find(|q| !known.contains(q)) {
                return Err(Failure::new(EX_CONFIG, format!("no queue \"{bad}\"; known queues: {}", known.join(", "))));
            }
            let tx = store.begin()?;
            tx.upsert_role(&name)?;
            for q in &queues {
                tx.grant_queue(&name, q)?;
            }
            tx.commit()?;
            crate::say!("role {name} grants: {}", queues.join(", "));
        }
        RoleCommand::Give { role, agent } => {
            let tx = store.begin()?;
            if tx.agent(&agent)?.is_none() {
                return Err(Failure::new(EX_NOINPUT, format!("no agent {agent}")));
            }
            tx.give_role(&agent, &role)?;
            tx.commit()?;
            crate::say!("{agent} now has role {role}");
        }
        RoleCommand::List { json } => {
            let roles = store.role_list()?;
            if json {
                print_json(&roles);
            } else {
                for r in roles {
                    crate::say!(
                        "{:<20} queues: {:<30} agents: {}",
                        line(&r.name),
                        line(&r.queues.join(",")),
                        line(&r.agents.join(","))
                    );
                }
            }
        }
    }
    Ok(())
}

pub fn queue(config_path: &Path, command: QueueCommand) -> Result<(), Failure> {
    let mut config = load_config(config_path)?;
    crate::setup::add_cli_queues(&mut config);
    let mut store = open_store(&config)?;
    match command {
        QueueCommand::Add { name, address, templates } => {
            if config.queues.iter().any(|q| q.name == name) && store.queue_rows()?.iter().all(|q| q.name != name) {
                return Err(Failure::new(
                    EX_CONFIG,
                    format!("queue \"{name}\" is defined in {}; change it there", config_path.display()),
                ));
            }
            let tx = store.begin()?;
            tx.upsert_queue(&name, address.as_deref(), templates.as_deref())?;
            tx.commit()?;
            crate::say!("queue {name} added");
        }
        QueueCommand::List { json } => {
            let roles = store.role_list()?;
            let agents = store.agent_list()?;
            let rows: Vec<serde_json::Value> = config
                .queue_names()
                .into_iter()
                .map(|name| {
                    let members: Vec<&str> =
                        agents.iter().filter(|a| a.enabled && a.queues.contains(&name)).map(|a| a.address.as_str()).collect();
                    let granted_by: Vec<&str> =
                        roles.iter().filter(|r| r.queues.contains(&name)).map(|r| r.name.as_str()).collect();
                    serde_json::json!({
                        "name": name,
                        "address": config.queue_address(&name),
                        "templates": config.queue(&name).and_then(|q| q.templates.clone()).unwrap_or_else(|| "default".into()),
                        "roles": granted_by,
                        "members": members,
                    })
                })
                .collect();
            if json {
                print_json(&rows);
            } else {
                for q in rows {
                    crate::say!(
                        "{:<14} {:<30} templates {:<10} members: {}",
                        line(q["name"].as_str().unwrap_or("")),
                        line(q["address"].as_str().unwrap_or("")),
                        line(q["templates"].as_str().unwrap_or("")),
                        line(
                            &q["members"]
                                .as_array()
                                .map(|m| m.iter().filter_map(|v| v.as_str()).collect::<Vec<_>>().join(", "))
                                .unwrap_or_default()
                        )
                    );
                }
            }
        }
    }
    Ok(())
}

/// Applies the config's `[[role]]` and `[[agent]]` entries to the database (idempotent).
pub fn seed_from_config(
    store: &mut crate::store::Store,
    config: &crate::config::Config,
) -> Result<(), crate::store::StoreError> {
    if config.seed_roles.is_empty() && config.seed_agents.is_empty() {
        return Ok(());
    }
    let tx = store.begin()?;
    for role in &config.seed_roles {
        tx.upsert_role(&role.name)?;
        for q in &role.queues {
            tx.grant_queue(&role.name, q)?;
        }
    }
    for agent in &config.seed_agents {
        tx.upsert_agent(&agent.address, &agent.name, now())?;
        for role in &agent.roles {
            tx.give_role(&agent.address, role)?;
        }
    }
    tx.commit()
}
