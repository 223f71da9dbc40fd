//! The outbox's relay-wait bookkeeping and an admin's controls over single rows, modelled on Postfix's `postsuper`:
//! hold (never sent until released), release, and cancel (kept with its reason, never sent).

use rusqlite::params;

use super::{Result, Tx};

/// Why a queued row waits after a temporary failure.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WaitReason {
    /// The relay could not be reached or refused service as a whole (connection refused, timeout, TLS, 421):
    /// the row is tried again as soon as the relay answers, whatever its own backoff says.
    Relay,
    /// A 4xx for this mail alone (e.g. a recipient's mailbox busy): the row keeps its own backoff.
    Recipient,
}

impl WaitReason {
    pub fn as_str(self) -> &'static str {
        match self {
            WaitReason::Relay => "relay",
            WaitReason::Recipient => "recipient",
        }
    }
}

/// What `outbox hold|release|cancel` did, or why it could not.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Control {
    Done,
    NoSuchRow,
    /// The row is in a state the action does not apply to (e.g. releasing a row that is not held).
    WrongState(String),
}

impl Tx<'_> {
    /// A temporary failure: count the attempt, wait until `next_attempt_at`, remember why.
    pub fn mark_wait(&self, id: i64, next_attempt_at: i64, error: &str, reason: WaitReason) -> Result<()> {
        self.conn().execute(
            "UPDATE outbox SET attempts = attempts + 1, next_attempt_at = ?2, last_error = ?3, wait_reason = ?4 \
             WHERE id = ?1",
            params![id, next_attempt_at, error, reason.as_str()],
        )?;
        Ok(())
    }

    /// The relay answers again: every queued row that waits only because of the relay is due now. Returns how many.
    pub fn release_relay_waits(&self, now: i64) -> Result<usize> {
        Ok(self.conn().execute(
            "UPDATE outbox SET next_attempt_at = ?1 WHERE state = 'queued' AND wait_reason = 'relay' \
             AND next_attempt_at > ?1",
            [now],
        )?)
    }

    /// `outbox hold ID`: a queued or failed row is not sent until released.
    pub fn hold_outbox(&self, id: i64, reason: Option<&str>) -> Result<Control> {
        self.control(id, &["queued", "failed"], "held", reason, None)
    }

    /// `outbox release ID`: a held row is queued again and due now.
    pub fn release_outbox(&self, id: i64, now: i64) -> Result<Control> {
        self.control(id, &["held"], "queued", None, Some(now))
    }

    /// `outbox cancel ID --reason …`: the row stays, for the record, but is never sent.
    pub fn cancel_outbox(&self, id: i64, reason: &str) -> Result<Control> {
        self.control(id, &["queued", "failed", "held"], "cancelled", Some(reason), None)
    }

    fn control(&self, id: i64, from: &[&str], to: &str, note: Option<&str>, due: Option<i64>) -> Result<Control> {
        let state: Option<String> = rusqlite::OptionalExtension::optional(self.conn().query_row(
            "SELECT state FROM outbox WHERE id = ?1",
            [id],
            |r| r.get(0),
        ))?;
        let Some(state) = state else { return Ok(Control::NoSuchRow) };
        if !from.contains(&state.as_str()) {
            return Ok(Control::WrongState(state));
        }
        // A release keeps the reason given at hold time for the record; hold and cancel replace it.
        self.conn().execute(
            "UPDATE outbox SET state = ?2, admin_note = coalesce(?3, admin_note), \
             next_attempt_at = coalesce(?4, next_attempt_at) WHERE id = ?1",
            params![id, to, note, due],
        )?;
        Ok(Control::Done)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{NewOutgoing, Store};

    fn queued(store: &mut Store, n: i64) -> i64 {
        let tx = store.begin().unwrap();
        let recipients = vec!["customer@example.test".to_string()];
        let id = tx
            .enqueue(&NewOutgoing {
                ticket_id: None,
                article_id: None,
                kind: "acknowledgement",
                message_id: &format!("m{n}@example.test"),
                envelope_from: "",
                recipients: &recipients,
                raw: b"x",
                now: 100,
            })
            .unwrap();
        tx.commit().unwrap();
        id
    }

    #[test]
    fn a_relay_answering_again_makes_only_relay_waits_due() {
        let mut store = Store::open_in_memory().unwrap();
        let (relay, recipient, fresh) = (queued(&mut store, 1), queued(&mut store, 2), queued(&mut store, 3));
        let tx = store.begin().unwrap();
        tx.mark_wait(relay, 5000, "connection refused", WaitReason::Relay).unwrap();
        tx.mark_wait(recipient, 5000, "450 mailbox busy", WaitReason::Recipient).unwrap();
        assert_eq!(tx.release_relay_waits(200).unwrap(), 1);
        tx.commit().unwrap();
        let due: Vec<i64> = store.due_outbox(200, 10).unwrap().iter().map(|d| d.id).collect();
        assert_eq!(due, vec![fresh, relay], "the 4xx row keeps its own backoff");
    }

    #[test]
    fn held_rows_are_never_due_until_released_and_cancel_keeps_the_reason() {
        let mut store = Store::open_in_memory().unwrap();
        let (a, b) = (queued(&mut store, 1), queued(&mut store, 2));
        let tx = store.begin().unwrap();
        assert_eq!(tx.hold_outbox(a, Some("wrong template")).unwrap(), Control::Done);
        assert_eq!(tx.release_outbox(b, 100).unwrap(), Control::WrongState("queued".into()));
        assert_eq!(tx.cancel_outbox(b, "customer asked us to stop").unwrap(), Control::Done);
        assert_eq!(tx.hold_outbox(b, None).unwrap(), Control::WrongState("cancelled".into()));
        assert_eq!(tx.hold_outbox(99, None).unwrap(), Control::NoSuchRow);
        tx.commit().unwrap();
        assert!(store.due_outbox(1_000_000, 10).unwrap().is_empty(), "held and cancelled rows are never sent");
        let tx = store.begin().unwrap();
        assert_eq!(tx.release_outbox(a, 500).unwrap(), Control::Done);
        tx.commit().unwrap();
        assert_eq!(store.due_outbox(500, 10).unwrap().len(), 1);
        let rows = store.outbox_list(None, 10).unwrap();
        let note = |id| rows.iter().find(|r| r.id == id).unwrap().admin_note.clone();
        assert_eq!(note(b).as_deref(), Some("customer asked us to stop"));
        assert_eq!(note(a).as_deref(), Some("wrong template"));
        let counts = store.outbox_counts().unwrap();
        assert_eq!((counts.queued, counts.held, counts.cancelled), (1, 0, 1));
    }
}
