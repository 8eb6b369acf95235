//! The benches' corpus (tests/kit/mail.rs) is what they claim to measure: the same bytes on
//! every run, 3–5 KB each, and every message an order the decoder accepts whole.

use mailintake::decode::DecodeRules;
use mailintake::domain::Inn;
use mailintake::ingest::{Mapped, prepare};
use mailintake::mapping::PayloadFormat;

use crate::kit::mail::{Corpus, MAX_MESSAGE_BYTES, MIN_MESSAGE_BYTES, Rng, inn_pool};

#[test]
fn generated_inns_are_valid() {
    let mut rng = Rng::seeded();
    for inn in inn_pool(&mut rng) {
        assert!(Inn::parse(inn.as_str()).is_valid(), "{inn}");
    }
}

#[test]
fn corpus_is_deterministic_sized_and_accepted() {
    let corpus = Corpus::generate(60);
    assert_eq!(corpus.messages, Corpus::generate(60).messages);
    assert_eq!(corpus.len(), 60);
    let rules = DecodeRules::default();
    let mut decoded_lines = 0;
    for (raw, lines) in corpus.messages.iter().zip(&corpus.lines) {
        assert!((MIN_MESSAGE_BYTES..=MAX_MESSAGE_BYTES).contains(&raw.len()));
        match prepare(raw, &rules, &PayloadFormat::OrderJson).mapped {
            Mapped::Accept(record) => {
                assert_eq!(record.lines.len(), *lines);
                assert!(record.date.is_some() && record.warnings.is_empty());
                decoded_lines += record.lines.len();
            }
            other => panic!("not accepted: {other:?}"),
        }
    }
    assert_eq!(decoded_lines, corpus.total_lines());
    assert!(
        corpus.trimmed * 10 < corpus.len(),
        "the 5 KB cap drops extra works from few orders: {}",
        corpus.trimmed
    );
}
