//! Agents, roles, queue grants, and the ticket changes agents make by mail.

use super::CachedStatements;
use rusqlite::{OptionalExtension, params};
use serde::Serialize;

use super::{Result, Store, Tx};

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AgentRow {
    pub address: String,
    pub name: String,
    pub enabled: bool,
}

#[derive(Debug, Clone, Serialize)]
pub struct AgentView {
    pub address: String,
    pub name: String,
    pub enabled: bool,
    pub roles: Vec<String>,
    pub queues: Vec<String>,
    /// Events switched on or off for this agent; others follow the config's defaults.
    pub notify: Vec<(String, bool)>,
}

#[derive(Debug, Clone, Serialize)]
pub struct RoleView {
    pub name: String,
    pub queues: Vec<String>,
    pub agents: Vec<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct QueueRow {
    pub name: String,
    pub address: Option<String>,
    pub templates: Option<String>,
}

fn agent_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<AgentRow> {
    Ok(AgentRow { address: r.get(0)?, name: r.get(1)?, enabled: r.get(2)? })
}

impl Tx<'_> {
    pub fn agent(&self, address: &str) -> Result<Option<AgentRow>> {
        Ok(self
            .conn()
            .row_cached("SELECT address, name, enabled FROM agents WHERE address = lower(?1)", [address], agent_row)
            .optional()?)
    }

    /// Whether an enabled agent holds a role that grants `queue`.
    pub fn agent_can(&self, address: &str, queue: &str) -> Result<bool> {
        Ok(self.conn().row_cached(
            "SELECT EXISTS (SELECT 1 FROM agents a JOIN agent_roles ar ON ar.agent = a.address \
             JOIN role_queues rq ON rq.role = ar.role WHERE a.address = lower(?1) AND a.enabled AND rq.queue = ?2)",
            params![address, queue],
            |r| r.get(0),
        )?)
    }

    /// Enabled agents with rights on `queue` who want to hear about `event` (`default` when they did not say).
    pub fn agents_to_notify(&self, queue: &str, event: &str, default: bool) -> Result<Vec<AgentRow>> {
        let mut stmt = self.conn().prepare_cached(
            "SELECT DISTINCT a.address, a.name, a.enabled FROM agents a JOIN agent_roles ar ON ar.agent = a.address \
             JOIN role_queues rq ON rq.role = ar.role LEFT JOIN agent_notify n ON n.agent = a.address AND n.event = ?2 \
             WHERE a.enabled AND rq.queue = ?1 AND coalesce(n.enabled, ?3) ORDER BY a.address",
        )?;
        let rows = stmt.query_map(params![queue, event, default], agent_row)?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// Whether one agent wants `event`.
    pub fn agent_wants(&self, address: &str, event: &str, default: bool) -> Result<bool> {
        let set: Option<bool> = self
            .conn()
            .query_row(
                "SELECT enabled FROM agent_notify WHERE agent = lower(?1) AND event = ?2",
                params![address, event],
                |r| r.get(0),
            )
            .optional()?;
        Ok(set.unwrap_or(default))
    }

    pub fn upsert_agent(&self, address: &str, name: &str, now: i64) -> Result<()> {
        self.conn().execute(
            "INSERT INTO agents (address, name, created_at) VALUES (lower(?1), ?2, ?3) \
             ON CONFLICT(address) DO UPDATE SET name = ?2",
            params![address, name, now],
        )?;
        Ok(())
    }

    pub fn set_agent_enabled(&self, address: &str, enabled: bool) -> Result<bool> {
        Ok(self
            .conn()
            .execute("UPDATE agents SET enabled = ?2 WHERE address = lower(?1)", params![address, enabled])?
            > 0)
    }

    pub fn set_agent_notify(&self, address: &str, event: &str, enabled: bool) -> Result<()> {
        self.conn().execute(
            "INSERT INTO agent_notify (agent, event, enabled) VALUES (lower(?1), ?2, ?3) \
             ON CONFLICT(agent, event) DO UPDATE SET enabled = ?3",
            params![address, event, enabled],
        )?;
        Ok(())
    }

    pub fn upsert_role(&self, name: &str) -> Result<()> {
        self.conn().execute("INSERT INTO roles (name) VALUES (?1) ON CONFLICT DO NOTHING", [name])?;
        Ok(())
    }

    pub fn grant_queue(&self, role: &str, queue: &str) -> Result<()> {
        self.upsert_role(role)?;
        self.conn().execute(
            "INSERT INTO role_queues (role, queue) VALUES (?1, ?2) ON CONFLICT DO NOTHING",
            params![role, queue],
        )?;
        Ok(())
    }

    pub fn give_role(&self, agent: &str, role: &str) -> Result<()> {
        self.upsert_role(role)?;
        self.conn().execute(
            "INSERT INTO agent_roles (agent, role) VALUES (lower(?1), ?2) ON CONFLICT DO NOTHING",
            params![agent, role],
        )?;
        Ok(())
    }

    pub fn upsert_queue(&self, name: &str, address: Option<&str>, templates: Option<&str>) -> Result<()> {
        self.conn().execute(
            "INSERT INTO queues (name, address, templates) VALUES (?1, ?2, ?3) \
             ON CONFLICT(name) DO UPDATE SET address = coalesce(?2, address), templates = coalesce(?3, templates)",
            params![name, address, templates],
        )?;
        Ok(())
    }

    /// Sets the owner and, with `locked_until`, the lock (`#take`, `#assign`).
    pub fn set_lock(&self, ticket_id: i64, owner: Option<&str>, locked_until: Option<i64>) -> Result<()> {
        self.conn().execute(
            "UPDATE tickets SET owner = lower(?2), locked_until = ?3 WHERE id = ?1",
            params![ticket_id, owner, locked_until],
        )?;
        Ok(())
    }

    /// The owner answered the customer: the lock is no longer "unanswered" and will not time out.
    pub fn clear_lock_timer(&self, ticket_id: i64) -> Result<()> {
        self.conn().execute("UPDATE tickets SET locked_until = NULL WHERE id = ?1", [ticket_id])?;
        Ok(())
    }

    pub fn set_pending(&self, ticket_id: i64, until: Option<i64>) -> Result<()> {
        self.conn().execute(
            "UPDATE tickets SET pending_until = ?2, state = CASE WHEN ?2 IS NULL THEN state ELSE 'pending' END WHERE id = ?1",
            params![ticket_id, until],
        )?;
        Ok(())
    }

    /// `#merge`: `from` joins `into`; its parties come along so they can keep writing with the old token.
    pub fn merge_ticket(&self, from: i64, into: i64, now: i64) -> Result<()> {
        self.conn().execute(
            "UPDATE tickets SET merged_into = ?2, state = 'merged', updated_at = ?3 WHERE id = ?1",
            params![from, into, now],
        )?;
        self.conn().execute(
            "INSERT INTO ticket_parties (ticket_id, address, role) SELECT ?2, address, role FROM ticket_parties \
             WHERE ticket_id = ?1 ON CONFLICT DO NOTHING",
            params![from, into],
        )?;
        Ok(())
    }

    /// Tickets whose lock ran out unanswered: (id, owner).
    pub fn expired_locks(&self, now: i64) -> Result<Vec<(i64, String)>> {
        let mut stmt = self.conn().prepare_cached(
            "SELECT id, owner FROM tickets WHERE locked_until IS NOT NULL AND locked_until <= ?1 AND owner IS NOT NULL",
        )?;
        let rows = stmt.query_map([now], |r| Ok((r.get(0)?, r.get(1)?)))?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// Pending tickets whose time came: they open again.
    pub fn wake_pending(&self, now: i64) -> Result<Vec<i64>> {
        let mut stmt = self.conn().prepare_cached(
            "UPDATE tickets SET state = 'open', pending_until = NULL WHERE state = 'pending' AND pending_until <= ?1 RETURNING id",
        )?;
        let rows = stmt.query_map([now], |r| r.get(0))?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// The newest inbound mail of the ticket's customer side, which an agent's answer replies to:
    /// (Message-ID, References).
    pub fn last_customer_message(&self, ticket_id: i64) -> Result<Option<(Option<String>, Vec<String>)>> {
        Ok(self
            .conn()
            .query_row(
                "SELECT message_id, refs FROM articles WHERE ticket_id = ?1 AND direction = 'inbound' \
                 ORDER BY id DESC LIMIT 1",
                [ticket_id],
                |r| {
                    let refs: String = r.get(1)?;
                    Ok((r.get(0)?, serde_json::from_str(&refs).unwrap_or_default()))
                },
            )
            .optional()?)
    }

    /// The ticket's customer and Cc parties (not agents): who an agent's answer goes to.
    pub fn customer_parties(&self, ticket_id: i64) -> Result<(String, Option<String>, Vec<String>)> {
        let (customer, name): (String, Option<String>) =
            self.conn().row_cached("SELECT customer, customer_name FROM tickets WHERE id = ?1", [ticket_id], |r| {
                Ok((r.get(0)?, r.get(1)?))
            })?;
        let mut stmt = self.conn().prepare_cached(
            "SELECT address FROM ticket_parties WHERE ticket_id = ?1 AND role = 'cc' AND address <> ?2 \
             AND address NOT IN (SELECT address FROM agents) ORDER BY address",
        )?;
        let cc = stmt.query_map(params![ticket_id, customer], |r| r.get(0))?.collect::<rusqlite::Result<_>>()?;
        Ok((customer, name, cc))
    }
}

impl Store {
    pub fn agent_list(&self) -> Result<Vec<AgentView>> {
        let mut stmt = self.conn.prepare("SELECT address, name, enabled FROM agents ORDER BY address")?;
        let agents: Vec<AgentRow> = stmt.query_map([], agent_row)?.collect::<rusqlite::Result<_>>()?;
        let mut out = Vec::with_capacity(agents.len());
        for a in agents {
            let strings = |sql: &str| -> Result<Vec<String>> {
                let mut stmt = self.conn.prepare_cached(sql)?;
                Ok(stmt.query_map([&a.address], |r| r.get(0))?.collect::<rusqlite::Result<_>>()?)
            };
            let roles = strings("SELECT role FROM agent_roles WHERE agent = ?1 ORDER BY role")?;
            let queues = strings(
                "SELECT DISTINCT rq.queue FROM agent_roles ar JOIN role_queues rq ON rq.role = ar.role \
                 WHERE ar.agent = ?1 ORDER BY rq.queue",
            )?;
            let mut stmt =
                self.conn.prepare_cached("SELECT event, enabled FROM agent_notify WHERE agent = ?1 ORDER BY event")?;
            let notify =
                stmt.query_map([&a.address], |r| Ok((r.get(0)?, r.get(1)?)))?.collect::<rusqlite::Result<_>>()?;
            out.push(AgentView { address: a.address, name: a.name, enabled: a.enabled, roles, queues, notify });
        }
        Ok(out)
    }

    pub fn role_list(&self) -> Result<Vec<RoleView>> {
        let mut stmt = self.conn.prepare("SELECT name FROM roles ORDER BY name")?;
        let names: Vec<String> = stmt.query_map([], |r| r.get(0))?.collect::<rusqlite::Result<_>>()?;
        let mut out = Vec::new();
        for name in names {
            let mut q = self.conn.prepare_cached("SELECT queue FROM role_queues WHERE role = ?1 ORDER BY queue")?;
            let queues = q.query_map([&name], |r| r.get(0))?.collect::<rusqlite::Result<_>>()?;
            let mut a = self.conn.prepare_cached("SELECT agent FROM agent_roles WHERE role = ?1 ORDER BY agent")?;
            let agents = a.query_map([&name], |r| r.get(0))?.collect::<rusqlite::Result<_>>()?;
            out.push(RoleView { name, queues, agents });
        }
        Ok(out)
    }

    /// Queues added from the CLI.
    pub fn queue_rows(&self) -> Result<Vec<QueueRow>> {
        let mut stmt = self.conn.prepare("SELECT name, address, templates FROM queues ORDER BY name")?;
        let rows =
            stmt.query_map([], |r| Ok(QueueRow { name: r.get(0)?, address: r.get(1)?, templates: r.get(2)? }))?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }
}
