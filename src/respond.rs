//! Respond: automatic replies to customers. Decided, rendered and built inside the transaction that changed the
//! ticket, so the outbox row, its fixed Message-ID and the outbound article commit (or vanish) with that change.
//! Sending is the daemon's job (`outbound::sender`).

use tracing::info;

pub use crate::model::TicketFacts;
use crate::model::{Address, InboundMail};
use crate::outbound::templates::{ArticleInfo, Person, Rendered, TemplateContext, TicketInfo, excerpt};
use crate::outbound::{
    AutoSubmitted, OutgoingMail, ReplyPolicyInput, Signer, auto_reply_blocker, build, normalise_sender,
};
use crate::setup::Setup;
use crate::store::{NewArticle, NewOutgoing, StoreError, Tx};
use crate::token::TokenFormat;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReplyOutcome {
    Queued { outbox_id: i64, message_id: String },
    Skipped(String),
}

pub struct Responder<'a> {
    pub setup: &'a Setup,
    pub signer: &'a Signer,
    pub tokens: &'a TokenFormat,
    /// Our addresses, lowercased (computed once per setup).
    pub own_addresses: &'a [String],
}

impl Responder<'_> {
    /// Queues the automatic reply `template` to `mail`'s sender when the loop policy allows it: RFC 3834 (never to
    /// automatic mail), our own addresses, the hard-bounce list, and the budget: per normalised sender, and per hour
    /// for first-time senders. A refusal by the budget is counted for `postdesk status`.
    pub fn auto_reply(
        &self,
        tx: &Tx<'_>,
        mail: &InboundMail,
        ticket: Option<&TicketFacts>,
        template: &str,
        now: i64,
    ) -> Result<ReplyOutcome, StoreError> {
        let config = &self.setup.config;
        if config.smtp.is_none() {
            return Ok(ReplyOutcome::Skipped("no [smtp] relay configured".into()));
        }
        let Some(to) = mail.reply_address().filter(|a| a.email.contains('@')).cloned() else {
            return Ok(ReplyOutcome::Skipped("the mail names no address to answer".into()));
        };
        let window = i64::from(config.replies.window_hours) * 3600;
        let sender = normalise_sender(&to.email);
        let first_contact = !tx.is_known_correspondent(&to.email, now)?;
        let input = ReplyPolicyInput {
            mail,
            own_addresses: self.own_addresses,
            suppressed: tx.is_suppressed(&to.email)?,
            recent_auto_replies: tx.auto_replies_since(&sender, now - window)?,
            max_auto_replies: config.replies.max_auto_replies,
            first_contact,
            recent_first_contact: if first_contact { tx.first_contact_replies_since(now - 3600)? } else { 0 },
            max_unknown_per_hour: config.replies.max_unknown_senders_per_hour,
        };
        if let Some(blocked) = auto_reply_blocker(&input) {
            if let Some(budget) = blocked.budget {
                tx.record_reply_refusal(budget, now)?;
            }
            let reason = blocked.reason;
            if let Some(t) = ticket {
                tx.add_history(t.id, now, "system", "auto-reply withheld", &format!("{template}: {reason}"))?;
            }
            return Ok(ReplyOutcome::Skipped(reason));
        }
        let queue = ticket.map_or(config.tickets.default_queue.as_str(), |t| t.queue.as_str());
        let from = Address::new(Some(&config.site_name), config.queue_address(queue));
        let context = self.context(mail, ticket, &from, &to, now);
        let rendered = match self.render(queue, template, &context) {
            Ok(r) => r,
            Err(reason) => return Ok(ReplyOutcome::Skipped(reason)),
        };
        let mut references = mail.references.clone();
        references.extend(mail.message_id.iter().cloned());
        let number = ticket.map_or("0", |t| t.number.as_str());
        let compose = Compose {
            kind: template,
            ticket,
            message_id: self.signer.message_id(number, from.domain()),
            from,
            to: vec![to.clone()],
            cc: Vec::new(),
            reply_to: None,
            subject: rendered.subject,
            text: rendered.text,
            html: rendered.html,
            in_reply_to: mail.message_id.clone(),
            references,
            auto: Some(AutoSubmitted::AutoReplied),
            article: true,
            classification: "auto-reply",
        };
        let (outbox_id, message_id) = match self.queue(tx, compose, now)? {
            Ok(done) => done,
            Err(reason) => return Ok(ReplyOutcome::Skipped(reason)),
        };
        tx.record_auto_reply(&sender, first_contact, now)?;
        if let Some(t) = ticket {
            tx.add_history(t.id, now, "system", "auto-reply queued", &format!("{template} to {}", to.email))?;
        }
        info!(template, to = %to.email, message_id = %message_id, "automatic reply queued");
        Ok(ReplyOutcome::Queued { outbox_id, message_id })
    }

    /// Renders `name` from the template set of `queue` (falling back to `default`).
    pub fn render(&self, queue: &str, name: &str, context: &TemplateContext) -> Result<Rendered, String> {
        let set = self.setup.config.queue(queue).and_then(|q| q.templates.as_deref()).unwrap_or("default");
        self.setup.templates.render(set, name, context).map_err(|e| format!("template {set}/{name}: {e}"))
    }

    /// Builds the exact bytes and writes the outbox row (and, for mail shown on the ticket, an outbound article).
    /// The inner `Err` is a mail that cannot be built (a bad address): reported, not fatal.
    pub fn queue(&self, tx: &Tx<'_>, c: Compose<'_>, now: i64) -> Result<Result<(i64, String), String>, StoreError> {
        let outgoing = OutgoingMail {
            from: c.from.clone(),
            to: c.to.clone(),
            cc: c.cc.clone(),
            reply_to: c.reply_to.clone(),
            subject: c.subject,
            message_id: c.message_id.clone(),
            in_reply_to: c.in_reply_to,
            references: c.references,
            auto_submitted: c.auto,
            loop_marker: self.setup.config.address.clone(),
            date: now,
            text: c.text,
            html: c.html,
        };
        let raw = match build(&outgoing) {
            Ok(raw) => raw,
            Err(e) => return Ok(Err(format!("cannot build the mail: {e}"))),
        };
        let recipients: Vec<String> = c.to.iter().chain(c.cc.iter()).map(|a| a.email.clone()).collect();
        let article_id = match c.ticket.filter(|_| c.article) {
            Some(t) => {
                let to: Vec<String> = c.to.iter().map(|a| a.email.clone()).collect();
                let cc: Vec<String> = c.cc.iter().map(|a| a.email.clone()).collect();
                Some(tx.add_article(&NewArticle {
                    ticket_id: t.id,
                    direction: "outbound",
                    internal: false,
                    sender: Some(&c.from.email),
                    sender_name: c.from.name.as_deref(),
                    recipients: &to,
                    cc: &cc,
                    subject: &outgoing.subject,
                    message_id: Some(&c.message_id),
                    in_reply_to: outgoing.in_reply_to.as_deref(),
                    references: &outgoing.references,
                    body_text: &outgoing.text,
                    visible_text: &outgoing.text,
                    classification: c.classification,
                    classification_reason: Some(c.kind),
                    duplicate_of: None,
                    raw_id: None,
                    sent_at: Some(now),
                    received_at: now,
                })?)
            }
            None => None,
        };
        let outbox_id = tx.enqueue(&NewOutgoing {
            ticket_id: c.ticket.map(|t| t.id),
            article_id,
            kind: c.kind,
            message_id: &c.message_id,
            envelope_from: &c.from.email,
            recipients: &recipients,
            raw: &raw,
            now,
        })?;
        Ok(Ok((outbox_id, c.message_id)))
    }

    /// The template context for mail about `ticket` answering or reporting on `mail`.
    pub fn context(
        &self,
        mail: &InboundMail,
        ticket: Option<&TicketFacts>,
        from: &Address,
        to: &Address,
        now: i64,
    ) -> TemplateContext {
        // Mail we write quotes an excerpt, never a whole body: a 20 MB mail must not become 20 MB per recipient.
        let max = self.setup.config.limits.max_quoted_bytes;
        let article = ArticleInfo {
            subject: mail.subject.clone(),
            text: excerpt(&mail.text, max),
            visible_text: excerpt(&mail.visible_text, max),
            from: mail.from.as_ref().map(display_address).unwrap_or_default(),
            date: crate::report::format_time(mail.date.unwrap_or(now)),
        };
        self.context_with(article, ticket, from, to)
    }

    pub fn context_with(
        &self,
        article: ArticleInfo,
        ticket: Option<&TicketFacts>,
        from: &Address,
        customer: &Address,
    ) -> TemplateContext {
        let config = &self.setup.config;
        let number = ticket.map(|t| t.number.clone()).unwrap_or_default();
        TemplateContext {
            ticket: TicketInfo {
                token: if number.is_empty() { String::new() } else { self.tokens.render(&number) },
                number,
                subject: ticket.map_or_else(|| article.subject.clone(), |t| t.subject.clone()),
                queue: ticket.map_or_else(|| config.tickets.default_queue.clone(), |t| t.queue.clone()),
                state: ticket.map_or_else(String::new, |t| t.state.clone()),
                priority: ticket.map_or_else(String::new, |t| t.priority.clone()),
            },
            customer: person(customer),
            article,
            sender: person(from),
            site: Person { name: config.site_name.clone(), address: config.address.clone() },
            agent: None,
            commands: None,
            reply_hint: None,
        }
    }
}

/// One mail to queue: everything but the bytes, which [`Responder::queue`] builds.
pub struct Compose<'a> {
    /// Template name or purpose: acknowledgement, notification, agent-reply, transcript, …
    pub kind: &'a str,
    pub ticket: Option<&'a TicketFacts>,
    pub from: Address,
    pub to: Vec<Address>,
    pub cc: Vec<Address>,
    pub reply_to: Option<Address>,
    pub subject: String,
    pub text: String,
    pub html: Option<String>,
    pub message_id: String,
    pub in_reply_to: Option<String>,
    pub references: Vec<String>,
    pub auto: Option<AutoSubmitted>,
    /// Shown on the ticket as an outbound article (mail to customers); notifications to agents are not.
    pub article: bool,
    pub classification: &'a str,
}

pub fn person(a: &Address) -> Person {
    Person { name: a.name.clone().unwrap_or_default(), address: a.email.clone() }
}

pub fn display_address(a: &Address) -> String {
    match &a.name {
        Some(name) if !name.is_empty() => format!("{name} <{}>", a.email),
        _ => a.email.clone(),
    }
}
