//! Writes and the lookups the pipeline needs inside its transaction. Everything a mail causes (ticket, article,
//! attachments, raw bytes, ledger, later the outbox) goes through one [`Tx`], so it commits or vanishes as a whole.

use super::CachedStatements;
use rusqlite::blob::ZeroBlob;
use rusqlite::{MAIN_DB, OptionalExtension, params};

use super::Result;
use crate::model::{Attachment, Priority, TicketState};
use crate::thread::{ThreadLookup, TicketRef};

/// Raw rows larger than this (as stored) are streamed into `payload` ([`Tx::insert_raw`]); smaller ones are bound.
pub(super) const STREAMED_BYTES: usize = 64 * 1024;

pub struct Tx<'c> {
    tx: rusqlite::Transaction<'c>,
    /// Ticket counters handed out in this transaction, per day: recorded beside the database before the commit.
    issued: std::cell::RefCell<std::collections::BTreeMap<String, i64>>,
}

pub struct NewTicket<'a> {
    pub number: &'a str,
    pub subject: &'a str,
    pub queue: &'a str,
    pub priority: Priority,
    pub state: TicketState,
    pub customer: &'a str,
    pub customer_name: Option<&'a str>,
    pub owner: Option<&'a str>,
    pub claimed_number: Option<&'a str>,
    pub now: i64,
}

pub struct NewArticle<'a> {
    pub ticket_id: i64,
    pub direction: &'a str,
    pub internal: bool,
    pub sender: Option<&'a str>,
    pub sender_name: Option<&'a str>,
    pub recipients: &'a [String],
    pub cc: &'a [String],
    pub subject: &'a str,
    pub message_id: Option<&'a str>,
    pub in_reply_to: Option<&'a str>,
    pub references: &'a [String],
    pub body_text: &'a str,
    pub visible_text: &'a str,
    pub classification: &'a str,
    pub classification_reason: Option<&'a str>,
    pub duplicate_of: Option<i64>,
    pub raw_id: Option<i64>,
    pub sent_at: Option<i64>,
    pub received_at: i64,
}

/// One row of the ingest ledger: what became of one mail from one source.
#[derive(Debug, Clone, Copy, Default)]
pub struct LedgerEntry<'a> {
    pub source: &'a str,
    pub source_key: Option<&'a str>,
    pub sha256: &'a str,
    pub message_id: Option<&'a str>,
    /// stored | duplicate | quarantined
    pub outcome: &'a str,
    pub ticket_id: Option<i64>,
    pub article_id: Option<i64>,
    pub quarantine_id: Option<i64>,
}

/// What the ledger already knows about a mail.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LedgerHit {
    pub outcome: String,
    pub ticket_number: Option<String>,
}

impl<'c> Tx<'c> {
    pub(super) fn new(tx: rusqlite::Transaction<'c>) -> Self {
        Tx { tx, issued: Default::default() }
    }

    pub(super) fn conn(&self) -> &rusqlite::Connection {
        &self.tx
    }

    pub fn commit(self) -> Result<()> {
        // Before the commit, so no committed number is ever missing from the record (a failed commit leaves a gap).
        let issued = self.issued.take();
        if let Some(db) = self.tx.path().filter(|p| !p.is_empty() && !issued.is_empty()) {
            let record = super::integrity::numbers_path(std::path::Path::new(db));
            super::integrity::record_numbers(&record, &issued).map_err(|e| {
                super::StoreError::Invalid(format!("{}: cannot record ticket numbers: {e}", record.display()))
            })?;
        }
        Ok(self.tx.commit()?)
    }

    /// A named savepoint, so one mail of a batch can be undone without losing the others.
    pub fn savepoint(&self, name: &str) -> Result<()> {
        Ok(self.tx.execute_batch(&format!("SAVEPOINT {}", savepoint_name(name)))?)
    }

    pub fn release(&self, name: &str) -> Result<()> {
        Ok(self.tx.execute_batch(&format!("RELEASE {}", savepoint_name(name)))?)
    }

    pub fn rollback_to(&self, name: &str) -> Result<()> {
        let name = savepoint_name(name);
        Ok(self.tx.execute_batch(&format!("ROLLBACK TO {name}; RELEASE {name}"))?)
    }

    pub fn ledger_by_source_key(&self, key: &str) -> Result<Option<LedgerHit>> {
        self.ledger_hit("WHERE l.source_key = ?1", key)
    }

    /// The earlier ingest of exactly these bytes, if any.
    pub fn ledger_by_sha256(&self, sha256: &str) -> Result<Option<LedgerHit>> {
        self.ledger_hit("WHERE l.sha256 = ?1 AND l.outcome <> 'duplicate'", sha256)
    }

    fn ledger_hit(&self, condition: &str, value: &str) -> Result<Option<LedgerHit>> {
        // `condition` is one of two fixed strings above, never user input.
        let sql = format!(
            "SELECT l.outcome, t.number FROM ingest_ledger l LEFT JOIN tickets t ON t.id = l.ticket_id {condition} \
             ORDER BY l.id LIMIT 1"
        );
        Ok(self
            .tx
            .row_cached(&sql, [value], |r| Ok(LedgerHit { outcome: r.get(0)?, ticket_number: r.get(1)? }))
            .optional()?)
    }

    /// The first article stored under this Message-ID: `(article id, ticket id)`.
    pub fn article_by_message_id(&self, message_id: &str) -> Result<Option<(i64, i64)>> {
        Ok(self
            .tx
            .row_cached(
                "SELECT id, ticket_id FROM articles WHERE message_id = ?1 ORDER BY id LIMIT 1",
                [message_id],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()?)
    }

    /// Stores a mail's raw bytes once per content and returns their row id. The row holds their zstd frames when
    /// that is smaller ([`super::raw::pack`]). The pipeline packs on its parsing core and calls
    /// [`Self::insert_raw_as`]; this one-step form is for tests.
    #[cfg(test)]
    pub fn insert_raw(&self, raw: &[u8], sha256: &str) -> Result<i64> {
        self.insert_raw_as(raw, super::raw::pack(raw).as_ref(), sha256)
    }

    /// Stores a mail's raw bytes once per content, as packed (or found not to shrink) on the parsing core, and
    /// returns their row id: `packed` is what [`super::raw::pack`] made of the mail, and `raw` is then not read
    /// (the caller may have released it).
    ///
    /// Large rows go into `payload`, the row's last column, as a zero-filled blob that is then written through
    /// SQLite's blob handle, frame by frame: a bound blob is copied twice inside SQLite (the bound value, then the
    /// record), which for the benchmark's largest mail was 9 MB of the daemon's peak memory (docs/benchmark.md).
    pub fn insert_raw_as(&self, raw: &[u8], packed: Option<&super::raw::Packed>, sha256: &str) -> Result<i64> {
        // What the row stores, in order: the frames, or the bytes themselves.
        let (pieces, encoding): (Vec<&[u8]>, Option<&str>) = match packed {
            Some(packed) => (packed.frames().iter().map(Vec::as_slice).collect(), Some(super::raw::ZSTD)),
            None => (vec![raw], None),
        };
        let size = packed.map_or(raw.len(), super::raw::Packed::size);
        let stored_len: usize = pieces.iter().map(|piece| piece.len()).sum();
        let streamed = stored_len > STREAMED_BYTES;
        let mut insert = self.tx.prepare_cached(
            "INSERT INTO raw_messages (sha256, size, data, encoding, payload) VALUES (?1, ?2, ?3, ?4, ?5) \
             ON CONFLICT(sha256) DO NOTHING RETURNING id",
        )?;
        let inserted: Option<i64> = if streamed {
            let length = i32::try_from(stored_len)
                .map_err(|_| super::StoreError::Invalid(format!("raw mail of {stored_len} bytes")))?;
            insert.query_row(params![sha256, size as i64, &[] as &[u8], encoding, ZeroBlob(length)], |r| r.get(0))
        } else {
            // Small enough to bind; a row this small has one piece.
            let inline = match pieces[..] {
                [one] => std::borrow::Cow::Borrowed(one),
                _ => std::borrow::Cow::Owned(pieces.concat()),
            };
            insert.query_row(params![sha256, size as i64, &*inline, encoding, None::<&[u8]>], |r| r.get(0))
        }
        .optional()?;
        match inserted {
            Some(id) => {
                if streamed {
                    let mut blob = self.tx.blob_open(MAIN_DB, c"raw_messages", c"payload", id, false)?;
                    let mut offset = 0;
                    for piece in pieces {
                        blob.write_at(piece, offset)?;
                        offset += piece.len();
                    }
                }
                Ok(id)
            }
            None => Ok(self
                .tx
                .prepare_cached("SELECT id FROM raw_messages WHERE sha256 = ?1")?
                .query_row([sha256], |r| r.get(0))?),
        }
    }

    /// The next ticket number for `day` (YYYYMMDD). The counter row is updated in this transaction, so two writers
    /// can never hand out the same number.
    pub fn next_ticket_number(&self, day: &str, system_id: u8) -> Result<String> {
        let counter: i64 = self.tx.row_cached(
            "INSERT INTO ticket_counters (day, last) VALUES (?1, 1) \
             ON CONFLICT(day) DO UPDATE SET last = last + 1 RETURNING last",
            [day],
            |r| r.get(0),
        )?;
        let mut issued = self.issued.borrow_mut();
        let last = issued.entry(day.to_string()).or_insert(0);
        *last = (*last).max(counter);
        Ok(crate::token::ticket_number(day, system_id, counter as u64))
    }

    pub fn create_ticket(&self, t: &NewTicket<'_>) -> Result<i64> {
        self.tx.exec_cached(
            "INSERT INTO tickets (number, subject, state, queue, priority, customer, customer_name, owner, \
             claimed_number, created_at, updated_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?10)",
            params![
                t.number,
                t.subject,
                t.state.as_str(),
                t.queue,
                t.priority as i64,
                t.customer,
                t.customer_name,
                t.owner,
                t.claimed_number,
                t.now
            ],
        )?;
        let id = self.tx.last_insert_rowid();
        self.add_party(id, t.customer, "customer")?;
        Ok(id)
    }

    pub fn add_party(&self, ticket_id: i64, address: &str, role: &str) -> Result<()> {
        self.tx.exec_cached(
            "INSERT INTO ticket_parties (ticket_id, address, role) VALUES (?1, lower(?2), ?3) \
             ON CONFLICT(ticket_id, address) DO NOTHING",
            params![ticket_id, address, role],
        )?;
        Ok(())
    }

    pub fn add_article(&self, a: &NewArticle<'_>) -> Result<i64> {
        self.tx.exec_cached(
            "INSERT INTO articles (ticket_id, direction, internal, sender, sender_name, recipients, cc, subject, \
             message_id, in_reply_to, refs, body_text, visible_text, classification, classification_reason, \
             duplicate_of, raw_id, sent_at, received_at) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18, ?19)",
            params![
                a.ticket_id,
                a.direction,
                a.internal,
                a.sender,
                a.sender_name,
                json_list(a.recipients),
                json_list(a.cc),
                a.subject,
                a.message_id,
                a.in_reply_to,
                json_list(a.references),
                a.body_text,
                a.visible_text,
                a.classification,
                a.classification_reason,
                a.duplicate_of,
                a.raw_id,
                a.sent_at,
                a.received_at
            ],
        )?;
        Ok(self.tx.last_insert_rowid())
    }

    /// Links an attachment to its article under the SHA-256 of its content. The bytes are not written a second
    /// time: they are in `raw_id`, the raw mail that first carried this content, and
    /// [`crate::attachments::content`] recovers them from it. A mail's attachments used to double its size on disk.
    pub fn add_attachment(&self, article_id: i64, attachment: &Attachment, raw_id: i64) -> Result<()> {
        let (sha, size) = (&attachment.sha256, attachment.size as i64);
        self.tx.exec_cached(
            "INSERT INTO blobs (sha256, size, data, raw_id) VALUES (?1, ?2, X'', ?3) ON CONFLICT(sha256) DO NOTHING",
            params![sha, size, raw_id],
        )?;
        self.tx.exec_cached(
            "INSERT INTO attachments (article_id, sha256, filename, content_type, size) VALUES (?1, ?2, ?3, ?4, ?5)",
            params![article_id, sha, attachment.filename, attachment.content_type, size],
        )?;
        Ok(())
    }

    /// A follow-up arrived: bump `updated_at`, and reopen a closed or pending ticket when `reopen` says so.
    pub fn touch_ticket(&self, ticket_id: i64, now: i64, reopen: bool) -> Result<()> {
        self.tx.exec_cached(
            "UPDATE tickets SET updated_at = ?2, \
             state = CASE WHEN ?3 AND state IN ('closed', 'pending') THEN 'open' ELSE state END WHERE id = ?1",
            params![ticket_id, now, reopen],
        )?;
        Ok(())
    }

    pub fn ticket_by_id(&self, ticket_id: i64) -> Result<Option<TicketRef>> {
        let exists = self.tx.row_cached("SELECT 1 FROM tickets WHERE id = ?1", [ticket_id], |_| Ok(())).optional()?;
        exists.map(|_| surviving_ticket(&self.tx, ticket_id)).transpose()
    }

    /// What templates show about a ticket.
    pub fn ticket_facts(&self, ticket_id: i64) -> Result<crate::model::TicketFacts> {
        Ok(self.tx.row_cached(
            "SELECT id, number, subject, queue, state, priority FROM tickets WHERE id = ?1",
            [ticket_id],
            |r| {
                let priority: i64 = r.get(5)?;
                Ok(crate::model::TicketFacts {
                    id: r.get(0)?,
                    number: r.get(1)?,
                    subject: r.get(2)?,
                    queue: r.get(3)?,
                    state: r.get(4)?,
                    priority: crate::model::Priority::NAMES[(priority.clamp(1, 5) - 1) as usize].to_string(),
                })
            },
        )?)
    }

    pub fn ticket_state(&self, ticket_id: i64) -> Result<(String, String)> {
        Ok(self.tx.row_cached("SELECT state, queue FROM tickets WHERE id = ?1", [ticket_id], |r| {
            Ok((r.get(0)?, r.get(1)?))
        })?)
    }

    pub fn set_queue(&self, ticket_id: i64, queue: &str) -> Result<()> {
        self.tx.exec_cached("UPDATE tickets SET queue = ?2 WHERE id = ?1", params![ticket_id, queue])?;
        Ok(())
    }

    pub fn set_priority(&self, ticket_id: i64, priority: Priority) -> Result<()> {
        self.tx.exec_cached("UPDATE tickets SET priority = ?2 WHERE id = ?1", params![ticket_id, priority as i64])?;
        Ok(())
    }

    pub fn set_owner(&self, ticket_id: i64, owner: Option<&str>) -> Result<()> {
        self.tx.exec_cached("UPDATE tickets SET owner = lower(?2) WHERE id = ?1", params![ticket_id, owner])?;
        Ok(())
    }

    pub fn set_state(&self, ticket_id: i64, state: TicketState) -> Result<()> {
        self.tx.exec_cached("UPDATE tickets SET state = ?2 WHERE id = ?1", params![ticket_id, state.as_str()])?;
        Ok(())
    }

    pub fn add_tag(&self, ticket_id: i64, tag: &str) -> Result<()> {
        self.tx.exec_cached(
            "INSERT INTO ticket_tags (ticket_id, tag) VALUES (?1, ?2) ON CONFLICT DO NOTHING",
            params![ticket_id, tag],
        )?;
        Ok(())
    }

    pub fn remove_tag(&self, ticket_id: i64, tag: &str) -> Result<()> {
        self.tx.exec_cached("DELETE FROM ticket_tags WHERE ticket_id = ?1 AND tag = ?2", params![ticket_id, tag])?;
        Ok(())
    }

    pub fn add_history(&self, ticket_id: i64, at: i64, actor: &str, event: &str, detail: &str) -> Result<()> {
        self.tx.exec_cached(
            "INSERT INTO ticket_history (ticket_id, at, actor, event, detail) VALUES (?1, ?2, ?3, ?4, ?5)",
            params![ticket_id, at, actor, event, detail],
        )?;
        Ok(())
    }

    pub fn add_rule_hits(&self, ticket_id: i64, article_id: i64, hits: &[(String, String)]) -> Result<()> {
        let mut stmt = self.tx.prepare_cached(
            "INSERT INTO rule_hits (article_id, ticket_id, position, file, rule) VALUES (?1, ?2, ?3, ?4, ?5)",
        )?;
        for (position, (file, rule)) in hits.iter().enumerate() {
            stmt.execute(params![article_id, ticket_id, position as i64, file, rule])?;
        }
        Ok(())
    }

    /// Keeps a refused mail with its reason. `data` is `None` when it was refused before being downloaded.
    pub fn quarantine(
        &self,
        reason: &str,
        source: &str,
        sha256: Option<&str>,
        size: usize,
        data: Option<&[u8]>,
        now: i64,
    ) -> Result<i64> {
        self.tx.exec_cached(
            "INSERT INTO quarantine (reason, source, sha256, size, data, created_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            params![reason, source, sha256, size as i64, data, now],
        )?;
        Ok(self.tx.last_insert_rowid())
    }

    pub fn record_ledger(&self, e: &LedgerEntry<'_>, now: i64) -> Result<()> {
        self.tx.exec_cached(
            "INSERT INTO ingest_ledger (source, source_key, sha256, message_id, outcome, ticket_id, article_id, \
             quarantine_id, received_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
            params![
                e.source,
                e.source_key,
                e.sha256,
                e.message_id,
                e.outcome,
                e.ticket_id,
                e.article_id,
                e.quarantine_id,
                now
            ],
        )?;
        Ok(())
    }

    pub fn imap_state(&self, mailbox: &str) -> Result<Option<(u32, u32)>> {
        Ok(self
            .tx
            .row_cached("SELECT uidvalidity, last_uid FROM imap_state WHERE mailbox = ?1", [mailbox], |r| {
                Ok((r.get(0)?, r.get(1)?))
            })
            .optional()?)
    }

    pub fn set_imap_state(&self, mailbox: &str, uidvalidity: u32, last_uid: u32) -> Result<()> {
        self.tx.exec_cached(
            "INSERT INTO imap_state (mailbox, uidvalidity, last_uid) VALUES (?1, ?2, ?3) \
             ON CONFLICT(mailbox) DO UPDATE SET uidvalidity = ?2, last_uid = max(CASE WHEN uidvalidity = ?2 \
             THEN last_uid ELSE 0 END, ?3)",
            params![mailbox, uidvalidity, last_uid],
        )?;
        Ok(())
    }

    pub fn set_status(&self, key: &str, value: &str, now: i64) -> Result<()> {
        self.tx.exec_cached(
            "INSERT INTO daemon_status (key, value, updated_at) VALUES (?1, ?2, ?3) \
             ON CONFLICT(key) DO UPDATE SET value = ?2, updated_at = ?3",
            params![key, value, now],
        )?;
        Ok(())
    }
}

fn json_list(items: &[String]) -> String {
    serde_json::to_string(items).unwrap_or_else(|_| "[]".into())
}

/// Savepoint names are identifiers, not parameters: keep them to a safe alphabet.
fn savepoint_name(name: &str) -> String {
    let clean: String = name.chars().filter(|c| c.is_ascii_alphanumeric() || *c == '_').collect();
    format!("sp_{clean}")
}

impl ThreadLookup for Tx<'_> {
    type Error = super::StoreError;

    fn ticket_by_number(&self, number: &str) -> Result<Option<TicketRef>> {
        lookup_ticket_by_number(&self.tx, number)
    }

    fn ticket_by_message_id(&self, message_id: &str) -> Result<Option<TicketRef>> {
        lookup_ticket_by_message_id(&self.tx, message_id)
    }

    fn is_party(&self, ticket_id: i64, address: &str) -> Result<bool> {
        lookup_is_party(&self.tx, ticket_id, address)
    }
}

// The thread lookups, shared by the write transaction and the read-only `rules test` path.

pub(super) fn lookup_ticket_by_number(conn: &rusqlite::Connection, number: &str) -> Result<Option<TicketRef>> {
    let id: Option<i64> =
        conn.row_cached("SELECT id FROM tickets WHERE number = ?1", [number], |r| r.get(0)).optional()?;
    id.map(|id| surviving_ticket(conn, id)).transpose()
}

pub(super) fn lookup_ticket_by_message_id(conn: &rusqlite::Connection, message_id: &str) -> Result<Option<TicketRef>> {
    let ticket_id: Option<i64> = conn
        .row_cached("SELECT ticket_id FROM articles WHERE message_id = ?1 ORDER BY id LIMIT 1", [message_id], |r| {
            r.get(0)
        })
        .optional()?;
    ticket_id.map(|id| surviving_ticket(conn, id)).transpose()
}

pub(super) fn lookup_is_party(conn: &rusqlite::Connection, ticket_id: i64, address: &str) -> Result<bool> {
    Ok(conn
        .row_cached(
            "SELECT 1 FROM ticket_parties WHERE ticket_id = ?1 AND address = lower(?2)",
            params![ticket_id, address],
            |_| Ok(()),
        )
        .optional()?
        .is_some())
}

/// Follows merges to the ticket that survives (bounded, so a corrupt cycle cannot loop).
fn surviving_ticket(conn: &rusqlite::Connection, mut id: i64) -> Result<TicketRef> {
    for _ in 0..32 {
        let (number, merged_into): (String, Option<i64>) =
            conn.row_cached("SELECT number, merged_into FROM tickets WHERE id = ?1", [id], |r| {
                Ok((r.get(0)?, r.get(1)?))
            })?;
        match merged_into {
            Some(next) => id = next,
            None => return Ok(TicketRef { id, number }),
        }
    }
    Err(super::StoreError::Invalid(format!("ticket {id}: merge chain too long")))
}
