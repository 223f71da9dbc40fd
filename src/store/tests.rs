use rusqlite::Connection;

use super::*;

fn objects(conn: &Connection) -> Vec<(String, String, String)> {
    let mut stmt = conn
        .prepare("SELECT type, name, sql FROM sqlite_master WHERE name NOT LIKE 'sqlite_%' ORDER BY type, name")
        .unwrap();
    stmt.query_map([], |r| {
        let sql: Option<String> = r.get(2)?;
        Ok((r.get(0)?, r.get(1)?, sql.unwrap_or_default().split_whitespace().collect::<Vec<_>>().join(" ")))
    })
    .unwrap()
    .collect::<rusqlite::Result<_>>()
    .unwrap()
}

#[test]
fn migrations_produce_schema_sql() {
    let migrated = Store::open_in_memory().unwrap();
    let reference = Connection::open_in_memory().unwrap();
    reference.execute_batch(include_str!("../../schema.sql")).unwrap();
    let (a, b) = (objects(&migrated.conn), objects(&reference));
    assert!(!a.is_empty());
    for (m, s) in a.iter().zip(b.iter()) {
        assert_eq!(m, s, "schema.sql and the migrations differ");
    }
    assert_eq!(a.len(), b.len(), "schema.sql and the migrations define different numbers of objects");
    assert_eq!(migrated.schema_version().unwrap(), migrate::MIGRATIONS.len() as i64);
}

#[test]
fn reopening_does_not_migrate_twice_and_newer_schema_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("t.db");
    drop(Store::open(&path).unwrap());
    drop(Store::open(&path).unwrap());
    let conn = Connection::open(&path).unwrap();
    conn.pragma_update(None, "user_version", 999).unwrap();
    drop(conn);
    assert!(matches!(Store::open(&path), Err(StoreError::TooNew { found: 999, .. })));
}

#[test]
fn ticket_numbers_count_up_per_day() {
    let mut store = Store::open_in_memory().unwrap();
    let tx = store.begin().unwrap();
    let a = tx.next_ticket_number("20261123", 10).unwrap();
    let b = tx.next_ticket_number("20261123", 10).unwrap();
    let c = tx.next_ticket_number("20261124", 10).unwrap();
    assert_eq!(&a[..15], "202611231000001");
    assert_eq!(&b[..15], "202611231000002");
    assert_eq!(&c[..15], "202611241000001");
    assert!(crate::token::is_valid_number(&b));
}

#[test]
fn attachments_are_stored_once_per_content() {
    let mut store = Store::open_in_memory().unwrap();
    let tx = store.begin().unwrap();
    let t = super::tests_fast::ticket(&tx, "1", "q", 0);
    let a1 = super::tests_fast::article(&tx, t, None);
    let a2 = super::tests_fast::article(&tx, t, None);
    let file = crate::model::Attachment {
        filename: Some("../../etc/passwd".into()),
        content_type: "text/plain".into(),
        size: 10,
        sha256: sha256_hex(b"same bytes"),
        data: Vec::new(),
    };
    let raw = tx.insert_raw(b"the mail that carried it", "0").unwrap();
    tx.add_attachment(a1, &file, raw).unwrap();
    tx.add_attachment(a2, &file, raw).unwrap();
    tx.commit().unwrap();
    let blobs: i64 = store.conn.query_row("SELECT count(*) FROM blobs", [], |r| r.get(0)).unwrap();
    let links: i64 = store.conn.query_row("SELECT count(*) FROM attachments", [], |r| r.get(0)).unwrap();
    assert_eq!((blobs, links), (1, 2));
}
