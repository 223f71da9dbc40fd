//! Drains the outbox through the SMTP relay. A row is marked sent only after the relay's 250, so a crash between the
//! two sends that mail again after restart, with the same bytes and Message-ID: at most one duplicate, never a loss.
//!
//! The relay as a whole has a state. When it cannot be reached, the sender stops trying rows and probes the relay
//! instead (cheap: no mail is sent), with its own short, capped backoff. The moment a probe or a send gets through,
//! every row that waits only because of the relay is due again: after an outage of any length the outbox drains
//! within one probe interval of the relay coming back, instead of each row waiting out its own backoff.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use rand::Rng;
use tokio::sync::{Notify, watch};
use tracing::{debug, info, warn};

use super::smtp::{Relay, SendError};
use crate::config::SmtpConfig;
use crate::health::Health;
use crate::metrics::Metrics;
use crate::store::{Due, Store, StoreError, WaitReason};

/// Rows taken per pass: small, so a relay outage is noticed after a few attempts, not hundreds.
const PASS: u32 = 20;
/// Longest sleep between passes when nothing is due: new rows also wake the sender directly.
const IDLE_WAIT: Duration = Duration::from_secs(30);

/// Wait after a database error before the next pass.
const DB_RETRY: Duration = Duration::from_secs(5);

/// Set `POSTDESK_FAILPOINT=after-smtp-250` to abort right after the relay accepted a mail and before the outbox row
/// is updated: the crash window the exactly-once test exercises.
const FAILPOINT_ENV: &str = "POSTDESK_FAILPOINT";

pub struct Sender {
    pub store: Arc<Mutex<Store>>,
    pub relay: Relay,
    pub retry_base: Duration,
    pub retry_max: Duration,
    pub probe_max: Duration,
    pub wake: Arc<Notify>,
    pub health: Arc<Health>,
    pub metrics: Arc<Metrics>,
}

/// What the last pass learnt about the relay.
enum Pass {
    /// A full pass: there may be more due right away.
    More,
    /// Nothing more due now.
    Done,
    /// The relay could not be reached: probe until it answers.
    RelayDown,
}

impl Sender {
    pub fn new(
        store: Arc<Mutex<Store>>,
        relay: Relay,
        cfg: &SmtpConfig,
        wake: Arc<Notify>,
        health: Arc<Health>,
        metrics: Arc<Metrics>,
    ) -> Sender {
        Sender {
            store,
            relay,
            retry_base: Duration::from_secs(cfg.retry_base_seconds.max(1)),
            retry_max: Duration::from_secs(cfg.retry_max_seconds.max(1)),
            probe_max: Duration::from_secs(cfg.relay_probe_max_seconds.max(1)),
            wake,
            health,
            metrics,
        }
    }

    pub async fn run(self, mut stop: watch::Receiver<bool>) {
        let failpoint = std::env::var(FAILPOINT_ENV).is_ok_and(|v| v == "after-smtp-250");
        // Rows may wait for the relay from before a restart: one probe at start tells whether to send them now.
        let mut probing = true;
        let mut probes = 0u32;
        while !*stop.borrow() {
            if probing {
                match self.probe().await {
                    // The probe backoff is kept until a pass goes through: a relay that greets but fails every
                    // send (a 421 after MAIL FROM, say) is not hammered every second.
                    Ok(()) => {
                        probing = false;
                        continue;
                    }
                    // Said once when the relay goes down (by `probe` or `pass`); each further probe only at debug.
                    Err(e) => debug!(relay = %self.relay.address(), error = %e, "relay still unreachable"),
                }
                let wait = Duration::from_secs(1u64 << probes.min(16)).min(self.probe_max);
                probes += 1;
                tokio::select! {
                    _ = tokio::time::sleep(wait) => {}
                    _ = stop.changed() => {}
                }
                continue;
            }
            let result = self.pass(failpoint).await;
            if matches!(result, Ok(Pass::More | Pass::Done)) {
                probes = 0;
            }
            let wait = match result {
                Ok(Pass::More) => Duration::ZERO,
                Ok(Pass::Done) => self.until_next_due().await,
                Ok(Pass::RelayDown) => {
                    probing = true;
                    Duration::from_secs(1)
                }
                Err(e) => {
                    // Shown by `status` and counted; a row sent but not yet marked is sent again at most once.
                    self.health.database_failed(&e, DB_RETRY.as_secs(), chrono::Utc::now().timestamp());
                    self.metrics.database_error(&e);
                    warn!(error = %e, "outbox: database error; retrying");
                    DB_RETRY
                }
            };
            if wait.is_zero() {
                continue;
            }
            tokio::select! {
                _ = tokio::time::sleep(wait) => {}
                _ = self.wake.notified(), if !probing => {}
                _ = stop.changed() => {}
            }
        }
    }

    /// Asks the relay whether it answers; if so, everything waiting for it is due now.
    async fn probe(&self) -> Result<(), SendError> {
        let result = self.relay.probe().await;
        let now = chrono::Utc::now().timestamp();
        match &result {
            Ok(()) => self.relay_answers(now).await,
            Err(e) => {
                self.metrics.relay_error("probe");
                if self.health.relay_down(&e.message, now) {
                    warn!(relay = %self.relay.address(), error = %e, "relay unreachable; probing it until it answers");
                }
            }
        }
        result
    }

    /// The relay took a connection: every row waiting only for it is due now.
    async fn relay_answers(&self, now: i64) {
        let was_down = self.health.relay_up(now);
        match self.write(move |tx| tx.release_relay_waits(now)).await {
            Ok(0) => {}
            Ok(n) => info!(relay = %self.relay.address(), mails = n, "relay answers again; sending what waited for it"),
            Err(e) => warn!(error = %e, "outbox: cannot release the mail waiting for the relay; it keeps its backoff"),
        }
        if was_down {
            info!(relay = %self.relay.address(), "relay is up");
        }
    }

    /// Sends what is due.
    async fn pass(&self, failpoint: bool) -> Result<Pass, StoreError> {
        let now = chrono::Utc::now().timestamp();
        let due = self.db(move |s| s.due_outbox(now, PASS)).await?;
        let full = due.len() as u32 == PASS;
        for row in due {
            info!(id = row.id, "to the relay");
            let result = self.relay.send(&row.envelope_from, &row.recipients, &row.raw).await;
            let now = chrono::Utc::now().timestamp();
            match result {
                Ok(answer) => {
                    if failpoint {
                        std::process::abort();
                    }
                    // A crash from the relay's 250 to the commit below sends this mail again after restart; the
                    // random-SIGKILL test reads "to the relay", "relay accepted" and "sent" to count such kills.
                    info!(id = row.id, "relay accepted");
                    let id = row.id;
                    self.write(move |tx| tx.mark_sent(id, now)).await?;
                    self.metrics.outbox_sent();
                    // One line per sent mail, with the relay's answer (its queue id) to follow it in the relay's log.
                    info!(
                        outbox = row.id,
                        message_id = %row.message_id,
                        recipients = row.recipients.len(),
                        relay = %answer,
                        "sent"
                    );
                    if !self.health.relay_is_up() {
                        self.relay_answers(now).await;
                    }
                }
                Err(e) if e.transient => {
                    let reason = if e.relay_down { WaitReason::Relay } else { WaitReason::Recipient };
                    let delay = self.backoff(&row);
                    let (id, message) = (row.id, e.message.clone());
                    let at = now + delay.as_secs() as i64;
                    self.write(move |tx| tx.mark_wait(id, at, &message, reason)).await?;
                    warn!(id = row.id, error = %e.message, retry_in_s = delay.as_secs(), "send failed; will retry");
                    if e.relay_down {
                        self.metrics.relay_error("send");
                        if self.health.relay_down(&e.message, now) {
                            warn!(relay = %self.relay.address(), "relay is down; probing it until it answers");
                        }
                        return Ok(Pass::RelayDown);
                    }
                    self.metrics.relay_error("deferred");
                    self.health.relay_refused(&e.message, now);
                }
                Err(e) => {
                    let (id, message) = (row.id, e.message.clone());
                    self.write(move |tx| tx.mark_failed(id, &message)).await?;
                    self.metrics.relay_error("refused");
                    self.metrics.outbox_failed();
                    self.health.relay_refused(&e.message, now);
                    warn!(id = row.id, error = %e.message, "relay refused the mail permanently; marked failed");
                }
            }
        }
        Ok(if full { Pass::More } else { Pass::Done })
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

    async fn write<T: Send + 'static>(
        &self,
        f: impl FnOnce(&crate::store::Tx<'_>) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, StoreError> {
        let store = self.store.clone();
        let result = tokio::task::spawn_blocking(move || {
            let mut store = store.lock().unwrap_or_else(|e| e.into_inner());
            let tx = store.begin()?;
            let value = f(&tx)?;
            tx.commit()?;
            Ok(value)
        })
        .await
        .map_err(|e| StoreError::Invalid(format!("outbox task: {e}")))?;
        if result.is_ok() {
            // A committed write is proof the database works again.
            self.health.database_ok();
        }
        result
    }
}
