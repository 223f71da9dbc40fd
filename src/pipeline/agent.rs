//! Mail from agents. It counts as an agent's only with proof we issued (see `agents::auth`); then its commands run
//! (with rights checks), its text is relayed to the customer from the queue address or kept as an internal note,
//! and the agent gets a transcript of what was done and refused.

use tracing::info;

use super::{Incoming, KeptAs, Outcome, Pipeline, RawRef};
use crate::agents::notify::{Event, Notice, Whom, event_article, notify, to_agent};
use crate::agents::{AgentProof, AuthContext, Command, CommandLine, parse_agent_reply, prove_agent};
use crate::model::{Address, InboundMail, TicketState};
use crate::outbound::templates::CommandOutcome;
use crate::respond::{Compose, TicketFacts, person};
use crate::store::{AgentRow, StoreError, Tx};
use crate::thread::{self, Resolution, ThreadLookup};

/// An enabled agent proven to have written a mail, and the ticket it is about.
pub(super) struct ProvenAgent {
    pub agent: AgentRow,
    pub ticket_id: i64,
}

impl Pipeline {
    /// The enabled agent who provably wrote `mail`, with the ticket their proof names (if it names one).
    pub(super) fn proven_agent(&self, tx: &Tx<'_>, mail: &InboundMail) -> Result<Option<ProvenAgent>, StoreError> {
        let Some(from) = mail.from.as_ref().map(Address::key) else { return Ok(None) };
        let Some(agent) = tx.agent(&from)?.filter(|a| a.enabled) else { return Ok(None) };
        let ctx = AuthContext {
            signer: &self.signer,
            own_addresses: &self.own_addresses,
            authserv_id: self.setup.config.agents.authserv_id.as_deref(),
        };
        let Some(AgentProof { ticket_number, .. }) = prove_agent(mail, &agent.address, &ctx) else {
            info!(agent = %agent.address, "From names an agent but the mail carries no proof: handled as customer mail");
            return Ok(None);
        };
        let ticket = match ticket_number {
            Some(n) => tx.ticket_by_number(&n)?,
            None => match thread::resolve(mail, &self.tokens, tx)? {
                Resolution::Existing { ticket, .. } => Some(ticket),
                Resolution::New { .. } => None,
            },
        };
        Ok(ticket.map(|t| ProvenAgent { agent, ticket_id: t.id }))
    }

    pub(super) fn agent_mail(
        &self,
        tx: &Tx<'_>,
        incoming: &Incoming,
        mail: &InboundMail,
        raw: RawRef<'_>,
        proven: &ProvenAgent,
        now: i64,
    ) -> Result<Outcome, StoreError> {
        let (agent, ticket_id) = (&proven.agent, proven.ticket_id);
        let facts = tx.ticket_facts(ticket_id)?;
        let reply = parse_agent_reply(&mail.visible_text);
        let to_comment_address = self
            .setup
            .config
            .queue(&facts.queue)
            .and_then(|q| q.comment_address.as_deref())
            .is_some_and(|c| mail.recipient_keys().iter().any(|r| r.eq_ignore_ascii_case(c)));
        let rights = tx.agent_can(&agent.address, &facts.queue)?;
        let note = reply.note || to_comment_address || !rights;
        let raw_id = tx.insert_raw(&incoming.raw, raw.zstd, raw.sha)?;
        let kept = KeptAs { direction: "agent", internal: note, visible_text: &reply.body, duplicate_of: None };
        let article_id = self.add_article(tx, ticket_id, mail, kept, raw_id, now)?;
        tx.touch_ticket(ticket_id, now, false)?;
        let mut outcomes = Vec::new();
        if rights {
            for line in &reply.commands {
                outcomes.push(self.run_command(tx, &facts, agent, line, now)?);
            }
        } else {
            outcomes.push(CommandOutcome {
                command: "(your mail)".into(),
                outcome: format!("refused: you have no rights on queue {}; kept as an internal note", facts.queue),
                ok: false,
            });
            tx.add_history(ticket_id, now, &agent.address, "refused", &format!("no rights on queue {}", facts.queue))?;
        }
        let facts = tx.ticket_facts(ticket_id)?;
        if !note && !reply.body.is_empty() {
            self.relay_to_customer(tx, &facts, agent, &reply.body, now)?;
        } else if note && !reply.body.is_empty() {
            tx.add_history(ticket_id, now, &agent.address, "note", "")?;
            let article =
                event_article(&facts.subject, format!("Internal note by {}:\n\n{}", agent.name, reply.body), now);
            let notice = Notice { ticket: &facts, article, customer: customer_of(tx, ticket_id)?, in_reply_to: None };
            notify(&self.responder(), tx, &notice, Event::Note, Whom::Queue, Some(&agent.address), now)?;
        }
        if !outcomes.is_empty() {
            self.transcript(tx, &facts, agent, mail, outcomes, now)?;
        }
        tx.record_ledger(&incoming.stored(raw.sha, mail, ticket_id, article_id), now)?;
        let what = if note { "note" } else { "answer" };
        Ok(Outcome::FollowUp {
            number: facts.number,
            via: format!("agent {} ({what})", agent.address),
            flagged_duplicate: false,
        })
    }

    /// The agent's new text goes to the customer and the ticket's Cc parties, from the queue address: the customer
    /// never sees the agent's address.
    fn relay_to_customer(
        &self,
        tx: &Tx<'_>,
        t: &TicketFacts,
        agent: &AgentRow,
        body: &str,
        now: i64,
    ) -> Result<(), StoreError> {
        let config = &self.setup.config;
        let (customer, customer_name, cc) = tx.customer_parties(t.id)?;
        let name = if config.agents.show_agent_name {
            format!("{} ({})", agent.name, config.site_name)
        } else {
            config.site_name.clone()
        };
        let from = Address::new(Some(&name), config.queue_address(&t.queue));
        let (in_reply_to, mut references) = tx.last_customer_message(t.id)?.unwrap_or((None, Vec::new()));
        references.extend(in_reply_to.iter().cloned());
        let responder = self.responder();
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
        match responder.queue(tx, compose, now)? {
            Ok((_, message_id)) => {
                tx.add_history(t.id, now, &agent.address, "answered", &format!("<{message_id}>"))?;
                // An answered lock is no longer at risk of timing out.
                tx.clear_lock_timer(t.id)?;
            }
            Err(reason) => tx.add_history(t.id, now, &agent.address, "answer not sent", &reason)?,
        }
        Ok(())
    }

    fn transcript(
        &self,
        tx: &Tx<'_>,
        t: &TicketFacts,
        agent: &AgentRow,
        mail: &InboundMail,
        commands: Vec<CommandOutcome>,
        now: i64,
    ) -> Result<(), StoreError> {
        let config = &self.setup.config;
        let queue_address = config.queue_address(&t.queue).to_string();
        let from = Address::new(Some(&config.site_name), &queue_address);
        let agent_address = Address::new(Some(&agent.name), &agent.address);
        let responder = self.responder();
        let mut context = responder.context(mail, Some(t), &from, &customer_of(tx, t.id)?, now);
        context.agent = Some(person(&agent_address));
        context.commands = Some(commands);
        let rendered = match responder.render(&t.queue, "transcript", &context) {
            Ok(r) => r,
            Err(reason) => {
                tracing::warn!(reason = %reason, "transcript not sent");
                return Ok(());
            }
        };
        let compose = to_agent(&responder, t, agent, "transcript", rendered, mail.message_id.clone());
        if let Err(reason) = responder.queue(tx, compose, now)? {
            tracing::warn!(reason = %reason, "transcript not sent");
        }
        Ok(())
    }

    /// Runs one command line. Every command is idempotent: running it twice leaves the ticket as running it once.
    fn run_command(
        &self,
        tx: &Tx<'_>,
        t: &TicketFacts,
        agent: &AgentRow,
        line: &CommandLine,
        now: i64,
    ) -> Result<CommandOutcome, StoreError> {
        let done = |outcome: String| CommandOutcome { command: line.text.clone(), outcome, ok: true };
        let refused = |outcome: String| CommandOutcome { command: line.text.clone(), outcome, ok: false };
        let command = match &line.parsed {
            Ok(c) => c,
            Err(why) => return Ok(refused(why.clone())),
        };
        let lock_until = now + self.setup.config.agents.lock_minutes as i64 * 60;
        let outcome = match command {
            Command::Close => {
                tx.set_state(t.id, TicketState::Closed)?;
                done("closed".into())
            }
            Command::Reopen => {
                tx.set_state(t.id, TicketState::Open)?;
                done("open again".into())
            }
            Command::Take => {
                tx.set_lock(t.id, Some(&agent.address), Some(lock_until))?;
                done(format!("yours, locked for {} minutes unless you answer", self.setup.config.agents.lock_minutes))
            }
            Command::Assign(to) => match tx.agent(to)? {
                Some(target) if target.enabled && tx.agent_can(&target.address, &t.queue)? => {
                    tx.set_lock(t.id, Some(&target.address), Some(lock_until))?;
                    let article =
                        event_article(&t.subject, format!("{} assigned this ticket to you.", agent.name), now);
                    let notice = Notice { ticket: t, article, customer: customer_of(tx, t.id)?, in_reply_to: None };
                    notify(
                        &self.responder(),
                        tx,
                        &notice,
                        Event::Assigned,
                        Whom::Agent(&target.address),
                        Some(&agent.address),
                        now,
                    )?;
                    done(format!("assigned to {}", target.address))
                }
                Some(target) if target.enabled => {
                    refused(format!("{} has no rights on queue {}", target.address, t.queue))
                }
                _ => refused(format!("{to} is not an enabled agent")),
            },
            Command::Queue(name) => {
                if self.setup.config.queue(name).is_none() && *name != self.setup.config.tickets.default_queue {
                    refused(format!("no queue named \"{name}\""))
                } else if !tx.agent_can(&agent.address, name)? {
                    refused(format!("you have no rights on queue {name}"))
                } else {
                    tx.set_queue(t.id, name)?;
                    let moved = tx.ticket_facts(t.id)?;
                    let article =
                        event_article(&t.subject, format!("{} moved this ticket to queue {name}.", agent.name), now);
                    let notice =
                        Notice { ticket: &moved, article, customer: customer_of(tx, t.id)?, in_reply_to: None };
                    notify(&self.responder(), tx, &notice, Event::Moved, Whom::Queue, Some(&agent.address), now)?;
                    done(format!("moved to queue {name}"))
                }
            }
            Command::Priority(p) => {
                tx.set_priority(t.id, *p)?;
                done(format!("priority {}", p.as_str()))
            }
            Command::Tag { add, remove } => {
                for tag in add {
                    tx.add_tag(t.id, tag)?;
                }
                for tag in remove {
                    tx.remove_tag(t.id, tag)?;
                }
                done("tags updated".into())
            }
            Command::Merge(number) => match tx.ticket_by_number(number)? {
                Some(target) if target.id == t.id => refused("a ticket cannot be merged into itself".into()),
                Some(target) => {
                    let target_queue = tx.ticket_state(target.id)?.1;
                    if tx.agent_can(&agent.address, &target_queue)? {
                        tx.merge_ticket(t.id, target.id, now)?;
                        tx.add_history(target.id, now, &agent.address, "merged in", &t.number)?;
                        done(format!("merged into ticket {}", target.number))
                    } else {
                        refused(format!("you have no rights on queue {target_queue} of ticket {number}"))
                    }
                }
                None => refused(format!("no ticket {number}")),
            },
            Command::Pending(days) => {
                tx.set_pending(t.id, Some(now + i64::from(*days) * 86_400))?;
                done(format!("pending for {days} days"))
            }
        };
        let event = if outcome.ok { "command" } else { "command refused" };
        tx.add_history(t.id, now, &agent.address, event, &format!("{}: {}", line.text, outcome.outcome))?;
        Ok(outcome)
    }

    /// Locks whose time ran out unanswered are released and their owners told; pending tickets whose time came open
    /// again. Run every minute by the daemon.
    pub fn housekeeping(&self, store: &mut crate::store::Store) -> Result<usize, StoreError> {
        let now = (self.clock)();
        let tx = store.begin()?;
        let mut changed = 0;
        for (ticket_id, owner) in tx.expired_locks(now)? {
            tx.clear_lock_timer(ticket_id)?;
            tx.add_history(ticket_id, now, "system", "lock timeout", &owner)?;
            let facts = tx.ticket_facts(ticket_id)?;
            let article =
                event_article(&facts.subject, "Your lock on this ticket timed out before it was answered.".into(), now);
            let notice = Notice { ticket: &facts, article, customer: customer_of(&tx, ticket_id)?, in_reply_to: None };
            notify(&self.responder(), &tx, &notice, Event::LockTimeout, Whom::Agent(&owner), None, now)?;
            changed += 1;
        }
        for ticket_id in tx.wake_pending(now)? {
            tx.add_history(ticket_id, now, "system", "pending time reached", "open again")?;
            changed += 1;
        }
        tx.commit()?;
        Ok(changed)
    }

    /// Tells the queue's agents (and any addresses a rule named) about a mail on the ticket: a new ticket, a
    /// customer's follow-up, or a bounce of mail we sent (`Event::Bounce`, the bounce notice).
    pub(super) fn notify_about(
        &self,
        tx: &Tx<'_>,
        facts: &TicketFacts,
        mail: &InboundMail,
        event: Event,
        extra: &[String],
        now: i64,
    ) -> Result<(), StoreError> {
        let responder = self.responder();
        let nobody = Address::new(None, "");
        let article = responder.context(mail, Some(facts), &nobody, &nobody, now).article;
        let customer = customer_of(tx, facts.id)?;
        let notice = Notice { ticket: facts, article, customer, in_reply_to: mail.message_id.clone() };
        notify(&responder, tx, &notice, event, Whom::Queue, None, now)?;
        if !extra.is_empty() {
            notify(&responder, tx, &notice, event, Whom::Addresses(extra), None, now)?;
        }
        Ok(())
    }
}

fn customer_of(tx: &Tx<'_>, ticket_id: i64) -> Result<Address, StoreError> {
    let (customer, name, _) = tx.customer_parties(ticket_id)?;
    Ok(Address::new(name.as_deref(), &customer))
}
