//! What a record starts with when it is stored: its status, its counterparty, its number
//! and its tech cards. Pure decisions; the store looks up and persists.

use chrono::NaiveDate;

use super::status;
use crate::mapping::{OrderLine, Record};

/// What a record gets when it names a customer id that matches no counterparty
/// (seed 001's "Kundennr. / Status Kunde unbekannt"), from `[unknown-customer]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnknownCustomer {
    /// Customer number (INN) of the fallback counterparty; created if missing.
    pub counterparty: String,
    /// Status given to such records instead of `new`.
    pub status: String,
}

/// How a new record is linked to a counterparty.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CounterpartyLink<'a> {
    /// The existing counterparty its customer id names.
    Known(i64),
    /// The counterparty with this key, created if missing.
    FindOrCreate(&'a str),
}

/// A new record's status and counterparty.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Intake<'a> {
    pub status: &'a str,
    pub counterparty: Option<CounterpartyLink<'a>>,
}

/// Decides a new record's status and counterparty. A customer id (service requests) wins
/// over the INN: a known one links its counterparty, an unknown one gets the fallback if
/// the config has one and nothing otherwise. Without a customer id, a valid INN links (or
/// creates) its counterparty. `find_customer` is asked only when there is a customer id.
pub fn intake<'a, E>(
    record: &'a Record,
    unknown_customer: Option<&'a UnknownCustomer>,
    find_customer: impl FnOnce(&str) -> Result<Option<i64>, E>,
) -> Result<Intake<'a>, E> {
    let new = |counterparty| Intake {
        status: status::NEW,
        counterparty,
    };
    let customer_id = record
        .service
        .as_ref()
        .and_then(|s| s.customer_id.as_deref());
    let Some(customer) = customer_id else {
        let key = record.inn.as_ref().and_then(|inn| inn.counterparty_key());
        return Ok(new(key.map(CounterpartyLink::FindOrCreate)));
    };
    Ok(match (find_customer(customer)?, unknown_customer) {
        (Some(id), _) => new(Some(CounterpartyLink::Known(id))),
        (None, Some(fallback)) => Intake {
            status: &fallback.status,
            counterparty: Some(CounterpartyLink::FindOrCreate(&fallback.counterparty)),
        },
        (None, None) => new(None),
    })
}

/// The start of every service request number given on `day`: prefix + local date
/// (`SR20261123`).
pub fn number_day(prefix: &str, day: NaiveDate) -> String {
    format!("{prefix}{}", day.format("%Y%m%d"))
}

/// The number that follows `taken` numbers of the same day (`SR202611230001` first).
pub fn service_number(number_day: &str, taken: i64) -> String {
    format!("{number_day}{:04}", taken + 1)
}

/// Each goods line gets a tech card for the print shop; services (delivery, ...) do not.
pub fn needs_tech_card(line: &OrderLine) -> bool {
    !line.is_service
}

/// The detail of a record's `created` event.
pub fn created_detail(record: &Record, tech_cards: usize) -> String {
    format!(
        "{} from {} ({} lines, {tech_cards} tech cards)",
        record.kind.as_str(),
        record
            .source
            .message_id
            .as_deref()
            .unwrap_or("a message without Message-ID"),
        record.lines.len(),
    )
}

/// The detail of the `created` event of a record posted over HTTP intake: the history says
/// which token posted it, and under which Idempotency-Key, where a message's names its
/// Message-ID.
pub fn created_over_http_detail(
    record: &Record,
    token: &str,
    idempotency_key: Option<&str>,
) -> String {
    let tech_cards = record.lines.iter().filter(|l| needs_tech_card(l)).count();
    let key = idempotency_key
        .map(|k| format!(", Idempotency-Key {k}"))
        .unwrap_or_default();
    format!(
        "{} over HTTP by token {token}{key} ({} lines, {tech_cards} tech cards)",
        record.kind.as_str(),
        record.lines.len(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::Inn;
    use crate::mapping::declarative::ServiceRequest;

    fn record(inn: Option<&str>, customer_id: Option<&str>) -> Record {
        let (payload, envelope) = crate::mapping::test_input("{}", "order.txt", "utf-8");
        let mut record = crate::mapping::map_order_json(&payload, None, &envelope).unwrap();
        record.inn = inn.map(Inn::parse);
        record.service = customer_id.map(|c| ServiceRequest {
            customer_id: Some(c.into()),
            ..ServiceRequest::default()
        });
        record
    }

    fn no_lookup(_: &str) -> Result<Option<i64>, ()> {
        panic!("no customer id, no look-up")
    }

    #[test]
    fn a_valid_inn_links_its_digits_and_an_invalid_one_nothing() {
        let valid = record(Some("7709 745 454"), None);
        assert_eq!(
            intake(&valid, None, no_lookup),
            Ok(Intake {
                status: "new",
                counterparty: Some(CounterpartyLink::FindOrCreate("7709745454")),
            })
        );
        let invalid = record(Some("1234567890"), None);
        assert_eq!(
            intake(&invalid, None, no_lookup).unwrap().counterparty,
            None
        );
    }

    #[test]
    fn an_unknown_customer_gets_the_fallback_counterparty_and_status() {
        let fallback = UnknownCustomer {
            counterparty: "0000000000".into(),
            status: "customer-unknown".into(),
        };
        let request = record(Some("7709745454"), Some("42"));
        let unknown = |_: &str| Ok::<_, ()>(None);
        assert_eq!(
            intake(&request, Some(&fallback), unknown),
            Ok(Intake {
                status: "customer-unknown",
                counterparty: Some(CounterpartyLink::FindOrCreate("0000000000")),
            })
        );
        assert_eq!(
            intake(&request, None, unknown),
            Ok(Intake {
                status: "new",
                counterparty: None
            }),
            "without a fallback the INN is not used either"
        );
        let known = |id: &str| Ok::<_, ()>((id == "42").then_some(7));
        assert_eq!(
            intake(&request, Some(&fallback), known)
                .unwrap()
                .counterparty,
            Some(CounterpartyLink::Known(7))
        );
    }

    #[test]
    fn numbers_are_prefix_local_date_and_daily_sequence() {
        let day = number_day("SR", NaiveDate::from_ymd_opt(2026, 11, 23).unwrap());
        assert_eq!(day, "SR20261123");
        assert_eq!(service_number(&day, 0), "SR202611230001");
        assert_eq!(service_number(&day, 41), "SR202611230042");
    }
}
