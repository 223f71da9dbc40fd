//! Mail from agents. It counts as an agent's only with proof we issued (see `agents::auth`); then its commands run
//! (with rights checks), its text is relayed to the customer from the queue address or kept as an internal note,
//! and the agent gets a transcript of what was done and refused. What a command, an answer or a note does is in
//! `actions.rs`, shared with the command line (`postdesk ticket close|reply|…`).

use tracing::info;

use super::actions::{Actor, customer_of};
use super::{Incoming, KeptAs, Outcome, ParsedMail, Pipeline};
use crate::agents::notify::{Event, Notice, Whom, event_article, notify, to_agent};
use crate::agents::{AgentProof, AuthContext, parse_agent_reply, prove_agent};
use crate::model::{Address, InboundMail};
use crate::outbound::templates::CommandOutcome;
use crate::respond::{TicketFacts, person};
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
        parsed: &ParsedMail,
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
        let raw_id = tx.insert_raw_as(&incoming.raw, parsed.packed.as_ref(), &parsed.sha256)?;
        let kept = KeptAs { direction: "agent", internal: note, visible_text: &reply.body, duplicate_of: None };
        let article_id = self.add_article(tx, ticket_id, mail, kept, raw_id, now)?;
        tx.touch_ticket(ticket_id, now, false)?;
        let actor = Actor::Agent(agent.clone());
        let mut outcomes = Vec::new();
        if rights {
            for line in &reply.commands {
                outcomes.push(self.run_command(tx, &facts, &actor, line, now)?);
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
            // A mail that cannot be built is recorded in the history ("answer not sent"); the agent's mail is kept.
            let _ = self.relay_to_customer(tx, &facts, &actor, &reply.body, now)?;
        } else if note && !reply.body.is_empty() {
            self.post_note(tx, &facts, &actor, &reply.body, now)?;
        }
        if !outcomes.is_empty() {
            self.transcript(tx, &facts, agent, mail, outcomes, now)?;
        }
        tx.record_ledger(&incoming.stored(&parsed.sha256, mail, ticket_id, article_id), now)?;
        let what = if note { "note" } else { "answer" };
        Ok(Outcome::FollowUp {
            number: facts.number,
            via: format!("agent {} ({what})", agent.address),
            flagged_duplicate: false,
        })
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

    /// Locks whose time ran out unanswered are released and their owners told; pending tickets whose time came open
    /// again; closed tickets past `[retention]` are purged. Run every 30 seconds by the daemon.
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
        // Retention ([retention], off by default) after the locks: its purges are logged and audited on their own.
        crate::privacy::retention_pass(store, &self.setup.config, now)?;
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
