//! Time, passed in. Everything that reads the time or waits takes a [`Clock`]: the machine's
//! ([`Clock::system`]) in the server, a manual one ([`Clock::manual`]) in tests, which stands
//! still until the test advances it, so retry schedules, leases, webhook backoff and delayed
//! statuses are checked step by step instead of slept through.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;

#[derive(Debug, Clone)]
pub struct Clock {
    manual: Option<Arc<watch::Sender<i64>>>,
}

/// A wait that ran out ([`Clock::timeout`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Elapsed;

impl Clock {
    /// The machine's wall clock, and tokio's timers for waiting.
    pub fn system() -> Self {
        Self { manual: None }
    }

    /// A clock that reads `start_ms` until [`Clock::advance`] moves it; waits end when it has
    /// been moved far enough.
    pub fn manual(start_ms: i64) -> Self {
        Self { manual: Some(Arc::new(watch::Sender::new(start_ms))) }
    }

    /// Moves a manual clock forward, ending the waits that fall due. (A system clock cannot be
    /// moved: nothing happens.)
    pub fn advance(&self, by: Duration) {
        if let Some(manual) = &self.manual {
            manual.send_modify(|now| *now += millis(by));
        }
    }

    /// Now.
    pub fn now(&self) -> crate::UnixMs {
        crate::UnixMs(self.now_ms())
    }

    /// Milliseconds since the Unix epoch.
    pub fn now_ms(&self) -> i64 {
        match &self.manual {
            Some(manual) => *manual.borrow(),
            None => std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX)),
        }
    }

    /// The time of a manual clock; `None` for the machine's. Where replicas must agree on the
    /// time (leases, heartbeats) the store reads its own clock instead of the machine's, but a
    /// test driving time must drive those too.
    pub fn driven(&self) -> Option<crate::UnixMs> {
        self.manual.as_ref().map(|manual| crate::UnixMs(*manual.borrow()))
    }

    /// Seconds since the Unix epoch.
    pub fn now_secs(&self) -> i64 {
        self.now_ms().div_euclid(1000)
    }

    pub async fn sleep(&self, duration: Duration) {
        self.sleep_until_ms(self.now_ms().saturating_add(millis(duration))).await;
    }

    /// Waits until the clock reads `at_ms` (at once if it already does).
    pub async fn sleep_until_ms(&self, at_ms: i64) {
        match &self.manual {
            None => {
                let left = at_ms.saturating_sub(self.now_ms());
                if left > 0 {
                    tokio::time::sleep(Duration::from_millis(left.unsigned_abs())).await;
                }
            }
            Some(manual) => {
                let mut now = manual.subscribe();
                while *now.borrow_and_update() < at_ms {
                    if now.changed().await.is_err() {
                        return std::future::pending().await;
                    }
                }
            }
        }
    }

    /// `future`'s output, unless `duration` passes first.
    pub async fn timeout<F: Future>(
        &self,
        duration: Duration,
        future: F,
    ) -> Result<F::Output, Elapsed> {
        tokio::select! {
            output = future => Ok(output),
            () = self.sleep(duration) => Err(Elapsed),
        }
    }
}

impl Default for Clock {
    fn default() -> Self {
        Self::system()
    }
}

/// `duration` in whole milliseconds, as the clock counts (saturating).
pub fn millis(duration: Duration) -> i64 {
    i64::try_from(duration.as_millis()).unwrap_or(i64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_manual_clock_moves_only_when_advanced() {
        let clock = Clock::manual(5_000);
        let waiting = tokio::spawn({
            let clock = clock.clone();
            async move {
                clock.sleep(Duration::from_secs(90)).await;
                clock.now_ms()
            }
        });
        tokio::task::yield_now().await;
        clock.advance(Duration::from_secs(89));
        assert!(!waiting.is_finished());
        assert_eq!(clock.now_secs(), 94);
        clock.advance(Duration::from_secs(1));
        assert_eq!(waiting.await.unwrap(), 95_000);
        // A wait for a time already past ends at once; a timeout runs on the same clock.
        clock.sleep_until_ms(1_000).await;
        let pending = std::future::pending::<()>();
        let timed = tokio::spawn({
            let clock = clock.clone();
            async move { clock.timeout(Duration::from_secs(5), pending).await }
        });
        tokio::task::yield_now().await;
        clock.advance(Duration::from_secs(5));
        assert_eq!(timed.await.unwrap(), Err(Elapsed));
    }
}
