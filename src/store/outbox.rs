//! The outbox, the auto-reply log and the suppression list.

use rusqlite::{OptionalExtension, params};
use serde::Serialize;

use super::{Result, Store, Tx};

pub struct NewOutgoing<'a> {
    pub ticket_id: Option<i64>,
    pub article_id: Option<i64>,
    pub kind: &'a str,
    pub message_id: &'a str,
    pub envelope_from: &'a str,
    pub recipients: &'a [String],
    pub raw: &'a [u8],
    pub now: i64,
}

/// A mail we sent, as a bounce refers to it.
#[derive(Debug, Clone)]
pub struct SentMail {
    pub outbox_id: i64,
    pub ticket_id: Option<i64>,
    pub recipients: Vec<String>,
}

/// A row due for sending.
#[derive(Debug, Clone)]
pub struct Due {
    pub id: i64,
    pub message_id: String,
    pub envelope_from: String,
    pub recipients: Vec<String>,
    pub raw: Vec<u8>,
    pub attempts: i64,
}

/// What `outbox list` shows; documented JSON (docs/json.md).
#[derive(Debug, Clone, Serialize)]
pub struct OutboxView {
    pub id: i64,
    pub ticket: Option<String>,
    pub kind: String,
    pub message_id: String,
    pub recipients: Vec<String>,
    pub state: String,
    pub attempts: i64,
    pub next_attempt_at: i64,
    pub last_error: Option<String>,
    pub bounced: Option<String>,
    pub created_at: i64,
    pub sent_at: Option<i64>,
    /// Why a queued row waits: `relay` (unreachable; retried the moment it answers) or `recipient` (a 4xx).
    pub wait_reason: Option<String>,
    /// The reason an admin gave with `outbox hold` or `outbox cancel`.
    pub admin_note: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct SuppressionView {
    pub address: String,
    pub reason: String,
    pub created_at: i64,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct OutboxCounts {
    pub queued: i64,
    pub failed: i64,
    pub sent: i64,
    /// When the oldest queued mail was written.
    pub oldest_queued_at: Option<i64>,
    /// Held by an admin (`outbox hold`): not sent until released.
    pub held: i64,
    /// Cancelled by an admin: kept, never sent.
    pub cancelled: i64,
    /// Queued rows waiting only because the relay could not be reached.
    pub waiting_for_relay: i64,
}

impl Tx<'_> {
    pub fn enqueue(&self, m: &NewOutgoing<'_>) -> Result<i64> {
        self.conn().execute(
            "INSERT INTO outbox (ticket_id, article_id, kind, message_id, envelope_from, recipients, raw, next_attempt_at, \
             created_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?8)",
            params![
                m.ticket_id,
                m.article_id,
                m.kind,
                m.message_id,
                m.envelope_from,
                serde_json::to_string(m.recipients).unwrap_or_else(|_| "[]".into()),
                m.raw,
                m.now
            ],
        )?;
        Ok(self.conn().last_insert_rowid())
    }

    pub fn is_suppressed(&self, address: &str) -> Result<bool> {
        Ok(self
            .conn()
            .query_row("SELECT 1 FROM suppressions WHERE address = lower(?1)", [address], |_| Ok(()))
            .optional()?
            .is_some())
    }

    pub fn suppress(&self, address: &str, reason: &str, now: i64) -> Result<()> {
        self.conn().execute(
            "INSERT INTO suppressions (address, reason, created_at) VALUES (lower(?1), ?2, ?3) \
             ON CONFLICT(address) DO UPDATE SET reason = ?2, created_at = ?3",
            params![address, reason, now],
        )?;
        Ok(())
    }

    /// The outbox row of a mail we sent, by its Message-ID.
    pub fn outbox_by_message_id(&self, message_id: &str) -> Result<Option<SentMail>> {
        Ok(self
            .conn()
            .query_row("SELECT id, ticket_id, recipients FROM outbox WHERE message_id = ?1", [message_id], |r| {
                let recipients: String = r.get(2)?;
                Ok(SentMail {
                    outbox_id: r.get(0)?,
                    ticket_id: r.get(1)?,
                    recipients: serde_json::from_str(&recipients).unwrap_or_default(),
                })
            })
            .optional()?)
    }

    pub fn mark_bounced(&self, outbox_id: i64, status: &str) -> Result<()> {
        self.conn().execute("UPDATE outbox SET bounced = ?2 WHERE id = ?1", params![outbox_id, status])?;
        Ok(())
    }

    pub fn mark_sent(&self, id: i64, now: i64) -> Result<()> {
        self.conn().execute(
            "UPDATE outbox SET state = 'sent', sent_at = ?2, attempts = attempts + 1, last_error = NULL WHERE id = ?1",
            params![id, now],
        )?;
        Ok(())
    }

    pub fn mark_retry(&self, id: i64, next_attempt_at: i64, error: &str) -> Result<()> {
        self.conn().execute(
            "UPDATE outbox SET attempts = attempts + 1, next_attempt_at = ?2, last_error = ?3 WHERE id = ?1",
            params![id, next_attempt_at, error],
        )?;
        Ok(())
    }

    pub fn mark_failed(&self, id: i64, error: &str) -> Result<()> {
        self.conn().execute(
            "UPDATE outbox SET state = 'failed', attempts = attempts + 1, last_error = ?2 WHERE id = ?1",
            params![id, error],
        )?;
        Ok(())
    }

    /// `outbox retry`: a failed (or waiting) row is due again now. False when there is no such row (held rows are
    /// released with `outbox release`, cancelled ones stay cancelled).
    pub fn retry_outbox(&self, id: i64, now: i64) -> Result<bool> {
        Ok(self.conn().execute(
            "UPDATE outbox SET state = 'queued', next_attempt_at = ?2 WHERE id = ?1 AND state IN ('queued', 'failed')",
            params![id, now],
        )? > 0)
    }

    pub fn remove_suppression(&self, address: &str) -> Result<bool> {
        Ok(self.conn().execute("DELETE FROM suppressions WHERE address = lower(?1)", [address])? > 0)
    }
}

impl Store {
    pub fn due_outbox(&self, now: i64, limit: u32) -> Result<Vec<Due>> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT id, message_id, envelope_from, recipients, raw, attempts FROM outbox \
             WHERE state = 'queued' AND next_attempt_at <= ?1 ORDER BY next_attempt_at, id LIMIT ?2",
        )?;
        let rows = stmt.query_map(params![now, limit], |r| {
            let recipients: String = r.get(3)?;
            Ok(Due {
                id: r.get(0)?,
                message_id: r.get(1)?,
                envelope_from: r.get(2)?,
                recipients: serde_json::from_str(&recipients).unwrap_or_default(),
                raw: r.get(4)?,
                attempts: r.get(5)?,
            })
        })?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// When the next queued row becomes due, if any.
    pub fn next_outbox_due(&self) -> Result<Option<i64>> {
        Ok(self.conn.query_row("SELECT min(next_attempt_at) FROM outbox WHERE state = 'queued'", [], |r| r.get(0))?)
    }

    pub fn outbox_list(&self, state: Option<&str>, limit: u32) -> Result<Vec<OutboxView>> {
        let mut stmt = self.conn.prepare(
            "SELECT o.id, t.number, o.kind, o.message_id, o.recipients, o.state, o.attempts, o.next_attempt_at, \
             o.last_error, o.bounced, o.created_at, o.sent_at, o.wait_reason, o.admin_note FROM outbox o LEFT JOIN tickets t ON t.id = o.ticket_id \
             WHERE (?1 IS NULL OR o.state = ?1) ORDER BY o.id DESC LIMIT ?2",
        )?;
        let rows = stmt.query_map(params![state, limit], |r| {
            let recipients: String = r.get(4)?;
            Ok(OutboxView {
                id: r.get(0)?,
                ticket: r.get(1)?,
                kind: r.get(2)?,
                message_id: r.get(3)?,
                recipients: serde_json::from_str(&recipients).unwrap_or_default(),
                state: r.get(5)?,
                attempts: r.get(6)?,
                next_attempt_at: r.get(7)?,
                last_error: r.get(8)?,
                bounced: r.get(9)?,
                created_at: r.get(10)?,
                sent_at: r.get(11)?,
                wait_reason: r.get(12)?,
                admin_note: r.get(13)?,
            })
        })?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// Mail waiting to be sent: cheap (the `outbox_due` index), for the daemon's frequent self-check.
    pub fn queued_count(&self) -> Result<i64> {
        Ok(self.conn.query_row("SELECT count(*) FROM outbox WHERE state = 'queued'", [], |r| r.get(0))?)
    }

    pub fn outbox_counts(&self) -> Result<OutboxCounts> {
        Ok(self.conn.query_row(
            "SELECT coalesce(sum(state = 'queued'), 0), coalesce(sum(state = 'failed'), 0), coalesce(sum(state = 'sent'), 0), \
             min(CASE WHEN state = 'queued' THEN created_at END), coalesce(sum(state = 'held'), 0), \
             coalesce(sum(state = 'cancelled'), 0), coalesce(sum(state = 'queued' AND wait_reason = 'relay'), 0) \
             FROM outbox",
            [],
            |r| {
                Ok(OutboxCounts {
                    queued: r.get(0)?,
                    failed: r.get(1)?,
                    sent: r.get(2)?,
                    oldest_queued_at: r.get(3)?,
                    held: r.get(4)?,
                    cancelled: r.get(5)?,
                    waiting_for_relay: r.get(6)?,
                })
            },
        )?)
    }

    pub fn suppression_list(&self) -> Result<Vec<SuppressionView>> {
        let mut stmt = self.conn.prepare("SELECT address, reason, created_at FROM suppressions ORDER BY address")?;
        let rows = stmt
            .query_map([], |r| Ok(SuppressionView { address: r.get(0)?, reason: r.get(1)?, created_at: r.get(2)? }))?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }
}
