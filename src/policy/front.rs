//! A small per-thread front for the shared verdict cache: direct-mapped slots keyed by the
//! input fingerprint. A hit here costs an index, a compare and a clock read, where the shared
//! (moka) cache also records the access for its eviction policy. Entries are only ever copied
//! from the shared cache, keep its expiry time, and are re-verified by the caller (generation
//! and full input), so the front can never hand out a verdict the shared cache would not.
//!
//! Not here: eviction policy, capacity limits (the shared cache owns those; the front holds at
//! most [`SLOTS`] entries per thread and decider).

use std::sync::Arc;
use std::time::Instant;

/// Slots per thread and decider (a power of two).
pub const SLOTS: usize = 256;

struct Slot<T> {
    key: u64,
    expires: Instant,
    value: Arc<T>,
}

pub struct FrontSlots<T> {
    slots: Box<[Option<Slot<T>>]>,
}

impl<T> Default for FrontSlots<T> {
    fn default() -> Self {
        Self {
            slots: (0..SLOTS).map(|_| None).collect(),
        }
    }
}

impl<T> FrontSlots<T> {
    /// The entry stored under `key`, unless it expired.
    #[inline]
    pub fn get(&self, key: u64) -> Option<&Arc<T>> {
        let slot = self.slots.get(key as usize & (SLOTS - 1))?.as_ref()?;
        (slot.key == key && Instant::now() < slot.expires).then_some(&slot.value)
    }

    pub fn put(&mut self, key: u64, value: Arc<T>, expires: Instant) {
        if let Some(slot) = self.slots.get_mut(key as usize & (SLOTS - 1)) {
            *slot = Some(Slot {
                key,
                expires,
                value,
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn get_returns_only_the_same_key_before_expiry() {
        let mut f = FrontSlots::default();
        let later = Instant::now() + Duration::from_secs(60);
        f.put(7, Arc::new("seven"), later);
        assert_eq!(f.get(7).map(|v| **v), Some("seven"));
        // Same slot, other key.
        assert!(f.get(7 + SLOTS as u64).is_none());
        f.put(9, Arc::new("nine"), Instant::now());
        assert!(f.get(9).is_none(), "expired entries are not served");
    }
}
