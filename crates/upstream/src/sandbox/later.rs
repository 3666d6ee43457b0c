//! Statuses that come later: `delivered` some time after the acknowledgement, `read` some time
//! after that. Scheduled with the time they fall due and emitted then, on the clock, in due
//! order (ties in scheduling order).

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};

use std::sync::Arc;

use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::{Clock, StatusEvent, StatusReports};

/// Where statuses are scheduled.
#[derive(Debug, Clone)]
pub(super) struct Later {
    tx: mpsc::UnboundedSender<(i64, StatusEvent)>,
}

impl Later {
    /// Starts reporting scheduled statuses to `statuses` when they fall due, until `stop`.
    pub fn start(
        statuses: Arc<dyn StatusReports>,
        clock: Clock,
        stop: CancellationToken,
    ) -> (Self, JoinHandle<()>) {
        let (tx, scheduled) = mpsc::unbounded_channel();
        (Self { tx }, tokio::spawn(run(scheduled, statuses, clock, stop)))
    }

    /// Emits `event` when the clock reads `due_ms`.
    pub fn schedule(&self, due_ms: i64, event: StatusEvent) {
        let _ = self.tx.send((due_ms, event));
    }
}

async fn run(
    mut scheduled: mpsc::UnboundedReceiver<(i64, StatusEvent)>,
    statuses: Arc<dyn StatusReports>,
    clock: Clock,
    stop: CancellationToken,
) {
    let mut due: BinaryHeap<Reverse<(i64, u64)>> = BinaryHeap::new();
    let mut waiting: HashMap<u64, StatusEvent> = HashMap::new();
    let mut counter = 0u64;
    loop {
        let next_due = due.peek().map(|Reverse((at, _))| *at);
        tokio::select! {
            item = scheduled.recv() => match item {
                Some((at, event)) => {
                    counter += 1;
                    due.push(Reverse((at, counter)));
                    waiting.insert(counter, event);
                }
                None if due.is_empty() => return,
                None => {}
            },
            () = clock.sleep_until_ms(next_due.unwrap_or(i64::MAX)), if next_due.is_some() => {
                let now = clock.now_ms();
                while let Some(&Reverse((at, key))) = due.peek() {
                    if at > now {
                        break;
                    }
                    due.pop();
                    let Some(event) = waiting.remove(&key) else { continue };
                    if !statuses.report(event).await {
                        return;
                    }
                }
            }
            () = stop.cancelled() => return,
        }
    }
}
