//! Accepting messages: group commit. Concurrent requests wait in a bounded queue; committer
//! tasks take everything waiting (up to `max_batch`) and commit it in one transaction, then
//! answer each request. An id is only handed out after its commit (promise 1). A full queue, or
//! a store backlog past its bounds, is answered at once with 1016 (promise 4). Each committed
//! batch is also announced to this replica's shard workers, which take their share of it
//! without reading it back from the store. A message sent with a login token is stored only if
//! the token still holds as the batch is stored (`NewMessage::credential`); otherwise its
//! request learns it was refused, and the rest of the batch is stored all the same.

use std::collections::HashSet;
use std::sync::Arc;

use premise_store::{Enqueued, Health, NewMessage, Outage, Store};
use tokio::sync::{Mutex, broadcast, mpsc, oneshot};
use tokio::task::JoinHandle;

use crate::{Backlog, EngineConfig, Metrics};

#[derive(Debug, thiserror::Error)]
pub enum EnqueueError {
    /// Premise cannot take more right now; nothing was stored.
    #[error("system overloaded: {0}")]
    Overloaded(&'static str),
    /// The database cannot take writes now (disk full, unreachable, ...); nothing was stored.
    #[error("the database is unavailable: {}", .0.describe())]
    Unavailable(Outage),
    /// The message's credential no longer held when it was to be stored (its token revoked
    /// or its account deleted); it was not stored.
    #[error("the token the message was sent with is no longer valid")]
    Refused,
    /// The commit failed for another reason; nothing was stored.
    #[error("could not store the message")]
    Failed(#[source] anyhow::Error),
}

/// Why a commit failed, as each of its waiters learns it.
#[derive(Debug, Clone)]
enum CommitFailure {
    Refused,
    Unavailable(Outage),
    Other(String),
}

type Waiting = (NewMessage, oneshot::Sender<Result<(), CommitFailure>>);

#[derive(Debug, Clone)]
pub struct Enqueuer {
    tx: mpsc::Sender<Waiting>,
    backlog: Backlog,
    config: Arc<EngineConfig>,
    health: Health,
}

impl Enqueuer {
    pub(crate) fn start(
        store: &Arc<dyn Store>,
        config: Arc<EngineConfig>,
        backlog: Backlog,
        committed: &broadcast::Sender<Arc<Enqueued>>,
        metrics: &Arc<Metrics>,
    ) -> (Self, Vec<JoinHandle<()>>) {
        let (tx, rx) = mpsc::channel(config.accept_queue.max(1));
        let rx = Arc::new(Mutex::new(rx));
        // Committers stop when every `Enqueuer` is gone and the queue is empty, so requests
        // still in flight at shutdown get their answer.
        let committers = (0..config.committers.max(1))
            .map(|_| {
                tokio::spawn(commit_loop(
                    rx.clone(),
                    store.clone(),
                    backlog.clone(),
                    committed.clone(),
                    metrics.clone(),
                    config.max_batch.max(1),
                ))
            })
            .collect();
        (Self { tx, backlog, config, health: store.health().clone() }, committers)
    }

    /// Stores the message durably; returns once it is committed.
    pub async fn submit(&self, message: NewMessage) -> Result<(), EnqueueError> {
        // While the database is known to be down, answer at once rather than queue for a
        // commit that cannot succeed; the health prober notices when it comes back.
        if let Some(down) = self.health.down() {
            return Err(EnqueueError::Unavailable(down.outage));
        }
        if self.backlog.callbacks() >= self.config.max_callback_backlog {
            return Err(EnqueueError::Overloaded(
                "too many status callbacks are waiting for the webhook receiver",
            ));
        }
        if self.backlog.queued() >= self.config.max_queued {
            return Err(EnqueueError::Overloaded("too many messages are queued"));
        }
        let (done, answer) = oneshot::channel();
        self.tx
            .try_send((message, done))
            .map_err(|_| EnqueueError::Overloaded("too many requests are waiting to be stored"))?;
        // The commit itself is never abandoned (a statement dropped half-way leaves its
        // connection stuck on the server, and the pool opens another); only the wait for it is.
        let Ok(answer) = tokio::time::timeout(self.config.commit_timeout, answer).await else {
            tracing::error!(
                timeout = ?self.config.commit_timeout,
                "a group commit was not confirmed in time; the database counts as stalled"
            );
            self.health.failed(Outage::Stalled);
            return Err(EnqueueError::Unavailable(Outage::Stalled));
        };
        match answer {
            Ok(Ok(())) => Ok(()),
            Ok(Err(CommitFailure::Refused)) => Err(EnqueueError::Refused),
            Ok(Err(CommitFailure::Unavailable(outage))) => Err(EnqueueError::Unavailable(outage)),
            Ok(Err(CommitFailure::Other(e))) => Err(EnqueueError::Failed(anyhow::anyhow!(e))),
            Err(_) => Err(EnqueueError::Failed(anyhow::anyhow!("the committer stopped"))),
        }
    }
}

async fn commit_loop(
    rx: Arc<Mutex<mpsc::Receiver<Waiting>>>,
    store: Arc<dyn Store>,
    backlog: Backlog,
    committed: broadcast::Sender<Arc<Enqueued>>,
    metrics: Arc<Metrics>,
    max_batch: usize,
) {
    loop {
        let batch = {
            let mut rx = rx.lock().await;
            let Some(first) = rx.recv().await else { return };
            let mut batch = vec![first];
            while batch.len() < max_batch {
                match rx.try_recv() {
                    Ok(more) => batch.push(more),
                    Err(_) => break,
                }
            }
            batch
        };
        let (messages, waiters): (Vec<NewMessage>, Vec<_>) = batch.into_iter().unzip();
        let result = store.enqueue(&messages).await;
        store.health().record(&result);
        let answer = match result {
            Ok(mut batch) => {
                let refused: HashSet<String> =
                    std::mem::take(&mut batch.refused).into_iter().collect();
                let stored = batch.messages.len() as u64;
                backlog.add_queued(stored);
                Metrics::add(&metrics.accepted, stored);
                // No worker listening (none started yet, or all stopping) is fine: they read
                // the store when they start.
                let _ = committed.send(Arc::new(batch));
                Ok(refused)
            }
            Err(e) => {
                tracing::error!(
                    error = crate::chain(&e),
                    batch = messages.len(),
                    "group commit failed; nothing of the batch is acknowledged"
                );
                Err(match e.outage() {
                    Some(outage) => CommitFailure::Unavailable(outage),
                    None => CommitFailure::Other(e.to_string()),
                })
            }
        };
        for (message, waiter) in messages.iter().zip(waiters) {
            let answer = match &answer {
                Ok(refused) if refused.contains(&message.id) => Err(CommitFailure::Refused),
                Ok(_) => Ok(()),
                Err(failure) => Err(failure.clone()),
            };
            let _ = waiter.send(answer);
        }
    }
}
