//! A growable Fenwick (binary indexed) tree of counts: O(log n) point update and prefix
//! count. Whatever keeps a waiting line (the memory backend, or a live view that follows
//! [`crate::store::WaitingQueue::waiting_line`] and the change feed) marks each waiting
//! place with 1, so a position is one prefix sum however long the line is.

/// Counts per index `0..len`, growing on demand.
#[derive(Debug, Default, Clone)]
pub struct Fenwick {
    /// Raw per-index values, kept to rebuild the tree when it grows.
    vals: Vec<i64>,
    /// 1-indexed tree over `vals`.
    tree: Vec<i64>,
}

impl Fenwick {
    /// Adds `delta` at index `i` (growing the tree to hold it).
    pub fn add(&mut self, i: usize, delta: i64) {
        if i >= self.vals.len() {
            self.grow(i + 1);
        }
        self.vals[i] += delta;
        let mut k = i + 1;
        while k < self.tree.len() {
            self.tree[k] += delta;
            k += k & k.wrapping_neg();
        }
    }

    /// The value at index `i` (0 beyond the tree).
    pub fn get(&self, i: usize) -> i64 {
        self.vals.get(i).copied().unwrap_or(0)
    }

    /// Sum of the values at indices `0..=i`.
    pub fn prefix(&self, i: usize) -> i64 {
        let mut k = i.saturating_add(1).min(self.vals.len());
        let mut sum = 0;
        while k > 0 {
            sum += self.tree[k];
            k -= k & k.wrapping_neg();
        }
        sum
    }

    /// Grows to at least `len` indices (doubling: amortised O(1) per index) and rebuilds the
    /// tree in O(n).
    fn grow(&mut self, len: usize) {
        let n = len.max(self.vals.len() * 2).max(1024);
        self.vals.resize(n, 0);
        self.tree = vec![0; n + 1];
        for i in 1..=n {
            self.tree[i] += self.vals[i - 1];
            let parent = i + (i & i.wrapping_neg());
            if parent <= n {
                let v = self.tree[i];
                self.tree[parent] += v;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefix_sums_match_a_plain_sum_across_growth() {
        let mut f = Fenwick::default();
        let mut naive = vec![0i64; 5000];
        for i in (0..5000).step_by(7) {
            f.add(i, 1);
            naive[i] += 1;
        }
        f.add(14, -1);
        naive[14] -= 1;
        for i in [0, 13, 14, 700, 1023, 1024, 4999] {
            assert_eq!(f.prefix(i), naive[..=i].iter().sum::<i64>(), "at {i}");
        }
        assert_eq!(f.prefix(1_000_000), naive.iter().sum::<i64>());
        assert_eq!(f.get(7), 1);
        assert_eq!(f.get(10_000_000), 0);
    }
}
