//! The pure core of a pass: decode and map one message, or a batch on every core.

use crate::decode::{DecodeRules, Envelope, Fingerprint, Verdict, decode_message};
use crate::mapping::{PayloadFormat, Record};

/// What decoding and mapping made of one message: the input of the commit.
#[derive(Debug, Clone, PartialEq)]
pub enum Mapped {
    /// Not for us (decode's [`Verdict::Skipped`]); left untouched, never committed.
    Skip(String),
    /// For us but unusable (decode's [`Verdict::Quarantined`], or the payload did not map).
    Quarantine(String),
    /// For us, with its record.
    Accept(Box<Record>),
}

/// A decoded and mapped message.
#[derive(Debug, Clone, PartialEq)]
pub struct Prepared {
    pub envelope: Envelope,
    pub mapped: Mapped,
}

/// Decodes and maps one raw message (the pure core of a pass; also `parse` and `retry`).
pub fn prepare(raw: &[u8], rules: &DecodeRules, format: &PayloadFormat) -> Prepared {
    let decoded = decode_message(raw, rules);
    let mapped = match decoded.verdict {
        Verdict::Skipped(reason) => Mapped::Skip(reason),
        Verdict::Quarantined(reason) => Mapped::Quarantine(reason),
        Verdict::Matched { order_ref, payload } => {
            match format.map(&payload, order_ref, &decoded.envelope) {
                Ok(record) => Mapped::Accept(Box::new(record)),
                Err(e) => {
                    Mapped::Quarantine(format!("attachment `{}`: {e}", payload.attachment_name))
                }
            }
        }
    };
    Prepared {
        envelope: decoded.envelope,
        mapped,
    }
}

/// What a message becomes when the decoder panicked on it: quarantined, known only by its
/// fingerprint.
fn decoder_failed(raw: &[u8]) -> Prepared {
    Prepared {
        envelope: Envelope {
            message_id: None,
            subject: None,
            fingerprint: Fingerprint::of(raw),
        },
        mapped: Mapped::Quarantine(
            "the decoder failed on this message (internal error); kept for inspection".into(),
        ),
    }
}

/// [`prepare`], but a panic in a parser becomes a quarantine reason: one poisoned message
/// must not take the daemon down and then crash it again on every restart.
pub fn prepare_guarded(raw: &[u8], rules: &DecodeRules, format: &PayloadFormat) -> Prepared {
    std::panic::catch_unwind(|| prepare(raw, rules, format)).unwrap_or_else(|_| decoder_failed(raw))
}

/// Decodes a batch on every core (decoding is pure); one [`Prepared`] per message, in order.
pub(super) fn prepare_all(
    raws: &[&[u8]],
    rules: &DecodeRules,
    format: &PayloadFormat,
) -> Vec<Prepared> {
    const MIN_PER_THREAD: usize = 16;
    let threads = std::thread::available_parallelism()
        .map_or(1, std::num::NonZero::get)
        .min(raws.len() / MIN_PER_THREAD)
        .max(1);
    prepare_on(threads, raws, |raw| prepare_guarded(raw, rules, format))
}

/// Runs `prepare` over `raws` on `threads` threads, keeping the order. A worker that fails
/// anyway (its panic escaped `prepare`) quarantines exactly its own messages, so the result
/// always lines up with `raws`.
fn prepare_on(
    threads: usize,
    raws: &[&[u8]],
    prepare: impl Fn(&[u8]) -> Prepared + Sync,
) -> Vec<Prepared> {
    if threads <= 1 {
        return raws.iter().map(|raw| prepare(raw)).collect();
    }
    let prepare = &prepare;
    let per_thread = raws.len().div_ceil(threads);
    std::thread::scope(|scope| {
        let workers: Vec<_> = raws
            .chunks(per_thread)
            .map(|part| {
                let worker = scope.spawn(move || part.iter().map(|raw| prepare(raw)).collect());
                (part, worker)
            })
            .collect();
        workers
            .into_iter()
            .flat_map(|(part, worker)| {
                worker.join().unwrap_or_else(|_| {
                    part.iter()
                        .map(|raw| decoder_failed(raw))
                        .collect::<Vec<_>>()
                })
            })
            .collect()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A stand-in result that names the message it came from.
    fn named(raw: &[u8]) -> Prepared {
        Prepared {
            mapped: Mapped::Skip(String::from_utf8_lossy(raw).into_owned()),
            ..decoder_failed(raw)
        }
    }

    #[test]
    fn a_failed_worker_quarantines_its_own_messages_and_the_rest_stay_aligned() {
        let names: Vec<String> = (0..10).map(|i| format!("m{i}")).collect();
        let raws: Vec<&[u8]> = names.iter().map(|n| n.as_bytes()).collect();
        // Four workers of three messages (the last has one); the second one dies on m4.
        let prepared = prepare_on(4, &raws, |raw| {
            assert_ne!(raw, b"m4", "injected failure");
            named(raw)
        });
        assert_eq!(prepared.len(), raws.len());
        for (i, (raw, p)) in raws.iter().zip(&prepared).enumerate() {
            assert_eq!(p.envelope.fingerprint, Fingerprint::of(raw), "message {i}");
            match (i, &p.mapped) {
                (3..=5, Mapped::Quarantine(reason)) => assert!(reason.contains("decoder failed")),
                (3..=5, other) => panic!("message {i} of the failed worker: {other:?}"),
                (_, Mapped::Skip(name)) => assert_eq!(name, &names[i]),
                (_, other) => panic!("message {i}: {other:?}"),
            }
        }
    }

    #[test]
    fn one_thread_and_many_threads_give_the_same_batch() {
        let names: Vec<String> = (0..40).map(|i| format!("m{i}")).collect();
        let raws: Vec<&[u8]> = names.iter().map(|n| n.as_bytes()).collect();
        assert_eq!(prepare_on(1, &raws, named), prepare_on(3, &raws, named));
    }
}
