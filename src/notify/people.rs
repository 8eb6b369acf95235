//! The people directory: who holds which role in which branch (seed 000 takes the branch's
//! general manager from HR's employee records, post 总经理, status enabled). `directory:ROLE`
//! recipients are the enabled people of that role in the record's branch. HR exports CSV, so
//! the directory is filled by `people add` or `people import FILE.csv`.
//!
//! CSV: a header row naming the columns `name`, `branch`, `role` (required), `email`,
//! `phone` and `enabled` (optional; `false`, `no`, `0`, `disabled` or `停用` disable a row),
//! in any order; fields may be quoted (`"..."`, `""` for a quote).

use crate::store::AnyConnection;
use chrono::NaiveDateTime;
use diesel::prelude::*;
use serde::Serialize;

use super::recipients::{Person, email_address};
use crate::domain::phone_digits;
use crate::store::schema::people;
use crate::store::{Store, StoreError, as_utc, now, on_backend};

/// A person to add.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewPerson {
    pub name: String,
    pub branch: String,
    pub role: String,
    pub email: Option<String>,
    pub phone: Option<String>,
    pub enabled: bool,
}

/// A person of the directory as stored (`people list --json`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Queryable, Selectable)]
#[diesel(table_name = people)]
pub struct StoredPerson {
    pub id: i64,
    pub name: String,
    pub branch: String,
    pub role: String,
    pub email: Option<String>,
    pub phone: Option<String>,
    pub enabled: bool,
    #[serde(serialize_with = "as_utc")]
    pub created_at: NaiveDateTime,
}

/// Why a person cannot be added.
#[derive(Debug, thiserror::Error)]
pub enum PeopleError {
    #[error("{0}")]
    Invalid(String),
    #[error("line {line}: {message}")]
    Csv { line: usize, message: String },
    #[error("no person {0}")]
    NoPerson(i64),
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<diesel::result::Error> for PeopleError {
    fn from(e: diesel::result::Error) -> Self {
        PeopleError::Store(e.into())
    }
}

impl NewPerson {
    /// Checks the fields: name, branch and role non-empty and on one line, the e-mail an
    /// address, the phone with at least five digits.
    pub fn checked(self) -> Result<NewPerson, String> {
        for (what, value) in [
            ("name", &self.name),
            ("branch", &self.branch),
            ("role", &self.role),
        ] {
            if value.trim().is_empty() || value.chars().any(char::is_control) {
                return Err(format!("{what} must be non-empty text on one line"));
            }
        }
        let email = self.email.as_deref().map(email_address).transpose()?;
        if let Some(phone) = &self.phone
            && phone_digits(phone).is_none()
        {
            return Err(format!("phone `{phone}`: give at least 5 digits"));
        }
        Ok(NewPerson {
            name: self.name.trim().to_string(),
            branch: self.branch.trim().to_string(),
            role: self.role.trim().to_string(),
            email,
            ..self
        })
    }
}

/// The enabled people of `role` in `branch`, inside the caller's transaction.
pub(crate) fn enabled(
    conn: &mut AnyConnection,
    role: &str,
    branch: &str,
) -> QueryResult<Vec<Person>> {
    let rows: Vec<(String, Option<String>, Option<String>)> = on_backend!(conn, c => people::table
        .filter(people::role.eq(role))
        .filter(people::branch.eq(branch))
        .filter(people::enabled.eq(true))
        .order(people::id.asc())
        .select((people::name, people::email, people::phone))
        .load(c))?;
    Ok(rows
        .into_iter()
        .map(|(name, email, phone)| Person { name, email, phone })
        .collect())
}

fn insert(conn: &mut AnyConnection, person: &NewPerson) -> QueryResult<i64> {
    diesel::insert_into(people::table)
        .values((
            people::name.eq(&person.name),
            people::branch.eq(&person.branch),
            people::role.eq(&person.role),
            people::email.eq(person.email.as_deref()),
            people::phone.eq(person.phone.as_deref()),
            people::enabled.eq(person.enabled),
            people::created_at.eq(now()),
        ))
        .returning(people::id)
        .get_result(conn)
}

impl Store {
    /// Adds a person; returns the id.
    pub fn add_person(&mut self, person: NewPerson) -> Result<i64, PeopleError> {
        let person = person.checked().map_err(PeopleError::Invalid)?;
        Ok(insert(self.connection(), &person)?)
    }

    /// Adds every person of an HR export (CSV text) in one transaction: one bad row and
    /// none is added. Returns how many were.
    pub fn import_people(&mut self, csv: &str) -> Result<usize, PeopleError> {
        let people = parse_csv(csv)?;
        let conn = self.connection();
        conn.write_transaction(|conn| {
            for person in &people {
                insert(conn, person)?;
            }
            Ok::<_, PeopleError>(people.len())
        })
    }

    /// Everyone, in id order.
    pub fn people(&mut self) -> Result<Vec<StoredPerson>, StoreError> {
        Ok(people::table
            .order(people::id.asc())
            .select(StoredPerson::as_select())
            .load(self.connection())?)
    }

    /// Disables a person: kept for the record, never a recipient again.
    pub fn disable_person(&mut self, id: i64) -> Result<(), PeopleError> {
        let changed = diesel::update(people::table.find(id))
            .set(people::enabled.eq(false))
            .execute(self.connection())?;
        if changed == 0 {
            return Err(PeopleError::NoPerson(id));
        }
        Ok(())
    }
}

/// Splits one CSV line into fields (`"..."` quoting, `""` inside for a quote).
fn csv_fields(line: &str) -> Result<Vec<String>, String> {
    let mut fields = Vec::new();
    let mut field = String::new();
    let mut chars = line.chars().peekable();
    let mut quoted = false;
    while let Some(c) = chars.next() {
        match (quoted, c) {
            (true, '"') if chars.peek() == Some(&'"') => {
                chars.next();
                field.push('"');
            }
            (true, '"') => quoted = false,
            (false, '"') if field.trim().is_empty() => {
                field.clear();
                quoted = true;
            }
            (false, ',') => fields.push(std::mem::take(&mut field)),
            (_, c) => field.push(c),
        }
    }
    if quoted {
        return Err("a quoted field is not closed".into());
    }
    fields.push(field);
    Ok(fields.into_iter().map(|f| f.trim().to_string()).collect())
}

/// Whether an `enabled` column value enables the row.
fn enabled_value(text: &str) -> bool {
    !matches!(
        text.trim().to_lowercase().as_str(),
        "false" | "no" | "0" | "disabled" | "停用"
    )
}

/// The people of an HR export: the header row names the columns (module doc).
fn parse_csv(text: &str) -> Result<Vec<NewPerson>, PeopleError> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut lines = text
        .lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty());
    let csv = |line: usize, message: String| PeopleError::Csv {
        line: line + 1,
        message,
    };
    let (at, header) = lines
        .next()
        .ok_or_else(|| csv(0, "empty file: expected a header row".into()))?;
    let header: Vec<String> = csv_fields(header)
        .map_err(|m| csv(at, m))?
        .into_iter()
        .map(|h| h.to_lowercase())
        .collect();
    let column = |name: &str| header.iter().position(|h| h == name);
    let (Some(name), Some(branch), Some(role)) = (column("name"), column("branch"), column("role"))
    else {
        return Err(csv(
            at,
            "the header row must name the columns name, branch and role (email, phone, enabled are optional)".into(),
        ));
    };
    let (email, phone, enabled) = (column("email"), column("phone"), column("enabled"));
    let mut people = Vec::new();
    for (at, line) in lines {
        let fields = csv_fields(line).map_err(|m| csv(at, m))?;
        let get = |i: Option<usize>| {
            i.and_then(|i| fields.get(i))
                .filter(|v| !v.is_empty())
                .cloned()
        };
        let person = NewPerson {
            name: get(Some(name)).unwrap_or_default(),
            branch: get(Some(branch)).unwrap_or_default(),
            role: get(Some(role)).unwrap_or_default(),
            email: get(email),
            phone: get(phone),
            enabled: get(enabled).is_none_or(|v| enabled_value(&v)),
        };
        people.push(person.checked().map_err(|m| csv(at, m))?);
    }
    Ok(people)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_with_quotes_any_column_order_and_a_disabled_row() {
        let text = "\u{feff}role,name,branch,email,phone,enabled\n\
                    gm,刘总,北京分公司,liu@example.test,+86 139 1234 5678,yes\n\
                    gm,\"Wang, \"\"Jr\"\"\",上海分公司,,,停用\n";
        let people = parse_csv(text).unwrap();
        assert_eq!(people.len(), 2);
        assert_eq!(people[0].name, "刘总");
        assert_eq!(people[0].email.as_deref(), Some("liu@example.test"));
        assert!(people[0].enabled);
        assert_eq!(people[1].name, "Wang, \"Jr\"");
        assert_eq!(people[1].email, None);
        assert!(!people[1].enabled);
    }

    #[test]
    fn csv_errors_name_the_line() {
        let err = parse_csv("name,branch\nx,y\n").unwrap_err().to_string();
        assert!(err.starts_with("line 1: the header row"), "{err}");
        let err = parse_csv("name,branch,role,email\nA,B,gm,not-an-address\n")
            .unwrap_err()
            .to_string();
        assert!(
            err.starts_with("line 2: `not-an-address` is not an e-mail"),
            "{err}"
        );
        let err = parse_csv("name,branch,role\n\"A,B,gm\n")
            .unwrap_err()
            .to_string();
        assert_eq!(err, "line 2: a quoted field is not closed");
    }
}
