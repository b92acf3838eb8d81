//! Attribute definitions (the typed custom fields contacts carry and filters name) and
//! contact values checked against them.

use chrono::{Datelike, NaiveDate};
use serde_json::{Map, Value};

use super::error::FieldError;
use super::types::AttributeType;

/// Longest text value an attribute may hold, in characters.
pub const MAX_TEXT_LENGTH: usize = 1000;

/// Most attribute definitions one tenant may have.
pub const MAX_DEFINITIONS: i64 = 100;

/// An attribute the tenant defined.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Definition {
    /// Lowercase letters, digits and `_`, starting with a letter: it is spliced into SQL
    /// as a JSON key, so nothing else may ever be stored.
    pub key: String,
    /// What people read, e.g. in filter summaries.
    pub label: String,
    pub value_type: AttributeType,
}

/// Whether `key` is a valid attribute key: lowercase letters, digits and `_`, starting
/// with a letter, at most 50 characters.
pub fn is_valid_key(key: &str) -> bool {
    let mut chars = key.chars();
    let starts_with_letter = chars.next().is_some_and(|c| c.is_ascii_lowercase());
    let rest_ok = chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
    starts_with_letter && rest_ok && key.len() <= 50
}

/// Checks every value of `values` (a contact's `attributes` object, at JSON path
/// `prefix`); `null` is allowed and means "remove". Dates must be `YYYY-MM-DD`.
pub fn check_values(
    definitions: &[Definition],
    values: &Map<String, Value>,
    prefix: &str,
) -> Vec<FieldError> {
    let mut errors = Vec::new();
    for (key, value) in values {
        let field = format!("{prefix}.{key}");
        let Some(definition) = definitions.iter().find(|d| d.key == *key) else {
            errors.push(FieldError::new(
                field,
                "undefined_attribute",
                format!(
                    "`{key}` is not a defined attribute; define it with POST /v1/attributes first"
                ),
            ));
            continue;
        };
        if value.is_null() {
            continue;
        }
        if let Err(message) = check_value(definition.value_type, value) {
            errors.push(FieldError::new(field, "invalid_attribute_value", message));
        }
    }
    errors
}

pub fn check_value(value_type: AttributeType, value: &Value) -> Result<(), String> {
    match (value_type, value) {
        (AttributeType::Text, Value::String(text)) if text.chars().count() <= MAX_TEXT_LENGTH => {
            Ok(())
        }
        (AttributeType::Text, Value::String(_)) => {
            Err(format!("must be at most {MAX_TEXT_LENGTH} characters long"))
        }
        (AttributeType::Number, Value::Number(_)) | (AttributeType::Boolean, Value::Bool(_)) => {
            Ok(())
        }
        (AttributeType::Date, Value::String(text)) if parse_date(text).is_some() => Ok(()),
        (AttributeType::Date, _) => Err("must be a date written YYYY-MM-DD".to_owned()),
        (other, _) => Err(format!("must be a {}", other.as_str())),
    }
}

/// A value as written in a spreadsheet cell, read as `value_type`: numbers with `.` or a
/// decimal `,`, booleans as true/false, yes/no or 1/0 in any case, dates YYYY-MM-DD.
pub fn from_cell(value_type: AttributeType, cell: &str) -> Result<Value, String> {
    let value = match value_type {
        AttributeType::Text => Value::String(cell.to_owned()),
        AttributeType::Number => {
            let spelled = if cell.contains('.') {
                cell.to_owned()
            } else {
                cell.replacen(',', ".", 1)
            };
            spelled
                .parse::<f64>()
                .ok()
                .filter(|n| n.is_finite())
                .and_then(serde_json::Number::from_f64)
                .map(Value::Number)
                .ok_or_else(|| "must be a number".to_owned())?
        }
        AttributeType::Boolean => match cell.to_ascii_lowercase().as_str() {
            "true" | "yes" | "1" => Value::Bool(true),
            "false" | "no" | "0" => Value::Bool(false),
            _ => return Err("must be true or false (yes/no, 1/0)".to_owned()),
        },
        AttributeType::Date => Value::String(cell.to_owned()),
    };
    check_value(value_type, &value)?;
    Ok(value)
}

/// A `YYYY-MM-DD` date PostgreSQL can hold as a date (years 1 to 9999; chrono alone
/// would also read year 0, which PostgreSQL refuses).
pub fn parse_date(text: &str) -> Option<NaiveDate> {
    (text.len() == 10)
        .then(|| NaiveDate::parse_from_str(text, "%Y-%m-%d").ok())
        .flatten()
        .filter(|date| (1..=9999).contains(&date.year()))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn definitions() -> Vec<Definition> {
        [
            ("city", AttributeType::Text),
            ("score", AttributeType::Number),
            ("premium", AttributeType::Boolean),
            ("birthdate", AttributeType::Date),
        ]
        .into_iter()
        .map(|(key, value_type)| Definition {
            key: key.into(),
            label: key.into(),
            value_type,
        })
        .collect()
    }

    #[test]
    fn keys_are_identifiers() {
        assert!(is_valid_key("city"));
        assert!(is_valid_key("birth_date2"));
        assert!(!is_valid_key("City"));
        assert!(!is_valid_key("2city"));
        assert!(!is_valid_key("a'b"));
        assert!(!is_valid_key(&"a".repeat(51)));
    }

    #[test]
    fn values_of_the_right_type_pass() {
        let values = json!({"city": "Milan", "score": 4.5, "premium": true, "birthdate": "2000-02-29", "score2": null});
        let errors = check_values(&definitions(), values.as_object().unwrap(), "attributes");
        // `score2` is not defined: only that is refused, null or not.
        assert_eq!(errors.len(), 1);
        assert_eq!(errors[0].field, "attributes.score2");
        assert_eq!(errors[0].code, "undefined_attribute");
    }

    #[test]
    fn each_type_mismatch_names_the_attribute() {
        let values =
            json!({"city": 3, "score": "high", "premium": "yes", "birthdate": "2001-02-29"});
        let mut errors = check_values(&definitions(), values.as_object().unwrap(), "attributes");
        errors.sort_by(|a, b| a.field.cmp(&b.field));
        let fields: Vec<_> = errors.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(
            fields,
            [
                "attributes.birthdate",
                "attributes.city",
                "attributes.premium",
                "attributes.score"
            ]
        );
        assert!(errors.iter().all(|e| e.code == "invalid_attribute_value"));
    }

    #[test]
    fn dates_must_be_calendar_days_in_iso_form() {
        assert!(parse_date("2024-02-29").is_some());
        assert!(parse_date("2023-02-29").is_none());
        assert!(parse_date("2024-2-9").is_none());
        assert!(parse_date("29/02/2024").is_none());
        assert!(
            parse_date("0000-01-01").is_none(),
            "PostgreSQL has no year 0"
        );
        assert!(parse_date("0001-01-01").is_some());
        assert!(parse_date("9999-12-31").is_some());
    }

    #[test]
    fn cells_are_read_as_their_attribute_type() {
        assert_eq!(from_cell(AttributeType::Number, "4,5"), Ok(json!(4.5)));
        assert_eq!(
            from_cell(AttributeType::Number, "1200.25"),
            Ok(json!(1200.25))
        );
        assert!(from_cell(AttributeType::Number, "high").is_err());
        assert!(from_cell(AttributeType::Number, "NaN").is_err());
        assert_eq!(from_cell(AttributeType::Boolean, "Yes"), Ok(json!(true)));
        assert_eq!(from_cell(AttributeType::Boolean, "0"), Ok(json!(false)));
        assert!(from_cell(AttributeType::Boolean, "maybe").is_err());
        assert_eq!(
            from_cell(AttributeType::Date, "2024-02-29"),
            Ok(json!("2024-02-29"))
        );
        assert!(from_cell(AttributeType::Date, "29/02/2024").is_err());
        assert_eq!(from_cell(AttributeType::Text, "Milan"), Ok(json!("Milan")));
    }

    #[test]
    fn text_values_have_a_length_limit() {
        let long = Value::String("x".repeat(MAX_TEXT_LENGTH + 1));
        assert!(check_value(AttributeType::Text, &long).is_err());
    }
}
