//! The pipeline's side of "who is a party is decided by proof" (src/thread.rs): what a claimed follow-up may not do,
//! and the history lines that tell agents so.

use tracing::info;

use super::Pipeline;
use crate::model::InboundMail;
use crate::respond::TicketFacts;
use crate::store::{StoreError, Tx};
use crate::thread::{Standing, ThreadLookup};

impl Pipeline {
    /// A claimed follow-up adds no parties; the history names whom it wanted to add, for the agents.
    pub(super) fn note_ignored_parties(
        &self,
        tx: &Tx<'_>,
        ticket_id: i64,
        mail: &InboundMail,
        now: i64,
    ) -> Result<(), StoreError> {
        let mut ignored = Vec::new();
        for key in mail.cc.iter().chain(mail.to.iter()).map(|a| a.key()) {
            if !key.is_empty() && !self.is_own_address(&key) && !tx.is_party(ticket_id, &key)? {
                ignored.push(key);
            }
        }
        if !ignored.is_empty() {
            let why = "the follow-up answers none of our signed mail about the ticket";
            tx.add_history(ticket_id, now, "system", "parties not added", &format!("{}: {why}", ignored.join(", ")))?;
        }
        Ok(())
    }

    /// A claimed follow-up is acknowledged only when the address the acknowledgement would go to (Reply-To, else
    /// From) is already a party of the ticket: it then tells nobody anything new. Otherwise a stranger who forged
    /// `From:` and set `Reply-To:`, or who only referenced a customer's Message-ID, would learn the ticket's number
    /// and subject (issue 10). The refusal is kept in the ticket's history.
    pub(super) fn may_acknowledge(
        &self,
        tx: &Tx<'_>,
        facts: &TicketFacts,
        mail: &InboundMail,
        standing: Standing,
        now: i64,
    ) -> Result<bool, StoreError> {
        if standing == Standing::Proven {
            return Ok(true);
        }
        let Some(to) = mail.reply_address().map(|a| a.key()) else { return Ok(false) };
        if tx.is_party(facts.id, &to)? {
            return Ok(true);
        }
        let why = format!("{to} is not a party, and the follow-up answers none of our signed mail about the ticket");
        tx.add_history(facts.id, now, "system", "auto-reply withheld", &why)?;
        info!(reason = %why, "no automatic reply");
        Ok(false)
    }
}
