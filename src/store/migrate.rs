//! Append-only migrations, embedded in the binary and tracked with `PRAGMA user_version`.

use rusqlite::Connection;

use super::{Result, StoreError};

/// Each entry moves the schema from version `index` to `index + 1`. Never edit a shipped entry; append.
pub(super) const MIGRATIONS: &[&str] = &[
    include_str!("migrations/0001_foundation.sql"),
    include_str!("migrations/0002_daemon.sql"),
    include_str!("migrations/0003_outbox.sql"),
    include_str!("migrations/0004_agents.sql"),
    include_str!("migrations/0005_attachments_in_raw.sql"),
    include_str!("migrations/0006_retention.sql"),
    include_str!("migrations/0007_reply_budget.sql"),
    include_str!("migrations/0008_quarantine_actions.sql"),
    include_str!("migrations/0009_outbox_control.sql"),
    include_str!("migrations/0010_fast_reads_lean_writes.sql"),
    include_str!("migrations/0011_raw_payload_last.sql"),
];

pub(super) fn migrate(conn: &mut Connection) -> Result<()> {
    let current: i64 = conn.pragma_query_value(None, "user_version", |r| r.get(0))?;
    let known = MIGRATIONS.len() as i64;
    if current > known {
        return Err(StoreError::TooNew { found: current, known });
    }
    for (index, sql) in MIGRATIONS.iter().enumerate().skip(current as usize) {
        let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        // Another process may have migrated while we waited for the lock.
        let now: i64 = tx.pragma_query_value(None, "user_version", |r| r.get(0))?;
        if now > index as i64 {
            continue;
        }
        tx.execute_batch(sql)?;
        tx.pragma_update(None, "user_version", index as i64 + 1)?;
        tx.commit()?;
    }
    Ok(())
}
