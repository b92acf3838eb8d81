//! The rules that turn a request into a contact's stored values. No HTTP, no SQL.

use serde_json::{Map, Value};
use validator::{ValidateEmail, ValidationError};

use super::dto::UpdateContact;
use super::queries::ContactValues;
use crate::attributes::values::{check_values, Definition};
use crate::error::FieldError;
use crate::phone;

const MAX_TAG_LENGTH: usize = 100;

pub fn check_tags(tags: &[String]) -> Result<(), ValidationError> {
    let fits = |tag: &String| {
        let tag = tag.trim();
        !tag.is_empty() && tag.chars().count() <= MAX_TAG_LENGTH
    };
    if tags.iter().all(fits) {
        Ok(())
    } else {
        Err(ValidationError::new("invalid_tag")
            .with_message(format!("every tag must be 1 to {MAX_TAG_LENGTH} characters").into()))
    }
}

pub fn check_email(address: &str) -> Result<(), ValidationError> {
    if address.len() > 254 || !address.validate_email() {
        Err(ValidationError::new("email").with_message("must be a valid email address".into()))
    } else {
        Ok(())
    }
}

/// Trimmed, in first-seen order, each once.
pub fn normalize_tags(tags: Vec<String>) -> Vec<String> {
    let mut seen = Vec::with_capacity(tags.len());
    for tag in tags {
        let tag = tag.trim().to_owned();
        if !seen.contains(&tag) {
            seen.push(tag);
        }
    }
    seen
}

/// The values a contact has after `changes`: `current` for an existing contact, `None`
/// for a new one (whose `name` the caller guarantees). Phones are validated with
/// `default_region`; attribute values are checked against `definitions` and merged.
pub fn apply_changes(
    current: Option<ContactValues>,
    changes: UpdateContact,
    default_region: Option<&str>,
    definitions: &[Definition<'_>],
) -> Result<ContactValues, Vec<FieldError>> {
    let mut values = current.unwrap_or_else(|| ContactValues {
        external_id: None,
        name: String::new(),
        phone: None,
        phone_e164: None,
        phone_country: None,
        email: None,
        attributes: Value::Object(Map::new()),
        tags: Vec::new(),
        opted_out: false,
        privacy_consent: false,
    });
    if let Some(external_id) = changes.external_id {
        values.external_id = external_id;
    }
    if let Some(name) = changes.name {
        values.name = name;
    }
    if let Some(phone_text) = changes.phone {
        let validated = phone_text
            .as_deref()
            .and_then(|text| phone::normalize(text, default_region));
        values.phone_e164 = validated.as_ref().map(|p| p.e164.clone());
        values.phone_country = validated.map(|p| p.country);
        values.phone = phone_text;
    }
    if let Some(email) = changes.email {
        values.email = email;
    }
    if let Some(update) = changes.attributes {
        let update = update.unwrap_or_default();
        let errors = check_values(definitions, &update, "attributes");
        if !errors.is_empty() {
            return Err(errors);
        }
        let merged = values
            .attributes
            .as_object_mut()
            .expect("attributes are stored as an object");
        for (key, value) in update {
            if value.is_null() {
                merged.remove(&key);
            } else {
                merged.insert(key, value);
            }
        }
    }
    if let Some(tags) = changes.tags {
        values.tags = normalize_tags(tags);
    }
    if let Some(opted_out) = changes.opted_out {
        values.opted_out = opted_out;
    }
    if let Some(consent) = changes.privacy_consent {
        values.privacy_consent = consent;
    }
    Ok(values)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::attributes::AttributeType;

    fn definitions() -> Vec<Definition<'static>> {
        vec![Definition {
            key: "city",
            value_type: AttributeType::Text,
        }]
    }

    #[test]
    fn a_new_contact_gets_a_validated_phone() {
        let changes = UpdateContact {
            name: Some("Giulia".into()),
            phone: Some(Some("333 123 4567".into())),
            ..Default::default()
        };
        let values = apply_changes(None, changes, Some("IT"), &definitions()).unwrap();
        assert_eq!(values.phone.as_deref(), Some("333 123 4567"));
        assert_eq!(values.phone_e164.as_deref(), Some("+393331234567"));
        assert_eq!(values.phone_country.as_deref(), Some("IT"));
    }

    #[test]
    fn an_invalid_phone_is_kept_but_not_validated() {
        let changes = UpdateContact {
            phone: Some(Some("12".into())),
            ..Default::default()
        };
        let values = apply_changes(None, changes, Some("IT"), &definitions()).unwrap();
        assert_eq!(values.phone.as_deref(), Some("12"));
        assert_eq!(values.phone_e164, None);
    }

    #[test]
    fn attributes_merge_and_null_removes() {
        let first = UpdateContact {
            attributes: Some(Some(json!({"city": "Milan"}).as_object().unwrap().clone())),
            ..Default::default()
        };
        let values = apply_changes(None, first, None, &definitions()).unwrap();
        assert_eq!(values.attributes, json!({"city": "Milan"}));
        let removal = UpdateContact {
            attributes: Some(Some(json!({"city": null}).as_object().unwrap().clone())),
            ..Default::default()
        };
        let values = apply_changes(Some(values), removal, None, &definitions()).unwrap();
        assert_eq!(values.attributes, json!({}));
    }

    #[test]
    fn undefined_attributes_are_refused() {
        let changes = UpdateContact {
            attributes: Some(Some(json!({"shoe_size": 42}).as_object().unwrap().clone())),
            ..Default::default()
        };
        let errors = apply_changes(None, changes, None, &definitions()).unwrap_err();
        assert_eq!(errors[0].field, "attributes.shoe_size");
    }

    #[test]
    fn tags_are_trimmed_and_deduplicated() {
        let tags = normalize_tags(vec![" vip".into(), "lead".into(), "vip ".into()]);
        assert_eq!(tags, ["vip", "lead"]);
        assert!(check_tags(&["ok".into(), "  ".into()]).is_err());
    }
}
