//! Hostile mail, generated: what an attacker or a broken mailer sends, for the standing
//! hostile-input check (`tests/integration/hostile.rs`).
//!
//! [`hostile_corpus`] mixes valid orders with adversarial messages (attached messages
//! nested thousands deep, huge headers, encoded-word bombs, broken transfer encodings,
//! bogus charsets, deep JSON, numbers like `1e999`, tens of thousands of parts, broken
//! boundaries) and with random byte mutations of valid orders. It draws from the kit's
//! seeded [`Rng`], so the corpus is the same on every run and a failure names a message
//! that can be rebuilt.

use super::mail::{Rng, order_message};

/// One generated message and what made it (for failure messages).
pub struct Hostile {
    pub kind: &'static str,
    pub raw: Vec<u8>,
}

/// `count` messages, the same ones on every run.
pub fn hostile_corpus(count: usize) -> Vec<Hostile> {
    let mut rng = Rng::seeded();
    (0..count).map(|n| hostile(&mut rng, n)).collect()
}

const KINDS: [&str; 14] = [
    "valid order",
    "mutated order",
    "nested messages",
    "nested encoded messages",
    "nested digests",
    "huge header",
    "encoded-word bomb",
    "bad transfer encoding",
    "bogus charset",
    "deep JSON",
    "extreme numbers",
    "many parts",
    "broken boundaries",
    "forwarded order",
];

fn hostile(rng: &mut Rng, n: usize) -> Hostile {
    let kind = *rng.pick(&KINDS);
    let order = || order_message(n, "7709745454", 1 + n % 3);
    let raw = match kind {
        "valid order" => order(),
        "mutated order" => mutate(rng, order()),
        "nested messages" => {
            let levels = *rng.pick(&[2, 31, 32, 33, 200, 5_000]);
            let inner = String::from_utf8_lossy(&order()).into_owned();
            let mut raw = format!("Subject: ORDER: {n}\r\nContent-Type: message/rfc822\r\n\r\n")
                .repeat(levels);
            raw.push_str(&inner);
            raw.into_bytes()
        }
        "nested encoded messages" => {
            let mut message = String::from_utf8_lossy(&order()).into_owned();
            for level in 0..rng.range(1, 5) {
                let body = base64(message.as_bytes());
                message = format!(
                    "Subject: ORDER: {n}\r\nContent-Type: multipart/mixed; boundary=\"e{level}\"\r\n\r\n--e{level}\r\nContent-Type: message/rfc822\r\nContent-Transfer-Encoding: base64\r\n\r\n{body}\r\n--e{level}--\r\n"
                );
            }
            message.into_bytes()
        }
        "nested digests" => {
            let mut message = format!("Subject: ORDER: {n}\r\n\r\nhi");
            for level in 0..rng.range(1, 80) {
                message = format!(
                    "Subject: ORDER: {n}\r\nContent-Type: multipart/digest; boundary=\"d{level}\"\r\n\r\n--d{level}\r\n\r\n{message}\r\n--d{level}--\r\n"
                );
            }
            message.into_bytes()
        }
        "huge header" => {
            let scale = big(rng);
            let mut head = format!("Subject: ORDER: {n} ");
            if rng.chance(50) {
                head.push_str(&"x".repeat(20_000 * scale));
                head.push_str("\r\n");
            } else {
                head.push_str("\r\n");
                for i in 0..2_000 * scale {
                    head.push_str(&format!("X-Filler-{i}: {}\r\n", "y".repeat(10)));
                }
            }
            prepend(&head, order())
        }
        "encoded-word bomb" => {
            let words = rng.range(100, 2_000) as usize * big(rng);
            let charset = *rng.pick(&["utf-8", "koi8-r", "x-unknown", "utf-16", "gb18030"]);
            let word = format!("=?{charset}?B?0J/RgNC40LLQtdGC?= ");
            let subject = format!("Subject: ORDER: {n} {}\r\n", word.repeat(words));
            let name = format!("=?{charset}?Q?=D0=9F=?= ").repeat(words / 10);
            attachment(&subject, &format!("name=\"{name}\""), "8bit", b"{}")
        }
        "bad transfer encoding" => {
            let (cte, body): (&str, &[u8]) = *rng.pick(&[
                ("base64", b"eyJh!!!===*&^%IjogMX0=\r\n===" as &[u8]),
                ("quoted-printable", b"{\"a\": =ZZ=\r\n=4=\r\n=" as &[u8]),
                ("x-uuencode", b"begin 644 o.json\r\n#>R)A\r\nend" as &[u8]),
                ("base64", b"" as &[u8]),
                ("binary", b"\0\0\xff\xfe{\"a\":1}" as &[u8]),
            ]);
            attachment(&format!("Subject: ORDER: {n}\r\n"), "", cte, body)
        }
        "bogus charset" => {
            let charset = *rng.pick(&["x-bogus", "utf-7", "utf-16", "utf-32", "", "\"\"", "ибм"]);
            let json = "{\"Тема\": \"Заказ\", \"Телефон\": \"+7 900 1\"}".as_bytes();
            attachment(
                &format!("Subject: ORDER: {n}\r\n"),
                &format!("charset={charset}"),
                "8bit",
                json,
            )
        }
        "deep JSON" => {
            let depth = rng.range(100, 20_000) as usize;
            let json = format!(
                "{{\"Тема\": \"x\", \"Описание\": {}{}}}",
                "[".repeat(depth),
                "]".repeat(depth)
            );
            attachment(
                &format!("Subject: ORDER: {n}\r\n"),
                "",
                "8bit",
                json.as_bytes(),
            )
        }
        "extreme numbers" => {
            let number = *rng.pick(&[
                "1e999",
                "-1e999",
                "1e-999",
                "123456789012345678901234567890123456789",
                "0.0000000000000000000000000000001",
                "\"1e999\"",
                "\"NaN\"",
                "\"inf\"",
            ]);
            let json = format!(
                "{{\"Тема\": \"x\", \"Телефон\": {number}, \"ИНН\": {number}, \"Товары\": [{{\"Номенклатура\": \"a\", \"Количество\": {number}, \"Цена\": {number}, \"Ширина\": {number}}}]}}"
            );
            attachment(
                &format!("Subject: ORDER: {n}\r\n"),
                "",
                "8bit",
                json.as_bytes(),
            )
        }
        "many parts" => {
            let parts = rng.range(10, 500) as usize * big(rng);
            let mut raw = format!(
                "Subject: ORDER: {n}\r\nContent-Type: multipart/mixed; boundary=\"p\"\r\n\r\n"
            );
            for i in 0..parts {
                raw.push_str(&format!(
                    "--p\r\nContent-Type: text/plain; name=\"part-{i}-{}.txt\"\r\n\r\nnot json {i}\r\n",
                    "n".repeat(i % 300)
                ));
            }
            raw.push_str("--p--\r\n");
            raw.into_bytes()
        }
        "broken boundaries" => {
            let variant = rng.range(0, 3);
            let body = match variant {
                0 => "--b\r\nContent-Type: multipart/mixed; boundary=\"b\"\r\n\r\n--b\r\n--b\r\n",
                1 => {
                    "--b\r\nContent-Type: message/rfc822\r\n\r\nContent-Type: multipart/mixed; boundary=\"\"\r\n\r\n----\r\n"
                }
                2 => "--b--\r\n--b\r\nContent-Type: text/plain; name=o.json\r\n\r\n{\"a\": 1}",
                _ => "",
            };
            format!(
                "Subject: ORDER: {n}\r\nContent-Type: multipart/mixed; boundary=\"b\"\r\n\r\n{}",
                body.repeat(rng.range(1, 500) as usize)
            )
            .into_bytes()
        }
        "forwarded order" => {
            let inner = order();
            format!(
                "Subject: Fwd: ORDER: {n}\r\nContent-Type: multipart/mixed; boundary=\"f\"\r\n\r\n--f\r\nContent-Type: text/plain\r\n\r\nfwd\r\n--f\r\nContent-Type: message/rfc822\r\n\r\n{}\r\n--f--\r\n",
                String::from_utf8_lossy(&inner)
            )
            .into_bytes()
        }
        other => unreachable!("{other}"),
    };
    Hostile { kind, raw }
}

/// How many times the usual size a bomb is: mostly once, sometimes ten times, so the corpus
/// holds a few really big ones and still decodes in seconds in a debug build.
fn big(rng: &mut Rng) -> usize {
    if rng.chance(5) { 10 } else { 1 }
}

/// A message with one attached file `o.json` of the given Content-Type parameters,
/// transfer encoding and body (taken as is).
fn attachment(head: &str, params: &str, cte: &str, body: &[u8]) -> Vec<u8> {
    let mut raw = format!(
        "{head}Content-Type: multipart/mixed; boundary=\"a\"\r\n\r\n--a\r\nContent-Type: text/plain\r\n\r\nsee file\r\n--a\r\nContent-Type: application/json; {params}\r\nContent-Disposition: attachment; filename=\"o.json\"\r\nContent-Transfer-Encoding: {cte}\r\n\r\n"
    )
    .into_bytes();
    raw.extend_from_slice(body);
    raw.extend_from_slice(b"\r\n--a--\r\n");
    raw
}

fn prepend(head: &str, message: Vec<u8>) -> Vec<u8> {
    let mut raw = head.as_bytes().to_vec();
    raw.extend(message);
    raw
}

/// Random damage: flipped, inserted, deleted and duplicated bytes, or a cut.
fn mutate(rng: &mut Rng, mut raw: Vec<u8>) -> Vec<u8> {
    for _ in 0..rng.range(1, 12) {
        let len = raw.len() as u64;
        if len < 2 {
            break;
        }
        let at = rng.range(0, len - 1) as usize;
        match rng.range(0, 5) {
            0 => raw[at] = rng.next() as u8,
            1 => raw.insert(at, *rng.pick(b"\r\n-=?\"{[\0\xff:;")),
            2 => {
                raw.remove(at);
            }
            3 => {
                let end = (at + rng.range(1, 200) as usize).min(raw.len());
                let piece = raw[at..end].to_vec();
                raw.splice(at..at, piece);
            }
            4 => raw.truncate(at.max(1)),
            _ => raw[at] ^= 0x20,
        }
    }
    raw
}

fn base64(bytes: &[u8]) -> String {
    let text = mail_builder::encoders::base64::base64_encode(bytes).unwrap();
    String::from_utf8(text).unwrap()
}
