//! The files layer: how bytes reach disk and come back. Atomic writes (`atomic`), content hashes
//! of files (`hash`) and directories (`tree`), polars frames as Parquet (`frame`) and typed values through the value codec
//! (`codec`). Below the catalog and the engine; it knows no run or catalog.

pub(crate) mod atomic;
pub(crate) mod codec;
pub(crate) mod frame;
pub(crate) mod hash;
pub(crate) mod tree;

/// How many entries an in-process memo keeps (file hashes by path, signature index entries)
/// before it starts again from empty: a process of 100,000 steps keeps its memory flat, and
/// what is forgotten is read back from disk (an index entry file, a remembered hash, or the
/// bytes of a small file) at a few microseconds.
pub(crate) const MEMO_CAPACITY: usize = 16_384;

/// Insert into a memo of at most [`MEMO_CAPACITY`] entries: a new key into a full memo empties
/// it first (a chain's entries are rarely asked for again once the next step has run, so nothing
/// cleverer pays).
pub(crate) fn remember_bounded<K: std::hash::Hash + Eq, V>(
    memo: &mut std::collections::HashMap<K, V>,
    key: K,
    value: V,
) {
    if memo.len() >= MEMO_CAPACITY && !memo.contains_key(&key) {
        memo.clear();
    }
    memo.insert(key, value);
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_memo_never_holds_more_than_its_capacity_and_keeps_what_is_asked_again() {
        let mut memo = std::collections::HashMap::new();
        for i in 0..super::MEMO_CAPACITY * 3 {
            super::remember_bounded(&mut memo, i, i);
            assert!(memo.len() <= super::MEMO_CAPACITY);
            assert_eq!(memo.get(&i), Some(&i), "the newest entry is always there");
        }
        let full = memo.len();
        super::remember_bounded(&mut memo, super::MEMO_CAPACITY * 3 - 1, 0);
        assert_eq!(memo.len(), full, "a known key is updated, not a reason to start again");
    }
}
