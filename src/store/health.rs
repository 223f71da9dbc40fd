//! Whether a database file is sound, asked without writing to it (`postdesk check`).

use super::{Result, Store};

impl Store {
    /// SQLite's `PRAGMA quick_check`: the structural checks of `integrity_check` minus the index contents, fast
    /// enough to run before every start. `["ok"]` when sound, else one line per problem found (at most 20).
    pub fn quick_check(&self) -> Result<Vec<String>> {
        let mut stmt = self.conn.prepare("PRAGMA quick_check(20)")?;
        let rows = stmt.query_map([], |r| r.get::<_, String>(0))?;
        Ok(rows.collect::<std::result::Result<_, _>>()?)
    }
}
