//! Modified UTF-7 (RFC 3501 5.1.3): how IMAP writes a folder name that is not plain ASCII,
//! e.g. `Обработано` as `&BB4EMQRABDAEMQQ+BEIEMAQ9BD4-`.
//!
//! Printable ASCII stands for itself, except `&`, written `&-`. Anything else is UTF-16
//! (big-endian) in base64 with `,` for `/` and no padding, between `&` and `-`. We never send
//! raw UTF-8 names: that needs `ENABLE UTF8=ACCEPT`, and this encoding works on every server.

const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+,";

/// Why a name from the server is not valid modified UTF-7.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{0}` is not a modified UTF-7 folder name")]
pub struct Utf7Error(pub String);

fn is_direct(c: char) -> bool {
    (' '..='~').contains(&c) && c != '&'
}

/// Appends the base64 run for `units` (UTF-16 code units), with its `&` and `-`.
fn push_run(out: &mut String, units: &[u16]) {
    let bytes: Vec<u8> = units.iter().flat_map(|u| u.to_be_bytes()).collect();
    out.push('&');
    for chunk in bytes.chunks(3) {
        let mut group = [0u8; 3];
        group[..chunk.len()].copy_from_slice(chunk);
        let bits = u32::from_be_bytes([0, group[0], group[1], group[2]]);
        // 1 byte -> 2 characters, 2 -> 3, 3 -> 4: only the characters carrying real bits.
        for i in 0..=chunk.len() {
            let index = (bits >> (18 - 6 * i)) & 63;
            out.push(char::from(ALPHABET[index as usize]));
        }
    }
    out.push('-');
}

/// `name` (UTF-8) as IMAP writes it.
pub fn encode(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    let mut run: Vec<u16> = Vec::new();
    for c in name.chars() {
        if is_direct(c) || c == '&' {
            if !run.is_empty() {
                push_run(&mut out, &run);
                run.clear();
            }
            if c == '&' {
                out.push_str("&-");
            } else {
                out.push(c);
            }
        } else {
            run.extend_from_slice(c.encode_utf16(&mut [0; 2]));
        }
    }
    if !run.is_empty() {
        push_run(&mut out, &run);
    }
    out
}

/// A name as the server writes it, in UTF-8.
pub fn decode(name: &str) -> Result<String, Utf7Error> {
    let bad = || Utf7Error(name.to_string());
    let mut out = String::with_capacity(name.len());
    let mut rest = name;
    while let Some(c) = rest.chars().next() {
        if c != '&' {
            if !is_direct(c) {
                return Err(bad());
            }
            out.push(c);
            rest = &rest[c.len_utf8()..];
            continue;
        }
        let end = rest.find('-').ok_or_else(bad)?;
        let run = &rest[1..end];
        rest = &rest[end + 1..];
        if run.is_empty() {
            out.push('&');
            continue;
        }
        let mut bytes = Vec::with_capacity(run.len() * 3 / 4);
        let (mut bits, mut count) = (0u32, 0u32);
        for b in run.bytes() {
            let value = ALPHABET.iter().position(|a| *a == b).ok_or_else(bad)?;
            bits = (bits << 6) | value as u32;
            count += 6;
            if count >= 8 {
                count -= 8;
                bytes.push((bits >> count) as u8);
                bits &= (1 << count) - 1;
            }
        }
        // Leftover bits are padding and must be zero; the bytes must be whole UTF-16 units.
        if bits != 0 || bytes.len() % 2 != 0 {
            return Err(bad());
        }
        let units: Vec<u16> = bytes
            .chunks(2)
            .map(|p| u16::from_be_bytes([p[0], p[1]]))
            .collect();
        let text = String::from_utf16(&units).map_err(|_| bad())?;
        // NOTE: a run that only holds printable ASCII is not the canonical form; accept it
        // anyway, servers are not ours to correct.
        out.push_str(&text);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::{decode, encode};

    #[test]
    fn ascii_stays_and_ampersand_is_escaped() {
        assert_eq!(encode("Processed"), "Processed");
        assert_eq!(encode("INBOX.Sales & Co"), "INBOX.Sales &- Co");
        assert_eq!(decode("INBOX.Sales &- Co").unwrap(), "INBOX.Sales & Co");
    }

    #[test]
    fn cyrillic_and_the_rfc_example_encode_as_servers_write_them() {
        // RFC 3501 5.1.3's example.
        assert_eq!(
            encode("~peter/mail/台北/日本語"),
            "~peter/mail/&U,BTFw-/&ZeVnLIqe-"
        );
        // What Dovecot lists for a folder created as `Обработано`.
        assert_eq!(encode("Обработано"), "&BB4EMQRABDAEMQQ+BEIEMAQ9BD4-");
        assert_eq!(encode("Архив/2026"), "&BBAEQARFBDgEMg-/2026");
    }

    #[test]
    fn encoding_round_trips_astral_characters_and_runs_of_every_length() {
        for name in [
            "😀",
            "a😀b",
            "Ж",
            "ЖЖ",
            "ЖЖЖ",
            "ЖЖЖЖ",
            "Обработано & 🚀 done",
            "é-è",
        ] {
            let encoded = encode(name);
            assert!(encoded.is_ascii(), "{encoded}");
            assert_eq!(decode(&encoded).unwrap(), name, "{encoded}");
        }
    }

    #[test]
    fn malformed_names_are_refused() {
        for bad in ["&BB4", "&BB4*-", "&BA-", "Ж", "&2D3-", "tab\there"] {
            assert!(decode(bad).is_err(), "{bad:?} was accepted");
        }
    }
}
