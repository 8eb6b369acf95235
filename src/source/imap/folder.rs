//! Folder names as the admin writes them, resolved against the server's hierarchy.
//!
//! Servers differ: Dovecot's personal folders sit at the top (`Processed`, delimiter `.` or
//! `/`), Courier's and Cyrus's under `INBOX.` (`INBOX.Processed`), and a server refuses a name
//! outside its namespace (Courier: `NO Invalid mailbox name.`). So a name in the config means
//! the personal namespace's folder of that name on any server:
//!
//! 1. `INBOX` (any case) is the inbox everywhere.
//! 2. `/` separates levels as written (`Archive/Orders`) and becomes the server's delimiter.
//! 3. A name that already starts with the personal prefix (`INBOX.Processed` on Courier) is
//!    used as is; any other gets the prefix (`Processed` -> `INBOX.Processed`).
//! 4. The result goes to the server in modified UTF-7 ([`super::utf7`]).
//!
//! The prefix comes from NAMESPACE (RFC 2342) when the server offers it, the delimiter from the
//! personal namespace, else from `LIST "" ""`.

use serde::Serialize;

/// What the server says about its folder names.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize)]
pub struct Hierarchy {
    /// The personal namespace's prefix in UTF-8 (`INBOX.` on Courier), `""` when none.
    pub prefix: String,
    /// The hierarchy delimiter; `None` on a flat server.
    pub delimiter: Option<char>,
}

/// `INBOX` is case-insensitive (RFC 3501 5.1): `inbox.Sub` is `INBOX.Sub`.
fn canonical_inbox(name: &str, delimiter: Option<char>) -> String {
    let head = name.get(..5).filter(|h| h.eq_ignore_ascii_case("INBOX"));
    let rest = &name[head.map_or(0, str::len)..];
    match head {
        Some(_) if rest.is_empty() || rest.chars().next() == delimiter => format!("INBOX{rest}"),
        _ => name.to_string(),
    }
}

impl Hierarchy {
    /// The server's name (UTF-8, before encoding) for a folder written `written` in the config.
    pub fn resolve(&self, written: &str) -> String {
        let mapped = match self.delimiter {
            Some(d) if d != '/' => written.replace('/', d.encode_utf8(&mut [0; 4])),
            _ => written.to_string(),
        };
        let mapped = canonical_inbox(&mapped, self.delimiter);
        let prefix = canonical_inbox(&self.prefix, self.delimiter);
        // The inbox itself, and names written with the full prefix, are the server's already.
        if mapped == "INBOX" || mapped.starts_with(&prefix) {
            return mapped;
        }
        format!("{prefix}{mapped}")
    }
}

/// One piece of an IMAP response, as far as NAMESPACE needs.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Token {
    Open,
    Close,
    Nil,
    Text(String),
}

/// Tokens of `text`: parentheses, NIL, quoted strings and `{N}` literals (whose bytes the
/// reader left in place after the CRLF); other atoms are kept as text.
fn tokens(text: &str) -> Option<Vec<Token>> {
    let mut out = Vec::new();
    let mut rest = text;
    loop {
        rest = rest.trim_start_matches([' ', '\r', '\n']);
        let Some(c) = rest.chars().next() else {
            return Some(out);
        };
        match c {
            '(' | ')' => {
                out.push(if c == '(' { Token::Open } else { Token::Close });
                rest = &rest[1..];
            }
            '"' => {
                let mut value = String::new();
                let mut chars = rest[1..].char_indices();
                let end = loop {
                    match chars.next()? {
                        (i, '"') => break i + 2,
                        (_, '\\') => value.push(chars.next()?.1),
                        (_, c) => value.push(c),
                    }
                };
                out.push(Token::Text(value));
                rest = &rest[end..];
            }
            '{' => {
                let close = rest.find('}')?;
                let len: usize = rest[1..close].trim_end_matches('+').parse().ok()?;
                let body = rest[close + 1..].strip_prefix("\r\n")?;
                out.push(Token::Text(body.get(..len)?.to_string()));
                rest = &body[len..];
            }
            _ => {
                let end = rest.find([' ', '(', ')', '\r', '\n']).unwrap_or(rest.len());
                let atom = &rest[..end];
                out.push(if atom.eq_ignore_ascii_case("NIL") {
                    Token::Nil
                } else {
                    Token::Text(atom.to_string())
                });
                rest = &rest[end..];
            }
        }
    }
}

/// The personal namespace of a `* NAMESPACE personal other shared` response line: the first
/// `(prefix delimiter)` of the first group, as the server writes it (prefix in modified
/// UTF-7). `Some(None)` when the server has no personal namespace (`NIL`); `None` when the
/// line is not a NAMESPACE response this understands.
pub fn personal_namespace(line: &str) -> Option<Option<(String, Option<char>)>> {
    let body = line.strip_prefix("* ")?;
    let (word, rest) = body.split_once(' ')?;
    if !word.eq_ignore_ascii_case("NAMESPACE") {
        return None;
    }
    let tokens = tokens(rest)?;
    match tokens.as_slice() {
        [Token::Nil, ..] => Some(None),
        [Token::Open, Token::Open, Token::Text(prefix), delimiter, ..] => {
            let delimiter = match delimiter {
                Token::Nil => None,
                Token::Text(d) if d.chars().count() == 1 => d.chars().next(),
                _ => return None,
            };
            Some(Some((prefix.clone(), delimiter)))
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::{Hierarchy, personal_namespace};

    fn server(prefix: &str, delimiter: Option<char>) -> Hierarchy {
        Hierarchy {
            prefix: prefix.into(),
            delimiter,
        }
    }

    #[test]
    fn names_resolve_into_the_personal_namespace_of_each_kind_of_server() {
        let courier = server("INBOX.", Some('.'));
        let dovecot = server("", Some('.'));
        let slash = server("", Some('/'));
        let cyrus_slash = server("INBOX/", Some('/'));
        let cases = [
            (&courier, "Processed", "INBOX.Processed"),
            (&courier, "INBOX.Processed", "INBOX.Processed"),
            (&courier, "inbox.Processed", "INBOX.Processed"),
            (&courier, "INBOX/Processed", "INBOX.Processed"),
            (&courier, "Archive/Orders", "INBOX.Archive.Orders"),
            (&courier, "INBOX", "INBOX"),
            (&courier, "Inbox", "INBOX"),
            (&courier, "INBOXES", "INBOX.INBOXES"),
            (&dovecot, "Processed", "Processed"),
            (&dovecot, "Archive/Orders", "Archive.Orders"),
            (&dovecot, "INBOX/Sub", "INBOX.Sub"),
            (&slash, "Archive/Orders", "Archive/Orders"),
            (&slash, "Обработано", "Обработано"),
            (&cyrus_slash, "Archive/Orders", "INBOX/Archive/Orders"),
            (&cyrus_slash, "INBOX/Archive", "INBOX/Archive"),
            (&server("", None), "Archive/Orders", "Archive/Orders"),
        ];
        for (hierarchy, written, expected) in cases {
            assert_eq!(
                hierarchy.resolve(written),
                expected,
                "{written} on {hierarchy:?}"
            );
        }
    }

    #[test]
    fn the_personal_namespace_is_read_from_every_form_servers_send() {
        let personal = |line: &str| personal_namespace(line).unwrap();
        assert_eq!(
            personal(r#"* NAMESPACE (("INBOX." ".")) NIL NIL"#),
            Some(("INBOX.".into(), Some('.')))
        );
        assert_eq!(
            personal(r#"* NAMESPACE (("" "/")("Shared/" "/")) NIL (("Public/" "/"))"#),
            Some((String::new(), Some('/')))
        );
        assert_eq!(
            personal(r#"* NAMESPACE (("" "." "X-PARAM" ("a" "b"))) NIL NIL"#),
            Some((String::new(), Some('.')))
        );
        assert_eq!(
            personal("* NAMESPACE ((\"\" \"\\\\\")) NIL NIL"),
            Some((String::new(), Some('\\')))
        );
        assert_eq!(
            personal("* NAMESPACE (({6}\r\nINBOX. NIL)) NIL NIL"),
            Some(("INBOX.".into(), None))
        );
        assert_eq!(personal("* NAMESPACE NIL NIL NIL"), None);
        assert_eq!(personal_namespace("* LIST () \".\" INBOX"), None);
        assert_eq!(personal_namespace("* NAMESPACE ((\"x"), None);
    }
}
