//! Operating the desk from the command line: the database (`db backup | restore | check | init`) and quarantined
//! mail (`quarantine show | raw | replay | drop | fetch`). Front ends over `store` and `pipeline`; nothing here
//! talks SQL.

pub mod db;
pub mod quarantine;

/// Who did it, for the audit trail: the login name of whoever ran the command.
pub fn actor() -> String {
    let user = std::env::var("SUDO_USER").or_else(|_| std::env::var("USER")).unwrap_or_else(|_| "unknown".into());
    format!("cli:{user}")
}
