//! Taking a quarantined mail in again once its cause is fixed (a limit raised, a rule changed): through the same
//! steps as fresh mail, in one transaction that also records the replay, under the ledger source key
//! `quarantine:ID`. Exactly once: a second replay finds the record (and the ledger key) and changes nothing. A mail
//! refused again is left as it was: the transaction is dropped, no second quarantine row is made.

use super::{Incoming, Outcome, Pipeline};
use crate::store::{LedgerEntry, Store, StoreError};

/// What a replay did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Replayed {
    /// Taken in: a new ticket, a follow-up, or (the same bytes were stored meanwhile) a duplicate.
    Done(Outcome),
    /// Still refused, for this reason; nothing was written.
    StillRefused(String),
    /// Replayed or dropped before: what was done then.
    AlreadyDone(String),
}

impl Pipeline {
    pub fn replay(&self, store: &mut Store, id: i64, raw: Vec<u8>, actor: &str) -> Result<Replayed, StoreError> {
        let key = format!("quarantine:{id}");
        let incoming = Incoming { source: key.clone(), source_key: Some(key.clone()), raw, refused: None };
        let parsed = self.parse_one(&incoming.raw);
        let sha = parsed.sha256.clone();
        let now = (self.clock)();
        let tx = store.begin()?;
        if let Some(done) = tx.quarantine_action(id)? {
            return Ok(Replayed::AlreadyDone(format!("{} by {}: {}", done.action, done.actor, done.detail)));
        }
        if tx.ledger_by_source_key(&key)?.is_some() {
            return Ok(Replayed::AlreadyDone("replayed (ledger)".into()));
        }
        // The quarantine's own ledger row has these bytes too; only mail stored since counts as "already here".
        let outcome = match (tx.stored_by_sha256(&sha)?, &parsed.mail) {
            (Some(number), _) => {
                tx.record_ledger(&LedgerEntry { outcome: "duplicate", sha256: &sha, ..incoming.ledger() }, now)?;
                Outcome::Duplicate { number }
            }
            (None, Err(rejection)) => return Ok(Replayed::StillRefused(rejection.to_string())),
            (None, Ok(mail)) => self.store_mail(&tx, &incoming, mail, &parsed, now)?,
        };
        let number = match &outcome {
            Outcome::Quarantined { reason, .. } => return Ok(Replayed::StillRefused(reason.clone())),
            Outcome::NewTicket { number, .. } | Outcome::FollowUp { number, .. } => Some(number.clone()),
            Outcome::Duplicate { number } => number.clone(),
            Outcome::AlreadyProcessed => None,
        };
        tx.resolve_quarantine(id, "replayed", &outcome.to_string(), number.as_deref(), actor, now)?;
        tx.commit()?;
        tracing::info!(quarantine = id, outcome = %outcome, "replayed from quarantine");
        Ok(Replayed::Done(outcome))
    }
}
