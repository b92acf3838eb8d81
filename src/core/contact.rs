//! The rules that turn a request into a contact's stored values, and which existing
//! contact a push names. No HTTP, no SQL.

use serde_json::{Map, Value};
use validator::ValidateEmail;

use super::attributes::{check_values, Definition};
use super::error::FieldError;
use super::phone;

/// Longest tag, in characters.
pub const MAX_TAG_LENGTH: usize = 100;
/// Most tags one contact carries.
pub const MAX_TAGS: usize = 100;
/// Longest name, in characters.
pub const MAX_NAME_LENGTH: usize = 200;
/// Longest e-mail address, in bytes (RFC 5321).
pub const MAX_EMAIL_LENGTH: usize = 254;

/// Every tag is 1 to [`MAX_TAG_LENGTH`] characters once trimmed.
pub fn tags_fit(tags: &[String]) -> bool {
    tags.iter().all(|tag| {
        let tag = tag.trim();
        !tag.is_empty() && tag.chars().count() <= MAX_TAG_LENGTH
    })
}

pub fn is_valid_email(address: &str) -> bool {
    address.len() <= MAX_EMAIL_LENGTH && address.validate_email()
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

/// Every stored field of a contact but its identity and timestamps.
#[derive(Debug, Clone, PartialEq)]
pub struct ContactValues {
    pub external_id: Option<String>,
    pub name: String,
    pub phone: Option<String>,
    pub phone_e164: Option<String>,
    pub phone_country: Option<String>,
    pub email: Option<String>,
    pub attributes: Value,
    pub tags: Vec<String>,
    pub opted_out: bool,
    pub privacy_consent: bool,
}

/// Changes to a contact: `None` keeps a field; `Some(None)` clears a clearable one.
/// `attributes` are merged (a `null` value removes that attribute); `tags` replace the
/// list.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ContactChanges {
    pub external_id: Option<Option<String>>,
    pub name: Option<String>,
    pub phone: Option<Option<String>>,
    pub email: Option<Option<String>>,
    pub attributes: Option<Option<Map<String, Value>>>,
    pub tags: Option<Vec<String>>,
    pub opted_out: Option<bool>,
    pub privacy_consent: Option<bool>,
}

/// The values a contact has after `changes`: `current` for an existing contact, `None`
/// for a new one (whose `name` the caller guarantees). Phones are validated with
/// `default_region`; attribute values are checked against `definitions` and merged.
pub fn apply_changes(
    current: Option<ContactValues>,
    changes: ContactChanges,
    default_region: Option<&str>,
    definitions: &[Definition],
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
        if !values.attributes.is_object() {
            values.attributes = Value::Object(Map::new());
        }
        let Value::Object(merged) = &mut values.attributes else {
            unreachable!("made an object above");
        };
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
    use crate::core::types::AttributeType;

    fn definitions() -> Vec<Definition> {
        vec![Definition {
            key: "city".into(),
            label: "City".into(),
            value_type: AttributeType::Text,
        }]
    }

    #[test]
    fn a_new_contact_gets_a_validated_phone() {
        let changes = ContactChanges {
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
        let changes = ContactChanges {
            phone: Some(Some("12".into())),
            ..Default::default()
        };
        let values = apply_changes(None, changes, Some("IT"), &definitions()).unwrap();
        assert_eq!(values.phone.as_deref(), Some("12"));
        assert_eq!(values.phone_e164, None);
    }

    #[test]
    fn attributes_merge_and_null_removes() {
        let first = ContactChanges {
            attributes: Some(Some(json!({"city": "Milan"}).as_object().unwrap().clone())),
            ..Default::default()
        };
        let values = apply_changes(None, first, None, &definitions()).unwrap();
        assert_eq!(values.attributes, json!({"city": "Milan"}));
        let removal = ContactChanges {
            attributes: Some(Some(json!({"city": null}).as_object().unwrap().clone())),
            ..Default::default()
        };
        let values = apply_changes(Some(values), removal, None, &definitions()).unwrap();
        assert_eq!(values.attributes, json!({}));
    }

    #[test]
    fn undefined_attributes_are_refused() {
        let changes = ContactChanges {
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
        assert!(!tags_fit(&["ok".into(), "  ".into()]));
        assert!(tags_fit(&["ok".into()]));
    }
}
