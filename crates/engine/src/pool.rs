//! The shard pool: which shards this replica drains. Each shard has one owner across all
//! replicas, by a lease in the store with an expiry and a fencing epoch. Every `lease_renew`
//! the pool heartbeats, renews what it holds, hands back what is over its fair share of the
//! live replicas, takes free or expired shards up to it, and stops workers
//! of an old shard-count generation so the new generation starts only once they are gone.

use std::collections::HashMap;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, RwLock};

use premise_base::{Clock, millis};
use premise_store::{Account, Enqueued, Lease, Node, Store};
use premise_upstream::{Fence, Upstream};
use tokio::sync::{Notify, broadcast};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::dispatcher::ShardSet;
use crate::sender::{QueueWatch, ShardSender};
use crate::{EngineConfig, Metrics, Recorder};

/// The replicas alive as this one last saw them, and the shards it holds.
#[derive(Debug, Clone, Default)]
pub struct NodeView {
    me: String,
    state: Arc<RwLock<(Vec<String>, Vec<u32>)>>,
    /// The figures each live replica published with its last heartbeat.
    stats: Arc<RwLock<Vec<Published>>>,
    /// How far this replica's clock is ahead of the database's (ms; behind if negative), as
    /// last measured.
    clock_offset_ms: Arc<AtomicI64>,
}

/// A replica's clock this far from the database's is reported (`/v1/health`, the log).
pub const CLOCK_OFFSET_WARNING_MS: i64 = 2_000;

/// A replica and the figures (JSON) it published with its last heartbeat.
type Published = (String, Option<String>);

impl NodeView {
    pub fn me(&self) -> &str {
        &self.me
    }

    /// Live replicas (this one included), sorted.
    pub fn nodes(&self) -> Vec<String> {
        self.state.read().expect("node view lock").0.clone()
    }

    /// Shards this replica holds now.
    pub fn shards(&self) -> Vec<u32> {
        self.state.read().expect("node view lock").1.clone()
    }

    /// How far this replica's clock is ahead of the database's, in ms (negative: behind).
    pub fn clock_offset_ms(&self) -> i64 {
        self.clock_offset_ms.load(Ordering::Relaxed)
    }

    /// Each live replica's published figures, as of the last heartbeat: (node, figures);
    /// `None` for a replica that published none (an older version).
    pub fn stats(&self) -> Vec<(String, Option<crate::metrics::NodeStats>)> {
        let stats = self.stats.read().expect("node view lock");
        stats
            .iter()
            .map(|(node, json)| {
                (node.clone(), json.as_deref().and_then(|j| serde_json::from_str(j).ok()))
            })
            .collect()
    }
}

pub(crate) struct ShardPool {
    pub store: Arc<dyn Store>,
    pub config: Arc<EngineConfig>,
    pub upstream: Arc<dyn Upstream>,
    pub recorder: Recorder,
    pub committed: broadcast::Sender<Arc<Enqueued>>,
    pub callbacks_ready: Arc<Notify>,
    pub metrics: Arc<Metrics>,
    pub clock: Clock,
    /// The shards whose callbacks the engine's dispatcher delivers: a worker registers its
    /// shard there while it holds it.
    pub shards: ShardSet,
}

struct Held {
    lease: Lease,
    valid_until: Arc<AtomicI64>,
    /// The shard's floor as its worker last saw it, recorded with each renewal.
    floor: Arc<AtomicI64>,
    stop: CancellationToken,
    task: JoinHandle<()>,
}

impl ShardPool {
    pub fn start(self, cancel: CancellationToken) -> (NodeView, JoinHandle<()>) {
        let view = NodeView { me: self.config.node.clone(), ..NodeView::default() };
        let task = tokio::spawn(self.run(cancel, view.clone()));
        (view, task)
    }

    async fn run(self, cancel: CancellationToken, view: NodeView) {
        let shared = Shared { shards: self.shards.clone(), watch: Arc::default() };
        let stop_watch = CancellationToken::new();
        let watch = shared.watch.spawn(
            self.store.clone(),
            self.clock.clone(),
            self.config.poll_interval / 2,
            stop_watch.clone(),
        );
        let mut held: HashMap<u32, Held> = HashMap::new();
        while !cancel.is_cancelled() {
            let started_ms = self.clock.now_ms();
            if let Err(e) = self.tick(&mut held, &view, &shared).await {
                tracing::warn!(
                    error = format!("{e:#}"),
                    "shard pool: store unreachable; keeping what is held until its lease runs out"
                );
                self.expire_unrenewed(&mut held);
            }
            tokio::select! {
                () = self.clock.sleep_until_ms(started_ms + millis(self.config.lease_renew)) => {}
                () = cancel.cancelled() => {}
            }
        }
        self.stop_all(held).await;
        stop_watch.cancel();
        let _ = watch.await;
    }

    /// One round of the pool: heartbeat, renew what is held, settle on a fair share of the
    /// shards (hand back what is over it, take free ones up to it), publish what is held.
    async fn tick(
        &self,
        held: &mut HashMap<u32, Held>,
        view: &NodeView,
        shared: &Shared,
    ) -> anyhow::Result<()> {
        let nodes = self.heartbeat(held).await?;
        self.measure_clock(view).await?;
        let account = self.store.account().await?;
        self.renew_held(held, account.generation).await?;
        let share = FairShare::of(&nodes, &self.config.node, account.shards);
        hand_back_extra(held, share.target);
        self.take_free(held, &share, account, shared).await?;
        publish(view, nodes, held);
        Ok(())
    }

    /// Records that this replica is alive, with its figures and the shards it holds; the
    /// replicas alive.
    async fn heartbeat(&self, held: &HashMap<u32, Held>) -> anyhow::Result<Vec<Node>> {
        let mut stats = self.metrics.node_stats();
        stats.shards = held.keys().copied().collect();
        stats.shards.sort_unstable();
        let stats = serde_json::to_string(&stats)?;
        let started = std::time::Instant::now();
        let nodes = self
            .store
            .heartbeat(&self.config.node, self.clock.driven(), self.config.lease_ttl, &stats)
            .await
            .inspect_err(|e| self.store.health().record_failure(e))?;
        let round_trip = u64::try_from(started.elapsed().as_micros()).unwrap_or(u64::MAX);
        self.metrics.db_heartbeat_us.store(round_trip, Ordering::Relaxed);
        Ok(nodes)
    }

    /// Renews what is held; reaps finished workers (handing their shards back); stops at once
    /// the worker of a lease that was lost, and asks those of an old generation to hand back.
    async fn renew_held(
        &self,
        held: &mut HashMap<u32, Held>,
        generation: i64,
    ) -> anyhow::Result<()> {
        let (at, ttl) = (self.clock.driven(), self.config.lease_ttl);
        let mut lost = Vec::new();
        for (shard, h) in held.iter() {
            if h.task.is_finished() {
                self.store.release_lease(&h.lease, &self.config.node, h.floor()).await?;
                lost.push(*shard);
            } else if let asked = self.clock.now_ms()
                && self.store.renew_lease(&h.lease, &self.config.node, at, ttl, h.floor()).await?
            {
                h.valid_until.store(valid_until(asked, ttl), Ordering::Relaxed);
                if h.lease.generation != generation && !h.stop.is_cancelled() {
                    tracing::info!(shard, "the shard count changed: handing the shard back");
                    h.stop.cancel();
                }
            } else {
                tracing::warn!(shard, "shard lease lost; stopping its worker at once");
                h.stop.cancel();
                h.task.abort();
                lost.push(*shard);
            }
        }
        for shard in lost {
            held.remove(&shard);
        }
        Ok(())
    }

    /// Takes free or expired shards up to the fair share, starting at this replica's own
    /// place among them (so replicas do not all race for shard 0).
    async fn take_free(
        &self,
        held: &mut HashMap<u32, Held>,
        share: &FairShare,
        account: Account,
        shared: &Shared,
    ) -> anyhow::Result<()> {
        let (at, ttl) = (self.clock.driven(), self.config.lease_ttl);
        for shard in share.order(account.shards) {
            if held.values().filter(|h| !h.stop.is_cancelled()).count() >= share.target {
                break;
            }
            if held.contains_key(&shard) {
                continue;
            }
            let asked = self.clock.now_ms();
            if let Some(lease) = self
                .store
                .acquire_lease(shard, &self.config.node, account.generation, at, ttl)
                .await?
            {
                tracing::info!(shard, epoch = lease.epoch, "took a shard");
                let worker =
                    self.spawn_worker(lease, account.shards, valid_until(asked, ttl), shared);
                held.insert(shard, worker);
            }
        }
        Ok(())
    }

    /// How far this replica's clock is from the database's: kept for `/v1/health`, and
    /// logged when it passes [`CLOCK_OFFSET_WARNING_MS`] (leases do not depend on it, but
    /// retry schedules, the sandbox's window and retention follow this replica's clock).
    async fn measure_clock(&self, view: &NodeView) -> anyhow::Result<()> {
        if self.clock.driven().is_some() {
            return Ok(());
        }
        let before = self.clock.now_ms();
        let database = self.store.database_time().await?.ms();
        let after = self.clock.now_ms();
        let offset = (before + after) / 2 - database;
        let previous = view.clock_offset_ms.swap(offset, Ordering::Relaxed);
        if offset.abs() > CLOCK_OFFSET_WARNING_MS && previous.abs() <= CLOCK_OFFSET_WARNING_MS {
            tracing::warn!(
                offset_ms = offset,
                "this replica's clock differs from the database's by more than {} s: leases \
                 follow the database's clock, but retry schedules, the sandbox's window and \
                 retention follow this one; synchronise it (NTP)",
                CLOCK_OFFSET_WARNING_MS / 1000
            );
        }
        Ok(())
    }

    /// Without the store a lease cannot be renewed: stop workers whose lease has run out.
    fn expire_unrenewed(&self, held: &mut HashMap<u32, Held>) {
        let now = self.clock.now_ms();
        held.retain(|shard, h| {
            let valid = h.valid_until.load(Ordering::Relaxed) > now;
            if !valid {
                tracing::warn!(shard, "lease ran out while the store was unreachable");
                h.stop.cancel();
            }
            valid
        });
    }

    fn spawn_worker(&self, lease: Lease, shards: u32, valid_until: i64, shared: &Shared) -> Held {
        let valid_until = Arc::new(AtomicI64::new(valid_until));
        let floor = Arc::new(AtomicI64::new(0));
        let stop = CancellationToken::new();
        let sender = ShardSender {
            shard: lease.shard,
            shards,
            generation: lease.generation,
            store: self.store.clone(),
            upstream: self.upstream.clone(),
            recorder: self.recorder.clone(),
            config: self.config.clone(),
            valid_until: valid_until.clone(),
            committed: Some(self.committed.subscribe()),
            metrics: self.metrics.clone(),
            clock: self.clock.clone(),
            watch: shared.watch.clone(),
            floor: floor.clone(),
        };
        // The sender records each outcome before finishing it, and the shard leaves the
        // dispatcher only once no callback of it is in flight: when both are done everything
        // this worker learnt is in the store and the shard can be handed on.
        let task = tokio::spawn({
            let (stop, shards, ready) =
                (stop.clone(), shared.shards.clone(), self.callbacks_ready.clone());
            let shard = lease.shard;
            let fence = Fence::new(valid_until.clone(), self.clock.clone());
            async move {
                tokio::join!(sender.run(stop.clone()), shards.serve(shard, fence, stop, &ready));
            }
        });
        Held { lease, valid_until, floor, stop, task }
    }

    /// Shutdown: stop every worker, keep their leases alive while they finish what is in
    /// flight, then release the leases so other replicas take the shards at once.
    async fn stop_all(&self, mut held: HashMap<u32, Held>) {
        for h in held.values() {
            h.stop.cancel();
        }
        let ttl = self.config.lease_ttl;
        let leases: Vec<(Lease, Arc<AtomicI64>, Arc<AtomicI64>)> =
            held.values().map(|h| (h.lease, h.floor.clone(), h.valid_until.clone())).collect();
        for h in held.values_mut() {
            loop {
                tokio::select! {
                    _ = &mut h.task => break,
                    () = self.clock.sleep(self.config.lease_renew / 2) => {
                        for (lease, floor, until) in &leases {
                            let (at, floor) = (self.clock.driven(), floor.load(Ordering::Relaxed));
                            let asked = self.clock.now_ms();
                            if let Ok(true) = self.store.renew_lease(lease, &self.config.node, at, ttl, floor).await {
                                until.store(valid_until(asked, ttl), Ordering::Relaxed);
                            }
                        }
                    }
                }
            }
        }
        for (shard, h) in held.drain() {
            match self.store.release_lease(&h.lease, &self.config.node, h.floor()).await {
                Ok(()) => tracing::info!(shard, "released the shard"),
                Err(e) => {
                    tracing::warn!(shard, error = %e, "could not release the shard; it frees itself when the lease expires");
                }
            }
        }
        if let Err(e) = self.store.leave(&self.config.node).await {
            tracing::warn!(error = %e, "could not leave the replica list; the others notice once its heartbeat ages");
        }
    }
}

/// Until when a replica counts a lease it asked for at `asked_ms` as held: a fifth of its time
/// short of its end. The database started the lease's time after the replica asked, so the
/// replica always thinks it ends sooner than it does.
fn valid_until(asked_ms: i64, ttl: std::time::Duration) -> i64 {
    let ttl_ms = millis(ttl);
    asked_ms + ttl_ms - ttl_ms / 5
}

/// This replica's fair share of the shards: `shards / live`, one more for the first
/// `shards % live` replicas by name. Every replica computes the same targets from the same
/// list, and they add up to the shard count, so shards settle without bouncing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct FairShare {
    /// How many shards this replica should hold.
    target: usize,
    /// Its place among the live replicas, by name.
    me: u32,
    live: u32,
}

impl FairShare {
    fn of(nodes: &[Node], node: &str, shards: u32) -> Self {
        let live = nodes.len().max(1) as u32;
        let me = nodes.iter().position(|n| n.node == node).unwrap_or(0) as u32;
        let target = (shards / live + u32::from(me < shards % live)) as usize;
        Self { target, me, live }
    }

    /// The shards in the order this replica tries to take them.
    fn order(&self, shards: u32) -> impl Iterator<Item = u32> + use<> {
        let start = self.me * (shards / self.live).max(1);
        (0..shards).map(move |i| (start + i) % shards)
    }
}

/// Asks the workers of shards over `target` (the highest first) to hand them back.
fn hand_back_extra(held: &HashMap<u32, Held>, target: usize) {
    let mut active: Vec<u32> =
        held.iter().filter(|(_, h)| !h.stop.is_cancelled()).map(|(s, _)| *s).collect();
    if active.len() > target {
        active.sort_unstable();
        for shard in active.split_off(target) {
            tracing::info!(shard, target, "handing a shard to another replica");
            held[&shard].stop.cancel();
        }
    }
}

/// What the replicas alive published, and the shards this one holds, for `/v1/health` and
/// `/v1/stats`.
fn publish(view: &NodeView, nodes: Vec<Node>, held: &HashMap<u32, Held>) {
    let mut shards: Vec<u32> = held.keys().copied().collect();
    shards.sort_unstable();
    *view.stats.write().expect("node view lock") =
        nodes.iter().map(|n| (n.node.clone(), n.stats.clone())).collect();
    *view.state.write().expect("node view lock") =
        (nodes.into_iter().map(|n| n.node).collect(), shards);
}

impl Held {
    fn floor(&self) -> i64 {
        self.floor.load(Ordering::Relaxed)
    }
}

struct Shared {
    shards: ShardSet,
    watch: Arc<QueueWatch>,
}

#[cfg(test)]
mod tests {
    use tokio::sync::{Notify, broadcast};

    use super::*;
    use crate::testing::{Setup, T0, Unreached, setup};

    fn pool(setup: &Setup, node: &str) -> ShardPool {
        ShardPool {
            store: setup.store.clone(),
            config: Arc::new(EngineConfig::for_node(node)),
            upstream: Arc::new(Unreached),
            recorder: setup.recorder.clone(),
            committed: broadcast::channel(16).0,
            callbacks_ready: Arc::new(Notify::new()),
            metrics: Metrics::new(setup.clock.clone()),
            clock: setup.clock.clone(),
            shards: ShardSet::default(),
        }
    }

    /// Every replica computes its share from the same list: the shares add up to the shard
    /// count, differ by at most one, and each replica starts taking at its own place.
    #[test]
    fn fair_shares_add_up_and_start_apart() {
        let nodes: Vec<Node> = ["a", "b", "c"]
            .iter()
            .map(|n| Node { node: (*n).to_owned(), heartbeat_at: Default::default(), stats: None })
            .collect();
        let shares: Vec<FairShare> =
            ["a", "b", "c"].iter().map(|n| FairShare::of(&nodes, n, 32)).collect();
        assert_eq!(shares.iter().map(|s| s.target).collect::<Vec<_>>(), [11, 11, 10]);
        let firsts: Vec<u32> = shares.iter().map(|s| s.order(32).next().unwrap()).collect();
        assert_eq!(firsts, [0, 10, 20]);
        let mut all: Vec<u32> = shares[1].order(32).collect();
        all.sort_unstable();
        assert_eq!(all, (0..32).collect::<Vec<_>>(), "every shard, once");
        assert_eq!(FairShare::of(&[], "a", 4).target, 4, "alone before its first heartbeat");
    }

    fn shared() -> Shared {
        Shared { shards: ShardSet::default(), watch: Arc::default() }
    }

    /// Two replicas on one store, ticking on a driven clock: the first takes the shard; when it
    /// stops renewing (it died), the second takes the shard over exactly when the lease runs
    /// out, with a new fencing epoch.
    #[tokio::test]
    async fn a_dead_replicas_shard_is_taken_over_when_its_lease_runs_out() {
        let setup = setup().await;
        let (a, b) = (pool(&setup, "node-a"), pool(&setup, "node-b"));
        let (view_a, view_b) = (NodeView::default(), NodeView::default());
        let (mut held_a, mut held_b) = (HashMap::new(), HashMap::new());
        let shared = shared();
        a.tick(&mut held_a, &view_a, &shared).await.unwrap();
        b.tick(&mut held_b, &view_b, &shared).await.unwrap();
        assert_eq!((view_a.shards(), view_b.shards()), (vec![0], vec![]));
        assert_eq!(held_a[&0].lease.epoch, 1);
        assert_eq!(view_b.nodes(), ["node-a", "node-b"], "both alive");

        // node-a dies: its workers stop with it, nothing renews its lease.
        for held in held_a.values() {
            held.task.abort();
        }
        let ttl = millis(a.config.lease_ttl);
        setup.clock.advance(std::time::Duration::from_millis((ttl - 1) as u64));
        b.tick(&mut held_b, &view_b, &shared).await.unwrap();
        assert!(view_b.shards().is_empty(), "the lease still holds at {}", T0 + ttl - 1);
        setup.clock.advance(std::time::Duration::from_millis(2));
        b.tick(&mut held_b, &view_b, &shared).await.unwrap();
        assert_eq!(view_b.nodes(), ["node-b"], "node-a's heartbeat aged out");
        assert_eq!(view_b.shards(), [0], "taken over once the lease ran out");
        assert_eq!(held_b[&0].lease.epoch, 2, "a new fencing epoch");
        for held in held_b.values() {
            held.stop.cancel();
        }
    }
}
