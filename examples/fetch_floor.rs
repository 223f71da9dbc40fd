//! The floor for `scripts/bench.sh`: the same mailbox's bare `UID FETCH` rate, through the daemon's own IMAP code.
//!
//!     cargo run --release --example fetch_floor -- --config CONFIG
//!
//! Connects like `postdesk run` (same config, same password file), lists the mailbox once, then downloads every mail
//! with the daemon's batching (`imap.batch_size` mails / `imap.batch_bytes` bytes per `UID FETCH (UID BODY.PEEK[])`)
//! and throws the bytes away. Nothing is moved, flagged or stored: the mailbox is left exactly as it was. Only the
//! downloads are timed; connect and list times are printed separately.

use std::path::PathBuf;
use std::time::Instant;

use postdesk::config::{Config, TlsMode, read_secret};
use postdesk::daemon::plan_batch;
use postdesk::ingest::imap;

fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let mut config_path = None;
    let mut json = false;
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--config" => config_path = args.next().map(PathBuf::from),
            "--json" => json = true,
            other => anyhow::bail!("unknown argument {other:?}; usage: fetch_floor --config CONFIG [--json]"),
        }
    }
    let config_path = config_path.ok_or_else(|| anyhow::anyhow!("usage: fetch_floor --config CONFIG [--json]"))?;
    let config = Config::load(&config_path)?;
    let cfg = config.imap.clone().ok_or_else(|| anyhow::anyhow!("{}: no [imap] section", config_path.display()))?;
    let password = read_secret(cfg.password_file.as_deref(), "imap", "imap-password")?;
    let tls = match cfg.tls {
        TlsMode::Plain => None,
        _ => Some(postdesk::tls::client_config(cfg.ca_file.as_deref())?),
    };
    let max_size = config.limits.max_message_bytes;

    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build()?;
    runtime.block_on(async move {
        let t0 = Instant::now();
        let mut conn = imap::connect(&cfg, &password, tls).await?;
        let connected = t0.elapsed();
        let t1 = Instant::now();
        let listed = conn.list().await?;
        let list_time = t1.elapsed();

        let (mut mails, mut bytes, mut batches) = (0usize, 0usize, 0usize);
        let mut rest: &[(u32, u32)] = &listed;
        let t2 = Instant::now();
        while !rest.is_empty() {
            let batch = plan_batch(rest, cfg.batch_size as usize, cfg.batch_bytes, max_size);
            rest = &rest[batch.len()..];
            // Oversized mail is never downloaded by the daemon either.
            let uids: Vec<u32> =
                batch.iter().filter(|(_, size)| *size as usize <= max_size).map(|(uid, _)| *uid).collect();
            for (_, raw) in conn.download(&uids).await? {
                mails += 1;
                bytes += raw.len();
            }
            batches += 1;
        }
        let secs = t2.elapsed().as_secs_f64();
        conn.logout().await;
        let rate = mails as f64 / secs.max(1e-9);
        if json {
            println!(
                "{}",
                serde_json::json!({
                    "mails": mails, "bytes": bytes, "batches": batches, "seconds": secs, "mails_per_s": rate,
                    "mb_per_s": bytes as f64 / 1e6 / secs.max(1e-9),
                    "connect_seconds": connected.as_secs_f64(), "list_seconds": list_time.as_secs_f64(),
                })
            );
        } else {
            println!(
                "fetched {mails} mails, {bytes} bytes in {batches} batches: {secs:.3} s, {rate:.0} mails/s, {:.1} MB/s \
                 (connect {:.3} s and list {:.3} s not included)",
                bytes as f64 / 1e6 / secs.max(1e-9),
                connected.as_secs_f64(),
                list_time.as_secs_f64()
            );
        }
        anyhow::Ok(())
    })
}
