//! Quarantined mail an admin looks at and acts on: one item with its bytes, what was done about it, and the writes
//! that replay or drop it.

use rusqlite::{OptionalExtension, params};
use serde::Serialize;

use super::{Result, Store, Tx};

#[derive(Debug, Clone, Serialize)]
pub struct QuarantineItem {
    pub id: i64,
    pub reason: String,
    pub source: String,
    pub sha256: Option<String>,
    pub size: i64,
    /// The mail's bytes; `None` when it was refused before download (too large) or dropped.
    #[serde(skip)]
    pub data: Option<Vec<u8>>,
    pub created_at: i64,
    pub action: Option<QuarantineAction>,
}

#[derive(Debug, Clone, Serialize)]
pub struct QuarantineAction {
    /// replayed | dropped
    pub action: String,
    pub detail: String,
    pub ticket_number: Option<String>,
    pub actor: String,
    pub at: i64,
}

const ITEM: &str = "SELECT q.id, q.reason, q.source, q.sha256, q.size, q.data, q.created_at, \
     a.action, a.detail, a.ticket_number, a.actor, a.at \
     FROM quarantine q LEFT JOIN quarantine_actions a ON a.quarantine_id = q.id";

fn item(r: &rusqlite::Row<'_>) -> rusqlite::Result<QuarantineItem> {
    let action: Option<String> = r.get(7)?;
    Ok(QuarantineItem {
        id: r.get(0)?,
        reason: r.get(1)?,
        source: r.get(2)?,
        sha256: r.get(3)?,
        size: r.get(4)?,
        data: r.get(5)?,
        created_at: r.get(6)?,
        action: match action {
            Some(action) => Some(QuarantineAction {
                action,
                detail: r.get(8)?,
                ticket_number: r.get(9)?,
                actor: r.get(10)?,
                at: r.get(11)?,
            }),
            None => None,
        },
    })
}

impl Store {
    pub fn quarantine_item(&self, id: i64) -> Result<Option<QuarantineItem>> {
        Ok(self.conn.query_row(&format!("{ITEM} WHERE q.id = ?1"), [id], item).optional()?)
    }

    /// Ids of quarantined mail nobody has acted on yet, oldest first; `reason` narrows to reasons containing it.
    pub fn quarantine_open_ids(&self, reason: Option<&str>) -> Result<Vec<i64>> {
        let mut stmt = self.conn.prepare(
            "SELECT q.id FROM quarantine q LEFT JOIN quarantine_actions a ON a.quarantine_id = q.id \
             WHERE a.quarantine_id IS NULL AND (?1 IS NULL OR instr(lower(q.reason), lower(?1)) > 0) ORDER BY q.id",
        )?;
        let rows = stmt.query_map(params![reason], |r| r.get(0))?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }
}

impl Tx<'_> {
    pub fn quarantine_action(&self, id: i64) -> Result<Option<QuarantineAction>> {
        let item = self.conn().query_row(&format!("{ITEM} WHERE q.id = ?1"), [id], item).optional()?;
        Ok(item.and_then(|i| i.action))
    }

    /// The first ledger row that stored exactly these bytes (not a quarantine, not a duplicate): its ticket number.
    pub fn stored_by_sha256(&self, sha256: &str) -> Result<Option<Option<String>>> {
        Ok(self
            .conn()
            .query_row(
                "SELECT t.number FROM ingest_ledger l LEFT JOIN tickets t ON t.id = l.ticket_id \
                 WHERE l.sha256 = ?1 AND l.outcome = 'stored' ORDER BY l.id LIMIT 1",
                [sha256],
                |r| r.get(0),
            )
            .optional()?)
    }

    /// Records what was done about a quarantined mail. False when something already was: the primary key makes a
    /// second replay or drop impossible, whoever runs it.
    pub fn resolve_quarantine(
        &self,
        id: i64,
        action: &str,
        detail: &str,
        ticket_number: Option<&str>,
        actor: &str,
        now: i64,
    ) -> Result<bool> {
        let n = self.conn().execute(
            "INSERT INTO quarantine_actions (quarantine_id, action, detail, ticket_number, actor, at) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6) ON CONFLICT(quarantine_id) DO NOTHING",
            params![id, action, detail, ticket_number, actor, now],
        )?;
        Ok(n == 1)
    }

    /// Drops a quarantined mail: its bytes go, the row (reason, source, size, SHA-256) and the drop reason stay.
    pub fn drop_quarantined(&self, id: i64, reason: &str, actor: &str, now: i64) -> Result<bool> {
        if !self.resolve_quarantine(id, "dropped", reason, None, actor, now)? {
            return Ok(false);
        }
        self.conn().execute("UPDATE quarantine SET data = NULL WHERE id = ?1", [id])?;
        Ok(true)
    }
}
