//! What lies between the network and the input thread, and how it is kept bounded.
//!
//! The queue to the input thread holds at most [`QUEUE`] events: when X is slow or stalled
//! the excess is dropped and counted instead of piling up and being applied seconds late.
//! Whatever has piled up is taken in one batch, in which a pointer move followed directly
//! by another move of the same participant is skipped: only where the pointer ends up
//! matters, so a backlog of moves costs one XTest call. Releases (lost control) and
//! departures travel apart from events, so they are never dropped, and go first; each
//! sets a cutoff in the stream's sequence numbers: what the participant had queued before
//! it is dropped (a key press applied after the release would stay down), and after a
//! departure nothing of it applies.

use std::collections::{BTreeMap, VecDeque};

use super::protocol::InputEvent;
use super::x11::ViewerKey;

/// One event on its way to the input thread: who sent it, and its place in the stream.
#[derive(Debug, Clone, PartialEq)]
pub struct Queued {
    pub viewer: ViewerKey,
    pub seq: u64,
    pub event: InputEvent,
    /// When it arrived ([`crate::latency::mono_ns`]): presses are timed to their flush.
    pub arrived_ns: u64,
}

/// Events queued for the input thread at most.
pub const QUEUE: usize = 1024;
/// Events taken from the queue in one batch at most.
pub const BATCH: usize = 256;
/// Cutoffs remembered (ids only grow, so the oldest are forgotten first).
const REMEMBERED: usize = 1024;

/// Drops every pointer move directly followed by another move of the same participant
/// (nothing of theirs in between); returns how many were dropped.
pub fn coalesce_moves(batch: &mut VecDeque<Queued>) -> usize {
    let before = batch.len();
    let mut kept: VecDeque<Queued> = VecDeque::with_capacity(before);
    for q in batch.drain(..) {
        let is_move = |e: &InputEvent| matches!(e, InputEvent::PointerMove { .. });
        let last_of_same = kept.iter_mut().rev().find(|k| k.viewer == q.viewer);
        match last_of_same {
            Some(last) if is_move(&last.event) && is_move(&q.event) => *last = q,
            _ => kept.push_back(q),
        }
    }
    *batch = kept;
    before - batch.len()
}

/// Per participant, the sequence number below which its queued events are dropped.
#[derive(Debug, Default)]
pub struct Cutoffs(BTreeMap<ViewerKey, u64>);

impl Cutoffs {
    /// `viewer` lost control when the stream was at `seq`: what it queued before goes.
    pub fn released(&mut self, viewer: ViewerKey, seq: u64) {
        let c = self.0.entry(viewer).or_insert(0);
        *c = (*c).max(seq);
        self.bound();
    }

    /// `viewer` left: nothing of it applies any more.
    pub fn left(&mut self, viewer: ViewerKey) {
        self.0.insert(viewer, u64::MAX);
        self.bound();
    }

    /// Whether the event `viewer` queued as number `seq` is dropped.
    pub fn drops(&self, viewer: ViewerKey, seq: u64) -> bool {
        self.0.get(&viewer).is_some_and(|c| seq < *c)
    }

    fn bound(&mut self) {
        while self.0.len() > REMEMBERED {
            self.0.pop_first();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mv(x: u32) -> InputEvent {
        InputEvent::PointerMove { x, y: x }
    }

    fn queue(events: &[(ViewerKey, InputEvent)]) -> VecDeque<Queued> {
        events
            .iter()
            .enumerate()
            .map(|(i, (v, e))| Queued { viewer: *v, seq: i as u64, event: e.clone(), arrived_ns: 0 })
            .collect()
    }

    fn events(b: &VecDeque<Queued>) -> Vec<(ViewerKey, InputEvent)> {
        b.iter().map(|q| (q.viewer, q.event.clone())).collect()
    }

    #[test]
    fn a_run_of_moves_becomes_its_last_and_other_events_keep_their_order() {
        let key = InputEvent::Key { keysym: 0x61, down: true };
        let mut b = queue(&[(1, mv(1)), (1, mv(2)), (2, mv(9)), (1, mv(3)), (1, key.clone()), (1, mv(4)), (1, mv(5))]);
        assert_eq!(coalesce_moves(&mut b), 3);
        // Viewer 1's moves up to the key end at 3 (viewer 2's move between is another
        // participant's), then 5.
        assert_eq!(events(&b), vec![(1, mv(3)), (2, mv(9)), (1, key), (1, mv(5))]);
    }

    #[test]
    fn a_move_after_another_kind_of_event_is_kept() {
        let key = InputEvent::Key { keysym: 0x61, down: true };
        let mut b = queue(&[(1, mv(1)), (1, key), (1, mv(2))]);
        assert_eq!(coalesce_moves(&mut b), 0);
        assert_eq!(b.len(), 3);
    }

    #[test]
    fn a_release_drops_what_was_queued_before_it_and_a_departure_everything() {
        let mut c = Cutoffs::default();
        c.released(1, 10);
        assert!(c.drops(1, 9) && !c.drops(1, 10) && !c.drops(2, 0));
        c.left(1);
        assert!(c.drops(1, 1_000_000));
        for id in 100..(100 + REMEMBERED as u64 + 10) {
            c.left(id);
        }
        assert_eq!(c.0.len(), REMEMBERED);
    }
}
