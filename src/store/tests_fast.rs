//! Migration 0010: compressed raw mail next to old rows, kept article counts, `ticket list` served by indexes.

use rusqlite::params;

use super::*;

/// A ticket with everything but its number, queue and time left plain (the store tests share it).
pub(super) fn ticket(tx: &Tx<'_>, number: &str, queue: &str, now: i64) -> i64 {
    tx.create_ticket(&NewTicket {
        number,
        subject: "s",
        queue,
        priority: Default::default(),
        state: Default::default(),
        customer: "a@b",
        customer_name: None,
        owner: None,
        claimed_number: None,
        now,
    })
    .unwrap()
}

/// An inbound article with empty texts.
pub(super) fn article(tx: &Tx<'_>, ticket_id: i64, raw_id: Option<i64>) -> i64 {
    tx.add_article(&NewArticle {
        ticket_id,
        direction: "inbound",
        internal: false,
        sender: None,
        sender_name: None,
        recipients: &[],
        cc: &[],
        subject: "s",
        message_id: None,
        in_reply_to: None,
        references: &[],
        body_text: "",
        visible_text: "",
        classification: "human",
        classification_reason: None,
        duplicate_of: None,
        raw_id,
        sent_at: None,
        received_at: 0,
    })
    .unwrap()
}

#[test]
fn raw_mail_reads_back_exact_from_old_uncompressed_rows_and_new_compressed_ones() {
    let mut store = Store::open_in_memory().unwrap();
    let text = "Subject: printer\r\n\r\n".to_string() + &"It is on fire. Again.\r\n".repeat(100);
    let tx = store.begin().unwrap();
    let t = ticket(&tx, "1", "q", 0);
    let zstd = compress_raw(text.as_bytes());
    assert!(zstd.is_some());
    let new_row = tx.insert_raw(text.as_bytes(), "new").unwrap();
    // A row as every postdesk before migration 0010 wrote it: the bytes themselves, no encoding.
    tx.conn().execute("INSERT INTO raw_messages (sha256, size, data) VALUES ('old', 3, X'6F6C64')", []).unwrap();
    let old_row: i64 =
        tx.conn().query_row("SELECT id FROM raw_messages WHERE sha256 = 'old'", [], |r| r.get(0)).unwrap();
    let a_new = article(&tx, t, Some(new_row));
    let a_old = article(&tx, t, Some(old_row));
    // The same content again is the same row, whatever was passed the second time.
    assert_eq!(tx.insert_raw(text.as_bytes(), "new").unwrap(), new_row);
    tx.commit().unwrap();
    let stored: (i64, Option<String>) = store
        .conn
        .query_row("SELECT length(data), encoding FROM raw_messages WHERE id = ?1", [new_row], |r| {
            Ok((r.get(0)?, r.get(1)?))
        })
        .unwrap();
    assert!(stored.0 < text.len() as i64 / 4, "stored compressed: {stored:?}");
    assert_eq!(stored.1.as_deref(), Some("zstd"));
    assert_eq!(store.raw_message(a_new).unwrap().unwrap(), text.as_bytes());
    assert_eq!(store.raw_by_id(new_row).unwrap().unwrap(), text.as_bytes());
    assert_eq!(store.raw_message(a_old).unwrap().unwrap(), b"old");
    assert_eq!(store.raw_message(9999).unwrap(), None);
}

#[test]
fn large_raw_mail_reads_back_exact_compressed_or_not() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = Store::open(&dir.path().join("db.sqlite")).unwrap();
    // An attachment that compresses (stored as zstd) and bytes that do not (stored as they are), both larger than
    // SQLite's page cache and streamed into `payload`; and a small mail, bound into `data`.
    let mut noise = Vec::with_capacity(2_000_000);
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    while noise.len() < 2_000_000 {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        noise.extend_from_slice(&x.to_le_bytes());
    }
    // An attachment as mail carries it: base64 in 76-character lines, which zstd shrinks to about three quarters.
    let encoded = base64::Engine::encode(&base64::engine::general_purpose::STANDARD, &noise);
    let text: Vec<u8> = encoded.as_bytes().chunks(76).flat_map(|line| [line, b"\r\n"].concat()).collect();
    let tx = store.begin().unwrap();
    let t = ticket(&tx, "1", "q", 0);
    let zstd = compress_raw(&text);
    assert!(zstd.as_ref().is_some_and(|z| z.len() > 2_000_000));
    assert!(compress_raw(&noise).is_none());
    let small = noise[..super::write::STREAMED_BYTES].to_vec();
    let rows = [
        tx.insert_raw(&text, "text").unwrap(),
        tx.insert_raw(&noise, "noise").unwrap(),
        tx.insert_raw(&small, "small").unwrap(),
    ];
    let articles: Vec<i64> = rows.iter().map(|&row| article(&tx, t, Some(row))).collect();
    assert_eq!(tx.insert_raw(&noise, "noise").unwrap(), rows[1], "the same content is the same row");
    tx.commit().unwrap();
    drop(store);
    let store = Store::open(&dir.path().join("db.sqlite")).unwrap();
    for (article, expected) in articles.iter().zip([&text, &noise, &small]) {
        assert!(store.raw_message(*article).unwrap().unwrap() == **expected, "article {article}");
    }
    let placed: Vec<(i64, Option<i64>)> = rows
        .iter()
        .map(|id| {
            store
                .conn
                .query_row("SELECT length(data), length(payload) FROM raw_messages WHERE id = ?1", [id], |r| {
                    Ok((r.get(0)?, r.get(1)?))
                })
                .unwrap()
        })
        .collect();
    let frame = zstd.unwrap().len() as i64;
    assert_eq!(placed, [(0, Some(frame)), (0, Some(2_000_000)), (small.len() as i64, None)]);
}

#[test]
fn article_counts_are_kept_and_ticket_list_orders_by_activity_with_filters() {
    let mut store = Store::open_in_memory().unwrap();
    let tx = store.begin().unwrap();
    let a = ticket(&tx, "A", "billing", 10);
    let b = ticket(&tx, "B", "sales", 20);
    let c = ticket(&tx, "C", "billing", 30);
    for _ in 0..3 {
        article(&tx, a, None);
    }
    article(&tx, b, None);
    tx.touch_ticket(a, 40, false).unwrap();
    tx.set_state(c, crate::model::TicketState::Closed).unwrap();
    tx.commit().unwrap();
    let list = |queue: Option<&str>, state: Option<&str>, limit: Option<u32>| -> Vec<(String, i64)> {
        let filter = TicketFilter { queue: queue.map(Into::into), state: state.map(Into::into), limit };
        store.list_tickets(&filter).unwrap().into_iter().map(|t| (t.number, t.articles)).collect()
    };
    let n = |s: &str, k: i64| (s.to_string(), k);
    assert_eq!(list(None, None, None), vec![n("A", 3), n("C", 0), n("B", 1)]);
    assert_eq!(list(None, None, Some(1)), vec![n("A", 3)]);
    assert_eq!(list(Some("billing"), None, None), vec![n("A", 3), n("C", 0)]);
    assert_eq!(list(None, Some("closed"), None), vec![n("C", 0)]);
    assert_eq!(list(Some("billing"), Some("new"), None), vec![n("A", 3)]);
    assert_eq!(list(Some("sales"), Some("closed"), None), vec![]);
}

/// The slow `ticket list` at 400k tickets: every ticket read and sorted, with an article count per row.
#[test]
fn ticket_list_is_served_by_an_index_without_sorting_every_ticket() {
    let store = Store::open_in_memory().unwrap();
    for (condition, binds) in
        [("", 0), ("WHERE t.queue = ?1", 1), ("WHERE t.state = ?1", 1), ("WHERE t.queue = ?1 AND t.state = ?2", 2)]
    {
        let sql = format!(
            "EXPLAIN QUERY PLAN SELECT t.number FROM tickets t {condition} ORDER BY t.updated_at DESC, t.id DESC LIMIT 50"
        );
        let mut stmt = store.conn.prepare(&sql).unwrap();
        let values = ["billing", "open"];
        let plan: Vec<String> = stmt
            .query_map(rusqlite::params_from_iter(&values[..binds]), |r| r.get(3))
            .unwrap()
            .collect::<rusqlite::Result<_>>()
            .unwrap();
        let plan = plan.join(" | ");
        assert!(plan.contains("USING INDEX tickets_"), "{condition}: {plan}");
        assert!(!plan.contains("TEMP B-TREE"), "{condition}: sorts every ticket: {plan}");
    }
}

#[test]
fn upgrading_to_0010_counts_the_articles_of_existing_tickets() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("old.db");
    {
        let mut conn = rusqlite::Connection::open(&path).unwrap();
        let tx = conn.transaction().unwrap();
        for sql in &migrate::MIGRATIONS[..5] {
            tx.execute_batch(sql).unwrap();
        }
        tx.pragma_update(None, "user_version", 5).unwrap();
        tx.execute(
            "INSERT INTO tickets (id, number, subject, queue, customer, created_at, updated_at) \
             VALUES (1, 'X', 's', 'q', 'a@b', 0, 0)",
            [],
        )
        .unwrap();
        for _ in 0..2 {
            tx.execute(
                "INSERT INTO articles (ticket_id, direction, subject, body_text, visible_text, classification, \
                 received_at) VALUES (?1, 'inbound', 's', '', '', 'human', 0)",
                params![1],
            )
            .unwrap();
        }
        tx.commit().unwrap();
    }
    let store = Store::open(&path).unwrap();
    let list = store.list_tickets(&TicketFilter::default()).unwrap();
    assert_eq!(list[0].articles, 2);
}

/// One process per mail (the MTA pipe): each opens, commits once and exits. SQLite only rewinds a WAL on a later
/// write, which such a process never makes, so without `release_wal` the WAL grew by every mail for ever.
#[test]
fn one_commit_processes_keep_the_wal_bounded() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("postdesk.db");
    let wal = dir.path().join("postdesk.db-wal");
    let body = "x".repeat(6000);
    let mut largest = 0;
    for n in 0..400 {
        let mut store = Store::open(&db).unwrap();
        let tx = store.begin().unwrap();
        let t = ticket(&tx, &n.to_string(), "q", n);
        let raw = tx.insert_raw(body.as_bytes(), &n.to_string()).unwrap();
        article(&tx, t, Some(raw));
        tx.commit().unwrap();
        store.release_wal().unwrap();
        largest = largest.max(std::fs::metadata(&wal).map_or(0, |m| m.len()));
    }
    let page_size: u64 = 4096;
    // At most the auto-checkpoint size plus one commit's frames; unbounded it passes 4 MB by the 400th mail.
    assert!(largest < (WAL_AUTOCHECKPOINT_PAGES as u64 + 64) * (page_size + 24), "WAL reached {largest} bytes");
    let store = Store::open(&db).unwrap();
    let count: i64 = store.conn.query_row("SELECT count(*) FROM tickets", [], |r| r.get(0)).unwrap();
    assert_eq!(count, 400);
}
