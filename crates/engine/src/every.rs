//! Work repeated on the clock until cancelled: the tasks that keep a cached figure fresh.

use std::time::Duration;

use premise_base::Clock;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// Runs `tick` now and then every `period` of `clock` until `cancel`.
pub(crate) fn every<F, Fut>(
    clock: Clock,
    period: Duration,
    cancel: CancellationToken,
    mut tick: F,
) -> JoinHandle<()>
where
    F: FnMut() -> Fut + Send + 'static,
    Fut: Future<Output = ()> + Send,
{
    tokio::spawn(async move {
        loop {
            tick().await;
            tokio::select! {
                () = cancel.cancelled() => return,
                () = clock.sleep(period) => {}
            }
        }
    })
}
