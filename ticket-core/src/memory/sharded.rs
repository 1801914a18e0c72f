//! A hash map split into a fixed number of shards, so it grows one shard at a time.
//!
//! A single `HashMap` grows by moving every entry into a table twice the size at once: at a
//! million queue tickets that is a stop-the-world copy of hundreds of megabytes under the
//! session's lock, a stall every waiting caller shares. Split into [`SHARDS`] maps, each
//! step moves a 1/[`SHARDS`] part, and the steps spread over the run.

use std::borrow::Borrow;
use std::hash::{BuildHasher, Hash};

use super::FastMap as HashMap;
use super::Hasher;

/// Number of shards (a power of two).
const SHARDS: usize = 64;

/// A map of `K` to `V` in [`SHARDS`] shards, chosen by the key's hash.
#[derive(Debug)]
pub(super) struct ShardedMap<K, V> {
    hasher: Hasher,
    shards: Vec<HashMap<K, V>>,
}

impl<K, V> Default for ShardedMap<K, V> {
    fn default() -> Self {
        Self {
            hasher: Hasher::default(),
            shards: (0..SHARDS).map(|_| HashMap::default()).collect(),
        }
    }
}

impl<K: Hash + Eq, V> ShardedMap<K, V> {
    fn shard<Q: Hash + ?Sized>(&self, k: &Q) -> usize {
        // The top bits: the shards' own hashers (other seeds) use all of theirs.
        (self.hasher.hash_one(k) >> (64 - SHARDS.trailing_zeros())) as usize
    }

    /// The value of `k`.
    pub(super) fn get<Q>(&self, k: &Q) -> Option<&V>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        self.shards.get(self.shard(k))?.get(k)
    }

    /// The value of `k`, to change.
    pub(super) fn get_mut<Q>(&mut self, k: &Q) -> Option<&mut V>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        let i = self.shard(k);
        self.shards.get_mut(i)?.get_mut(k)
    }

    /// Sets `k` to `v`, answering the value it replaced.
    pub(super) fn insert(&mut self, k: K, v: V) -> Option<V> {
        let i = self.shard(&k);
        self.shards.get_mut(i).and_then(|s| s.insert(k, v))
    }
}
