//! The auto-reply budget's rows (issue 10): automatic replies sent per normalised address and to first-time
//! senders, and the replies the budget refused. The decision itself is `outbound::policy`'s.

use rusqlite::params;
use serde::Serialize;

use super::{Result, Store, Tx};

/// What `postdesk status` shows of the budget.
#[derive(Debug, Clone, Serialize)]
pub struct ReplyBudget {
    /// Automatic replies to first-time senders in the last hour, and the configured cap.
    pub unknown_senders_last_hour: i64,
    pub unknown_senders_cap: u32,
    /// Replies refused in the last 24 hours because one address had its share.
    pub refused_sender_limit_24h: i64,
    /// Replies refused in the last 24 hours because the hourly cap for first-time senders was reached.
    pub refused_unknown_senders_cap_24h: i64,
}

impl Tx<'_> {
    /// `address` must be normalised (`outbound::policy::normalise_sender`).
    pub fn record_auto_reply(&self, address: &str, first_contact: bool, now: i64) -> Result<()> {
        self.conn().execute(
            "INSERT INTO auto_replies (address, sent_at, first_contact) VALUES (?1, ?2, ?3)",
            params![address, now, first_contact],
        )?;
        Ok(())
    }

    pub fn auto_replies_since(&self, address: &str, since: i64) -> Result<u32> {
        Ok(self.conn().query_row(
            "SELECT count(*) FROM auto_replies WHERE address = ?1 AND sent_at >= ?2",
            params![address, since],
            |r| r.get(0),
        )?)
    }

    pub fn first_contact_replies_since(&self, since: i64) -> Result<u32> {
        Ok(self.conn().query_row(
            "SELECT count(*) FROM auto_replies WHERE first_contact = 1 AND sent_at >= ?1",
            [since],
            |r| r.get(0),
        )?)
    }

    /// Whether `address` (any case) is a party of a ticket opened before `now`: someone we have dealt with, not a
    /// sender first seen in this batch (whose address may be forged).
    pub fn is_known_correspondent(&self, address: &str, now: i64) -> Result<bool> {
        Ok(self.conn().query_row(
            "SELECT EXISTS (SELECT 1 FROM ticket_parties p JOIN tickets t ON t.id = p.ticket_id \
             WHERE p.address = lower(?1) AND t.created_at < ?2)",
            params![address, now],
            |r| r.get(0),
        )?)
    }

    /// `reason`: `sender-limit` or `unknown-senders-cap`.
    pub fn record_reply_refusal(&self, reason: &str, now: i64) -> Result<()> {
        self.conn().execute("INSERT INTO auto_reply_refusals (at, reason) VALUES (?1, ?2)", params![now, reason])?;
        Ok(())
    }
}

impl Store {
    pub fn reply_budget(&self, now: i64, unknown_senders_cap: u32) -> Result<ReplyBudget> {
        let refused = |reason: &str| -> Result<i64> {
            Ok(self.conn.query_row(
                "SELECT count(*) FROM auto_reply_refusals WHERE reason = ?1 AND at >= ?2",
                params![reason, now - 86_400],
                |r| r.get(0),
            )?)
        };
        Ok(ReplyBudget {
            unknown_senders_last_hour: self.conn.query_row(
                "SELECT count(*) FROM auto_replies WHERE first_contact = 1 AND sent_at >= ?1",
                [now - 3600],
                |r| r.get(0),
            )?,
            unknown_senders_cap,
            refused_sender_limit_24h: refused("sender-limit")?,
            refused_unknown_senders_cap_24h: refused("unknown-senders-cap")?,
        })
    }
}
