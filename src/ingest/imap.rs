//! A collector pass over an IMAP mailbox.
//!
//! Incremental: the collector remembers UIDVALIDITY and the highest UID it has committed,
//! and asks only for newer messages (plus older unseen ones with the keyword that the ledger
//! does not know, e.g. ones a user marked unread). Each batch is fetched with BODY.PEEK[],
//! committed, and only then acknowledged on the server; the position is saved after the
//! commit. A crash anywhere re-reads at most one batch, which the ledger recognises.

use chrono::{Duration as Days, Utc};
use tracing::{info, warn};

use super::{CollectReport, Disposition, Fetched, IngestError, Shutdown, commit_messages};
use crate::config::{AfterAction, Collector, ImapConfig};
use crate::source::imap::{ImapMailbox, QUARANTINE_KEYWORD};
use crate::store::Store;

fn position_key(uidvalidity: u32, uid: u32) -> String {
    format!("{uidvalidity}:{uid}")
}

/// Applies the after-processing action to stored messages.
async fn acknowledge(
    mailbox: &mut ImapMailbox,
    collector: &Collector,
    uids: &[u32],
) -> Result<(), IngestError> {
    match &collector.after.action {
        AfterAction::Seen => mailbox.add_flags(uids, "\\Seen").await?,
        AfterAction::Move(folder) => mailbox.move_to(uids, folder).await?,
        AfterAction::Delete => mailbox.delete(uids).await?,
    }
    Ok(())
}

/// Keeps quarantined messages in the mailbox, marked so they are not fetched again.
async fn set_aside(
    mailbox: &mut ImapMailbox,
    collector: &Collector,
    uids: &[u32],
) -> Result<(), IngestError> {
    match &collector.after.quarantine_move_to {
        Some(folder) => mailbox.move_to(uids, folder).await?,
        None => mailbox.add_flags(uids, QUARANTINE_KEYWORD).await?,
    }
    Ok(())
}

/// UIDs to look at this pass, ascending.
async fn candidates(
    mailbox: &mut ImapMailbox,
    collector: &Collector,
    last_uid: u32,
) -> Result<Vec<u32>, IngestError> {
    // NOTE: `N:*` always matches the highest UID even when it is below N; filter it out.
    let mut uids: Vec<u32> = mailbox
        .search(&format!("UID {}:*", last_uid + 1))
        .await?
        .into_iter()
        .filter(|uid| *uid > last_uid)
        .collect();
    if last_uid > 0 {
        // The keyword was validated as one word without quotes or backslashes.
        let query = format!(
            "UID 1:{last_uid} UNSEEN UNKEYWORD {QUARANTINE_KEYWORD} SUBJECT \"{}\"",
            collector.rules.subject_keyword
        );
        uids.extend(mailbox.search(&query).await?);
        uids.sort_unstable();
        uids.dedup();
    }
    Ok(uids)
}

pub(super) async fn collect(
    collector: &Collector,
    config: &ImapConfig,
    store: &mut Store,
    shutdown: &Shutdown,
) -> Result<CollectReport, IngestError> {
    let mut report = CollectReport::for_collector(&collector.name);
    let mut mailbox = ImapMailbox::open(config).await?;
    let uidvalidity = mailbox.uidvalidity;
    let state = tokio::task::block_in_place(|| store.collector_state(&collector.name))?;
    let mut last_uid = match state
        .as_ref()
        .and_then(|s| Some((s.uidvalidity?, s.last_uid?)))
    {
        Some((known, uid)) if known == i64::from(uidvalidity) => u32::try_from(uid).unwrap_or(0),
        Some((known, _)) => {
            warn!(collector = %collector.name, old = known, new = uidvalidity, "UIDVALIDITY changed; rescanning the mailbox");
            0
        }
        None => 0,
    };
    let uids = candidates(&mut mailbox, collector, last_uid).await?;
    for batch in uids.chunks(collector.batch_size) {
        if shutdown.is_cancelled() {
            break;
        }
        let keys: Vec<String> = batch
            .iter()
            .map(|uid| position_key(uidvalidity, *uid))
            .collect();
        let key_refs: Vec<&str> = keys.iter().map(String::as_str).collect();
        let known =
            tokio::task::block_in_place(|| store.ledger_entries(&collector.name, &key_refs))?;
        let mut to_ack = Vec::new();
        let mut to_set_aside = Vec::new();
        let mut to_fetch = Vec::new();
        for (uid, key) in batch.iter().zip(&keys) {
            match known.get(key) {
                Some(seen) if seen.record_id.is_some() => {
                    report.fetched += 1;
                    report.duplicates += 1;
                    to_ack.push(*uid);
                }
                Some(_) => to_set_aside.push(*uid),
                None => to_fetch.push(*uid),
            }
        }
        let fetched = mailbox.fetch(&to_fetch).await?;
        let fetched_uids: Vec<u32> = fetched.iter().map(|(uid, _)| *uid).collect();
        let messages = fetched
            .into_iter()
            .map(|(uid, raw)| Fetched {
                key: position_key(uidvalidity, uid),
                raw,
            })
            .collect();
        let batch_max = batch.iter().copied().max().unwrap_or(0).max(last_uid);
        let dispositions = tokio::task::block_in_place(|| {
            let dispositions = commit_messages(collector, store, messages, &mut report)?;
            store.save_position(&collector.name, uidvalidity, batch_max)?;
            Ok::<_, IngestError>(dispositions)
        })?;
        last_uid = batch_max;
        for (uid, disposition) in fetched_uids.into_iter().zip(dispositions) {
            match disposition {
                Disposition::Acknowledge => to_ack.push(uid),
                Disposition::Quarantined => to_set_aside.push(uid),
                Disposition::Leave => {}
            }
        }
        to_ack.sort_unstable();
        to_set_aside.sort_unstable();
        acknowledge(&mut mailbox, collector, &to_ack).await?;
        set_aside(&mut mailbox, collector, &to_set_aside).await?;
    }
    if let Some(days) = collector.after.delete_after_days
        && !shutdown.is_cancelled()
    {
        expunge_old(&mut mailbox, collector, store, days).await?;
    }
    mailbox.logout().await;
    Ok(report)
}

/// Expunges processed messages (those the ledger links to a record) older than `days`.
/// Messages that are not ours are never touched.
async fn expunge_old(
    mailbox: &mut ImapMailbox,
    collector: &Collector,
    store: &mut Store,
    days: u32,
) -> Result<(), IngestError> {
    let before = (Utc::now() - Days::days(i64::from(days)))
        .format("%d-%b-%Y")
        .to_string();
    let old = mailbox.search(&format!("BEFORE {before}")).await?;
    if old.is_empty() {
        return Ok(());
    }
    let uidvalidity = mailbox.uidvalidity;
    let keys: Vec<String> = old
        .iter()
        .map(|uid| position_key(uidvalidity, *uid))
        .collect();
    let key_refs: Vec<&str> = keys.iter().map(String::as_str).collect();
    let known = tokio::task::block_in_place(|| store.ledger_entries(&collector.name, &key_refs))?;
    let processed: Vec<u32> = old
        .iter()
        .zip(&keys)
        .filter(|(_, key)| {
            known
                .get(*key)
                .is_some_and(|entry| entry.record_id.is_some())
        })
        .map(|(uid, _)| *uid)
        .collect();
    if !processed.is_empty() {
        info!(collector = %collector.name, count = processed.len(), days, "expunging processed messages older than the limit");
        mailbox.delete(&processed).await?;
    }
    Ok(())
}
