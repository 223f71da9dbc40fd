//! Notifications to agents. Each carries the proofs an agent's answer needs: a Reply-To address signed for that
//! agent and ticket, and a Message-ID signed for that agent, so answering the notification is all it takes.

use crate::config::NotifyDefaults;
use crate::model::Address;
use crate::outbound::AutoSubmitted;
use crate::outbound::Rendered;
use crate::outbound::templates::ArticleInfo;
use crate::respond::{Compose, Responder, TicketFacts, person};
use crate::store::{AgentRow, StoreError, Tx};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Event {
    NewTicket,
    FollowUp,
    /// A ticket was moved into one of the agent's queues.
    Moved,
    Assigned,
    LockTimeout,
    /// Another agent added an internal note (follows the follow-up preference).
    Note,
    /// Mail we sent about the ticket bounced (follows the follow-up preference).
    Bounce,
}

impl Event {
    /// The preference this event follows.
    pub fn key(self) -> &'static str {
        match self {
            Event::NewTicket => "new-ticket",
            Event::FollowUp | Event::Note | Event::Bounce => "followup",
            Event::Moved => "moved",
            Event::Assigned => "assigned",
            Event::LockTimeout => "lock-timeout",
        }
    }

    /// The template the notice is rendered from, which is also the outbox row's kind.
    fn template(self) -> &'static str {
        if self == Event::Bounce { "bounce-notice" } else { "notification" }
    }

    pub const KEYS: [&'static str; 5] = ["new-ticket", "followup", "moved", "assigned", "lock-timeout"];

    fn default(self, d: &NotifyDefaults) -> bool {
        match self {
            Event::NewTicket => d.new_ticket,
            Event::FollowUp | Event::Note | Event::Bounce => d.followup,
            Event::Moved => d.moved,
            Event::Assigned => d.assigned,
            Event::LockTimeout => d.lock_timeout,
        }
    }
}

/// Who hears about an event.
pub enum Whom<'a> {
    /// Every enabled agent with rights on the ticket's queue who wants this event.
    Queue,
    /// One agent (assignment, lock timeout), if they want it.
    Agent(&'a str),
    /// Extra addresses a routing rule names (`notify = [...]`): told always, whoever they are.
    Addresses(&'a [String]),
}

pub struct Notice<'a> {
    pub ticket: &'a TicketFacts,
    /// What happened: the customer's mail, or a line describing the event.
    pub article: ArticleInfo,
    pub customer: Address,
    /// The mail being reported, so the notification threads under it in the agent's client.
    pub in_reply_to: Option<String>,
}

/// Queues one notification per recipient. The agent who caused the event (`except`) is never told about it.
pub fn notify(
    r: &Responder<'_>,
    tx: &Tx<'_>,
    notice: &Notice<'_>,
    event: Event,
    whom: Whom<'_>,
    except: Option<&str>,
    now: i64,
) -> Result<usize, StoreError> {
    let defaults = r.setup.config.agents.notify;
    let default = event.default(&defaults);
    let agents: Vec<AgentRow> = match whom {
        Whom::Queue => tx.agents_to_notify(&notice.ticket.queue, event.key(), default)?,
        Whom::Agent(address) => match tx.agent(address)? {
            Some(a) if a.enabled && tx.agent_wants(address, event.key(), default)? => vec![a],
            _ => Vec::new(),
        },
        Whom::Addresses(list) => {
            list.iter().map(|a| AgentRow { address: a.to_ascii_lowercase(), name: a.clone(), enabled: true }).collect()
        }
    };
    let mut sent = 0;
    for agent in agents.iter().filter(|a| except.is_none_or(|e| !e.eq_ignore_ascii_case(&a.address))) {
        if queue_notification(r, tx, notice, agent, event.template(), now)? {
            sent += 1;
        }
    }
    Ok(sent)
}

fn queue_notification(
    r: &Responder<'_>,
    tx: &Tx<'_>,
    notice: &Notice<'_>,
    agent: &AgentRow,
    template: &'static str,
    now: i64,
) -> Result<bool, StoreError> {
    let config = &r.setup.config;
    let t = notice.ticket;
    let queue_address = config.queue_address(&t.queue).to_string();
    let from = Address::new(Some(&config.site_name), &queue_address);
    let agent_address = Address::new(Some(&agent.name), &agent.address);
    let mut context = r.context_with(notice.article.clone(), Some(t), &from, &notice.customer);
    context.agent = Some(person(&agent_address));
    let customer =
        if notice.customer.email.is_empty() { "the customer".to_string() } else { notice.customer.email.clone() };
    context.reply_hint = Some(format!("Reply to this mail to answer {customer}; only your new text is sent."));
    let rendered = match r.render(&t.queue, template, &context) {
        Ok(rendered) => rendered,
        Err(reason) => {
            tracing::warn!(reason = %reason, "notification not sent");
            return Ok(false);
        }
    };
    let compose = to_agent(r, t, agent, template, rendered, notice.in_reply_to.clone());
    match r.queue(tx, compose, now)? {
        Ok(_) => Ok(true),
        Err(reason) => {
            tracing::warn!(agent = %agent.address, reason = %reason, "notification not sent");
            Ok(false)
        }
    }
}

/// Mail to an agent about a ticket (a notification, a transcript), from the queue address and carrying the proofs
/// an answer needs: a Reply-To signed for this agent and ticket, and a Message-ID signed for this agent.
pub fn to_agent<'a>(
    r: &Responder<'_>,
    t: &'a TicketFacts,
    agent: &AgentRow,
    kind: &'a str,
    rendered: Rendered,
    in_reply_to: Option<String>,
) -> Compose<'a> {
    let config = &r.setup.config;
    let queue_address = config.queue_address(&t.queue);
    let from = Address::new(Some(&config.site_name), queue_address);
    Compose {
        kind,
        ticket: Some(t),
        message_id: r.signer.agent_message_id(&t.number, &agent.address, from.domain()),
        reply_to: Some(Address::new(None, &r.signer.reply_address(queue_address, &t.number, &agent.address))),
        from,
        to: vec![Address::new(Some(&agent.name), &agent.address)],
        cc: Vec::new(),
        subject: rendered.subject,
        text: rendered.text,
        html: rendered.html,
        references: in_reply_to.iter().cloned().collect(),
        in_reply_to,
        auto: Some(AutoSubmitted::AutoGenerated),
        article: false,
        classification: kind,
    }
}

/// An article line for events that have no mail of their own (moved, assigned, lock timeout).
pub fn event_article(subject: &str, text: String, now: i64) -> ArticleInfo {
    ArticleInfo {
        subject: subject.to_string(),
        visible_text: text.clone(),
        text,
        from: "postdesk".into(),
        date: crate::report::format_time(now),
    }
}
