//! A big database for `scripts/bench-local.sh`: `ticket list` latency and ingest rate at a million tickets.
//!
//!     cargo run --release --example bench_db -- --db PATH --tickets N
//!
//! Writes N tickets through the store's own API (schema, migrations, triggers and indexes as in production), each
//! with one inbound article, over 365 days of activity in four queues and four states. No raw mail is written: the
//! size that matters for these figures is the ticket and article tables and their indexes. The script builds the
//! database once and reuses it (it is kept under target/).

use std::path::PathBuf;
use std::time::Instant;

use postdesk::model::{Priority, TicketState};
use postdesk::store::{NewArticle, NewTicket, Store};

const QUEUES: [&str; 4] = ["general", "billing", "sales", "vip"];
const STATES: [TicketState; 4] = [TicketState::New, TicketState::Open, TicketState::Pending, TicketState::Closed];
/// Tickets per transaction.
const CHUNK: u64 = 20_000;

fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let (mut db, mut tickets) = (None, 0u64);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--db" => db = args.next().map(PathBuf::from),
            "--tickets" => tickets = args.next().unwrap_or_default().parse()?,
            other => anyhow::bail!("unknown argument {other:?}; usage: bench_db --db PATH --tickets N"),
        }
    }
    let db = db.ok_or_else(|| anyhow::anyhow!("usage: bench_db --db PATH --tickets N"))?;
    anyhow::ensure!(!db.exists(), "{} exists; the benchmark builds a new database", db.display());
    let started = Instant::now();
    let mut store = Store::open(&db)?;
    let start_time: i64 = 1_750_000_000;
    let mut rng: u64 = 0x2545_F491_4F6C_DD1D;
    let mut done = 0u64;
    while done < tickets {
        let tx = store.begin()?;
        for n in done..(done + CHUNK).min(tickets) {
            rng ^= rng << 13;
            rng ^= rng >> 7;
            rng ^= rng << 17;
            let created = start_time + (n as i64) * 31_536_000 / tickets.max(1) as i64;
            let updated = created + (rng % 86_400) as i64;
            let day = chrono::DateTime::from_timestamp(created, 0).unwrap_or_default().format("%Y%m%d").to_string();
            let number = tx.next_ticket_number(&day, 10)?;
            let customer = format!("customer{}@example.test", rng % 50_000);
            let subject = format!("Printer {} does not print (case {n})", rng % 997);
            let ticket = tx.create_ticket(&NewTicket {
                number: &number,
                subject: &subject,
                queue: QUEUES[(rng >> 8) as usize % QUEUES.len()],
                priority: Priority::default(),
                state: STATES[(rng >> 16) as usize % STATES.len()],
                customer: &customer,
                customer_name: None,
                owner: None,
                claimed_number: None,
                now: created,
            })?;
            let message_id = format!("{n}.{rng:x}@customer.example");
            let body = format!("Hello,\n\nprinter {} stopped printing this morning.\n\nRegards\n", rng % 997);
            tx.add_article(&NewArticle {
                ticket_id: ticket,
                direction: "inbound",
                internal: false,
                sender: Some(&customer),
                sender_name: None,
                recipients: &["support@example.test".to_string()],
                cc: &[],
                subject: &subject,
                message_id: Some(&message_id),
                in_reply_to: None,
                references: &[],
                body_text: &body,
                visible_text: &body,
                classification: "human",
                classification_reason: None,
                duplicate_of: None,
                raw_id: None,
                sent_at: Some(created),
                received_at: created,
            })?;
            tx.touch_ticket(ticket, updated, false)?;
        }
        tx.commit()?;
        done = (done + CHUNK).min(tickets);
    }
    drop(store);
    // Leave a database file with an empty WAL, as a long-running site's would be after its checkpoints.
    drop(postdesk::store::Checkpointer::spawn(&db)?);
    eprintln!("bench_db: {tickets} tickets in {:.1} s: {}", started.elapsed().as_secs_f64(), db.display());
    Ok(())
}
