//! Queries behind `ticket list`, `ticket show` and `status`. The view structs are the documented JSON of those
//! commands (docs/json.md): add fields, never rename or remove them.

use rusqlite::OptionalExtension;
use serde::Serialize;

use super::{Result, Store};
use crate::model::Priority;

#[derive(Debug, Default)]
pub struct TicketFilter {
    pub queue: Option<String>,
    pub state: Option<String>,
    pub limit: Option<u32>,
}

#[derive(Debug, Clone, Serialize)]
pub struct TicketSummary {
    pub number: String,
    pub subject: String,
    pub state: String,
    pub queue: String,
    pub priority: String,
    pub customer: String,
    pub owner: Option<String>,
    pub articles: i64,
    pub created_at: i64,
    pub updated_at: i64,
}

#[derive(Debug, Clone, Serialize)]
pub struct AttachmentView {
    pub filename: Option<String>,
    pub content_type: String,
    pub size: i64,
    pub sha256: String,
}

/// A row of `blobs`. With `raw_id` set, `data` is empty and the bytes are in that raw mail.
#[derive(Debug, Clone)]
pub struct Blob {
    pub size: i64,
    pub data: Vec<u8>,
    pub raw_id: Option<i64>,
}

#[derive(Debug, Clone, Serialize)]
pub struct ArticleView {
    pub id: i64,
    pub direction: String,
    pub internal: bool,
    pub sender: Option<String>,
    pub sender_name: Option<String>,
    pub to: Vec<String>,
    pub cc: Vec<String>,
    pub subject: String,
    pub message_id: Option<String>,
    pub in_reply_to: Option<String>,
    pub references: Vec<String>,
    pub classification: String,
    pub classification_reason: Option<String>,
    pub duplicate_of: Option<i64>,
    pub visible_text: String,
    pub body_text: String,
    pub received_at: i64,
    pub attachments: Vec<AttachmentView>,
}

#[derive(Debug, Clone, Serialize)]
pub struct RuleHitView {
    pub article_id: i64,
    pub file: String,
    pub rule: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct HistoryView {
    pub at: i64,
    pub actor: String,
    pub event: String,
    pub detail: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct TicketDetail {
    #[serde(flatten)]
    pub ticket: TicketSummary,
    pub customer_name: Option<String>,
    pub tags: Vec<String>,
    pub claimed_number: Option<String>,
    pub merged_into: Option<String>,
    pub rules: Vec<RuleHitView>,
    pub history: Vec<HistoryView>,
    pub articles: Vec<ArticleView>,
}

#[derive(Debug, Clone, Serialize)]
pub struct QuarantineView {
    pub id: i64,
    pub reason: String,
    pub source: String,
    pub size: i64,
    pub kept_bytes: bool,
    pub created_at: i64,
    /// waiting (nobody acted yet) | replayed | dropped
    pub status: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct DaemonFact {
    pub value: String,
    /// When the daemon wrote it (Unix seconds): for `connected`, since when.
    pub updated_at: i64,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct StatusCounts {
    pub tickets: i64,
    pub open_tickets: i64,
    pub articles: i64,
    pub ingested: i64,
    pub duplicates: i64,
    pub quarantined: i64,
    /// What the daemon last reported, by key: connected, server, last_error, last_fetch, backlog.
    pub daemon: std::collections::BTreeMap<String, DaemonFact>,
}

const SUMMARY_COLUMNS: &str = "t.number, t.subject, t.state, t.queue, t.priority, t.customer, t.owner, \
     t.article_count, t.created_at, t.updated_at";

fn summary(r: &rusqlite::Row<'_>) -> rusqlite::Result<TicketSummary> {
    let priority: i64 = r.get(4)?;
    Ok(TicketSummary {
        number: r.get(0)?,
        subject: r.get(1)?,
        state: r.get(2)?,
        queue: r.get(3)?,
        priority: priority_name(priority),
        customer: r.get(5)?,
        owner: r.get(6)?,
        articles: r.get(7)?,
        created_at: r.get(8)?,
        updated_at: r.get(9)?,
    })
}

fn priority_name(p: i64) -> String {
    Priority::NAMES.get((p - 1).clamp(0, 4) as usize).copied().unwrap_or("normal").to_string()
}

fn json_list(text: String) -> Vec<String> {
    serde_json::from_str(&text).unwrap_or_default()
}

impl Store {
    /// Newest activity first. Each filter combination gets its own statement, so SQLite walks the matching
    /// `tickets_*_updated` index backwards and stops after `limit` rows instead of sorting every ticket.
    pub fn list_tickets(&self, filter: &TicketFilter) -> Result<Vec<TicketSummary>> {
        let condition = match (&filter.queue, &filter.state) {
            (None, None) => "",
            (Some(_), None) => "WHERE t.queue = ?1",
            (None, Some(_)) => "WHERE t.state = ?2",
            (Some(_), Some(_)) => "WHERE t.queue = ?1 AND t.state = ?2",
        };
        let sql = format!(
            "SELECT {SUMMARY_COLUMNS} FROM tickets t {condition} ORDER BY t.updated_at DESC, t.id DESC LIMIT ?3"
        );
        let mut stmt = self.conn.prepare(&sql)?;
        let limit = filter.limit.map_or(-1, i64::from);
        let mut bind = |index: usize, value: &Option<String>| match value {
            Some(v) => stmt.raw_bind_parameter(index, v),
            None => Ok(()),
        };
        bind(1, &filter.queue)?;
        bind(2, &filter.state)?;
        stmt.raw_bind_parameter(3, limit)?;
        let rows = stmt.raw_query().mapped(summary);
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    pub fn ticket_detail(&self, number: &str) -> Result<Option<TicketDetail>> {
        let sql = format!(
            "SELECT {SUMMARY_COLUMNS}, t.id, t.customer_name, t.claimed_number, \
             (SELECT m.number FROM tickets m WHERE m.id = t.merged_into) FROM tickets t WHERE t.number = ?1"
        );
        let head = self
            .conn
            .query_row(&sql, [number], |r| Ok((summary(r)?, r.get::<_, i64>(10)?, r.get(11)?, r.get(12)?, r.get(13)?)))
            .optional()?;
        let Some((ticket, id, customer_name, claimed_number, merged_into)) = head else { return Ok(None) };
        Ok(Some(TicketDetail {
            ticket,
            customer_name,
            tags: self.strings("SELECT tag FROM ticket_tags WHERE ticket_id = ?1 ORDER BY tag", id)?,
            claimed_number,
            merged_into,
            rules: self.rule_hits(id)?,
            history: self.history(id)?,
            articles: self.articles(id)?,
        }))
    }

    fn strings(&self, sql: &str, id: i64) -> Result<Vec<String>> {
        let mut stmt = self.conn.prepare_cached(sql)?;
        let rows = stmt.query_map([id], |r| r.get(0))?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    fn rule_hits(&self, ticket_id: i64) -> Result<Vec<RuleHitView>> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT article_id, file, rule FROM rule_hits WHERE ticket_id = ?1 ORDER BY article_id, position",
        )?;
        let rows = stmt
            .query_map([ticket_id], |r| Ok(RuleHitView { article_id: r.get(0)?, file: r.get(1)?, rule: r.get(2)? }))?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    fn history(&self, ticket_id: i64) -> Result<Vec<HistoryView>> {
        let mut stmt = self
            .conn
            .prepare_cached("SELECT at, actor, event, detail FROM ticket_history WHERE ticket_id = ?1 ORDER BY id")?;
        let rows = stmt.query_map([ticket_id], |r| {
            Ok(HistoryView { at: r.get(0)?, actor: r.get(1)?, event: r.get(2)?, detail: r.get(3)? })
        })?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    fn articles(&self, ticket_id: i64) -> Result<Vec<ArticleView>> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT id, direction, internal, sender, sender_name, recipients, cc, subject, message_id, in_reply_to, \
             refs, classification, classification_reason, duplicate_of, visible_text, body_text, received_at \
             FROM articles WHERE ticket_id = ?1 ORDER BY id",
        )?;
        let rows = stmt.query_map([ticket_id], |r| {
            Ok(ArticleView {
                id: r.get(0)?,
                direction: r.get(1)?,
                internal: r.get(2)?,
                sender: r.get(3)?,
                sender_name: r.get(4)?,
                to: json_list(r.get(5)?),
                cc: json_list(r.get(6)?),
                subject: r.get(7)?,
                message_id: r.get(8)?,
                in_reply_to: r.get(9)?,
                references: json_list(r.get(10)?),
                classification: r.get(11)?,
                classification_reason: r.get(12)?,
                duplicate_of: r.get(13)?,
                visible_text: r.get(14)?,
                body_text: r.get(15)?,
                received_at: r.get(16)?,
                attachments: Vec::new(),
            })
        })?;
        let mut articles: Vec<ArticleView> = rows.collect::<rusqlite::Result<_>>()?;
        let mut stmt = self.conn.prepare_cached(
            "SELECT filename, content_type, size, sha256 FROM attachments WHERE article_id = ?1 ORDER BY id",
        )?;
        for article in &mut articles {
            let rows = stmt.query_map([article.id], |r| {
                Ok(AttachmentView { filename: r.get(0)?, content_type: r.get(1)?, size: r.get(2)?, sha256: r.get(3)? })
            })?;
            article.attachments = rows.collect::<rusqlite::Result<_>>()?;
        }
        Ok(articles)
    }

    /// Which existing ticket `mail` would join, as (number, queue), without writing: for `rules test`.
    pub fn peek_thread(
        &self,
        mail: &crate::model::InboundMail,
        tokens: &crate::token::TokenFormat,
    ) -> Result<Option<(String, String)>> {
        let reader = Reader { conn: &self.conn };
        match crate::thread::resolve(mail, tokens, &reader)? {
            crate::thread::Resolution::Existing { ticket, .. } => Ok(Some((
                ticket.number,
                self.conn.query_row("SELECT queue FROM tickets WHERE id = ?1", [ticket.id], |r| r.get(0))?,
            ))),
            crate::thread::Resolution::New { .. } => Ok(None),
        }
    }

    /// Which of these source keys the ledger already holds (mail handled before a crash or restart).
    pub fn known_source_keys(&self, keys: &[String]) -> Result<std::collections::HashSet<String>> {
        let mut stmt = self.conn.prepare_cached("SELECT 1 FROM ingest_ledger WHERE source_key = ?1")?;
        let mut known = std::collections::HashSet::new();
        for key in keys {
            if stmt.exists([key])? {
                known.insert(key.clone());
            }
        }
        Ok(known)
    }

    /// An attachment's stored content: its bytes, or (`raw_id`) the raw mail they are kept in.
    pub fn blob(&self, sha256: &str) -> Result<Option<Blob>> {
        Ok(self
            .conn
            .query_row("SELECT size, data, raw_id FROM blobs WHERE sha256 = ?1", [sha256], |r| {
                Ok(Blob { size: r.get(0)?, data: r.get(1)?, raw_id: r.get(2)? })
            })
            .optional()?)
    }

    /// The exact bytes of a stored raw mail, whether its row is compressed or not.
    pub fn raw_by_id(&self, raw_id: i64) -> Result<Option<Vec<u8>>> {
        self.raw_where("r.id = ?1", raw_id)
    }

    /// The exact bytes of the mail an article was made from.
    pub fn raw_message(&self, article_id: i64) -> Result<Option<Vec<u8>>> {
        self.raw_where("r.id = (SELECT raw_id FROM articles WHERE id = ?1)", article_id)
    }

    fn raw_where(&self, condition: &str, id: i64) -> Result<Option<Vec<u8>>> {
        // `condition` is one of two fixed strings above, never user input.
        // Large rows are in `payload` (migration 0011), the rest, and every older row, in `data`.
        let sql =
            format!("SELECT coalesce(r.payload, r.data), r.encoding, r.size FROM raw_messages r WHERE {condition}");
        let row: Option<(Vec<u8>, Option<String>, i64)> =
            self.conn.query_row(&sql, [id], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?))).optional()?;
        row.map(|(data, encoding, size)| super::raw::decode(data, encoding.as_deref(), size)).transpose()
    }

    pub fn quarantine_list(&self, limit: u32) -> Result<Vec<QuarantineView>> {
        let mut stmt = self.conn.prepare(
            "SELECT q.id, q.reason, q.source, q.size, q.data IS NOT NULL, q.created_at, coalesce(a.action, 'waiting') \
             FROM quarantine q LEFT JOIN quarantine_actions a ON a.quarantine_id = q.id ORDER BY q.id DESC LIMIT ?1",
        )?;
        let rows = stmt.query_map([limit], |r| {
            Ok(QuarantineView {
                id: r.get(0)?,
                reason: r.get(1)?,
                source: r.get(2)?,
                size: r.get(3)?,
                kept_bytes: r.get(4)?,
                created_at: r.get(5)?,
                status: r.get(6)?,
            })
        })?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    pub fn status_counts(&self) -> Result<StatusCounts> {
        let count = |sql: &str| -> Result<i64> { Ok(self.conn.query_row(sql, [], |r| r.get(0))?) };
        let mut stmt = self.conn.prepare("SELECT key, value, updated_at FROM daemon_status ORDER BY key")?;
        let daemon = stmt
            .query_map([], |r| Ok((r.get(0)?, DaemonFact { value: r.get(1)?, updated_at: r.get(2)? })))?
            .collect::<rusqlite::Result<_>>()?;
        Ok(StatusCounts {
            tickets: count("SELECT count(*) FROM tickets")?,
            open_tickets: count("SELECT count(*) FROM tickets WHERE state IN ('new', 'open', 'pending')")?,
            articles: count("SELECT count(*) FROM articles")?,
            ingested: count("SELECT count(*) FROM ingest_ledger")?,
            duplicates: count("SELECT count(*) FROM ingest_ledger WHERE outcome = 'duplicate'")?,
            quarantined: count("SELECT count(*) FROM quarantine")?,
            daemon,
        })
    }
}

/// The thread lookups over a plain (read) connection.
struct Reader<'c> {
    conn: &'c rusqlite::Connection,
}

impl crate::thread::ThreadLookup for Reader<'_> {
    type Error = super::StoreError;

    fn ticket_by_number(&self, number: &str) -> Result<Option<crate::thread::TicketRef>> {
        super::write::lookup_ticket_by_number(self.conn, number)
    }

    fn ticket_by_message_id(&self, message_id: &str) -> Result<Option<crate::thread::TicketRef>> {
        super::write::lookup_ticket_by_message_id(self.conn, message_id)
    }

    fn is_party(&self, ticket_id: i64, address: &str) -> Result<bool> {
        super::write::lookup_is_party(self.conn, ticket_id, address)
    }
}

/// Totals the metrics endpoint exports, read over its own read-only connection (no wait on the daemon's writer).
#[derive(Debug, Clone, Default)]
pub struct MetricsCounts {
    /// Ledger rows by outcome: stored, duplicate, quarantined, ignored.
    pub mails: Vec<(String, i64)>,
    /// Outbox rows by state: queued, sent, failed, held, cancelled.
    pub outbox: Vec<(String, i64)>,
    /// Automatic replies withheld, by the `detail` recorded in the ticket's history ("template: reason").
    pub withheld: Vec<(String, i64)>,
}

impl Store {
    pub fn metrics_counts(&self) -> Result<MetricsCounts> {
        let grouped = |sql: &str| -> Result<Vec<(String, i64)>> {
            let mut stmt = self.conn.prepare(sql)?;
            let rows = stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?;
            Ok(rows.collect::<rusqlite::Result<_>>()?)
        };
        Ok(MetricsCounts {
            mails: grouped("SELECT outcome, count(*) FROM ingest_ledger GROUP BY outcome")?,
            outbox: grouped("SELECT state, count(*) FROM outbox GROUP BY state")?,
            withheld: grouped(
                "SELECT detail, count(*) FROM ticket_history WHERE event = 'auto-reply withheld' GROUP BY detail",
            )?,
        })
    }
}
