//! `mailintake parse --json` on every sample e-mail gives exactly the expected result
//! (samples/cases.json, written from the decoding rules, not from the decoder's output).

use serde_json::Value;

use crate::kit::sandbox::{assert_subset, repo, run_bare, success_json};

#[test]
fn every_sample_decodes_to_its_expected_result() {
    let cases: Vec<Value> =
        serde_json::from_slice(&std::fs::read(repo().join("samples/cases.json")).unwrap()).unwrap();
    assert!(
        cases.len() >= 28,
        "the sample set shrank to {}",
        cases.len()
    );
    for case in &cases {
        let file = repo().join("samples").join(case["file"].as_str().unwrap());
        let out = success_json(run_bare(&["parse", "--json", file.to_str().unwrap()]));
        let name = case["file"].as_str().unwrap();
        assert_eq!(out["status"], case["status"], "{name}: {out}");
        match case["status"].as_str().unwrap() {
            "accepted" => {
                assert!(out.get("reason").is_none(), "{name}: {out}");
                assert_subset(&case["expect"], &out["record"], name);
            }
            _ => {
                let reason = out["reason"].as_str().unwrap().to_lowercase();
                let want = case["reason_contains"].as_str().unwrap().to_lowercase();
                assert!(
                    reason.contains(&want),
                    "{name}: reason `{reason}` lacks `{want}`"
                );
                assert!(out.get("record").is_none(), "{name}: {out}");
            }
        }
    }
}

#[test]
fn parse_keeps_the_payload_verbatim_and_reports_the_seed_exactly() {
    let file = repo().join("samples/eml/01-seed-order.eml");
    let out = success_json(run_bare(&["parse", "--json", file.to_str().unwrap()]));
    let record = &out["record"];
    assert_eq!(record["date"], "2019-05-29T15:15:00");
    assert_eq!(record["lines"][0]["extra_work"][2]["kind"], "Карманы");
    let payload = record["payload"].as_str().unwrap();
    assert!(payload.contains("\"Разрешеине\": \"360 dpi\""), "{payload}");
    assert!(payload.starts_with('{'));
}

#[test]
fn parse_of_a_missing_file_fails_but_a_bad_message_does_not() {
    let out = run_bare(&["parse", "--json", "/nonexistent/x.eml"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("/nonexistent/x.eml"));
    let dir = tempfile::tempdir().unwrap();
    let junk = dir.path().join("junk.eml");
    std::fs::write(&junk, b"\x00\x01 not a message at all").unwrap();
    let out = success_json(run_bare(&["parse", "--json", junk.to_str().unwrap()]));
    assert_ne!(out["status"], "accepted");
}

#[test]
fn parse_with_a_collector_uses_its_keyword() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("c.toml");
    std::fs::write(
        &config,
        "[[queue]]\nname = \"q\"\n[[collector]]\nname = \"shop\"\nqueue = \"q\"\nsubject-keyword = \"Fwd\"\n[collector.maildir]\npath = \"md\"\n",
    )
    .unwrap();
    let parse_as_shop = |sample: &str| {
        let file = repo().join("samples/eml").join(sample);
        success_json(run_bare(&[
            "--config",
            config.to_str().unwrap(),
            "parse",
            "--json",
            "--collector",
            "shop",
            file.to_str().unwrap(),
        ]))
    };
    assert_eq!(
        parse_as_shop("04-fwd-inline.eml")["record"]["source"]["order_ref"],
        "ORDER"
    );
    assert_eq!(parse_as_shop("01-seed-order.eml")["status"], "skipped");
}

/// The shipped collectors.toml maps the EMES consult and fault forms (samples/emes) exactly
/// as samples/emes-cases.json says.
#[test]
fn every_emes_sample_maps_through_the_shipped_config() {
    let config = repo().join("collectors.toml");
    let cases: Vec<Value> =
        serde_json::from_slice(&std::fs::read(repo().join("samples/emes-cases.json")).unwrap())
            .unwrap();
    assert!(cases.len() >= 11, "{}", cases.len());
    for case in &cases {
        let name = case["file"].as_str().unwrap();
        let file = repo().join("samples").join(name);
        let args = [
            "--config",
            config.to_str().unwrap(),
            "parse",
            "--json",
            "--collector",
            case["collector"].as_str().unwrap(),
            file.to_str().unwrap(),
        ];
        let out = success_json(run_bare(&args));
        assert_eq!(out["status"], case["status"], "{name}: {out}");
        if case["status"] == "accepted" {
            assert_subset(&case["expect"], &out["record"], name);
        } else {
            let reason = out["reason"].as_str().unwrap().to_lowercase();
            let want = case["reason_contains"].as_str().unwrap().to_lowercase();
            assert!(reason.contains(&want), "{name}: `{reason}` lacks `{want}`");
        }
    }
}
