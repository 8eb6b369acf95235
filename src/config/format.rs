//! `[[format]]`: declarative payload formats, and how a collector's `format` names one.
//!
//! A format maps a website's own JSON keys to record fields with templates; the templates are
//! parsed here, once, by [`Template::parse`], so a broken one fails the load, not a message.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use serde::Deserialize;
use toml::Spanned;

use super::error::{ConfigError, ErrorSite};
use super::keyword::{Choice, pick};
use crate::mapping::declarative::{DeclarativeFormat, Target};
use crate::mapping::template::{Template, ValueTables};
use crate::mapping::{PayloadFormat, RecordKind};

/// The only payload format built in so far (the seed's v0.1 order file).
pub const ORDER_JSON_FORMAT: &str = "order-json";

/// `[[format]]` as written.
#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub(super) struct RawFormat {
    /// Name collectors give as `format = "..."`; unique, and not `order-json`. Required.
    name: Spanned<String>,
    /// Record kind: `lead`, `order` or `service-request`. Required.
    kind: Spanned<Choice<RecordKind>>,
    /// Fields a payload must give a value for, or it is quarantined. Default: none.
    #[serde(default)]
    required: Vec<Spanned<String>>,
    /// Service request numbers: this prefix + local date + daily sequence. Default: `SR`.
    number_prefix: Option<String>,
    /// `[format.fields]`: record field = template. Required.
    fields: Spanned<BTreeMap<String, Spanned<String>>>,
    /// `[format.maps.NAME]`: value tables for the `map:NAME` filter. Default: none.
    #[serde(default)]
    maps: HashMap<String, HashMap<String, String>>,
    /// `[format.map-defaults]`: table name = value for words a table does not list.
    /// Default: none (an unlisted word is quarantined).
    #[serde(default)]
    map_defaults: HashMap<String, String>,
}

impl RawFormat {
    /// Checks the fields against the record kind and parses their templates.
    fn validate(&self, site: &ErrorSite<'_>) -> Result<DeclarativeFormat, ConfigError> {
        let name = self.name.get_ref().trim().to_string();
        if name.is_empty() {
            return Err(site.at(self.name.span(), "format.name", "a format needs a name"));
        }
        let kind = pick(site, &self.kind, "format.kind", "kind")?;
        let mut fields = Vec::new();
        for (key, text) in self.fields.get_ref() {
            let at =
                |message: String| site.at(text.span(), &format!("format.fields.{key}"), message);
            let target = Target::parse(key).ok_or_else(|| {
                at(format!(
                    "unknown field `{key}`; known fields: {}",
                    Target::all_names()
                ))
            })?;
            if !target.fits(kind) {
                return Err(at(format!(
                    "field `{key}` is only for service-request formats"
                )));
            }
            let template = Template::parse(text.get_ref()).map_err(|e| at(e.to_string()))?;
            if let Some(missing) = template.maps().find(|m| !self.maps.contains_key(*m)) {
                return Err(at(format!(
                    "value table `{missing}` is not defined; add [format.maps.{missing}]"
                )));
            }
            fields.push((target, template));
        }
        let mut required = Vec::new();
        for field in &self.required {
            let target = Target::parse(field.get_ref())
                .filter(|t| fields.iter().any(|(f, _)| f == t))
                .ok_or_else(|| {
                    site.at(
                        field.span(),
                        "format.required",
                        format!("`{}` is not one of this format's fields", field.get_ref()),
                    )
                })?;
            required.push(target);
        }
        if let Some(unknown) = self
            .map_defaults
            .keys()
            .find(|m| !self.maps.contains_key(*m))
        {
            return Err(site.at(
                self.fields.span(),
                "format.map-defaults",
                format!("default for value table `{unknown}`, which is not defined"),
            ));
        }
        Ok(DeclarativeFormat {
            name,
            kind,
            fields,
            required,
            tables: ValueTables {
                maps: self.maps.clone(),
                defaults: self.map_defaults.clone(),
            },
            number_prefix: self
                .number_prefix
                .clone()
                .unwrap_or_else(|| "SR".to_string()),
        })
    }
}

/// The declared formats by name, for the collectors to refer to.
pub(super) struct Formats(HashMap<String, Arc<DeclarativeFormat>>);

impl Formats {
    /// Validates every `[[format]]`; names are unique and never the built-in one.
    pub(super) fn validate(site: &ErrorSite<'_>, raw: &[RawFormat]) -> Result<Self, ConfigError> {
        let mut formats = HashMap::new();
        for f in raw {
            let format = f.validate(site)?;
            if format.name == ORDER_JSON_FORMAT || formats.contains_key(&format.name) {
                return Err(site.at(
                    f.name.span(),
                    "format.name",
                    format!(
                        "format `{}` is declared twice (or is built in)",
                        format.name
                    ),
                ));
            }
            formats.insert(format.name.clone(), Arc::new(format));
        }
        Ok(Formats(formats))
    }

    /// Every format's name (the built-in one too) with the kinds of records it makes.
    pub(super) fn kinds(&self) -> HashMap<String, Vec<RecordKind>> {
        let mut kinds: HashMap<String, Vec<RecordKind>> = self
            .0
            .iter()
            .map(|(name, f)| (name.clone(), vec![f.kind]))
            .collect();
        kinds.insert(
            ORDER_JSON_FORMAT.to_string(),
            super::notify::kinds_of(&PayloadFormat::OrderJson),
        );
        kinds
    }

    /// The format a collector's `format = "..."` names (none: `order-json`).
    pub(super) fn resolve(
        &self,
        site: &ErrorSite<'_>,
        name: Option<&Spanned<String>>,
    ) -> Result<PayloadFormat, ConfigError> {
        let Some(name) = name.filter(|n| n.get_ref() != ORDER_JSON_FORMAT) else {
            return Ok(PayloadFormat::OrderJson);
        };
        if let Some(format) = self.0.get(name.get_ref()) {
            return Ok(PayloadFormat::Declarative(format.clone()));
        }
        let mut known: Vec<&str> = self.0.keys().map(String::as_str).collect();
        known.sort_unstable();
        known.insert(0, ORDER_JSON_FORMAT);
        Err(site.at(
            name.span(),
            "collector.format",
            format!(
                "unknown format `{}`; known formats: {}",
                name.get_ref(),
                known.join(", ")
            ),
        ))
    }
}
