//! What a pass does with each listed message, decided before anything is read: the
//! ledger knows the positions committed before (acknowledge again, set aside again), the
//! skip memory those found not ours (left alone), the mailbox the sizes of the rest (read
//! whole, or only the headers of one too large); then the plan is cut into batches.

use std::collections::HashSet;
use std::ops::Range;

use super::IngestError;
use crate::config::Collector;
use crate::source::{HEADER_LIMIT, Mailbox, blocking};
use crate::store::Store;

/// What a pass does with one listed message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Step {
    /// Committed by an earlier pass that died before acknowledging it: acknowledge.
    Acknowledge,
    /// Quarantined before: set aside again, never read or counted again.
    SetAside,
    /// Read before and found not ours, under the same rules: left alone, neither read nor
    /// counted.
    Skipped,
    /// New, of this many bytes: read it whole.
    Read(u64),
    /// New, and larger than `max-message-size` (this many bytes): read its headers only.
    TooLarge(u64),
    /// Gone from the mailbox since it was listed (another program took it).
    Vanished,
}

/// What decided that a message is not ours: the collector's decode rules, as this version
/// of the program applies them (a SHA-256 of both, hex). A skip remembered under another
/// fingerprint is forgotten: the admin may have changed the keyword, or a new version may
/// read more mail as ours.
pub(super) fn skip_rules(collector: &Collector) -> String {
    use sha2::{Digest, Sha256};
    let rules = format!("{} {:?}", env!("CARGO_PKG_VERSION"), collector.rules);
    Sha256::digest(rules.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// The positions among `keys` (this pass's listing) that `collector` skipped before under
/// `rules`. Forgets on the way every other skip it remembers: one decided under other rules,
/// or at a position no longer listed (a person read or deleted the message, or UIDVALIDITY
/// changed), so the memory stays as small as the unseen mail that is not ours.
fn known_skips(
    collector: &Collector,
    store: &mut Store,
    keys: &[String],
    rules: &str,
) -> Result<HashSet<String>, IngestError> {
    let remembered = store.skipped_positions(&collector.name)?;
    if remembered.is_empty() {
        return Ok(HashSet::new());
    }
    let listed: HashSet<&str> = keys.iter().map(String::as_str).collect();
    let (known, stale): (Vec<_>, Vec<_>) = remembered
        .into_iter()
        .partition(|(key, by)| by == rules && listed.contains(key.as_str()));
    if !stale.is_empty() {
        let stale: Vec<String> = stale.into_iter().map(|(key, _)| key).collect();
        store.forget_skipped(&collector.name, &stale)?;
    }
    Ok(known.into_iter().map(|(key, _)| key).collect())
}

/// The step for each of `positions`: from the ledger and the remembered skips, then from the
/// sizes of the positions neither knows (one size query for all of them: a round trip per
/// pass, not per batch).
pub(super) async fn plan<M: Mailbox>(
    collector: &Collector,
    store: &mut Store,
    mailbox: &mut M,
    positions: &[M::Position],
    rules: &str,
) -> Result<Vec<Step>, IngestError> {
    let keys: Vec<String> = positions.iter().map(|p| mailbox.key(p)).collect();
    let key_refs: Vec<&str> = keys.iter().map(String::as_str).collect();
    let (known, skipped) = blocking(|| {
        let known = store.ledger_entries(&collector.name, &key_refs)?;
        Ok::<_, IngestError>((known, known_skips(collector, store, &keys, rules)?))
    })?;
    let unknown: Vec<M::Position> = positions
        .iter()
        .zip(&keys)
        .filter(|(_, key)| !known.contains_key(*key) && !skipped.contains(*key))
        .map(|(position, _)| position.clone())
        .collect();
    let mut sizes = mailbox.sizes(&unknown).await?.into_iter();
    Ok(keys
        .iter()
        .map(|key| match known.get(key) {
            Some(seen) if seen.record_id.is_some() => Step::Acknowledge,
            Some(_) => Step::SetAside,
            None if skipped.contains(key) => Step::Skipped,
            None => match sizes.next().flatten() {
                None => Step::Vanished,
                Some(size) if size > collector.max_message_size => Step::TooLarge(size),
                Some(size) => Step::Read(size),
            },
        })
        .collect())
}

/// The smallest first batch of a ramp (see [`cut`]): fewer messages than this are not worth
/// a commit of their own.
const RAMP_FIRST: usize = 16;

/// Cuts the steps into consecutive batches of at most `count` positions that read at most
/// `budget` bytes each, counting a too-large message as the [`HEADER_LIMIT`] bytes read of
/// it; a message larger than the budget is read in a batch of its own.
///
/// The first batches ramp up to `count`: an eighth of it (at least [`RAMP_FIRST`]), then
/// twice as many each time. The writer, the stage a backlog waits on, can only start once
/// the first batch is read and decoded; with 200 messages that took ~50 ms of a 5,000-message
/// drain's ~650 ms, with 25 it takes a few, and each next batch is read and decoded while the
/// one before it commits.
pub(super) fn cut(steps: &[Step], count: usize, budget: u64) -> Vec<Range<usize>> {
    let mut batches = Vec::new();
    let (mut start, mut bytes) = (0, 0);
    let mut limit = (count / 8).max(RAMP_FIRST).min(count);
    for (i, step) in steps.iter().enumerate() {
        let cost = match *step {
            Step::Read(size) => size,
            Step::TooLarge(_) => HEADER_LIMIT as u64,
            _ => 0,
        };
        if i - start >= limit || (cost > 0 && bytes > 0 && bytes + cost > budget) {
            batches.push(start..i);
            (start, bytes) = (i, 0);
            limit = (limit * 2).min(count);
        }
        bytes += cost;
    }
    if start < steps.len() {
        batches.push(start..steps.len());
    }
    batches
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn batches_are_cut_by_bytes_and_a_message_over_the_budget_goes_alone() {
        use Step::*;
        let steps = [
            Read(40),
            Acknowledge,
            Read(50),
            Read(20),
            SetAside,
            Read(150),
            Vanished,
            Read(10),
            TooLarge(10_000),
        ];
        assert_eq!(cut(&steps, 100, 100), [0..3, 3..5, 5..7, 7..8, 8..9]);
        assert_eq!(cut(&steps, 100, 1_000_000), vec![(0..9)]);
        assert_eq!(cut(&[SetAside, Acknowledge], 100, 1), vec![(0..2)]);
        assert!(cut(&[], 100, 100).is_empty());
        // And by count, whatever each position costs.
        assert_eq!(cut(&steps, 4, 1_000_000), [0..4, 4..8, 8..9]);
        assert_eq!(cut(&steps, 2, 100), [0..2, 2..4, 4..6, 6..8, 8..9]);
        // Each too-large message costs the header bytes read of it.
        let headers = HEADER_LIMIT as u64;
        assert_eq!(cut(&[TooLarge(1), TooLarge(1)], 100, headers), [0..1, 1..2]);
    }

    #[test]
    fn the_first_batches_ramp_up_to_the_batch_size() {
        let steps = vec![Step::Read(10); 1000];
        let sizes: Vec<usize> = cut(&steps, 200, 1_000_000)
            .iter()
            .map(|r| r.len())
            .collect();
        assert_eq!(sizes, [25, 50, 100, 200, 200, 200, 200, 25]);
        // Small batch sizes are kept as they are.
        let sizes: Vec<usize> = cut(&steps[..7], 2, 1_000_000)
            .iter()
            .map(|r| r.len())
            .collect();
        assert_eq!(sizes, [2, 2, 2, 1]);
    }
}
