//! Loop protection: mail that machines send in answer to mail is never ingested, whatever its
//! subject says. Our notifications go out to people whose mailers may answer (vacation
//! replies, bounces), and a notification address may itself be collected; ingesting those
//! would make records of them and could notify again, forever.
//!
//! Skipped: auto-replies (`Auto-Submitted: auto-replied` or `auto-notified`, RFC 3834; the
//! older `X-Autoreply` and `X-Autorespond`), bounces and other reports (`multipart/report`,
//! which carries DSNs, or an empty `Return-Path: <>`, the null sender bounces come from) and
//! mail from our own `[smtp] from` address. `Auto-Submitted: auto-generated` alone is
//! accepted: website form mail is machine-made too.

use mail_parser::Message;

/// Why `message` is automatic mail we must not ingest, or `None` for mail we may.
/// `own_address` is our notifications' From address, lower-case.
pub fn automatic_mail(message: &Message<'_>, own_address: Option<&str>) -> Option<String> {
    let header = |name: &'static str| message.header_raw(name).map(str::trim);
    if let Some(value) = header("Auto-Submitted") {
        let kind = value
            .split(';')
            .next()
            .unwrap_or_default()
            .trim()
            .to_ascii_lowercase();
        if kind == "auto-replied" || kind == "auto-notified" {
            return Some(format!("an automatic reply (Auto-Submitted: {kind})"));
        }
    }
    for name in ["X-Autoreply", "X-Autorespond"] {
        if header(name).is_some() {
            return Some(format!("an automatic reply ({name} header)"));
        }
    }
    if let Some(content_type) = header("Content-Type")
        && content_type
            .to_ascii_lowercase()
            .starts_with("multipart/report")
    {
        return Some("a delivery or read report (multipart/report)".into());
    }
    if header("Return-Path").is_some_and(|p| p.trim_matches([' ', '\t']) == "<>") {
        return Some("a bounce (empty Return-Path <>)".into());
    }
    let own = own_address?;
    let from = message.from()?.first()?.address()?;
    from.trim()
        .eq_ignore_ascii_case(own)
        .then(|| format!("our own notification (From: {own})"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use mail_builder::MessageBuilder;
    use mail_builder::headers::raw::Raw;
    use mail_parser::MessageParser;

    const OWN: Option<&str> = Some("emes@example.test");

    fn reason(raw: &[u8]) -> Option<String> {
        let message = MessageParser::default().parse(raw).unwrap();
        automatic_mail(&message, OWN)
    }

    fn order_with(header: &'static str, value: &'static str) -> Vec<u8> {
        MessageBuilder::new()
            .from("site@example.test")
            .subject("ORDER: 1")
            .header(header, Raw::new(value))
            .text_body("x")
            .write_to_vec()
            .unwrap()
    }

    #[test]
    fn auto_replied_and_auto_notified_are_skipped() {
        assert_eq!(
            reason(&order_with("Auto-Submitted", "auto-replied")).as_deref(),
            Some("an automatic reply (Auto-Submitted: auto-replied)")
        );
        assert!(
            reason(&order_with(
                "Auto-Submitted",
                "Auto-Notified; owner-email=x@y"
            ))
            .unwrap()
            .contains("auto-notified")
        );
    }

    #[test]
    fn auto_generated_alone_is_accepted() {
        assert_eq!(
            reason(&order_with("Auto-Submitted", "auto-generated")),
            None
        );
        assert_eq!(reason(&order_with("Auto-Submitted", "no")), None);
    }

    #[test]
    fn x_autoreply_and_x_autorespond_are_skipped() {
        assert!(
            reason(&order_with("X-Autoreply", "yes"))
                .unwrap()
                .contains("X-Autoreply")
        );
        assert!(
            reason(&order_with("X-Autorespond", "Vacation"))
                .unwrap()
                .contains("X-Autorespond")
        );
    }

    #[test]
    fn delivery_reports_are_skipped() {
        let raw = b"From: MAILER-DAEMON@example.test\r\nSubject: ORDER: 1 Undelivered\r\n\
            Content-Type: multipart/report; report-type=delivery-status; boundary=b\r\n\r\n\
            --b\r\nContent-Type: text/plain\r\n\r\nfailed\r\n--b--\r\n";
        assert_eq!(
            reason(raw).as_deref(),
            Some("a delivery or read report (multipart/report)")
        );
    }

    #[test]
    fn empty_return_path_is_a_bounce() {
        assert_eq!(
            reason(&order_with("Return-Path", "<>")).as_deref(),
            Some("a bounce (empty Return-Path <>)")
        );
        assert_eq!(
            reason(&order_with("Return-Path", "<site@example.test>")),
            None
        );
    }

    #[test]
    fn our_own_address_is_skipped_in_any_case() {
        let raw = MessageBuilder::new()
            .from(("EMES", "EMES@Example.Test"))
            .subject("ORDER: 1")
            .text_body("x")
            .write_to_vec()
            .unwrap();
        assert_eq!(
            reason(&raw).as_deref(),
            Some("our own notification (From: emes@example.test)")
        );
        let message = MessageParser::default().parse(&raw).unwrap();
        assert_eq!(
            automatic_mail(&message, None),
            None,
            "no [smtp], no own address"
        );
    }
}
