//! Messages above the collector's `max-message-size`: quarantined by their size, unread.
//!
//! A mailbox tells a message's size without handing over its bytes (IMAP's `RFC822.SIZE`, a
//! Maildir file's length), so a message that is too large is never read whole: memory stays
//! bounded by the limit whatever anyone sends. What the quarantine keeps of it is its header
//! section (at most [`HEADER_LIMIT`](crate::source::HEADER_LIMIT) bytes), so `quarantine show`
//! tells who sent what, and the reason `too large: N bytes, limit M`. The message itself
//! stays in the mailbox, set aside like every quarantined one (IMAP keyword or quarantine
//! folder; left in place in a Maildir), so nothing is lost.
//!
//! # Its fingerprint
//!
//! The ledger knows a message by its position and by its content's fingerprint. The content
//! of a too-large message is never read, so its fingerprint is taken over what is known: a
//! domain tag, its size, and the fingerprint of its header section (which holds its
//! Message-ID and ignores trace fields, like any fingerprint). So:
//! - the same position is recognised by the ledger's position key, as for any message, and
//!   is set aside again without a second read;
//! - a copy delivered twice (the same headers apart from `Received:` and the like, and the
//!   same size) is a duplicate of the first quarantine entry;
//! - it never equals the fingerprint of a message read whole (the tag sees to that), and a
//!   size counted with CRLF (IMAP) differs from the same message with LF (Maildir), so the
//!   same message in both sources is two entries, which loses nothing.

use sha2::{Digest, Sha256};

use super::{Mapped, Prepared};
use crate::config::display_size;
use crate::decode::{DecodeRules, Fingerprint, decode_message};

/// The start of a too-large message's quarantine reason. `quarantine retry` recognises a
/// headers-only entry by it: decoding its headers again could only give a wrong reason.
pub const TOO_LARGE: &str = "too large:";

/// A message not read because it is larger than the collector allows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TooLarge {
    /// Its header section (what the quarantine keeps).
    pub headers: Vec<u8>,
    /// Its size in the mailbox, in bytes.
    pub size: u64,
    /// The collector's `max-message-size`.
    pub limit: u64,
}

impl TooLarge {
    /// The quarantine reason: `too large: 67108864 bytes, limit 25MB`.
    pub fn reason(&self) -> String {
        format!(
            "{TOO_LARGE} {} bytes, limit {}",
            self.size,
            display_size(self.limit)
        )
    }

    /// What the commit needs: the envelope read from the headers (Message-ID, subject),
    /// this message's own fingerprint, and the quarantine reason.
    pub(super) fn prepared(&self, rules: &DecodeRules) -> Prepared {
        let mut envelope = decode_message(&self.headers, rules).envelope;
        envelope.fingerprint = self.fingerprint();
        Prepared {
            envelope,
            mapped: Mapped::Quarantine(self.reason()),
        }
    }

    /// See the module doc.
    fn fingerprint(&self) -> Fingerprint {
        let mut hasher = Sha256::new();
        hasher.update(b"mailintake too-large message\n");
        hasher.update(self.size.to_be_bytes());
        hasher.update(Fingerprint::of(&self.headers).0);
        Fingerprint(hasher.finalize().into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn too_large(headers: &str, size: u64) -> TooLarge {
        TooLarge {
            headers: headers.as_bytes().to_vec(),
            size,
            limit: 25 * 1024 * 1024,
        }
    }

    #[test]
    fn the_reason_names_the_size_and_the_limit_and_the_envelope_comes_from_the_headers() {
        let message = too_large(
            "Subject: ORDER: 7\r\nMessage-ID: <big@shop.example>\r\n\r\n",
            67_108_864,
        );
        let prepared = message.prepared(&DecodeRules::default());
        assert_eq!(
            prepared.mapped,
            Mapped::Quarantine("too large: 67108864 bytes, limit 25MB".into())
        );
        assert_eq!(
            prepared.envelope.message_id.as_deref(),
            Some("big@shop.example")
        );
        assert_eq!(prepared.envelope.subject.as_deref(), Some("ORDER: 7"));
    }

    #[test]
    fn a_copy_redelivered_has_the_same_fingerprint_another_size_or_message_does_not() {
        let first = too_large("Received: by a\r\nMessage-ID: <a@x>\r\n\r\n", 1000);
        let copy = too_large("Received: by b\r\nMessage-ID: <a@x>\r\n\r\n", 1000);
        let other_size = too_large("Message-ID: <a@x>\r\n\r\n", 1001);
        let other_id = too_large("Message-ID: <b@x>\r\n\r\n", 1000);
        assert_eq!(first.fingerprint(), copy.fingerprint());
        assert_ne!(first.fingerprint(), other_size.fingerprint());
        assert_ne!(first.fingerprint(), other_id.fingerprint());
        assert_ne!(first.fingerprint(), Fingerprint::of(&first.headers));
    }
}
