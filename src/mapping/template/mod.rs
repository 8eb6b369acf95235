//! Field templates for declarative payload formats: `{{path|filter|filter:arg}}` mixed with
//! literal text, e.g. `{{姓名}} /{{性别|salutation}}` or `{{业务|map:consult-type}}`.
//!
//! Templates are parsed once (when the config loads, so a typo is a config error with its
//! line) and rendered against each payload. Paths are `key`, `a.b` and `list[0].x`; keys may
//! be any text without `.`, `[`, `|` or `}`.

use std::collections::HashMap;
use std::fmt;

use serde_json::Value;

use crate::decode::reason::{MAX_QUOTED_CHARS, clip};

/// A parsed template.
#[derive(Debug, Clone, PartialEq)]
pub struct Template {
    parts: Vec<Part>,
}

#[derive(Debug, Clone, PartialEq)]
enum Part {
    Literal(String),
    Expr {
        path: Vec<Step>,
        filters: Vec<Filter>,
    },
}

#[derive(Debug, Clone, PartialEq)]
enum Step {
    Key(String),
    Index(usize),
}

/// A transformation applied to a value, left to right.
#[derive(Debug, Clone, PartialEq)]
pub enum Filter {
    /// Look the value up in a value table (`map:NAME`).
    Map(String),
    /// 男/M/male → 先生, 女/F/female → 女士.
    Salutation,
    /// Keep only the digits.
    Digits,
    Trim,
    Upper,
    Lower,
    /// Use this text when the value is missing or blank.
    Default(String),
    /// Join a list with this separator.
    Join(String),
}

/// A template that cannot be parsed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("template `{template}`: {message}")]
pub struct TemplateSyntaxError {
    pub template: String,
    pub message: String,
}

/// A payload the template cannot render.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RenderError {
    #[error("value `{value}` of `{path}` is not in the value table `{map}`")]
    Unmapped {
        map: String,
        path: String,
        value: String,
    },
    #[error("value table `{0}` is not defined")]
    UnknownMap(String),
}

/// Value tables (`[format.maps.NAME]`) and their defaults for unmapped values.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ValueTables {
    pub maps: HashMap<String, HashMap<String, String>>,
    /// A value for anything a table does not list; without one, unmapped is an error.
    pub defaults: HashMap<String, String>,
}

fn syntax(template: &str, message: impl Into<String>) -> TemplateSyntaxError {
    TemplateSyntaxError {
        template: template.to_string(),
        message: message.into(),
    }
}

/// Reads a filter argument: `"quoted"` (with `\"` and `\\`) or bare text.
fn argument(raw: &str) -> Result<String, String> {
    let raw = raw.trim();
    let Some(inner) = raw.strip_prefix('"') else {
        return Ok(raw.to_string());
    };
    let inner = inner
        .strip_suffix('"')
        .ok_or("unterminated quoted argument")?;
    let mut out = String::new();
    let mut chars = inner.chars();
    while let Some(c) = chars.next() {
        out.push(if c == '\\' {
            chars.next().ok_or("dangling backslash")?
        } else {
            c
        });
    }
    Ok(out)
}

fn parse_filter(text: &str) -> Result<Filter, String> {
    let (name, arg) = match text.split_once(':') {
        Some((name, arg)) => (name.trim(), Some(argument(arg)?)),
        None => (text.trim(), None),
    };
    let need = |arg: Option<String>| {
        arg.ok_or(format!(
            "filter `{name}` needs an argument, e.g. {name}:\"...\""
        ))
    };
    Ok(match name {
        "map" => Filter::Map(need(arg)?),
        "default" => Filter::Default(need(arg)?),
        "join" => Filter::Join(need(arg)?),
        "salutation" => Filter::Salutation,
        "digits" => Filter::Digits,
        "trim" => Filter::Trim,
        "upper" => Filter::Upper,
        "lower" => Filter::Lower,
        other => {
            return Err(format!(
                "unknown filter `{other}` (known: map, salutation, digits, trim, upper, lower, default, join)"
            ));
        }
    })
}

fn parse_path(text: &str) -> Result<Vec<Step>, String> {
    let mut steps = Vec::new();
    for segment in text.trim().split('.') {
        let (key, mut rest) = segment.split_at(segment.find('[').unwrap_or(segment.len()));
        if key.is_empty() && steps.is_empty() && rest.is_empty() {
            return Err("empty path".into());
        }
        if !key.is_empty() {
            steps.push(Step::Key(key.to_string()));
        }
        while let Some(after) = rest.strip_prefix('[') {
            let end = after.find(']').ok_or("missing `]`")?;
            let index = after[..end]
                .trim()
                .parse()
                .map_err(|_| format!("`{}` is not a list index", &after[..end]))?;
            steps.push(Step::Index(index));
            rest = &after[end + 1..];
        }
        if !rest.is_empty() {
            return Err(format!("unexpected `{rest}` in the path"));
        }
    }
    if steps.is_empty() {
        return Err("empty path".into());
    }
    Ok(steps)
}

impl Template {
    /// Parses template text.
    pub fn parse(text: &str) -> Result<Template, TemplateSyntaxError> {
        let mut parts = Vec::new();
        let mut rest = text;
        while let Some(start) = rest.find("{{") {
            if start > 0 {
                parts.push(Part::Literal(rest[..start].to_string()));
            }
            let after = &rest[start + 2..];
            let end = after
                .find("}}")
                .ok_or_else(|| syntax(text, "`{{` without `}}`"))?;
            let mut pieces = after[..end].split('|');
            let path = parse_path(pieces.next().unwrap_or("")).map_err(|m| syntax(text, m))?;
            let filters = pieces
                .map(parse_filter)
                .collect::<Result<_, _>>()
                .map_err(|m| syntax(text, m))?;
            parts.push(Part::Expr { path, filters });
            rest = &after[end + 2..];
        }
        if rest.contains("}}") {
            return Err(syntax(text, "`}}` without `{{`"));
        }
        if !rest.is_empty() {
            parts.push(Part::Literal(rest.to_string()));
        }
        Ok(Template { parts })
    }

    /// The value tables this template uses (checked against the config at load).
    pub fn maps(&self) -> impl Iterator<Item = &str> {
        self.parts.iter().flat_map(|part| match part {
            Part::Expr { filters, .. } => filters
                .iter()
                .filter_map(|f| match f {
                    Filter::Map(name) => Some(name.as_str()),
                    _ => None,
                })
                .collect::<Vec<_>>(),
            Part::Literal(_) => Vec::new(),
        })
    }

    /// The top-level keys this template reads (`a` for `{{a.b}}`), in order: notification
    /// templates are checked against the fields a record kind has when the config loads.
    pub fn fields(&self) -> impl Iterator<Item = &str> {
        self.parts.iter().filter_map(|part| match part {
            Part::Expr { path, .. } => match path.first() {
                Some(Step::Key(key)) => Some(key.as_str()),
                _ => None,
            },
            Part::Literal(_) => None,
        })
    }

    /// The payload paths this template reads (`手机`, `a.b`), in order: a required field
    /// that came out empty is reported with the keys the website failed to send.
    pub fn paths(&self) -> impl Iterator<Item = String> + '_ {
        self.parts.iter().filter_map(|part| match part {
            Part::Expr { path, .. } => Some(path_text(path)),
            Part::Literal(_) => None,
        })
    }

    /// Renders against `payload`. `None` when every expression came out empty (a missing
    /// field), so `required` can tell; a template without expressions is a constant.
    pub fn render(
        &self,
        payload: &Value,
        tables: &ValueTables,
    ) -> Result<Option<String>, RenderError> {
        let (out, expressions, filled) = self.fill(payload, tables)?;
        Ok((expressions == 0 || filled > 0).then_some(out))
    }

    /// Renders against `payload` with missing fields as empty text and the literal text
    /// kept (a notification's subject says "单据编号: " even without a number).
    pub fn render_text(
        &self,
        payload: &Value,
        tables: &ValueTables,
    ) -> Result<String, RenderError> {
        Ok(self.fill(payload, tables)?.0)
    }

    /// The text, the number of expressions and how many of them had a value.
    fn fill(
        &self,
        payload: &Value,
        tables: &ValueTables,
    ) -> Result<(String, usize, usize), RenderError> {
        let mut out = String::new();
        let mut expressions = 0;
        let mut filled = 0;
        for part in &self.parts {
            match part {
                Part::Literal(text) => out.push_str(text),
                Part::Expr { path, filters } => {
                    expressions += 1;
                    let value = lookup(payload, path);
                    if let Some(text) = apply(value, path, filters, tables)? {
                        filled += 1;
                        out.push_str(&text);
                    }
                }
            }
        }
        Ok((out, expressions, filled))
    }
}

impl fmt::Display for Step {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Step::Key(key) => f.write_str(key),
            Step::Index(i) => write!(f, "[{i}]"),
        }
    }
}

fn path_text(path: &[Step]) -> String {
    let mut out = String::new();
    for step in path {
        if matches!(step, Step::Key(_)) && !out.is_empty() {
            out.push('.');
        }
        out.push_str(&step.to_string());
    }
    out
}

/// A path into the payload (`key`, `a.b`, `list[0].x`), as a template's expressions and a
/// format's `when` conditions write it.
#[derive(Debug, Clone, PartialEq)]
pub struct PayloadPath(Vec<Step>);

impl PayloadPath {
    /// Parses a path; the error says what is wrong with it.
    pub fn parse(text: &str) -> Result<PayloadPath, String> {
        parse_path(text).map(PayloadPath)
    }

    /// The value at this path, if the payload has one.
    pub fn find<'v>(&self, payload: &'v Value) -> Option<&'v Value> {
        lookup(payload, &self.0)
    }
}

impl fmt::Display for PayloadPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&path_text(&self.0))
    }
}

fn lookup<'v>(payload: &'v Value, path: &[Step]) -> Option<&'v Value> {
    path.iter().try_fold(payload, |value, step| match step {
        Step::Key(key) => value.get(key.as_str()),
        Step::Index(i) => value.get(*i),
    })
}

/// A scalar as text; lists and objects are not text until `join`.
pub(crate) fn scalar_text(value: &Value) -> Option<String> {
    match value {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        Value::Null | Value::Array(_) | Value::Object(_) => None,
    }
}

fn salutation(text: &str) -> String {
    match text.trim().to_lowercase().as_str() {
        "男" | "m" | "male" | "先生" => "先生".to_string(),
        "女" | "f" | "female" | "女士" => "女士".to_string(),
        other => other.to_string(),
    }
}

fn apply(
    value: Option<&Value>,
    path: &[Step],
    filters: &[Filter],
    tables: &ValueTables,
) -> Result<Option<String>, RenderError> {
    let mut text = value.and_then(scalar_text);
    let mut list = value.and_then(Value::as_array);
    for filter in filters {
        if let (Filter::Join(separator), Some(items)) = (filter, list) {
            let joined: Vec<String> = items.iter().filter_map(scalar_text).collect();
            text = Some(joined.join(separator));
            list = None;
            continue;
        }
        text = match (filter, text) {
            (Filter::Default(fallback), None) => Some(fallback.clone()),
            (Filter::Default(fallback), Some(t)) if t.trim().is_empty() => Some(fallback.clone()),
            (_, None) => None,
            (Filter::Default(_) | Filter::Join(_), Some(t)) => Some(t),
            (Filter::Trim, Some(t)) => Some(t.trim().to_string()),
            (Filter::Upper, Some(t)) => Some(t.to_uppercase()),
            (Filter::Lower, Some(t)) => Some(t.to_lowercase()),
            (Filter::Digits, Some(t)) => Some(t.chars().filter(char::is_ascii_digit).collect()),
            (Filter::Salutation, Some(t)) => Some(salutation(&t)),
            (Filter::Map(name), Some(t)) => {
                let table = tables
                    .maps
                    .get(name)
                    .ok_or_else(|| RenderError::UnknownMap(name.clone()))?;
                match table.get(t.trim()).or_else(|| tables.defaults.get(name)) {
                    Some(mapped) => Some(mapped.clone()),
                    None => {
                        // The value is the website's text: quoted in a reason, so clipped.
                        return Err(RenderError::Unmapped {
                            map: name.clone(),
                            path: path_text(path),
                            value: clip(&t, MAX_QUOTED_CHARS),
                        });
                    }
                }
            }
        };
    }
    Ok(text.filter(|t| !t.is_empty()))
}

#[cfg(test)]
mod tests;
