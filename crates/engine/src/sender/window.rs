//! A shard worker's cache of its queue, and when it acts next: pure state, no I/O, so the
//! rules (one message in flight per recipient, acceptance order, backoff, when to read the
//! store) are tested alone.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap, VecDeque};

use premise_store::{Enqueued, QueueRead, QueuedMessage};

#[derive(Debug, Default)]
pub(crate) struct Window {
    /// Queued messages per recipient, oldest first; the head is in flight or next.
    queues: HashMap<String, VecDeque<QueuedMessage>>,
    /// Recipients whose head may be sent now.
    ready: VecDeque<String>,
    /// Recipients waiting out a backoff, by when (Unix ms).
    backoff: BinaryHeap<Reverse<(i64, String)>>,
    /// Failed attempts of each recipient's head.
    attempts: HashMap<String, u32>,
    pub buffered: usize,
    /// The highest `seq` read. The store hands out `seq` in commit order, so nothing older can
    /// appear later.
    pub cursor: i64,
    /// Every queued message of the shard up to this `seq` has been taken in.
    covered: i64,
    /// When the store is read next (Unix ms; 0: at once).
    next_read_ms: i64,
    /// When it was last read.
    last_read_ms: i64,
    /// Whether the store has been read at all (a worker always reads it first).
    read_once: bool,
}

impl Window {
    /// Takes rows (in `seq` order, all newer than the cursor).
    fn add(&mut self, rows: Vec<QueuedMessage>) {
        for row in rows {
            self.cursor = self.cursor.max(row.seq);
            self.buffered += 1;
            let queue = self.queues.entry(row.recipient.clone()).or_default();
            if queue.is_empty() {
                self.ready.push_back(row.recipient.clone());
            }
            queue.push_back(row);
        }
    }

    /// Takes in what a store read returned.
    pub fn read(&mut self, read: QueueRead) {
        self.read_once = true;
        self.add(read.messages);
        self.covered = self.covered.max(read.covered_through);
    }

    /// How far the shard's queue has been taken in, once the store has been read; `None`
    /// before the first read.
    pub fn covered(&self) -> Option<i64> {
        self.read_once.then_some(self.covered)
    }

    /// Whether the store is to be read at `now_ms`.
    pub fn read_due(&self, now_ms: i64) -> bool {
        now_ms >= self.next_read_ms
    }

    /// The store was read at `now_ms`; the next read is at the latest `poll_ms` later.
    pub fn was_read(&mut self, now_ms: i64, poll_ms: i64) {
        self.last_read_ms = now_ms;
        self.next_read_ms = now_ms + poll_ms;
    }

    /// Asks for a read as soon as `gap_ms` after the previous one allows (work arrived that
    /// only the store can tell).
    pub fn read_soon(&mut self, now_ms: i64, gap_ms: i64) {
        self.next_read_ms = self.next_read_ms.min((self.last_read_ms + gap_ms).max(now_ms));
    }

    /// Takes this shard's share of a batch committed by this replica, if the batch follows on
    /// from what the window has seen. `false` when it does not (a batch of another replica came
    /// between, or of another committer announced later, or the buffer is full): the store must
    /// be read.
    pub fn follow(&mut self, batch: &Enqueued, shard: u32, generation: i64, buffer: usize) -> bool {
        if batch.generation != generation {
            // Routed with another shard count: an older batch was moved by the change and is
            // in the store, a newer one is for the next generation's workers.
            return true;
        }
        if batch.previous_seq > self.covered {
            return false;
        }
        let mine: Vec<QueuedMessage> = batch
            .messages
            .iter()
            .filter(|p| p.shard == shard && p.message.seq > self.cursor)
            .map(|p| p.message.clone())
            .collect();
        if self.buffered + mine.len() > buffer {
            return false;
        }
        self.add(mine);
        self.covered = self.covered.max(batch.last_seq);
        true
    }

    /// Lets the recipients whose backoff has run out by `now_ms` go again.
    pub fn release_due(&mut self, now_ms: i64) {
        while let Some(Reverse((at, _))) = self.backoff.peek() {
            if *at > now_ms {
                break;
            }
            let Some(Reverse((_, recipient))) = self.backoff.pop() else { break };
            self.ready.push_back(recipient);
        }
    }

    /// Takes up to `room` messages to send now: the head of each ready recipient, in turn. A
    /// head stays in the window, in flight, until [`Window::done`] or [`Window::retry_at`].
    pub fn take(&mut self, room: usize) -> Vec<QueuedMessage> {
        let mut out = Vec::new();
        while out.len() < room {
            let Some(recipient) = self.ready.pop_front() else { break };
            if let Some(head) = self.queues.get(&recipient).and_then(|q| q.front()) {
                out.push(head.clone());
            }
        }
        out
    }

    /// The head of `recipient` is done (acknowledged or failed): move to its next message.
    pub fn done(&mut self, recipient: &str) {
        self.attempts.remove(recipient);
        if let Some(queue) = self.queues.get_mut(recipient) {
            queue.pop_front();
            self.buffered -= 1;
            if queue.is_empty() {
                self.queues.remove(recipient);
            } else {
                self.ready.push_back(recipient.to_owned());
            }
        }
    }

    /// The head of `recipient` failed transiently once more: how many times now.
    pub fn failed_again(&mut self, recipient: &str) -> u32 {
        let attempts = self.attempts.entry(recipient.to_owned()).or_insert(0);
        *attempts += 1;
        *attempts
    }

    /// The head of `recipient` goes again at `at_ms`.
    pub fn retry_at(&mut self, recipient: &str, at_ms: i64) {
        self.backoff.push(Reverse((at_ms, recipient.to_owned())));
    }

    /// When there is next something to do without being woken: the next read or the end of
    /// the first backoff.
    pub fn wake_at(&self) -> i64 {
        self.backoff
            .peek()
            .map_or(self.next_read_ms, |Reverse((at, _))| (*at).min(self.next_read_ms))
    }

    /// The shard's floor as far as this window knows: no queued message of the shard has a
    /// lower `seq`. Everything up to `covered` was taken in, and what was taken in leaves the
    /// window only once settled, so the floor is the oldest message still here, or the first
    /// `seq` not yet covered.
    pub fn floor(&self) -> i64 {
        let oldest = self.queues.values().filter_map(|q| q.front()).map(|m| m.seq).min();
        oldest.unwrap_or(i64::MAX).min(self.covered.saturating_add(1))
    }

    #[cfg(test)]
    pub fn queued(&self, recipient: &str) -> Vec<i64> {
        self.queues.get(recipient).map_or(Vec::new(), |q| q.iter().map(|m| m.seq).collect())
    }
}

#[cfg(test)]
mod tests {
    use premise_store::Placed;

    use super::*;

    fn queued(seq: i64, recipient: &str) -> QueuedMessage {
        QueuedMessage {
            seq,
            id: format!("m{seq}"),
            recipient: recipient.into(),
            payload: "{}".into(),
        }
    }

    fn batch(previous_seq: i64, generation: i64, rows: &[(u32, i64, &str)]) -> Enqueued {
        let messages: Vec<_> =
            rows.iter().map(|&(shard, seq, r)| Placed { shard, message: queued(seq, r) }).collect();
        let last_seq = messages.last().map_or(previous_seq, |p| p.message.seq);
        Enqueued { previous_seq, last_seq, generation, messages, refused: Vec::new() }
    }

    #[test]
    fn batches_that_follow_on_are_taken_without_a_read() {
        let mut window = Window::default();
        window.read(QueueRead { messages: vec![queued(3, "a")], covered_through: 5 });
        assert!(window.follow(&batch(5, 1, &[(0, 6, "a"), (1, 7, "b"), (0, 8, "c")]), 0, 1, 100));
        assert_eq!((window.queued("a"), window.queued("c")), (vec![3, 6], vec![8]));
        assert!(window.queued("b").is_empty(), "another shard's");
        assert_eq!((window.cursor, window.covered), (8, 8));
        assert!(
            window.follow(&batch(8, 1, &[(1, 9, "b")]), 0, 1, 100),
            "none of ours still counts"
        );
        assert_eq!(window.covered, 9);
    }

    #[test]
    fn a_gap_a_full_buffer_or_a_seen_batch_fall_back_to_the_store() {
        let mut window = Window::default();
        window.read(QueueRead { messages: vec![], covered_through: 10 });
        assert!(!window.follow(&batch(12, 1, &[(0, 13, "a")]), 0, 1, 100), "11..12 unseen");
        assert!(window.queued("a").is_empty());
        assert!(!window.follow(&batch(10, 1, &[(0, 11, "a"), (0, 12, "b")]), 0, 1, 1), "no room");
        assert_eq!(window.covered, 10);
        // The read that follows the gap catches up; the batch arriving late adds nothing twice.
        window.read(QueueRead {
            messages: vec![queued(11, "a"), queued(12, "b"), queued(13, "a")],
            covered_through: 13,
        });
        assert!(window.follow(&batch(10, 1, &[(0, 11, "a"), (0, 12, "b")]), 0, 1, 100));
        assert_eq!(window.queued("a"), [11, 13]);
        assert!(window.follow(&batch(13, 2, &[(0, 14, "a")]), 0, 1, 100), "other generation");
        assert_eq!((window.queued("a"), window.covered), (vec![11, 13], 13));
    }

    #[test]
    fn one_head_per_recipient_in_flight_and_backoffs_by_the_clock() {
        let mut window = Window::default();
        window.read(QueueRead {
            messages: vec![queued(1, "a"), queued(2, "a"), queued(3, "b")],
            covered_through: 3,
        });
        let seqs = |m: Vec<QueuedMessage>| m.iter().map(|m| m.seq).collect::<Vec<_>>();
        assert_eq!(seqs(window.take(10)), [1, 3], "a's second waits for its first");
        assert!(window.take(10).is_empty());
        window.done("b");
        assert_eq!(window.failed_again("a"), 1);
        window.retry_at("a", 1_200);
        assert_eq!(window.wake_at(), 0, "the first read is still due");
        window.was_read(1_000, 100);
        assert_eq!(window.wake_at(), 1_100);
        window.release_due(1_199);
        assert!(window.take(10).is_empty(), "a waits out its backoff");
        window.release_due(1_200);
        assert_eq!(seqs(window.take(10)), [1], "the same head again, in order");
        window.done("a");
        assert_eq!(window.failed_again("a"), 1, "the next message starts afresh");
    }

    /// The floor is the oldest message not yet settled, whoever's turn it is, or past all
    /// that was covered.
    #[test]
    fn the_floor_is_the_oldest_unsettled_message() {
        let mut window = Window::default();
        assert_eq!(window.floor(), 1, "nothing covered yet");
        window.read(QueueRead {
            messages: vec![queued(4, "a"), queued(5, "b"), queued(7, "a")],
            covered_through: 9,
        });
        assert_eq!(window.floor(), 4);
        window.take(10);
        window.done("b");
        assert_eq!(window.floor(), 4, "a's 4 is still in flight");
        window.done("a");
        assert_eq!(window.floor(), 7, "a's next");
        window.take(10);
        window.done("a");
        assert_eq!(window.floor(), 10, "all settled: past what was covered");
    }
}
