//! Does a subject carry the collector's keyword, and which order reference follows it?

/// Where the keyword was found in a subject.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubjectMatch {
    /// The token after the keyword (`123` in `ORDER: 123`), if any.
    pub order_ref: Option<String>,
}

/// Finds `keyword` as a whole word (case-sensitive) in `subject`.
///
/// "Whole word" means the characters on both sides are not letters, digits or `_`, so
/// `Fwd: ORDER: 77` and `ORDER:123` match while `REORDER 5` and `ORDERS 5` do not.
pub fn match_subject(subject: &str, keyword: &str) -> Option<SubjectMatch> {
    if keyword.is_empty() {
        return None;
    }
    let is_word_char = |c: char| c.is_alphanumeric() || c == '_';
    let mut from = 0;
    while let Some(found) = subject[from..].find(keyword) {
        let start = from + found;
        let end = start + keyword.len();
        let before_ok = !subject[..start]
            .chars()
            .next_back()
            .is_some_and(is_word_char);
        let after_ok = !subject[end..].chars().next().is_some_and(is_word_char);
        if before_ok && after_ok {
            return Some(SubjectMatch {
                order_ref: order_ref_after(&subject[end..]),
            });
        }
        from = end;
    }
    None
}

/// The reference token: skip blanks and one optional `:` (or `#`/`№`), then take up to the
/// next blank, without trailing punctuation (`ORDER: 123, Заказ` gives `123`).
fn order_ref_after(rest: &str) -> Option<String> {
    let rest = rest.trim_start();
    let rest = rest
        .strip_prefix(':')
        .or_else(|| rest.strip_prefix('#'))
        .or_else(|| rest.strip_prefix('№'))
        .unwrap_or(rest)
        .trim_start();
    let token: &str = rest.split(char::is_whitespace).next().unwrap_or("");
    let token = token.trim_end_matches([',', ';', '.', ':', ')', ']']);
    (!token.is_empty()).then(|| token.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn order_ref(subject: &str) -> Option<Option<String>> {
        match_subject(subject, "ORDER").map(|m| m.order_ref)
    }

    #[test]
    fn keyword_forms_from_real_forms_match() {
        assert_eq!(order_ref("ORDER: 123"), Some(Some("123".into())));
        assert_eq!(order_ref("ORDER:123"), Some(Some("123".into())));
        assert_eq!(order_ref("Fwd: ORDER: 77"), Some(Some("77".into())));
        assert_eq!(order_ref("ORDER: 5 Заказ с сайта"), Some(Some("5".into())));
        assert_eq!(
            order_ref("[shop] ORDER #A-17, новый"),
            Some(Some("A-17".into()))
        );
        assert_eq!(order_ref("ORDER"), Some(None));
        assert_eq!(order_ref("Заказ ORDER: 9"), Some(Some("9".into())));
    }

    #[test]
    fn keyword_inside_a_word_or_other_case_does_not_match() {
        assert_eq!(order_ref("REORDER 5"), None);
        assert_eq!(order_ref("ORDERS 5"), None);
        assert_eq!(order_ref("order: 5"), None);
        assert_eq!(order_ref("Re: question about delivery"), None);
        assert_eq!(order_ref("ORDER_5"), None);
        assert_eq!(order_ref("ЗаказORDER 5"), None);
    }

    #[test]
    fn a_later_whole_word_occurrence_still_matches() {
        assert_eq!(order_ref("REORDER then ORDER: 8"), Some(Some("8".into())));
    }

    #[test]
    fn keyword_is_per_collector() {
        assert!(match_subject("ЗАКАЗ: 12", "ЗАКАЗ").is_some());
        assert!(match_subject("ORDER: 12", "ЗАКАЗ").is_none());
    }
}
