//! The optional Prometheus endpoint (`[metrics] listen`, loopback only): `GET /metrics` in the OpenMetrics text
//! format. Off by default.
//!
//! Totals that the database already knows (mails by outcome, outbox rows by state, automatic replies withheld by
//! reason) are read from it at each scrape, over a read-only connection of their own: they then include mail taken
//! in by `postdesk ingest` from the MTA, survive restarts, and never wait on the daemon's writer. What only the
//! running daemon knows (relay errors, processing time, connection states) is counted in memory.
//! No label ever carries an address or any other text from a mail: labels are fixed words.

use std::path::PathBuf;
use std::sync::Arc;

use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::watch;
use tracing::{debug, info, warn};

use crate::health::Health;
use crate::store::Store;

type Labels = Vec<(&'static str, String)>;

fn label(key: &'static str, value: &str) -> Labels {
    vec![(key, value.to_string())]
}

pub struct Metrics {
    registry: Registry,
    mails: Family<Labels, Counter>,
    outbox: Family<Labels, Gauge>,
    withheld: Family<Labels, Counter>,
    batch_seconds: Histogram,
    relay_errors: Family<Labels, Counter>,
    database_errors: Family<Labels, Counter>,
    sent: Counter,
    failed: Counter,
    imap_connected: Gauge,
    relay_up: Gauge,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    pub fn new() -> Metrics {
        let mut registry = Registry::default();
        let m = Metrics {
            registry: Registry::default(),
            mails: Family::default(),
            outbox: Family::default(),
            withheld: Family::default(),
            // 1 ms to about 65 s.
            batch_seconds: Histogram::new(exponential_buckets(0.001, 2.0, 17)),
            relay_errors: Family::default(),
            database_errors: Family::default(),
            sent: Counter::default(),
            failed: Counter::default(),
            imap_connected: Gauge::default(),
            relay_up: Gauge::default(),
        };
        let r = &mut registry;
        r.register(
            "postdesk_mails",
            "Mails taken in, by outcome (stored, duplicate, quarantined, ignored)",
            m.mails.clone(),
        );
        r.register(
            "postdesk_outbox_mails",
            "Outbox rows by state (queued, sent, failed, held, cancelled)",
            m.outbox.clone(),
        );
        r.register(
            "postdesk_auto_replies_suppressed",
            "Automatic replies withheld, by reason (automatic-mail, null-sender, system-sender, own-address, hard-bounce, rate-limit, other)",
            m.withheld.clone(),
        );
        r.register(
            "postdesk_batch_processing_seconds",
            "Time from a batch downloaded to its commit (parse, thread, route, store), per batch",
            m.batch_seconds.clone(),
        );
        r.register(
            "postdesk_relay_errors",
            "Relay failures by kind (send, probe, deferred, refused)",
            m.relay_errors.clone(),
        );
        r.register(
            "postdesk_database_errors",
            "Database errors by kind (disk-full, locked, other)",
            m.database_errors.clone(),
        );
        r.register("postdesk_outbox_sent", "Mails the relay accepted since the daemon started", m.sent.clone());
        r.register(
            "postdesk_outbox_failed",
            "Mails the relay refused permanently since the daemon started",
            m.failed.clone(),
        );
        r.register("postdesk_imap_connected", "1 while the IMAP connection is up", m.imap_connected.clone());
        r.register(
            "postdesk_relay_up",
            "1 while the relay answers, 0 while it is down or not yet tried",
            m.relay_up.clone(),
        );
        let build = Family::<Labels, Gauge>::default();
        build.get_or_create(&label("version", env!("CARGO_PKG_VERSION"))).set(1);
        r.register("postdesk_build_info", "Always 1; the version is the label", build);
        Metrics { registry, ..m }
    }

    pub fn outbox_sent(&self) {
        self.sent.inc();
    }

    pub fn outbox_failed(&self) {
        self.failed.inc();
    }

    pub fn relay_error(&self, kind: &str) {
        self.relay_errors.get_or_create(&label("kind", kind)).inc();
    }

    pub fn database_error(&self, error: &crate::store::StoreError) {
        let code = match error {
            crate::store::StoreError::Sql(e) | crate::store::StoreError::Open { source: e, .. } => {
                e.sqlite_error_code()
            }
            _ => None,
        };
        let kind = match code {
            Some(rusqlite::ErrorCode::DiskFull) => "disk-full",
            Some(rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked) => "locked",
            _ => "other",
        };
        self.database_errors.get_or_create(&label("kind", kind)).inc();
    }

    pub fn batch_processed(&self, seconds: f64) {
        self.batch_seconds.observe(seconds);
    }

    pub fn imap_connected(&self, up: bool) {
        self.imap_connected.set(i64::from(up));
    }

    /// The page: database totals brought up to date, then everything encoded.
    fn render(&self, store: Option<&Store>, health: &Health) -> String {
        self.relay_up.set(i64::from(health.snapshot().relay.state == "up"));
        if let Some(counts) =
            store.and_then(|s| s.metrics_counts().map_err(|e| warn!(error = %e, "metrics: database")).ok())
        {
            for (outcome, n) in &counts.mails {
                raise(&self.mails.get_or_create(&label("outcome", outcome)), *n);
            }
            for (state, n) in &counts.outbox {
                self.outbox.get_or_create(&label("state", state)).set(*n);
            }
            let mut by_reason: std::collections::BTreeMap<&str, i64> = Default::default();
            for (detail, n) in &counts.withheld {
                *by_reason.entry(withheld_reason(detail)).or_default() += n;
            }
            for (reason, n) in by_reason {
                raise(&self.withheld.get_or_create(&label("reason", reason)), n);
            }
        }
        let mut out = String::new();
        let _ = encode(&mut out, &self.registry);
        out
    }
}

/// A counter follows a total read from the database: it only ever goes up.
fn raise(counter: &Counter, total: i64) {
    let total = total.max(0) as u64;
    let now = counter.get();
    if total > now {
        counter.inc_by(total - now);
    }
}

/// The reason class of an "auto-reply withheld" history detail (`template: reason`, from the reply policy).
pub fn withheld_reason(detail: &str) -> &'static str {
    let reason = detail.split_once(": ").map_or(detail, |(_, r)| r);
    let has = |s: &str| reason.contains(s);
    if has("rate limit") {
        "rate-limit"
    } else if has("suppressed after a hard bounce") {
        "hard-bounce"
    } else if has("one of our own addresses") {
        "own-address"
    } else if has("null envelope sender") {
        "null-sender"
    } else if has("MAILER-DAEMON address") || has("postmaster address") || has("no-reply address") {
        "system-sender"
    } else if reason.starts_with("mail is classified as")
        || ["Auto-Submitted:", "Precedence:", "mailing-list mail", "X-Auto-Response-Suppress:", "sent by a postdesk"]
            .iter()
            .any(|s| has(s))
    {
        "automatic-mail"
    } else {
        "other"
    }
}

/// Serves the page until `stop`. Binding is checked before the daemon reports itself ready.
pub async fn bind(listen: std::net::SocketAddr) -> std::io::Result<tokio::net::TcpListener> {
    tokio::net::TcpListener::bind(listen).await
}

pub async fn serve(
    listener: tokio::net::TcpListener,
    metrics: Arc<Metrics>,
    health: Arc<Health>,
    database: PathBuf,
    mut stop: watch::Receiver<bool>,
) {
    info!(listen = %listener.local_addr().map(|a| a.to_string()).unwrap_or_default(), "metrics endpoint up");
    loop {
        let (mut socket, _) = tokio::select! {
            r = listener.accept() => match r {
                Ok(pair) => pair,
                Err(e) => { warn!(error = %e, "metrics: accept"); continue; }
            },
            _ = stop.changed() => return,
        };
        let (metrics, health, database) = (metrics.clone(), health.clone(), database.clone());
        tokio::spawn(async move {
            // A request line and headers fit in 4 KiB; anything slower than 5 s is dropped.
            let mut buf = vec![0u8; 4096];
            let read = tokio::time::timeout(std::time::Duration::from_secs(5), socket.read(&mut buf)).await;
            let Ok(Ok(n)) = read else { return };
            let request = String::from_utf8_lossy(&buf[..n]);
            let path = request.split_whitespace().nth(1).unwrap_or("");
            let response = if request.starts_with("GET ") && (path == "/metrics" || path.starts_with("/metrics?")) {
                let body = tokio::task::spawn_blocking(move || {
                    let store = Store::open_read_only(&database).ok();
                    metrics.render(store.as_ref(), &health)
                })
                .await
                .unwrap_or_default();
                format!(
                    "HTTP/1.1 200 OK\r\nContent-Type: application/openmetrics-text; version=1.0.0; charset=utf-8\r\n\
                     Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                )
            } else {
                "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n".to_string()
            };
            if let Err(e) = socket.write_all(response.as_bytes()).await {
                debug!(error = %e, "metrics: write");
            }
            let _ = socket.shutdown().await;
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn withheld_reasons_are_fixed_words_without_addresses() {
        let table = [
            ("acknowledgement: rate limit: 3 automatic replies to a@b.example recently (limit 3)", "rate-limit"),
            ("acknowledgement: a@b.example is suppressed after a hard bounce", "hard-bounce"),
            ("acknowledgement: mail is classified as auto-reply (Auto-Submitted)", "automatic-mail"),
            ("acknowledgement: Precedence: bulk", "automatic-mail"),
            ("acknowledgement: sender mailer-daemon@x.example is a MAILER-DAEMON address", "system-sender"),
            ("acknowledgement: sender support@example.test is one of our own addresses", "own-address"),
            ("acknowledgement: null envelope sender (Return-Path: <>)", "null-sender"),
            ("acknowledgement: something new", "other"),
        ];
        for (detail, reason) in table {
            assert_eq!(withheld_reason(detail), reason, "{detail}");
        }
    }

    #[test]
    fn the_page_has_the_documented_families_and_counters_never_go_down() {
        let metrics = Metrics::new();
        let health = Health::new(0);
        metrics.relay_error("probe");
        let store = Store::open_in_memory().unwrap();
        let page = metrics.render(Some(&store), &health);
        for family in ["postdesk_build_info{version=", "postdesk_relay_errors_total{kind=\"probe\"} 1", "# EOF"] {
            assert!(page.contains(family), "{family} missing:\n{page}");
        }
        let c = Counter::<u64>::default();
        raise(&c, 5);
        raise(&c, 3);
        assert_eq!(c.get(), 5);
    }
}
