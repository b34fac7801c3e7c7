//! One stable sort for the whole binary. std's `sort_by` compiles its ~5 KiB of code once
//! per element type and comparator; this sorts positions (one type, one comparator: a
//! `dyn Fn`) and then moves the elements into that order.
//!
//! For the same reason maps and sets are built with [`set_of`] and [`map_of`], never
//! `collect()`: collecting into a BTreeMap or BTreeSet sorts first, one more sort compiled
//! per element type (~5 KiB).

use std::cmp::Ordering;
use std::collections::{BTreeMap, BTreeSet};

/// What `items.collect::<BTreeSet<_>>()` gives, without its sort.
pub fn set_of<T: Ord>(items: impl IntoIterator<Item = T>) -> BTreeSet<T> {
    let mut s = BTreeSet::new();
    s.extend(items);
    s
}

/// What `items.collect::<BTreeMap<_, _>>()` gives (the last value of a key wins), without its sort.
pub fn map_of<K: Ord, V>(items: impl IntoIterator<Item = (K, V)>) -> BTreeMap<K, V> {
    let mut m = BTreeMap::new();
    m.extend(items);
    m
}

/// What `v.sort_by(cmp)` does: a stable sort, equal elements keep their order.
pub fn sort_by<T>(v: &mut Vec<T>, cmp: &dyn Fn(&T, &T) -> Ordering) {
    let mut order: Vec<usize> = (0..v.len()).collect();
    sort_positions(&mut order, &|a, b| cmp(&v[a], &v[b]));
    let mut slots: Vec<Option<T>> = std::mem::take(v).into_iter().map(Some).collect();
    v.extend(order.into_iter().filter_map(|i| slots[i].take()));
}

fn sort_positions(order: &mut [usize], cmp: &dyn Fn(usize, usize) -> Ordering) {
    order.sort_by(|&a, &b| cmp(a, b));
}

#[cfg(test)]
mod tests {
    #[test]
    fn stable_as_std() {
        let mut x = 12345u32;
        let v: Vec<(u32, usize)> = (0..1000)
            .map(|i| {
                x = x.wrapping_mul(1_103_515_245).wrapping_add(12345);
                ((x >> 16) % 50, i)
            })
            .collect();
        let (mut ours, mut std) = (v.clone(), v);
        super::sort_by(&mut ours, &|a, b| a.0.cmp(&b.0));
        std.sort_by_key(|a| a.0);
        assert_eq!(ours, std);
    }
}
