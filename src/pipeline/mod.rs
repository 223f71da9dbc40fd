//! One mail (or a batch) from raw bytes to committed rows: parse -> thread -> route -> store. The whole batch is one
//! transaction (group commit); each mail has its own savepoint, so one bad mail is quarantined and the rest go on.
//! The caller acknowledges its source (IMAP move, MTA exit code) only after [`Pipeline::process_batch`] returns.

pub mod actions;
mod agent;
mod parties;
mod replay;

use std::borrow::Cow;
use std::fmt;
use std::sync::Arc;

use tracing::{debug, info, warn};

use crate::agents::notify::Event;
use crate::config::Config;
use crate::model::{InboundMail, Priority, TicketState};
use crate::outbound::{Signer, is_our_own_mail};
use crate::parse::{self, Rejection};
use crate::respond::{ReplyOutcome, Responder, TicketFacts};
use crate::rules::{AutoReply, Decision, RouteContext};
use crate::setup::Setup;
use crate::store::{LedgerEntry, NewArticle, NewTicket, Packed, Store, StoreError, Tx, sha256_hex};
use crate::thread::{self, Resolution, Standing, ThreadLookup, TicketRef, Via};
use crate::token::TokenFormat;

pub use replay::Replayed;

/// A mail handed to the pipeline by a source.
#[derive(Debug, Clone)]
pub struct Incoming {
    /// Where it came from, for people: `stdin`, a file path, `imap:INBOX/42`.
    pub source: String,
    /// The source's stable identity, when it has one (IMAP: mailbox + UIDVALIDITY + UID).
    pub source_key: Option<String>,
    pub raw: Vec<u8>,
    /// Set when the source refused the mail before downloading it (too large): `raw` is then empty.
    pub refused: Option<Refusal>,
}

#[derive(Debug, Clone)]
pub struct Refusal {
    pub size: usize,
    pub reason: String,
}

impl Incoming {
    /// A ledger row for this mail, to fill in with what became of it.
    pub fn ledger(&self) -> LedgerEntry<'_> {
        LedgerEntry { source: &self.source, source_key: self.source_key.as_deref(), ..LedgerEntry::default() }
    }

    /// The ledger row of this mail stored as `article_id` on `ticket_id`.
    pub fn stored<'a>(
        &'a self,
        sha: &'a str,
        mail: &'a InboundMail,
        ticket_id: i64,
        article_id: i64,
    ) -> LedgerEntry<'a> {
        LedgerEntry {
            outcome: "stored",
            sha256: sha,
            message_id: mail.message_id.as_deref(),
            ticket_id: Some(ticket_id),
            article_id: Some(article_id),
            ..self.ledger()
        }
    }

    pub fn new(source: impl Into<String>, raw: Vec<u8>) -> Self {
        Incoming { source: source.into(), source_key: None, raw, refused: None }
    }
}

/// What became of one mail.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    NewTicket {
        number: String,
        claimed: Option<String>,
    },
    FollowUp {
        number: String,
        via: String,
        flagged_duplicate: bool,
    },
    /// Exactly these bytes were stored before: nothing new is written.
    Duplicate {
        number: Option<String>,
    },
    /// The source already delivered this mail (same source key): it was handled before a crash or restart.
    AlreadyProcessed,
    Quarantined {
        id: i64,
        reason: String,
    },
}

impl Outcome {
    /// Quarantined mail goes to the source's quarantine folder; everything else to the processed folder.
    pub fn is_quarantined(&self) -> bool {
        matches!(self, Outcome::Quarantined { .. })
    }

    /// One word for logs and metrics: `new`, `follow-up`, `duplicate`, `already-processed`, `quarantined`.
    pub fn kind(&self) -> &'static str {
        match self {
            Outcome::NewTicket { .. } => "new",
            Outcome::FollowUp { .. } => "follow-up",
            Outcome::Duplicate { .. } => "duplicate",
            Outcome::AlreadyProcessed => "already-processed",
            Outcome::Quarantined { .. } => "quarantined",
        }
    }
}

impl fmt::Display for Outcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Outcome::NewTicket { number, claimed: None } => write!(f, "new ticket {number}"),
            Outcome::NewTicket { number, claimed: Some(c) } => {
                write!(f, "new ticket {number} (subject named ticket {c}, but the sender is not a party of it)")
            }
            Outcome::FollowUp { number, via, flagged_duplicate } => {
                write!(f, "follow-up on ticket {number} (by {via})")?;
                if *flagged_duplicate {
                    f.write_str(", flagged: reuses a known Message-ID with different content")?;
                }
                Ok(())
            }
            Outcome::Duplicate { number: Some(n) } => {
                write!(f, "duplicate of a mail already on ticket {n}; nothing stored")
            }
            Outcome::Duplicate { number: None } => f.write_str("duplicate of a mail already taken in; nothing stored"),
            Outcome::AlreadyProcessed => f.write_str("already processed"),
            Outcome::Quarantined { id, reason } => write!(f, "quarantined (#{id}): {reason}"),
        }
    }
}

/// How a received mail is kept as an article: who it counts as from, and what of it is shown.
struct KeptAs<'a> {
    /// `inbound` (customers and anyone else) or `agent` (an agent's proven mail).
    direction: &'a str,
    internal: bool,
    visible_text: &'a str,
    /// The article whose Message-ID this mail reuses with different bytes.
    duplicate_of: Option<i64>,
}

/// What [`Pipeline::parse_batch`] made of each mail: `None` for mail the source refused before download.
pub type Parsed = Vec<Option<ParsedMail>>;

/// One mail after the pure half of a batch, with the hash of its raw bytes (the ledger's duplicate key) and, for
/// mail that parsed, the compressed form the store will write: both made on the parsing core, not inside the
/// store's transaction, which is the daemon's critical path (docs/benchmark.md, issue 12, seventh pass).
pub struct ParsedMail {
    pub sha256: String,
    pub mail: Result<InboundMail, Rejection>,
    /// For mail that parsed: its zstd frames, or None when it does not shrink (it is stored as it is). Always None
    /// for mail that did not parse, which is quarantined with its bytes as they are.
    pub packed: Option<Packed>,
}

impl ParsedMail {
    /// The mail's exact bytes: `incoming.raw`, or unpacked from the frames once [`Pipeline::parse_releasing`] let
    /// `incoming.raw` go (only the rare quarantine after parsing needs them back).
    fn raw<'a>(&self, incoming: &'a Incoming) -> Result<Cow<'a, [u8]>, StoreError> {
        match &self.packed {
            Some(packed) if incoming.raw.len() != packed.size() => Ok(Cow::Owned(packed.unpack()?)),
            _ => Ok(Cow::Borrowed(&incoming.raw)),
        }
    }
}

pub type Clock = Arc<dyn Fn() -> i64 + Send + Sync>;

pub struct Pipeline {
    setup: Setup,
    signer: Arc<Signer>,
    tokens: TokenFormat,
    own_addresses: Vec<String>,
    clock: Clock,
}

/// Where a mail goes before routing: onto a known ticket, or a new one.
enum Placement {
    /// `bounce`: a bounce of mail we sent about this ticket. `standing`: whether it may change the ticket's parties.
    Existing {
        ticket: TicketRef,
        via: String,
        duplicate_of: Option<i64>,
        bounce: bool,
        standing: Standing,
    },
    New {
        claimed: Option<String>,
        note: Option<String>,
    },
}

impl Pipeline {
    pub fn new(setup: Setup, signer: Arc<Signer>) -> Self {
        Self::with_clock(setup, signer, Arc::new(|| chrono::Utc::now().timestamp()))
    }

    pub fn with_clock(setup: Setup, signer: Arc<Signer>, clock: Clock) -> Self {
        let tokens = TokenFormat::new(&setup.config.tickets.token_format);
        let own_addresses = setup.config.own_addresses();
        Pipeline { setup, signer, tokens, own_addresses, clock }
    }

    pub fn signer(&self) -> &Arc<Signer> {
        &self.signer
    }

    fn responder(&self) -> Responder<'_> {
        Responder { setup: &self.setup, signer: &self.signer, tokens: &self.tokens, own_addresses: &self.own_addresses }
    }

    pub fn config(&self) -> &Config {
        &self.setup.config
    }

    pub fn setup(&self) -> &Setup {
        &self.setup
    }

    /// Parses every mail first (pure CPU, no lock held), then stores the batch in one transaction. Mail that is
    /// packed lets go of its received bytes ([`Self::parse_releasing`]).
    pub fn process_batch(&self, store: &mut Store, batch: &mut [Incoming]) -> Result<Vec<Outcome>, StoreError> {
        let parsed: Parsed = batch.iter_mut().map(|m| self.parse_releasing(m)).collect();
        self.store_batch(store, batch, parsed)
    }

    /// The pure half of a batch: parsing needs no lock, so the daemon runs it for the next batch while the store
    /// commits the previous one.
    pub fn parse_batch(&self, batch: &[Incoming]) -> Parsed {
        batch.iter().map(|m| m.refused.is_none().then(|| self.parse_one(&m.raw))).collect()
    }

    fn parse_one(&self, raw: &[u8]) -> ParsedMail {
        let mail = parse::parse_mail_hashed(raw, &self.setup.config.limits);
        let packed = if mail.is_ok() { crate::store::pack_raw(raw) } else { None };
        ParsedMail { sha256: sha256_hex(raw), mail, packed }
    }

    /// [`Self::parse_batch`] for one mail, letting go of its received bytes once they are packed: until its commit
    /// the mail is then held in its compressed form only (about three quarters of its size on the shared workload),
    /// and a batch parsed this way never holds both forms of more than one mail.
    pub fn parse_releasing(&self, incoming: &mut Incoming) -> Option<ParsedMail> {
        incoming.refused.is_none().then(|| {
            let parsed = self.parse_one(&incoming.raw);
            if parsed.packed.is_some() {
                incoming.raw = Vec::new();
            }
            parsed
        })
    }

    /// The writing half: one transaction for the batch, a savepoint per mail.
    pub fn store_batch(
        &self,
        store: &mut Store,
        batch: &[Incoming],
        parsed: Parsed,
    ) -> Result<Vec<Outcome>, StoreError> {
        self.store_batch_and(store, batch, parsed, |_| Ok(()))
    }

    /// [`Self::store_batch`], with `also` written in the same transaction (the daemon's IMAP position): one commit,
    /// so one fsync, per batch.
    pub fn store_batch_and(
        &self,
        store: &mut Store,
        batch: &[Incoming],
        parsed: Parsed,
        also: impl FnOnce(&Tx<'_>) -> Result<(), StoreError>,
    ) -> Result<Vec<Outcome>, StoreError> {
        let started = std::time::Instant::now();
        let now = (self.clock)();
        let tx = store.begin()?;
        let mut outcomes = Vec::with_capacity(batch.len());
        for (index, (incoming, parsed)) in batch.iter().zip(parsed).enumerate() {
            // The fields of the one info line per mail (issue 11): never a body, a subject or a secret.
            let span = tracing::info_span!("mail", source = %incoming.source, message_id = tracing::field::Empty,
                from = tracing::field::Empty, classification = tracing::field::Empty,
                ticket = tracing::field::Empty, queue = tracing::field::Empty);
            let _guard = span.enter();
            if let Some(ParsedMail { mail: Ok(mail), .. }) = &parsed {
                span.record("message_id", mail.message_id.as_deref().unwrap_or("-"));
                span.record("from", mail.from.as_ref().map_or("-", |a| a.email.as_str()));
                span.record("classification", mail.classification.as_str());
            }
            let savepoint = format!("m{index}");
            tx.savepoint(&savepoint)?;
            let outcome = match self.store_one(&tx, incoming, parsed.as_ref(), now) {
                Ok(outcome) => {
                    tx.release(&savepoint)?;
                    outcome
                }
                Err(e) if e.is_transient() => return Err(e),
                Err(e) => {
                    // A mail that the store refuses (a bug, a constraint) must not block the ones behind it.
                    tx.rollback_to(&savepoint)?;
                    warn!(error = %e, "storing failed; quarantining the mail");
                    self.quarantine(&tx, incoming, parsed.as_ref(), &format!("could not be stored: {e}"), now)?
                }
            };
            if let Outcome::NewTicket { number, .. } | Outcome::FollowUp { number, .. } = &outcome {
                span.record("ticket", number.as_str());
            }
            info!(result = outcome.kind(), outcome = %outcome, "processed");
            outcomes.push(outcome);
        }
        also(&tx)?;
        let write_time = started.elapsed();
        tx.commit()?;
        debug!(
            mails = batch.len(),
            write_ms = write_time.as_millis() as u64,
            commit_ms = (started.elapsed() - write_time).as_millis() as u64,
            "batch stored"
        );
        Ok(outcomes)
    }

    fn store_one(
        &self,
        tx: &Tx<'_>,
        incoming: &Incoming,
        parsed: Option<&ParsedMail>,
        now: i64,
    ) -> Result<Outcome, StoreError> {
        if let Some(key) = &incoming.source_key
            && tx.ledger_by_source_key(key)?.is_some()
        {
            return Ok(Outcome::AlreadyProcessed);
        }
        if let Some(refusal) = &incoming.refused {
            let id = tx.quarantine(&refusal.reason, &incoming.source, None, refusal.size, None, now)?;
            tx.record_ledger(
                &LedgerEntry { outcome: "quarantined", quarantine_id: Some(id), ..incoming.ledger() },
                now,
            )?;
            return Ok(Outcome::Quarantined { id, reason: refusal.reason.clone() });
        }
        let Some(kept @ ParsedMail { sha256: sha, mail, .. }) = parsed else {
            // Only refused mail comes unparsed, and it returned above; were that ever broken, the mail is
            // quarantined by the caller rather than the daemon stopping.
            return Err(StoreError::Invalid("a mail reached the store without being parsed".into()));
        };
        if let Some(hit) = tx.ledger_by_sha256(sha)? {
            tx.record_ledger(&LedgerEntry { outcome: "duplicate", sha256: sha, ..incoming.ledger() }, now)?;
            return Ok(Outcome::Duplicate { number: hit.ticket_number });
        }
        let mail = match mail {
            Ok(mail) => mail,
            Err(rejection) => return self.quarantine(tx, incoming, Some(kept), &rejection.to_string(), now),
        };
        self.store_mail(tx, incoming, mail, kept, now)
    }

    fn quarantine(
        &self,
        tx: &Tx<'_>,
        incoming: &Incoming,
        parsed: Option<&ParsedMail>,
        reason: &str,
        now: i64,
    ) -> Result<Outcome, StoreError> {
        let raw = match parsed {
            Some(parsed) => parsed.raw(incoming)?,
            None => Cow::Borrowed(incoming.raw.as_slice()),
        };
        let sha = parsed.map_or_else(|| sha256_hex(&raw), |p| p.sha256.clone());
        let id = tx.quarantine(reason, &incoming.source, Some(&sha), raw.len(), Some(&raw), now)?;
        tx.record_ledger(
            &LedgerEntry { outcome: "quarantined", sha256: &sha, quarantine_id: Some(id), ..incoming.ledger() },
            now,
        )?;
        warn!(reason, "quarantined");
        Ok(Outcome::Quarantined { id, reason: reason.to_string() })
    }

    fn store_mail(
        &self,
        tx: &Tx<'_>,
        incoming: &Incoming,
        mail: &InboundMail,
        parsed: &ParsedMail,
        now: i64,
    ) -> Result<Outcome, StoreError> {
        // Our own mail coming back (a forwarding loop, a relay returning it) never becomes a ticket.
        if is_our_own_mail(mail, &self.signer, &self.own_addresses) {
            let reason = "our own outgoing mail came back; not a ticket (loop guard)";
            return self.quarantine(tx, incoming, Some(parsed), reason, now);
        }
        if let Some(proven) = self.proven_agent(tx, mail)? {
            return self.agent_mail(tx, incoming, mail, parsed, &proven, now);
        }
        let placement = self.place(tx, mail, now)?;
        let current_queue = match &placement {
            Placement::Existing { ticket, .. } => Some(tx.ticket_state(ticket.id)?.1),
            Placement::New { .. } => None,
        };
        let ctx = RouteContext {
            is_followup: current_queue.is_some(),
            current_queue: current_queue.as_deref(),
            default_queue: &self.setup.config.tickets.default_queue,
        };
        let decision = self.setup.rules.route(mail, &ctx);
        // Refused by a rule: the bytes stay in quarantine (nothing is lost), no ticket is made.
        if decision.spam || decision.reject.is_some() {
            let rules: Vec<&str> = decision.fired.iter().map(|r| r.name.as_str()).collect();
            let what = if decision.spam { "spam" } else { "rejected" };
            let reason = format!("{what} by rule {}", rules.join(", "));
            let outcome = self.quarantine(tx, incoming, Some(parsed), &reason, now)?;
            if let Some(template) = &decision.reject {
                let reply = self.responder().auto_reply(tx, mail, None, template, now)?;
                info!(?reply, "rejection");
            }
            return Ok(outcome);
        }
        let bounce_of_ours = matches!(placement, Placement::Existing { bounce: true, .. });
        let (ticket_id, outcome, duplicate_of, standing) = match placement {
            Placement::Existing { ticket, via, duplicate_of, standing, .. } => {
                self.follow_up(tx, ticket.id, mail, standing, now)?;
                let outcome =
                    Outcome::FollowUp { number: ticket.number, via, flagged_duplicate: duplicate_of.is_some() };
                (ticket.id, outcome, duplicate_of, standing)
            }
            Placement::New { claimed, note } => {
                let (id, number) = self.open_ticket(tx, mail, &decision, claimed.as_deref(), note.as_deref(), now)?;
                // The first mail of a ticket sets its parties: its sender, To, Cc and Reply-To are the customer's.
                (id, Outcome::NewTicket { number, claimed }, None, Standing::Proven)
            }
        };
        let raw_id = tx.insert_raw_as(&incoming.raw, parsed.packed.as_ref(), &parsed.sha256)?;
        let kept = KeptAs { direction: "inbound", internal: false, visible_text: &mail.visible_text, duplicate_of };
        let article_id = self.add_article(tx, ticket_id, mail, kept, raw_id, now)?;
        self.apply_decision(tx, ticket_id, article_id, &decision, current_queue.as_deref(), now)?;
        let new_ticket = matches!(outcome, Outcome::NewTicket { .. });
        let facts = tx.ticket_facts(ticket_id)?;
        tracing::Span::current().record("queue", facts.queue.as_str());
        if new_ticket || self.may_acknowledge(tx, &facts, mail, standing, now)? {
            self.acknowledge(tx, &facts, mail, &decision, new_ticket, now)?;
        }
        let event = match (bounce_of_ours, new_ticket) {
            (true, _) => Some(Event::Bounce),
            (false, true) => Some(Event::NewTicket),
            (false, false) if mail.classification == crate::model::Classification::Human => Some(Event::FollowUp),
            (false, false) => None,
        };
        if let Some(event) = event {
            self.notify_about(tx, &facts, mail, event, &decision.notify, now)?;
        }
        tx.record_ledger(&incoming.stored(&parsed.sha256, mail, ticket_id, article_id), now)?;
        Ok(outcome)
    }

    /// The same Message-ID with different bytes is kept on the ticket of the first one, flagged; otherwise the
    /// thread resolver decides.
    fn place(&self, tx: &Tx<'_>, mail: &InboundMail, now: i64) -> Result<Placement, StoreError> {
        if let Some(placement) = self.place_bounce(tx, mail, now)? {
            return Ok(placement);
        }
        if let Some(id) = &mail.message_id
            && let Some((first_article, _)) = tx.article_by_message_id(id)?
            && let Some(ticket) = tx.ticket_by_message_id(id)?
        {
            return Ok(Placement::Existing {
                ticket,
                via: "Message-ID".into(),
                duplicate_of: Some(first_article),
                bounce: false,
                standing: Standing::Claimed,
            });
        }
        Ok(match thread::resolve(mail, &self.tokens, tx)? {
            Resolution::Existing { ticket, via } => {
                let via = match via {
                    Via::Token => "subject token".to_string(),
                    Via::Reference(id) => format!("reference <{id}>"),
                };
                let standing = thread::standing(mail, &ticket, |id| self.signer.verify_message_id(id), tx)?;
                Placement::Existing { ticket, via, duplicate_of: None, bounce: false, standing }
            }
            Resolution::New { claimed, note } => Placement::New { claimed, note },
        })
    }

    fn open_ticket(
        &self,
        tx: &Tx<'_>,
        mail: &InboundMail,
        decision: &Decision,
        claimed: Option<&str>,
        note: Option<&str>,
        now: i64,
    ) -> Result<(i64, String), StoreError> {
        let day = chrono::DateTime::from_timestamp(now, 0).unwrap_or_default().format("%Y%m%d").to_string();
        let number = tx.next_ticket_number(&day, self.setup.config.tickets.system_id)?;
        let customer = customer_address(mail);
        let subject = crate::parse::subject::normalize_subject(&self.tokens.strip(&mail.subject));
        let id = tx.create_ticket(&NewTicket {
            number: &number,
            subject: &subject,
            queue: &decision.queue,
            priority: decision.priority.unwrap_or(Priority::Normal),
            state: decision.state.unwrap_or(TicketState::New),
            customer: &customer,
            customer_name: mail.from.as_ref().and_then(|a| a.name.as_deref()),
            owner: decision.owner.as_deref(),
            claimed_number: claimed,
            now,
        })?;
        self.add_cc_parties(tx, id, mail)?;
        let detail = note.unwrap_or_default();
        tx.add_history(id, now, "system", "created", detail)?;
        Ok((id, number))
    }

    fn follow_up(
        &self,
        tx: &Tx<'_>,
        ticket_id: i64,
        mail: &InboundMail,
        standing: Standing,
        now: i64,
    ) -> Result<(), StoreError> {
        // Automatic mail (bounces, out-of-office) never reopens a ticket; a person writing again does.
        let reopen = mail.classification == crate::model::Classification::Human;
        tx.touch_ticket(ticket_id, now, reopen)?;
        let sender_is_party = match &mail.from {
            Some(from) => tx.is_party(ticket_id, &from.key())?,
            None => false,
        };
        // A claimed follow-up never widens who the ticket's mail goes to (src/thread.rs: proof, not claims).
        if standing == Standing::Proven {
            if sender_is_party {
                self.add_cc_parties(tx, ticket_id, mail)?;
            }
            return Ok(());
        }
        self.note_ignored_parties(tx, ticket_id, mail, now)
    }

    fn add_cc_parties(&self, tx: &Tx<'_>, ticket_id: i64, mail: &InboundMail) -> Result<(), StoreError> {
        let keys: Vec<String> = (mail.cc.iter().chain(mail.to.iter()).map(|a| a.key()))
            .filter(|key| !key.is_empty() && !self.is_own_address(key))
            .collect();
        let max = self.setup.config.limits.max_ticket_parties;
        let left_out = tx.add_parties_capped(ticket_id, &keys, "cc", max)?;
        if left_out > 0 {
            tracing::warn!(ticket_id, left_out, max, "ticket has the most parties allowed (limits.max_ticket_parties)");
        }
        Ok(())
    }

    /// Keeps a received mail as an article of the ticket, with its attachments.
    fn add_article(
        &self,
        tx: &Tx<'_>,
        ticket_id: i64,
        mail: &InboundMail,
        kept: KeptAs<'_>,
        raw_id: i64,
        now: i64,
    ) -> Result<i64, StoreError> {
        let to: Vec<String> = mail.to.iter().map(|a| a.email.clone()).collect();
        let cc: Vec<String> = mail.cc.iter().map(|a| a.email.clone()).collect();
        let article_id = tx.add_article(&NewArticle {
            ticket_id,
            direction: kept.direction,
            internal: kept.internal,
            sender: mail.from.as_ref().map(|a| a.email.as_str()),
            sender_name: mail.from.as_ref().and_then(|a| a.name.as_deref()),
            recipients: &to,
            cc: &cc,
            subject: &mail.subject,
            message_id: mail.message_id.as_deref(),
            in_reply_to: mail.in_reply_to.first().map(String::as_str),
            references: &mail.references,
            body_text: &mail.text,
            visible_text: kept.visible_text,
            classification: mail.classification.as_str(),
            classification_reason: mail.classification_reason.as_deref(),
            duplicate_of: kept.duplicate_of,
            raw_id: Some(raw_id),
            sent_at: mail.date,
            received_at: now,
        })?;
        for attachment in &mail.attachments {
            tx.add_attachment(article_id, attachment, raw_id)?;
        }
        Ok(article_id)
    }

    /// A bounce of a mail we sent goes onto that mail's ticket (found by the original Message-ID in the DSN), and a
    /// permanent failure puts the address on the hard-bounce list so we stop mailing it.
    fn place_bounce(&self, tx: &Tx<'_>, mail: &InboundMail, now: i64) -> Result<Option<Placement>, StoreError> {
        let Some(bounce) = &mail.bounce else { return Ok(None) };
        let Some(original) = &bounce.original_message_id else { return Ok(None) };
        let Some(sent) = tx.outbox_by_message_id(original)? else { return Ok(None) };
        let (outbox_id, ticket_id, sent_to) = (sent.outbox_id, sent.ticket_id, sent.recipients);
        let statuses: Vec<String> = bounce
            .recipients
            .iter()
            .map(|r| format!("{} {}", r.address, r.status.as_deref().or(r.action.as_deref()).unwrap_or("failed")))
            .collect();
        tx.mark_bounced(outbox_id, &statuses.join(", "))?;
        for r in bounce.recipients.iter().filter(|r| r.suppresses_address()) {
            // Only addresses we actually mailed: a forged DSN cannot suppress arbitrary customers.
            if sent_to.iter().any(|s| s.eq_ignore_ascii_case(&r.address)) {
                let reason = format!("bounced {} (mail <{original}>)", r.status.as_deref().unwrap_or("5.0.0"));
                tx.suppress(&r.address, &reason, now)?;
            }
        }
        let Some(ticket_id) = ticket_id else { return Ok(None) };
        let ticket = tx
            .ticket_by_id(ticket_id)?
            .ok_or_else(|| StoreError::Invalid(format!("outbox row {outbox_id} names missing ticket {ticket_id}")))?;
        tx.add_history(ticket.id, now, "system", "bounce", &format!("<{original}>: {}", statuses.join(", ")))?;
        Ok(Some(Placement::Existing {
            ticket,
            via: format!("bounce of <{original}>"),
            duplicate_of: None,
            bounce: true,
            standing: Standing::Claimed,
        }))
    }

    /// The automatic acknowledgement of a new ticket or a follow-up, unless a rule or the config says no.
    fn acknowledge(
        &self,
        tx: &Tx<'_>,
        facts: &TicketFacts,
        mail: &InboundMail,
        decision: &Decision,
        new_ticket: bool,
        now: i64,
    ) -> Result<(), StoreError> {
        let replies = &self.setup.config.replies;
        let template = match &decision.auto_reply {
            AutoReply::Off => return Ok(()),
            AutoReply::Template(t) => t.as_str(),
            AutoReply::On | AutoReply::Default if new_ticket && replies.acknowledge_new => "acknowledgement",
            AutoReply::On | AutoReply::Default if !new_ticket && replies.acknowledge_followups => "followup",
            AutoReply::On | AutoReply::Default => return Ok(()),
        };
        match self.responder().auto_reply(tx, mail, Some(facts), template, now)? {
            ReplyOutcome::Queued { .. } => {}
            ReplyOutcome::Skipped(reason) => info!(template, reason = %reason, "no automatic reply"),
        }
        Ok(())
    }

    /// Ours: a configured address, or a plus-variant of one (`support+T123-sig@`).
    fn is_own_address(&self, key: &str) -> bool {
        let base = match key.split_once('@') {
            Some((local, domain)) => format!("{}@{domain}", local.split('+').next().unwrap_or(local)),
            None => key.to_string(),
        };
        self.own_addresses.contains(&base)
    }

    /// Applies what the rules decided. A new ticket got queue, priority, state and owner at creation; a follow-up
    /// changes them only when a rule said so.
    fn apply_decision(
        &self,
        tx: &Tx<'_>,
        ticket_id: i64,
        article_id: i64,
        d: &Decision,
        current_queue: Option<&str>,
        now: i64,
    ) -> Result<(), StoreError> {
        if let Some(current) = current_queue {
            if d.queue != current {
                tx.set_queue(ticket_id, &d.queue)?;
                tx.add_history(ticket_id, now, "rule", "queue", &d.queue)?;
            }
            if let Some(p) = d.priority {
                tx.set_priority(ticket_id, p)?;
            }
            if let Some(s) = d.state {
                tx.set_state(ticket_id, s)?;
            }
            if let Some(owner) = &d.owner {
                tx.set_owner(ticket_id, Some(owner))?;
            }
        }
        for tag in &d.tags_add {
            tx.add_tag(ticket_id, tag)?;
        }
        for tag in &d.tags_remove {
            tx.remove_tag(ticket_id, tag)?;
        }
        let hits: Vec<(String, String)> = d.fired.iter().map(|r| (r.file.clone(), r.name.clone())).collect();
        tx.add_rule_hits(ticket_id, article_id, &hits)?;
        for r in &d.fired {
            tx.add_history(ticket_id, now, "rule", "fired", &format!("{} ({})", r.name, r.file))?;
        }
        Ok(())
    }
}

/// The customer of a new ticket: From, else the envelope sender, else a placeholder that is plainly not an address.
fn customer_address(mail: &InboundMail) -> String {
    mail.from
        .as_ref()
        .map(|a| a.key())
        .filter(|k| !k.is_empty())
        .or_else(|| mail.return_path.as_ref().filter(|r| !r.is_empty()).map(|r| r.to_ascii_lowercase()))
        .unwrap_or_else(|| "unknown-sender".into())
}
