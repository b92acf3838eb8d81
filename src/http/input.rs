//! Request input as the handlers receive it: free text trimmed, PATCH fields that may be
//! cleared told apart from those left out, and validator's errors named by field path.

use serde::{Deserialize, Deserializer};
use validator::{ValidationErrors, ValidationErrorsKind};

use crate::core::error::{Error, FieldError};

/// Flattens validator's nested errors into one list of dotted paths.
pub fn validation_problem(errors: ValidationErrors) -> Error {
    Error::Validation(field_errors(errors))
}

pub fn field_errors(errors: ValidationErrors) -> Vec<FieldError> {
    let mut fields = Vec::new();
    flatten(&errors, "", &mut fields);
    fields.sort_by(|a, b| a.field.cmp(&b.field));
    fields
}

fn flatten(errors: &ValidationErrors, prefix: &str, out: &mut Vec<FieldError>) {
    for (field, kind) in errors.errors() {
        let path = if prefix.is_empty() {
            field.to_string()
        } else {
            format!("{prefix}.{field}")
        };
        match kind {
            ValidationErrorsKind::Field(list) => out.extend(list.iter().map(|error| {
                let message = error
                    .message
                    .as_ref()
                    .map_or_else(|| describe(error), |message| message.to_string());
                FieldError::new(path.clone(), &error.code, message)
            })),
            ValidationErrorsKind::Struct(inner) => flatten(inner, &path, out),
            ValidationErrorsKind::List(items) => {
                for (index, inner) in items {
                    flatten(inner, &format!("{path}[{index}]"), out);
                }
            }
        }
    }
}

/// A sentence for validator's built-in checks, from the parameters it records.
fn describe(error: &validator::ValidationError) -> String {
    let param = |name: &str| error.params.get(name).map(|value| value.to_string());
    match error.code.as_ref() {
        "length" => match (param("min"), param("max")) {
            (Some(min), Some(max)) => format!("must be {min} to {max} characters long"),
            (None, Some(max)) => format!("must be at most {max} characters long"),
            (Some(min), None) => format!("must be at least {min} characters long"),
            _ => "has the wrong length".to_owned(),
        },
        "range" => match (param("min"), param("max")) {
            (Some(min), Some(max)) => format!("must be between {min} and {max}"),
            (Some(min), None) => format!("must be at least {min}"),
            (None, Some(max)) => format!("must be at most {max}"),
            _ => "is out of range".to_owned(),
        },
        "email" => "must be a valid email address".to_owned(),
        other => format!("is invalid ({other})"),
    }
}

/// Ids are positive: a list of them holding another number is refused where it enters.
pub fn positive_ids(ids: &[i64]) -> Result<(), validator::ValidationError> {
    if ids.iter().all(|id| *id >= 1) {
        Ok(())
    } else {
        Err(validator::ValidationError::new("invalid_id")
            .with_message("every id is a positive integer".into()))
    }
}

/// A filter is a JSON object (a group or a condition): anything else is refused where it
/// enters, before a version is checked or a lookup made.
pub fn json_object(value: &serde_json::Value) -> Result<(), validator::ValidationError> {
    if value.is_object() {
        Ok(())
    } else {
        Err(validator::ValidationError::new("invalid_node")
            .with_message("a filter is an object: a group or a condition".into()))
    }
}

/// For names and other free text: surrounding white space is never meaningful. The
/// document's `maxLength` is `MAX` characters as sent, white space included, so text
/// longer than that is refused here (422 naming the field) even when trimming would
/// bring it under: what the document refuses, the service refuses.
pub fn trimmed<'de, const MAX: usize, D: Deserializer<'de>>(
    deserializer: D,
) -> Result<String, D::Error> {
    let text = String::deserialize(deserializer)?;
    within::<MAX, D>(&text)?;
    Ok(text.trim().to_owned())
}

fn within<'de, const MAX: usize, D: Deserializer<'de>>(text: &str) -> Result<(), D::Error> {
    if text.chars().count() > MAX {
        return Err(serde::de::Error::custom(format!(
            "must be at most {MAX} characters long"
        )));
    }
    Ok(())
}

/// As [`trimmed`], for optional text; blank becomes absent.
pub fn trimmed_opt<'de, const MAX: usize, D: Deserializer<'de>>(
    deserializer: D,
) -> Result<Option<String>, D::Error> {
    let text = Option::<String>::deserialize(deserializer)?;
    if let Some(text) = &text {
        within::<MAX, D>(text)?;
    }
    Ok(text.map(|t| t.trim().to_owned()).filter(|t| !t.is_empty()))
}

/// For PATCH fields that may be left out but not cleared: present text is trimmed.
pub fn trimmed_some<'de, const MAX: usize, D: Deserializer<'de>>(
    deserializer: D,
) -> Result<Option<String>, D::Error> {
    trimmed::<MAX, D>(deserializer).map(Some)
}

/// For PATCH fields that may be cleared: absent is `None` (with `#[serde(default)]`),
/// `null` is `Some(None)`.
pub fn nullable<'de, D: Deserializer<'de>, T: Deserialize<'de>>(
    deserializer: D,
) -> Result<Option<Option<T>>, D::Error> {
    Option::<T>::deserialize(deserializer).map(Some)
}

/// As [`nullable`], for text: trimmed, and blank clears like `null`.
pub fn patch_opt<'de, const MAX: usize, D: Deserializer<'de>>(
    deserializer: D,
) -> Result<Option<Option<String>>, D::Error> {
    trimmed_opt::<MAX, D>(deserializer).map(Some)
}
