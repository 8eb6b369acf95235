//! The pure core of a pass: decode and map one message, or a batch on every core.
//!
//! # Stack
//!
//! A stack overflow aborts the process, and no `catch_unwind` catches it, so how deep
//! decoding recurses is bounded by limits, not by luck: attached messages within attached
//! messages by [`MAX_NESTING`](crate::decode::nesting::MAX_NESTING) (checked before the
//! parser builds its tree), JSON by serde_json's recursion limit (128 levels, a parse error
//! beyond), templates and mapping not at all (they follow paths from the config with loops).
//! A test here runs the deepest message the limits allow through [`prepare`] on a 256 KiB
//! thread in a debug build. Batches decode on threads with
//! [`DECODE_STACK_BYTES`], set here on purpose rather than taken from the platform or
//! `RUST_MIN_STACK`; `parse` and `quarantine retry` decode on the main thread (8 MiB on Linux),
//! and tokio's workers have 2 MiB: all at least eight times what the test proves enough.

use crate::decode::reason::{MAX_QUOTED_CHARS, bounded, clip};
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

/// The stack of each thread that decodes a batch: sixteen times the 256 KiB the tests prove
/// enough for the deepest message the limits allow.
pub const DECODE_STACK_BYTES: usize = 4 << 20;

/// Decodes and maps one raw message (the pure core of a pass; also `parse` and `retry`).
/// Every reason is short and never empty ([`bounded`]).
pub fn prepare(raw: &[u8], rules: &DecodeRules, format: &PayloadFormat) -> Prepared {
    let decoded = decode_message(raw, rules);
    let mapped = match decoded.verdict {
        Verdict::Skipped(reason) => Mapped::Skip(reason),
        Verdict::Quarantined(reason) => Mapped::Quarantine(reason),
        Verdict::Matched { order_ref, payload } => {
            match format.map(&payload, order_ref, &decoded.envelope) {
                Ok(record) => Mapped::Accept(Box::new(record)),
                Err(e) => Mapped::Quarantine(bounded(format!(
                    "attachment `{}`: {e}",
                    clip(&payload.attachment_name, MAX_QUOTED_CHARS)
                ))),
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
            date: None,
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

/// Runs `prepare` over `raws` on `threads` threads of [`DECODE_STACK_BYTES`] (one thread
/// too: the caller's stack is not ours to size), keeping the order. A worker that fails
/// anyway (its panic escaped `prepare`, or it could not be started) quarantines exactly its
/// own messages, so the result always lines up with `raws`.
fn prepare_on(
    threads: usize,
    raws: &[&[u8]],
    prepare: impl Fn(&[u8]) -> Prepared + Sync,
) -> Vec<Prepared> {
    if raws.is_empty() {
        return Vec::new();
    }
    let prepare = &prepare;
    let per_thread = raws.len().div_ceil(threads.max(1));
    std::thread::scope(|scope| {
        let workers: Vec<_> = raws
            .chunks(per_thread)
            .map(|part| {
                let worker = std::thread::Builder::new()
                    .name("decode".into())
                    .stack_size(DECODE_STACK_BYTES)
                    .spawn_scoped(scope, move || {
                        part.iter().map(|raw| prepare(raw)).collect::<Vec<_>>()
                    });
                (part, worker)
            })
            .collect();
        workers
            .into_iter()
            .flat_map(|(part, worker)| {
                let done = worker
                    .map_err(|_| ())
                    .and_then(|w| w.join().map_err(|_| ()));
                done.unwrap_or_else(|()| {
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
    use crate::decode::nesting::MAX_NESTING;

    /// What the module doc promises every thread that decodes has, at the least.
    const PROVEN_STACK_BYTES: usize = 256 << 10;

    /// An order forwarded `levels` times, each forward a multipart with a note and the
    /// message before it; the order's JSON carries a value nested `json_levels` deep.
    fn forwarded(levels: usize, json_levels: usize) -> Vec<u8> {
        let deep = "[".repeat(json_levels) + &"]".repeat(json_levels);
        let json = format!(r#"{{"Тема": "Заказ", "Телефон": "+7 900 1", "x": {deep}}}"#);
        let mut message = format!(
            "Subject: ORDER: 9\r\nContent-Type: multipart/mixed; boundary=\"b0\"\r\n\r\n\
             --b0\r\nContent-Type: text/plain\r\n\r\nhi\r\n\
             --b0\r\nContent-Type: application/json\r\n\
             Content-Disposition: attachment; filename=\"o.json\"\r\n\r\n{json}\r\n--b0--\r\n"
        );
        for level in 1..=levels {
            message = format!(
                "Subject: Fwd: ORDER: 9\r\nContent-Type: multipart/mixed; boundary=\"b{level}\"\r\n\r\n\
                 --b{level}\r\nContent-Type: text/plain\r\n\r\nsee below\r\n\
                 --b{level}\r\nContent-Type: message/rfc822\r\n\r\n{message}\r\n--b{level}--\r\n"
            );
        }
        message.into_bytes()
    }

    fn on_small_stack(raw: Vec<u8>) -> Prepared {
        std::thread::Builder::new()
            .stack_size(PROVEN_STACK_BYTES)
            .spawn(move || prepare(&raw, &DecodeRules::default(), &PayloadFormat::default()))
            .unwrap()
            .join()
            .unwrap()
    }

    #[test]
    fn the_deepest_message_the_limits_allow_decodes_on_a_small_stack() {
        let prepared = on_small_stack(forwarded(MAX_NESTING, 126));
        let Mapped::Accept(record) = prepared.mapped else {
            panic!("{:?}", prepared.mapped);
        };
        assert_eq!(record.source.attachment_name.as_deref(), Some("o.json"));
        let prepared = on_small_stack(forwarded(MAX_NESTING, 200));
        assert!(
            matches!(&prepared.mapped, Mapped::Quarantine(r) if r.contains("recursion limit")),
            "{:?}",
            prepared.mapped
        );
    }

    #[test]
    fn one_level_more_is_quarantined_with_the_depth_and_the_limit() {
        let prepared = on_small_stack(forwarded(MAX_NESTING + 1, 1));
        assert_eq!(
            prepared.mapped,
            Mapped::Quarantine(format!(
                "attached messages are nested {} levels deep, limit {MAX_NESTING}; not parsed",
                MAX_NESTING + 1
            ))
        );
        assert_eq!(prepared.envelope.subject.as_deref(), Some("Fwd: ORDER: 9"));
    }

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
