//! An [`Outbox`] that reaches only the participants whose role may have the remote
//! clipboard (owners and guests), kept up to date by the room. The clipboard uses it, so
//! a view-only participant never receives clipboard content, whoever sends it.

use std::collections::HashSet;
use std::sync::{Arc, RwLock};

use super::state::Id;
use crate::outbox::Outbox;

#[derive(Clone)]
pub struct Audience {
    inner: Arc<dyn Outbox>,
    allowed: Arc<RwLock<HashSet<Id>>>,
}

impl Audience {
    pub fn new(inner: Arc<dyn Outbox>) -> Self {
        Self { inner, allowed: Arc::default() }
    }

    /// Replaces who may receive (called by the room on every join and leave).
    pub fn set(&self, ids: impl IntoIterator<Item = Id>) {
        let mut allowed = self.allowed.write().unwrap_or_else(|e| e.into_inner());
        allowed.clear();
        allowed.extend(ids);
    }

    fn allows(&self, id: Id) -> bool {
        self.allowed.read().unwrap_or_else(|e| e.into_inner()).contains(&id)
    }
}

impl Outbox for Audience {
    fn viewer_ids(&self) -> Vec<u64> {
        self.inner.viewer_ids().into_iter().filter(|&v| self.allows(v)).collect()
    }
    fn send(&self, viewer: u64, text: &str) -> bool {
        self.allows(viewer) && self.inner.send(viewer, text)
    }
    fn buffered(&self, viewer: u64) -> Option<u64> {
        if self.allows(viewer) {
            self.inner.buffered(viewer)
        } else {
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;

    #[derive(Default)]
    struct All(Mutex<Vec<u64>>);

    impl Outbox for All {
        fn viewer_ids(&self) -> Vec<u64> {
            vec![1, 2, 3]
        }
        fn send(&self, viewer: u64, _text: &str) -> bool {
            self.0.lock().unwrap().push(viewer);
            true
        }
        fn buffered(&self, _viewer: u64) -> Option<u64> {
            Some(0)
        }
    }

    #[test]
    fn only_allowed_participants_are_listed_or_reached() {
        let all = Arc::new(All::default());
        let a = Audience::new(all.clone());
        a.set([1, 3]);
        assert_eq!(a.viewer_ids(), vec![1, 3]);
        assert!(!a.send(2, "x"));
        assert!(a.send(3, "x"));
        assert_eq!(a.buffered(2), None);
        assert_eq!(*all.0.lock().unwrap(), vec![3]);
    }
}
