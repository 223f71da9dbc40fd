//! Drains the outbox through the SMTP relay. A row is marked sent only after the relay's 250, so a crash between the
//! two sends that mail again after restart, with the same bytes and Message-ID: at most one duplicate, never a loss.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use rand::Rng;
use tokio::sync::{Notify, watch};
use tracing::{info, warn};

use super::smtp::Relay;
use crate::config::SmtpConfig;
use crate::store::{Due, Store, StoreError};

/// Rows taken per pass: small, so a relay outage is noticed after a few attempts, not hundreds.
const PASS: u32 = 20;
/// Longest sleep between passes when nothing is due: new rows also wake the sender directly.
const IDLE_WAIT: Duration = Duration::from_secs(30);

/// Set `POSTDESK_FAILPOINT=after-smtp-250` to abort right after the relay accepted a mail and before the outbox row
/// is updated: the crash window the exactly-once test exercises.
const FAILPOINT_ENV: &str = "POSTDESK_FAILPOINT";

pub struct Sender {
    pub store: Arc<Mutex<Store>>,
    pub relay: Relay,
    pub retry_base: Duration,
    pub retry_max: Duration,
    pub wake: Arc<Notify>,
}

impl Sender {
    pub fn new(store: Arc<Mutex<Store>>, relay: Relay, cfg: &SmtpConfig, wake: Arc<Notify>) -> Sender {
        Sender {
            store,
            relay,
            retry_base: Duration::from_secs(cfg.retry_base_seconds.max(1)),
            retry_max: Duration::from_secs(cfg.retry_max_seconds.max(1)),
            wake,
        }
    }

    pub async fn run(self, mut stop: watch::Receiver<bool>) {
        let failpoint = std::env::var(FAILPOINT_ENV).is_ok_and(|v| v == "after-smtp-250");
        while !*stop.borrow() {
            let wait = match self.pass(failpoint).await {
                Ok(true) => Duration::ZERO,
                Ok(false) => self.until_next_due().await,
                Err(e) => {
                    warn!(error = %e, "outbox: database error; retrying");
                    Duration::from_secs(5)
                }
            };
            if wait.is_zero() {
                continue;
            }
            tokio::select! {
                _ = tokio::time::sleep(wait) => {}
                _ = self.wake.notified() => {}
                _ = stop.changed() => {}
            }
        }
    }

    /// Sends what is due. True when a full pass was taken (there may be more).
    async fn pass(&self, failpoint: bool) -> Result<bool, StoreError> {
        let now = chrono::Utc::now().timestamp();
        let due = self.db(move |s| s.due_outbox(now, PASS)).await?;
        let full = due.len() as u32 == PASS;
        for row in due {
            info!(id = row.id, "to the relay");
            let result = self.relay.send(&row.envelope_from, &row.recipients, &row.raw).await;
            let now = chrono::Utc::now().timestamp();
            match result {
                Ok(()) => {
                    if failpoint {
                        std::process::abort();
                    }
                    // A crash from the relay's 250 to the commit below sends this mail again after restart; the
                    // random-SIGKILL test reads "to the relay", "relay accepted" and "sent" to count such kills.
                    info!(id = row.id, "relay accepted");
                    let id = row.id;
                    self.write(move |tx| tx.mark_sent(id, now)).await?;
                    info!(id = row.id, message_id = %row.message_id, "sent");
                }
                Err(e) if e.transient => {
                    let delay = self.backoff(&row);
                    let (id, message) = (row.id, e.message.clone());
                    self.write(move |tx| tx.mark_retry(id, now + delay.as_secs() as i64, &message)).await?;
                    warn!(id = row.id, error = %e.message, retry_in_s = delay.as_secs(), "send failed; will retry");
                    // The relay is likely down for all rows: stop this pass, the backoff decides when to look again.
                    return Ok(false);
                }
                Err(e) => {
                    let (id, message) = (row.id, e.message.clone());
                    self.write(move |tx| tx.mark_failed(id, &message)).await?;
                    warn!(id = row.id, error = %e.message, "relay refused the mail permanently; marked failed");
                }
            }
        }
        Ok(full)
    }

    fn backoff(&self, row: &Due) -> Duration {
        let exp = self.retry_base.saturating_mul(1u32 << row.attempts.clamp(0, 20) as u32).min(self.retry_max);
        exp.mul_f64(rand::rng().random_range(0.5..=1.0))
    }

    async fn until_next_due(&self) -> Duration {
        match self.db(|s| s.next_outbox_due()).await {
            Ok(Some(at)) => {
                let secs = (at - chrono::Utc::now().timestamp()).max(0) as u64;
                Duration::from_secs(secs).min(IDLE_WAIT).max(Duration::from_millis(200))
            }
            _ => IDLE_WAIT,
        }
    }

    async fn db<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Store) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, StoreError> {
        let store = self.store.clone();
        tokio::task::spawn_blocking(move || f(&store.lock().unwrap_or_else(|e| e.into_inner())))
            .await
            .map_err(|e| StoreError::Invalid(format!("outbox task: {e}")))?
    }

    async fn write(
        &self,
        f: impl FnOnce(&crate::store::Tx<'_>) -> Result<(), StoreError> + Send + 'static,
    ) -> Result<(), StoreError> {
        let store = self.store.clone();
        tokio::task::spawn_blocking(move || {
            let mut store = store.lock().unwrap_or_else(|e| e.into_inner());
            let tx = store.begin()?;
            f(&tx)?;
            tx.commit()
        })
        .await
        .map_err(|e| StoreError::Invalid(format!("outbox task: {e}")))?
    }
}
