//! The client's own reading of a file's header (`mapping`): each field, the header(s)
//! holding it; it overrides recognition.

use serde_json::Value;

use crate::core::attributes::Definition;
use crate::core::error::FieldError;

/// The client's own reading of the header: each field, the header(s) holding it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Mapping {
    pub phone: Vec<String>,
    /// One header (a full name), or several joined with a space (first, then last).
    pub name: Vec<String>,
    pub email: Option<String>,
    pub tags: Option<String>,
    /// (attribute key, header).
    pub attributes: Vec<(String, String)>,
}

impl Mapping {
    /// Reads `{"phone": "Cell", "name": ["Nome", "Cognome"], "email": "Posta", "tags":
    /// "Etichette", "attributes.city": "Città"}`; every problem names its key.
    pub fn parse(value: &Value, definitions: &[Definition]) -> Result<Self, Vec<FieldError>> {
        let Some(object) = value.as_object() else {
            return Err(vec![FieldError::new(
                "mapping",
                "invalid_mapping",
                "a JSON object from field (phone, name, email, tags, attributes.<key>) to header",
            )]);
        };
        let mut mapping = Mapping::default();
        let mut errors = Vec::new();
        for (key, headers) in object {
            let path = format!("mapping.{key}");
            let names: Vec<String> = match headers {
                Value::String(header) => vec![header.clone()],
                Value::Array(items) if !items.is_empty() && items.len() <= 5 => items
                    .iter()
                    .filter_map(|item| item.as_str().map(str::to_owned))
                    .collect(),
                _ => Vec::new(),
            };
            let single = names.len() == 1 && headers.is_string();
            if names.is_empty() || names.iter().any(|n| n.trim().is_empty() || n.len() > 200) {
                errors.push(FieldError::new(
                    path,
                    "invalid_mapping",
                    "a header name, or a list of 1 to 5 header names",
                ));
                continue;
            }
            match key.as_str() {
                "phone" => mapping.phone = names,
                "name" => mapping.name = names,
                "email" | "tags" if !single => {
                    errors.push(FieldError::new(path, "invalid_mapping", "one header name"))
                }
                "email" => mapping.email = names.into_iter().next(),
                "tags" => mapping.tags = names.into_iter().next(),
                other => match other.strip_prefix("attributes.") {
                    Some(attribute) if single && definitions.iter().any(|d| d.key == attribute) => {
                        mapping.attributes.push((
                            attribute.to_owned(),
                            names.into_iter().next().unwrap_or_default(),
                        ));
                    }
                    Some(_) if !single => {
                        errors.push(FieldError::new(path, "invalid_mapping", "one header name"))
                    }
                    Some(attribute) => errors.push(FieldError::new(
                        path,
                        "undefined_attribute",
                        format!("no attribute `{attribute}` is defined"),
                    )),
                    None => errors.push(FieldError::new(
                        path,
                        "unknown_field",
                        "map phone, name, email, tags or attributes.<key>",
                    )),
                },
            }
        }
        if errors.is_empty() {
            Ok(mapping)
        } else {
            Err(errors)
        }
    }
}
