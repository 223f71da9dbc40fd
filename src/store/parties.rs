//! Who a ticket's mail goes to, with a cap: one mail naming 100,000 Cc addresses must not make every later answer
//! a mail to 100,000 people (nor a 2 MB header built and sent each time).

use super::CachedStatements;
use rusqlite::params;

use super::{Result, Tx};

impl Tx<'_> {
    /// Adds each of `addresses` (lowercased) as a party with `role`, while the ticket has fewer than `max` parties
    /// (the customer included). Returns how many of `addresses` were left out because the ticket was full;
    /// addresses that are parties already are never counted as left out.
    pub fn add_parties_capped(&self, ticket_id: i64, addresses: &[String], role: &str, max: usize) -> Result<usize> {
        let conn = self.conn();
        let mut count: i64 =
            conn.row_cached("SELECT count(*) FROM ticket_parties WHERE ticket_id = ?1", [ticket_id], |r| r.get(0))?;
        let max = i64::try_from(max).unwrap_or(i64::MAX);
        let mut insert = conn.prepare_cached(
            "INSERT INTO ticket_parties (ticket_id, address, role) VALUES (?1, lower(?2), ?3) \
             ON CONFLICT(ticket_id, address) DO NOTHING",
        )?;
        let mut known =
            conn.prepare_cached("SELECT 1 FROM ticket_parties WHERE ticket_id = ?1 AND address = lower(?2)")?;
        let mut left_out = 0;
        for address in addresses {
            if count < max {
                count += insert.execute(params![ticket_id, address, role])? as i64;
            } else if !known.exists(params![ticket_id, address])? {
                left_out += 1;
            }
        }
        Ok(left_out)
    }
}
