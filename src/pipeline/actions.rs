//! Ticket actions, one implementation for two front ends: an agent's mail (its `#commands` and its new text, see
//! `agent.rs`) and the command line (`postdesk ticket reply|note|close|…`, see `crate::act`). Both run these
//! functions inside one transaction and leave the same history records; every mail they cause (the answer to the
//! customer, notifications to agents) is written to the outbox in that transaction, and `postdesk run` sends it.
//!
//! Who acts is an [`Actor`]: an agent, whose rights are checked on the ticket's queue exactly as for mail, or
//! `admin`, the operator at the command line, who may act on every queue and is recorded as `admin`.

use crate::agents::notify::{Event, Notice, Whom, event_article, notify};
use crate::agents::{Command, CommandLine};
use crate::model::{Address, TicketState};
use crate::outbound::templates::CommandOutcome;
use crate::respond::{Compose, TicketFacts};
use crate::store::{AgentRow, NewArticle, Store, StoreError, Tx};
use crate::thread::ThreadLookup;

use super::Pipeline;

/// The history's actor for the operator at the command line.
pub const ADMIN: &str = "admin";

/// Who acts on a ticket.
#[derive(Debug, Clone)]
pub enum Actor {
    /// An enabled agent: by proven mail, or named with `--from-agent`.
    Agent(AgentRow),
    /// The operator at the command line: rights on every queue, recorded as [`ADMIN`].
    Admin,
}

impl Actor {
    /// How the ticket history records this actor.
    pub fn id(&self) -> &str {
        match self {
            Actor::Agent(a) => &a.address,
            Actor::Admin => ADMIN,
        }
    }

    /// How notifications to other agents name this actor.
    fn name(&self) -> &str {
        match self {
            Actor::Agent(a) => &a.name,
            Actor::Admin => "An administrator",
        }
    }

    /// The agent who caused an event is never notified of it.
    fn agent_address(&self) -> Option<&str> {
        match self {
            Actor::Agent(a) => Some(&a.address),
            Actor::Admin => None,
        }
    }

    pub fn can(&self, tx: &Tx<'_>, queue: &str) -> Result<bool, StoreError> {
        match self {
            Actor::Agent(a) => tx.agent_can(&a.address, queue),
            Actor::Admin => Ok(true),
        }
    }
}

/// What the command line asks of a ticket.
#[derive(Debug, Clone)]
pub enum Action {
    /// New text for the customer (and the ticket's Cc parties).
    Reply(String),
    /// An internal note.
    Note(String),
    /// A command, parsed by the same grammar as an agent's `#command` line.
    Command(CommandLine),
}

/// What an action did, for the command line to print.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Acted {
    /// The ticket acted on (a merged ticket's number leads to the ticket it was merged into).
    pub number: String,
    pub outcome: String,
}

#[derive(Debug, thiserror::Error)]
pub enum ActionError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("no ticket {0}")]
    NoTicket(String),
    /// `--from-agent` names nobody who may act, or the agent has no rights on the ticket's queue.
    #[error("{0}")]
    NotAllowed(String),
    /// The action was refused (an unknown queue, an assignee without rights, an empty text): nothing was changed.
    #[error("{0}")]
    Refused(String),
}

impl Pipeline {
    /// Runs one action from the command line in one transaction. A refused action changes nothing.
    pub fn act(
        &self,
        store: &mut Store,
        number: &str,
        from_agent: Option<&str>,
        action: Action,
    ) -> Result<Acted, ActionError> {
        let now = (self.clock)();
        let tx = store.begin()?;
        let actor = match from_agent {
            None => Actor::Admin,
            Some(address) => match tx.agent(address)? {
                Some(agent) if agent.enabled => Actor::Agent(agent),
                _ => return Err(ActionError::NotAllowed(format!("{address} is not an enabled agent"))),
            },
        };
        let ticket = tx.ticket_by_number(number)?.ok_or_else(|| ActionError::NoTicket(number.to_string()))?;
        let facts = tx.ticket_facts(ticket.id)?;
        if !actor.can(&tx, &facts.queue)? {
            return Err(ActionError::NotAllowed(format!("{} has no rights on queue {}", actor.id(), facts.queue)));
        }
        let outcome = match action {
            Action::Reply(text) => {
                let text = non_empty(&text, "reply")?;
                tx.touch_ticket(facts.id, now, false)?;
                let message_id = self.relay_to_customer(&tx, &facts, &actor, text, now)?;
                let message_id = message_id.map_err(ActionError::Refused)?;
                let (customer, _, cc) = tx.customer_parties(facts.id)?;
                let cc = if cc.is_empty() { String::new() } else { format!(" (Cc {})", cc.join(", ")) };
                format!("answer to {customer}{cc} queued as <{message_id}>")
            }
            Action::Note(text) => {
                let text = non_empty(&text, "note")?;
                self.store_cli_note(&tx, &facts, &actor, text, now)?;
                tx.touch_ticket(facts.id, now, false)?;
                self.post_note(&tx, &facts, &actor, text, now)?;
                "internal note added".to_string()
            }
            Action::Command(line) => {
                let done = self.run_command(&tx, &facts, &actor, &line, now)?;
                if !done.ok {
                    return Err(ActionError::Refused(done.outcome));
                }
                tx.touch_ticket(facts.id, now, false)?;
                done.outcome
            }
        };
        tx.commit()?;
        Ok(Acted { number: facts.number, outcome })
    }

    /// A note written at the command line is kept as an internal article, as an agent's `#note` mail is.
    fn store_cli_note(
        &self,
        tx: &Tx<'_>,
        t: &TicketFacts,
        actor: &Actor,
        text: &str,
        now: i64,
    ) -> Result<i64, StoreError> {
        let (sender, name) = match actor {
            Actor::Agent(a) => (Some(a.address.as_str()), Some(a.name.as_str())),
            Actor::Admin => (None, Some(ADMIN)),
        };
        tx.add_article(&NewArticle {
            ticket_id: t.id,
            direction: "agent",
            internal: true,
            sender,
            sender_name: name,
            recipients: &[],
            cc: &[],
            subject: &t.subject,
            message_id: None,
            in_reply_to: None,
            references: &[],
            body_text: text,
            visible_text: text,
            classification: "human",
            classification_reason: Some("command line"),
            duplicate_of: None,
            raw_id: None,
            sent_at: Some(now),
            received_at: now,
        })
    }

    /// An internal note was added: recorded, and the queue's agents (but its author) are told.
    pub(super) fn post_note(
        &self,
        tx: &Tx<'_>,
        t: &TicketFacts,
        actor: &Actor,
        text: &str,
        now: i64,
    ) -> Result<(), StoreError> {
        tx.add_history(t.id, now, actor.id(), "note", "")?;
        let article = event_article(&t.subject, format!("Internal note by {}:\n\n{text}", actor.name()), now);
        let notice = Notice { ticket: t, article, customer: customer_of(tx, t.id)?, in_reply_to: None };
        notify(&self.responder(), tx, &notice, Event::Note, Whom::Queue, actor.agent_address(), now)?;
        Ok(())
    }

    /// New text goes to the customer and the ticket's Cc parties, from the queue address: the customer never sees
    /// an agent's address. The inner result is the Message-ID queued, or why no mail could be built.
    pub(super) fn relay_to_customer(
        &self,
        tx: &Tx<'_>,
        t: &TicketFacts,
        actor: &Actor,
        body: &str,
        now: i64,
    ) -> Result<Result<String, String>, StoreError> {
        let config = &self.setup.config;
        let (customer, customer_name, cc) = tx.customer_parties(t.id)?;
        let name = match actor {
            Actor::Agent(agent) if config.agents.show_agent_name => format!("{} ({})", agent.name, config.site_name),
            _ => config.site_name.clone(),
        };
        let from = Address::new(Some(&name), config.queue_address(&t.queue));
        let (in_reply_to, mut references) = tx.last_customer_message(t.id)?.unwrap_or((None, Vec::new()));
        references.extend(in_reply_to.iter().cloned());
        let compose = Compose {
            kind: "agent-reply",
            ticket: Some(t),
            message_id: self.signer.message_id(&t.number, from.domain()),
            from,
            to: vec![Address::new(customer_name.as_deref(), &customer)],
            cc: cc.iter().map(|c| Address::new(None, c)).collect(),
            reply_to: None,
            subject: format!("Re: {} {}", self.tokens.render(&t.number), t.subject),
            text: body.to_string(),
            html: None,
            in_reply_to,
            references,
            auto: None,
            article: true,
            classification: "human",
        };
        let queued = self.responder().queue(tx, compose, now)?;
        match &queued {
            Ok((_, message_id)) => {
                tx.add_history(t.id, now, actor.id(), "answered", &format!("<{message_id}>"))?;
                // An answered lock is no longer at risk of timing out.
                tx.clear_lock_timer(t.id)?;
            }
            Err(reason) => tx.add_history(t.id, now, actor.id(), "answer not sent", reason)?,
        }
        Ok(queued.map(|(_, message_id)| message_id))
    }

    /// Runs one command line. Every command is idempotent: running it twice leaves the ticket as running it once.
    pub(super) fn run_command(
        &self,
        tx: &Tx<'_>,
        t: &TicketFacts,
        actor: &Actor,
        line: &CommandLine,
        now: i64,
    ) -> Result<CommandOutcome, StoreError> {
        let result = match &line.parsed {
            Ok(command) => self.apply_command(tx, t, actor, command, now)?,
            Err(why) => Err(why.clone()),
        };
        let (ok, outcome) = match result {
            Ok(done) => (true, done),
            Err(refused) => (false, refused),
        };
        let event = if ok { "command" } else { "command refused" };
        tx.add_history(t.id, now, actor.id(), event, &format!("{}: {outcome}", line.text))?;
        Ok(CommandOutcome { command: line.text.clone(), outcome, ok })
    }

    /// One command's effect: `Ok` what was done, `Err` why it was refused.
    fn apply_command(
        &self,
        tx: &Tx<'_>,
        t: &TicketFacts,
        actor: &Actor,
        command: &Command,
        now: i64,
    ) -> Result<Result<String, String>, StoreError> {
        let config = &self.setup.config;
        let lock_until = now + config.agents.lock_minutes as i64 * 60;
        Ok(match command {
            Command::Close => {
                tx.set_state(t.id, TicketState::Closed)?;
                Ok("closed".into())
            }
            Command::Reopen => {
                tx.set_state(t.id, TicketState::Open)?;
                Ok("open again".into())
            }
            Command::Take => match actor {
                Actor::Agent(agent) => {
                    tx.set_lock(t.id, Some(&agent.address), Some(lock_until))?;
                    Ok(format!("yours, locked for {} minutes unless you answer", config.agents.lock_minutes))
                }
                Actor::Admin => Err("only an agent can take a ticket; assign it to one".into()),
            },
            Command::Assign(to) => self.assign(tx, t, actor, to, lock_until, now)?,
            Command::Queue(name) => {
                if config.queue(name).is_none() && *name != config.tickets.default_queue {
                    Err(format!("no queue named \"{name}\""))
                } else if !actor.can(tx, name)? {
                    Err(format!("you have no rights on queue {name}"))
                } else {
                    tx.set_queue(t.id, name)?;
                    let moved = tx.ticket_facts(t.id)?;
                    let text = format!("{} moved this ticket to queue {name}.", actor.name());
                    let article = event_article(&t.subject, text, now);
                    let notice =
                        Notice { ticket: &moved, article, customer: customer_of(tx, t.id)?, in_reply_to: None };
                    notify(&self.responder(), tx, &notice, Event::Moved, Whom::Queue, actor.agent_address(), now)?;
                    Ok(format!("moved to queue {name}"))
                }
            }
            Command::Priority(p) => {
                tx.set_priority(t.id, *p)?;
                Ok(format!("priority {}", p.as_str()))
            }
            Command::Tag { add, remove } => {
                for tag in add {
                    tx.add_tag(t.id, tag)?;
                }
                for tag in remove {
                    tx.remove_tag(t.id, tag)?;
                }
                Ok("tags updated".into())
            }
            Command::Merge(number) => match tx.ticket_by_number(number)? {
                Some(target) if target.id == t.id => Err("a ticket cannot be merged into itself".into()),
                Some(target) => {
                    let target_queue = tx.ticket_state(target.id)?.1;
                    if actor.can(tx, &target_queue)? {
                        tx.merge_ticket(t.id, target.id, now)?;
                        tx.add_history(target.id, now, actor.id(), "merged in", &t.number)?;
                        Ok(format!("merged into ticket {}", target.number))
                    } else {
                        Err(format!("you have no rights on queue {target_queue} of ticket {number}"))
                    }
                }
                None => Err(format!("no ticket {number}")),
            },
            Command::Pending(days) => {
                tx.set_pending(t.id, Some(now + i64::from(*days) * 86_400))?;
                Ok(format!("pending for {days} days"))
            }
        })
    }

    fn assign(
        &self,
        tx: &Tx<'_>,
        t: &TicketFacts,
        actor: &Actor,
        to: &str,
        lock_until: i64,
        now: i64,
    ) -> Result<Result<String, String>, StoreError> {
        Ok(match tx.agent(to)? {
            Some(target) if target.enabled && tx.agent_can(&target.address, &t.queue)? => {
                tx.set_lock(t.id, Some(&target.address), Some(lock_until))?;
                let article = event_article(&t.subject, format!("{} assigned this ticket to you.", actor.name()), now);
                let notice = Notice { ticket: t, article, customer: customer_of(tx, t.id)?, in_reply_to: None };
                let whom = Whom::Agent(&target.address);
                notify(&self.responder(), tx, &notice, Event::Assigned, whom, actor.agent_address(), now)?;
                Ok(format!("assigned to {}", target.address))
            }
            Some(target) if target.enabled => Err(format!("{} has no rights on queue {}", target.address, t.queue)),
            _ => Err(format!("{to} is not an enabled agent")),
        })
    }
}

fn non_empty<'a>(text: &'a str, what: &str) -> Result<&'a str, ActionError> {
    let text = text.trim();
    if text.is_empty() {
        return Err(ActionError::Refused(format!("the {what} is empty; give its text on standard input")));
    }
    Ok(text)
}

pub(super) fn customer_of(tx: &Tx<'_>, ticket_id: i64) -> Result<Address, StoreError> {
    let (customer, name, _) = tx.customer_parties(ticket_id)?;
    Ok(Address::new(name.as_deref(), &customer))
}
