//! Retention and erasure: the SQL that removes a closed ticket for good (retention) and every trace of one person
//! (`customer erase`), and the reads behind `customer export`. Both writers leave one line in `audit_log`.
//!
//! Attachments are kept inside the raw mail that first carried them (`blobs.raw_id`, see `crate::attachments`), and
//! raw mail is stored once per content; so raw mail is deleted only when no article still points at it, and a
//! blob whose raw mail goes is pointed at another surviving mail carrying the same content, or deleted.

use rusqlite::{OptionalExtension, params};
use serde::Serialize;

use super::{Result, Store, StoreError, Tx};

/// What replaces an erased address, name, subject or text.
pub const ERASED: &str = "[erased]";

/// What purging one ticket (and the tickets merged into it) removed.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Purged {
    pub number: String,
    pub tickets: usize,
    pub articles: usize,
    pub raw_mails: usize,
    pub outbox_rows: usize,
    pub ledger_rows: usize,
}

/// What erasing one person changed.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Erased {
    /// Tickets the person opened (kept as skeletons: number, state, queue, dates, history).
    pub tickets: usize,
    /// Articles the person appears in, emptied (text, subject, raw mail, attachments).
    pub articles: usize,
    pub raw_mails: usize,
    pub outbox_rows: usize,
    /// Party, suppression and rate-limit rows deleted.
    pub rows: usize,
    /// Values elsewhere (history, ledger, quarantine, status) where the address was replaced.
    pub scrubbed: usize,
}

/// One line of `audit_log`.
#[derive(Debug, Clone, Serialize)]
pub struct AuditLine {
    pub at: i64,
    pub actor: String,
    pub action: String,
    pub detail: String,
}

/// Outgoing mail to a person, for `customer export`.
#[derive(Debug, Clone)]
pub struct SentTo {
    pub outbox_id: i64,
    pub kind: String,
    pub state: String,
    pub raw: Vec<u8>,
}

/// Tables that describe agents, never a customer: erasure leaves them alone (an agent is refused before).
const AGENT_TABLES: [&str; 5] = ["agents", "agent_notify", "agent_roles", "roles", "role_queues"];

impl Tx<'_> {
    fn ids(&self, sql: &str, params: impl rusqlite::Params) -> Result<Vec<i64>> {
        let mut stmt = self.conn().prepare(sql)?;
        let rows = stmt.query_map(params, |r| r.get(0))?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// Closed tickets, not merged into another, with no activity since `cutoff`: what retention purges next.
    pub fn retention_due(&self, cutoff: i64, limit: u32) -> Result<Vec<i64>> {
        self.ids(
            "SELECT id FROM tickets WHERE state = 'closed' AND updated_at < ?1 AND merged_into IS NULL \
             ORDER BY updated_at, id LIMIT ?2",
            params![cutoff, limit],
        )
    }

    /// The rate limit's log before `before`.
    pub fn forget_auto_replies(&self, before: i64) -> Result<usize> {
        Ok(self.conn().execute("DELETE FROM auto_replies WHERE sent_at < ?1", [before])?)
    }

    pub fn audit(&self, at: i64, actor: &str, action: &str, detail: &str) -> Result<()> {
        self.conn().execute(
            "INSERT INTO audit_log (at, actor, action, detail) VALUES (?1, ?2, ?3, ?4)",
            params![at, actor, action, detail],
        )?;
        Ok(())
    }

    /// Temp tables naming what goes: tickets, articles, raw mail. Per connection, emptied for each use.
    fn reset_gone(&self) -> Result<()> {
        Ok(self.conn().execute_batch(
            "CREATE TEMP TABLE IF NOT EXISTS gone_tickets (id INTEGER PRIMARY KEY);
             CREATE TEMP TABLE IF NOT EXISTS gone_articles (id INTEGER PRIMARY KEY);
             CREATE TEMP TABLE IF NOT EXISTS gone_raw (id INTEGER PRIMARY KEY);
             DELETE FROM temp.gone_tickets; DELETE FROM temp.gone_articles; DELETE FROM temp.gone_raw;",
        )?)
    }

    /// Deletes a ticket, the tickets merged into it, and everything of theirs: articles, raw mail, attachments,
    /// parties, tags, history, rule hits, ledger and outbox rows. One audit line remains.
    pub fn purge_ticket(&self, ticket_id: i64, now: i64, actor: &str, why: &str) -> Result<Purged> {
        let (number, created_at): (String, i64) =
            self.conn().query_row("SELECT number, created_at FROM tickets WHERE id = ?1", [ticket_id], |r| {
                Ok((r.get(0)?, r.get(1)?))
            })?;
        self.reset_gone()?;
        let c = self.conn();
        let tickets = c.execute(
            "INSERT INTO temp.gone_tickets WITH RECURSIVE m(id) AS (SELECT ?1 UNION \
             SELECT t.id FROM tickets t JOIN m ON t.merged_into = m.id) SELECT id FROM m",
            [ticket_id],
        )?;
        let articles = c.execute(
            "INSERT INTO temp.gone_articles SELECT id FROM articles WHERE ticket_id IN temp.gone_tickets",
            [],
        )?;
        let outbox_rows = c.execute(
            "DELETE FROM outbox WHERE ticket_id IN temp.gone_tickets OR article_id IN temp.gone_articles",
            [],
        )?;
        let ledger_rows = c.execute(
            "DELETE FROM ingest_ledger WHERE ticket_id IN temp.gone_tickets OR article_id IN temp.gone_articles",
            [],
        )?;
        c.execute_batch(
            "UPDATE articles SET duplicate_of = NULL WHERE duplicate_of IN temp.gone_articles;
             DELETE FROM rule_hits WHERE ticket_id IN temp.gone_tickets OR article_id IN temp.gone_articles;",
        )?;
        let raw_mails = self.drop_article_content()?;
        c.execute_batch(
            "DELETE FROM articles WHERE id IN temp.gone_articles;
             DELETE FROM ticket_history WHERE ticket_id IN temp.gone_tickets;
             DELETE FROM ticket_tags WHERE ticket_id IN temp.gone_tickets;
             DELETE FROM ticket_parties WHERE ticket_id IN temp.gone_tickets;
             UPDATE tickets SET merged_into = NULL WHERE id IN temp.gone_tickets;
             DELETE FROM tickets WHERE id IN temp.gone_tickets;",
        )?;
        let created = chrono::DateTime::from_timestamp(created_at, 0).unwrap_or_default().format("%Y-%m-%d");
        let detail = format!(
            "ticket {number} (opened {created}; {} merged into it): {articles} articles, {raw_mails} raw mails, \
             {outbox_rows} outbox rows, {ledger_rows} ledger rows deleted; {why}",
            tickets - 1
        );
        self.audit(now, actor, "purged", &detail)?;
        Ok(Purged { number, tickets, articles, raw_mails, outbox_rows, ledger_rows })
    }

    /// Removes the attachments of `gone_articles` and their raw mail where no other article keeps it; re-points
    /// blobs kept in that raw mail. The articles themselves stay (the caller deletes or empties them).
    fn drop_article_content(&self) -> Result<usize> {
        let c = self.conn();
        c.execute_batch(
            "INSERT OR IGNORE INTO temp.gone_raw SELECT raw_id FROM articles
                 WHERE id IN temp.gone_articles AND raw_id IS NOT NULL;
             DELETE FROM attachments WHERE article_id IN temp.gone_articles;
             UPDATE articles SET raw_id = NULL WHERE id IN temp.gone_articles;
             DELETE FROM temp.gone_raw WHERE id IN (SELECT raw_id FROM articles WHERE raw_id IS NOT NULL);
             UPDATE blobs SET raw_id = (SELECT a.raw_id FROM attachments t JOIN articles a ON a.id = t.article_id
                 WHERE t.sha256 = blobs.sha256 AND a.raw_id IS NOT NULL AND a.raw_id NOT IN temp.gone_raw LIMIT 1)
                 WHERE raw_id IN temp.gone_raw;
             DELETE FROM attachments WHERE sha256 IN
                 (SELECT sha256 FROM blobs WHERE raw_id IS NULL AND data = X'' AND size > 0);
             DELETE FROM blobs WHERE sha256 NOT IN (SELECT sha256 FROM attachments)
                 OR (raw_id IS NULL AND data = X'' AND size > 0);",
        )?;
        Ok(c.execute("DELETE FROM raw_messages WHERE id IN temp.gone_raw", [])?)
    }

    /// GDPR-style erasure of `address` (lowercased): the tickets it opened keep their skeleton (number, state,
    /// queue, priority, dates, tags, history) and lose customer, name and subject; every article it appears in
    /// loses its text, subject, raw mail and attachments (and the sender's name where it is the sender); its outbox,
    /// suppression and rate-limit rows go; the address is replaced everywhere else. `raw_hits` are raw mails found to contain the
    /// address by reading them through the store's accessor (they may be stored compressed). Fails, changing
    /// nothing, when the address is still found anywhere afterwards.
    pub fn erase_customer(&self, address: &str, raw_hits: &[i64], now: i64, why: &str) -> Result<Erased> {
        let a = address.trim().to_ascii_lowercase();
        if a.len() < 3 || !a.contains('@') {
            return Err(StoreError::Invalid(format!("\"{address}\" is not a mail address")));
        }
        if self.agent(&a)?.is_some() {
            return Err(StoreError::Invalid(format!("{a} is an agent; agents are not erased as customers")));
        }
        let (tickets, articles, touched) = self.mark_for_erasure(&a, raw_hits)?;
        let c = self.conn();
        let outbox_rows = c.execute(
            "DELETE FROM outbox WHERE ticket_id IN temp.gone_tickets OR article_id IN temp.gone_articles
                OR instr(lower(recipients), ?1) OR instr(lower(raw), ?1)",
            [&a],
        )?;
        let raw_mails = self.drop_article_content()?;
        c.execute(
            "UPDATE articles SET subject = ?2, body_text = '', visible_text = '',
                sender_name = CASE WHEN lower(sender) = ?1 OR ticket_id IN temp.gone_tickets THEN NULL
                                   ELSE sender_name END,
                sender = CASE WHEN lower(sender) = ?1 THEN NULL ELSE sender END
             WHERE id IN temp.gone_articles",
            params![a, ERASED],
        )?;
        c.execute(
            "UPDATE tickets SET customer = ?1, customer_name = NULL, subject = ?1 WHERE id IN temp.gone_tickets",
            [ERASED],
        )?;
        let rows = c.execute("DELETE FROM ticket_parties WHERE address = ?1", [&a])?
            + c.execute("DELETE FROM suppressions WHERE lower(address) = ?1", [&a])?
            + c.execute("DELETE FROM auto_replies WHERE lower(address) = ?1", [&a])?;
        c.execute("UPDATE quarantine SET data = NULL WHERE instr(lower(data), ?1)", [&a])?;
        // Names go with the fields that hold them (customer_name, sender_name) and the emptied texts; they are not
        // searched for elsewhere: a display name such as "Support" or "Sales" would wreck unrelated values.
        let scrubbed = self.scrub(&a)?;
        for ticket in touched {
            self.add_history(ticket, now, "admin", "erased", "a customer's personal data was erased")?;
        }
        if let Some((table, column)) = self.find_trace(&a)? {
            return Err(StoreError::Invalid(format!(
                "the address is still in {table}.{column} after erasure; nothing was changed (please report this)"
            )));
        }
        let erased = Erased { tickets, articles, raw_mails, outbox_rows, rows, scrubbed };
        let detail = format!(
            "a customer's data: {tickets} tickets kept as skeletons, {articles} articles emptied, {raw_mails} raw \
             mails, {outbox_rows} outbox rows and {rows} other rows deleted, {scrubbed} other values replaced; {why}"
        );
        self.audit(now, "admin", "erased", &detail)?;
        Ok(erased)
    }

    /// Fills the temp tables for an erasure: the tickets `a` opened, the articles it appears in (fields, texts, raw
    /// mail, legacy attachment bytes, file names). Returns (tickets, articles, every ticket touched).
    fn mark_for_erasure(&self, a: &str, raw_hits: &[i64]) -> Result<(usize, usize, Vec<i64>)> {
        self.reset_gone()?;
        let c = self.conn();
        let tickets = c.execute("INSERT INTO temp.gone_tickets SELECT id FROM tickets WHERE customer = ?1", [a])?;
        let mut hits = c.prepare("INSERT OR IGNORE INTO temp.gone_raw (id) VALUES (?1)")?;
        for id in raw_hits {
            hits.execute([id])?;
        }
        let articles = c.execute(
            "INSERT INTO temp.gone_articles SELECT id FROM articles WHERE ticket_id IN temp.gone_tickets
                OR lower(sender) = ?1 OR instr(lower(recipients), ?1) OR instr(lower(cc), ?1)
                OR instr(lower(subject), ?1) OR instr(lower(body_text), ?1) OR instr(lower(visible_text), ?1)
                OR raw_id IN temp.gone_raw OR raw_id IN (SELECT id FROM raw_messages WHERE instr(lower(coalesce(payload, data)), ?1))
                OR id IN (SELECT t.article_id FROM attachments t JOIN blobs b ON b.sha256 = t.sha256
                          WHERE instr(lower(b.data), ?1) OR instr(lower(t.filename), ?1))",
            [a],
        )?;
        let touched = self.ids(
            "SELECT id FROM temp.gone_tickets UNION SELECT ticket_id FROM articles WHERE id IN temp.gone_articles",
            [],
        )?;
        Ok((tickets, articles, touched))
    }

    /// Every text column of every table but the agents': `needle` (lowercase), in any case, becomes [`ERASED`].
    /// Returns the number of values changed.
    fn scrub(&self, needle: &str) -> Result<usize> {
        let mut changed = 0;
        for (table, column, kind) in self.columns()? {
            if !kind.contains("TEXT") {
                continue;
            }
            let found: Vec<String> = {
                let sql = format!("SELECT DISTINCT \"{column}\" FROM \"{table}\" WHERE instr(lower(\"{column}\"), ?1)");
                let mut stmt = self.conn().prepare(&sql)?;
                stmt.query_map([needle], |r| r.get(0))?.collect::<rusqlite::Result<_>>()?
            };
            let sql = format!("UPDATE \"{table}\" SET \"{column}\" = ?2 WHERE \"{column}\" = ?1");
            for value in found {
                changed += self.conn().execute(&sql, params![value, replace_ignoring_case(&value, needle)])?;
            }
        }
        Ok(changed)
    }

    /// (table, column, declared type) of every column of every table but the agents'.
    fn columns(&self) -> Result<Vec<(String, String, String)>> {
        let mut stmt = self.conn().prepare(
            "SELECT m.name, p.name, upper(p.type) FROM sqlite_master m JOIN pragma_table_info(m.name) p
             WHERE m.type = 'table' AND m.name NOT LIKE 'sqlite_%' ORDER BY m.name, p.cid",
        )?;
        let rows: Vec<(String, String, String)> =
            stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?.collect::<rusqlite::Result<_>>()?;
        Ok(rows.into_iter().filter(|(t, _, _)| !AGENT_TABLES.contains(&t.as_str())).collect())
    }

    /// The first text or blob column still holding `needle` (lowercase), in any case.
    fn find_trace(&self, needle: &str) -> Result<Option<(String, String)>> {
        for (table, column, kind) in self.columns()? {
            if !(kind.contains("TEXT") || kind.contains("BLOB") || kind.is_empty()) {
                continue;
            }
            let sql = format!("SELECT 1 FROM \"{table}\" WHERE instr(lower(\"{column}\"), ?1) LIMIT 1");
            if self.conn().query_row(&sql, [needle], |_| Ok(())).optional()?.is_some() {
                return Ok(Some((table, column)));
            }
        }
        Ok(None)
    }
}

/// `text` with every occurrence of `needle` (lowercase), in any case, replaced by [`ERASED`].
fn replace_ignoring_case(text: &str, needle: &str) -> String {
    let lower = text.to_lowercase();
    // Lowercasing non-ASCII may change byte lengths; then fall back to ASCII-only folding, which keeps offsets.
    let lower = if lower.len() == text.len() { lower } else { text.to_ascii_lowercase() };
    let mut out = String::with_capacity(text.len());
    let mut rest = 0;
    while let Some(found) = lower[rest..].find(needle) {
        let start = rest + found;
        out.push_str(&text[rest..start]);
        out.push_str(ERASED);
        rest = start + needle.len();
    }
    out.push_str(&text[rest..]);
    out
}

impl Store {
    /// Ids of raw mails whose content (read through [`Store::raw_by_id`], so however it is stored) contains
    /// `address`, in any case.
    pub fn raw_ids_mentioning(&self, address: &str) -> Result<Vec<i64>> {
        let needle = address.trim().to_ascii_lowercase().into_bytes();
        let ids: Vec<i64> = {
            let mut stmt = self.conn.prepare("SELECT id FROM raw_messages ORDER BY id")?;
            stmt.query_map([], |r| r.get(0))?.collect::<rusqlite::Result<_>>()?
        };
        let mut hits = Vec::new();
        for id in ids {
            let Some(raw) = self.raw_by_id(id)? else { continue };
            if raw.to_ascii_lowercase().windows(needle.len()).any(|w| w == needle.as_slice()) {
                hits.push(id);
            }
        }
        Ok(hits)
    }

    /// Numbers of the tickets `address` opened or is a party of, oldest first.
    pub fn tickets_of(&self, address: &str) -> Result<Vec<String>> {
        let mut stmt = self.conn.prepare(
            "SELECT number FROM tickets WHERE customer = lower(?1) OR id IN \
             (SELECT ticket_id FROM ticket_parties WHERE address = lower(?1)) ORDER BY id",
        )?;
        Ok(stmt.query_map([address], |r| r.get(0))?.collect::<rusqlite::Result<_>>()?)
    }

    /// Mail we wrote to `address` (answers, acknowledgements), sent or waiting.
    pub fn outbox_to(&self, address: &str) -> Result<Vec<SentTo>> {
        let mut stmt = self
            .conn
            .prepare("SELECT id, kind, state, raw FROM outbox WHERE instr(lower(recipients), lower(?1)) ORDER BY id")?;
        let rows = stmt.query_map([address], |r| {
            Ok(SentTo { outbox_id: r.get(0)?, kind: r.get(1)?, state: r.get(2)?, raw: r.get(3)? })
        })?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// Automatic replies sent to `address` (the rate limit's log): their times.
    pub fn auto_replies_to(&self, address: &str) -> Result<Vec<i64>> {
        let mut stmt =
            self.conn.prepare("SELECT sent_at FROM auto_replies WHERE address = lower(?1) ORDER BY sent_at")?;
        Ok(stmt.query_map([address], |r| r.get(0))?.collect::<rusqlite::Result<_>>()?)
    }

    pub fn audit_list(&self, limit: u32) -> Result<Vec<AuditLine>> {
        let mut stmt =
            self.conn.prepare("SELECT at, actor, action, detail FROM audit_log ORDER BY id DESC LIMIT ?1")?;
        let rows = stmt.query_map([limit], |r| {
            Ok(AuditLine { at: r.get(0)?, actor: r.get(1)?, action: r.get(2)?, detail: r.get(3)? })
        })?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }
}

#[cfg(test)]
mod tests {
    use super::replace_ignoring_case;

    #[test]
    fn replacement_ignores_case_and_keeps_the_rest() {
        for (text, needle, expected) in [
            ("Carol@Example.TEST wrote", "carol@example.test", "[erased] wrote"),
            ("[\"a@b.c\",\"carol@example.test\"]", "carol@example.test", "[\"a@b.c\",\"[erased]\"]"),
            ("to x@y and X@Y", "x@y", "to [erased] and [erased]"),
            ("Grüße an Carol Beispiel", "carol beispiel", "Grüße an [erased]"),
            ("nothing here", "x@y", "nothing here"),
        ] {
            assert_eq!(replace_ignoring_case(text, needle), expected);
        }
    }
}
