//! Which routes of a table a request can match at all, found without visiting the others.
//!
//! Every route carries a necessary condition ([`RouteGuard`]): its path starts with one
//! of a few literals (compared on their first eight bytes, [`PathGuard`]), and perhaps a
//! header must be present. Checking those route by route made a lookup in the
//! benchmark's 100-route table cost 1,900 instructions even though almost every route
//! was rejected by its first comparison. [`Prefilter`] inverts the question: the
//! literals of the whole table are grouped by length and hashed, so a request finds the
//! ones its path starts with by one probe per length present, and only the routes
//! listed under those literals (plus the routes without a path literal) are visited, in
//! table order. Routes without a path literal that need a header are kept apart by that
//! header: the header is looked up once, when the first of them comes up, and if it is
//! absent none of them is visited.
//!
//! A lookup works 64 routes at a time: the candidates among them are the bits of a word,
//! visited lowest first. Routes without a path literal are kept as such words (one bit
//! per route of the table); the routes of each literal as a sorted list of positions,
//! so the index grows with the number of literals, not with literals × routes.

use std::collections::HashMap;

use super::condition::{HEADER_SLOTS, HeaderSlots, PathGuard, Probe};

/// Per route, the header slot its guard needs present; [`NO_HEADER`] when none.
const NO_HEADER: u8 = u8::MAX;

/// Most distinct literal lengths: a literal is compared on at most eight bytes.
const LENGTHS: usize = 8;

/// An empty slot of a [`Literals`] hash table.
const EMPTY: u32 = u32::MAX;

/// A route's necessary conditions, taken from its matches at compile time.
#[derive(Debug, Clone, Copy, Default)]
pub(super) struct RouteGuard {
    pub(super) path: PathGuard,
    /// A header (cache slot) the route's match requires to be present.
    pub(super) header: Option<usize>,
}

/// The literals of one length: the mask that keeps that many bytes of a path's head
/// word, and an open-addressing hash table (at most half full) from each distinct
/// literal word to its route list.
#[derive(Debug, Clone)]
struct Literals {
    mask: u64,
    /// How far a hash is shifted right to index `slots` (64 minus its size's log2).
    shift: u32,
    /// (word, index into [`Prefilter::lists`]); [`EMPTY`] marks a free slot.
    slots: Box<[(u64, u32)]>,
}

impl Literals {
    fn new(mask: u64, words: &[(u64, u32)]) -> Literals {
        let size = (words.len() * 2).next_power_of_two().max(2);
        let shift = 64 - size.trailing_zeros();
        let mut slots = vec![(0, EMPTY); size].into_boxed_slice();
        for &(word, list) in words {
            let mut i = hash(word, shift);
            while slots[i].1 != EMPTY {
                i = (i + 1) & (size - 1);
            }
            slots[i] = (word, list);
        }
        Literals { mask, shift, slots }
    }

    /// The list of the literal `head` starts with, if this length has one.
    #[inline]
    fn find(&self, head: u64) -> Option<u32> {
        let key = head & self.mask;
        let mut i = hash(key, self.shift);
        loop {
            let (word, list) = *self.slots.get(i)?;
            if list == EMPTY {
                return None;
            }
            if word == key {
                return Some(list);
            }
            i = (i + 1) & (self.slots.len() - 1);
        }
    }
}

/// Fibonacci hashing: the top bits of the word times 2^64/φ.
#[inline]
fn hash(word: u64, shift: u32) -> usize {
    (word.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> shift) as usize
}

/// The table's route guards, indexed for lookup.
#[derive(Debug, Clone, Default)]
pub(super) struct Prefilter {
    /// Routes whose path is unconstrained and that need no header: a bit per route.
    unconstrained: Box<[u64]>,
    /// Routes whose path is unconstrained and that need a header, by the header's slot:
    /// a bit per route.
    by_header: Box<[(u8, Box<[u64]>)]>,
    /// One entry per literal length present in the table.
    lengths: Box<[Literals]>,
    /// Per distinct literal, the routes it admits, in table order.
    lists: Box<[Box<[u32]>]>,
    /// Per route, the header slot its guard needs, or [`NO_HEADER`].
    headers: Box<[u8]>,
}

/// Sets the bit of route `index` in `bits`.
fn set(bits: &mut [u64], index: usize) {
    if let Some(word) = bits.get_mut(index / 64) {
        *word |= 1 << (index % 64);
    }
}

impl Prefilter {
    /// Indexes `guards`, one per route in table order.
    pub(super) fn new(guards: &[RouteGuard]) -> Prefilter {
        let words = guards.len().div_ceil(64);
        let mut unconstrained = vec![0u64; words];
        let mut by_header: Vec<(u8, Vec<u64>)> = Vec::new();
        // Per distinct (mask, word), in first-seen order, the routes it admits.
        let mut literals: Vec<(u64, u64, Vec<u32>)> = Vec::new();
        let mut seen: HashMap<(u64, u64), usize> = HashMap::new();
        let mut headers = Vec::with_capacity(guards.len());
        for (index, guard) in guards.iter().enumerate() {
            let slot = guard
                .header
                .and_then(|s| u8::try_from(s).ok())
                .filter(|s| usize::from(*s) < HEADER_SLOTS)
                .unwrap_or(NO_HEADER);
            headers.push(slot);
            let entries = guard.path.literals();
            if entries.is_empty() {
                if slot == NO_HEADER {
                    set(&mut unconstrained, index);
                } else {
                    match by_header.iter_mut().find(|(s, _)| *s == slot) {
                        Some((_, bits)) => set(bits, index),
                        None => {
                            let mut bits = vec![0u64; words];
                            set(&mut bits, index);
                            by_header.push((slot, bits));
                        }
                    }
                }
                continue;
            }
            // A table has far fewer than 2^32 routes (each is a parsed YAML rule).
            let index = u32::try_from(index).unwrap_or(EMPTY - 1);
            for &(word, mask) in entries {
                match seen.get(&(mask, word)).and_then(|&i| literals.get_mut(i)) {
                    // One route may list a literal twice (several matches).
                    Some((_, _, routes)) if routes.last() == Some(&index) => {}
                    Some((_, _, routes)) => routes.push(index),
                    None => {
                        seen.insert((mask, word), literals.len());
                        literals.push((mask, word, vec![index]));
                    }
                }
            }
        }
        let mut lengths: Vec<(u64, Vec<(u64, u32)>)> = Vec::new();
        let mut lists = Vec::with_capacity(literals.len());
        for (mask, word, routes) in literals {
            let list = u32::try_from(lists.len()).unwrap_or(EMPTY - 1);
            lists.push(routes.into_boxed_slice());
            match lengths.iter_mut().find(|(m, _)| *m == mask) {
                Some((_, words)) => words.push((word, list)),
                None => lengths.push((mask, vec![(word, list)])),
            }
        }
        Prefilter {
            unconstrained: unconstrained.into_boxed_slice(),
            by_header: by_header
                .into_iter()
                .map(|(slot, bits)| (slot, bits.into_boxed_slice()))
                .collect(),
            lengths: lengths
                .iter()
                .map(|(mask, words)| Literals::new(*mask, words))
                .collect(),
            lists: lists.into_boxed_slice(),
            headers: headers.into_boxed_slice(),
        }
    }

    /// The position of the first route, in table order, that passes its guard and for
    /// which `holds` (the route's full check) says yes.
    #[inline]
    pub(super) fn first(
        &self,
        probe: &mut Probe<'_, '_>,
        slots: &HeaderSlots,
        mut holds: impl FnMut(usize, &mut Probe<'_, '_>) -> bool,
    ) -> Option<usize> {
        let head = probe.path_head();
        // Per length, the routes of the literal the path starts with (at most one).
        let mut hits: [&[u32]; LENGTHS] = [&[]; LENGTHS];
        let mut n = 0;
        for literals in self.lengths.iter() {
            if let Some(list) = literals.find(head).and_then(|l| self.lists.get(l as usize))
                && n < LENGTHS
            {
                hits[n] = list;
                n += 1;
            }
        }
        let hits = &mut hits[..n];
        for (chunk, &free) in self.unconstrained.iter().enumerate() {
            // Routes chunk*64 .. chunk*64+63, a bit each.
            let base = chunk * 64;
            let end = base + 64;
            let mut candidates = free;
            for (slot, bits) in self.by_header.iter() {
                // A header found absent leaves out its routes unvisited (the probe
                // looks each header up once per request).
                let these = bits.get(chunk).copied().unwrap_or(0);
                if these != 0 && has_header(probe, slots, *slot) {
                    candidates |= these;
                }
            }
            for list in hits.iter_mut() {
                let mut taken = 0;
                for &route in list.iter() {
                    let route = route as usize;
                    if route >= end {
                        break;
                    }
                    candidates |= 1 << (route - base);
                    taken += 1;
                }
                *list = &list[taken..];
            }
            while candidates != 0 {
                let index = base + candidates.trailing_zeros() as usize;
                candidates &= candidates - 1;
                let slot = self.headers.get(index).copied().unwrap_or(NO_HEADER);
                if slot != NO_HEADER && !has_header(probe, slots, slot) {
                    continue;
                }
                if holds(index, probe) {
                    return Some(index);
                }
            }
        }
        None
    }
}

/// Whether the request has the header cached in `slot` (a slot without a name, which
/// compiling never makes, admits).
#[inline]
fn has_header(probe: &mut Probe<'_, '_>, slots: &HeaderSlots, slot: u8) -> bool {
    let slot = usize::from(slot);
    slots
        .name(slot)
        .is_none_or(|name| probe.has_header(slot, name))
}
