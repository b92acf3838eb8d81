//! The rules that turn a request into a contact's stored values, and which existing
//! contact a push names. No HTTP, no SQL.

use serde_json::{Map, Value};
use validator::ValidateEmail;

use super::attributes::{check_values, Definition};
use super::error::{Error, FieldError};
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

/// A contact as a CRM pushes it: created when new, else updated with what it carries.
#[derive(Debug, Clone, PartialEq)]
pub struct ContactPush {
    pub external_id: Option<String>,
    pub name: String,
    pub phone: Option<String>,
    pub email: Option<String>,
    pub attributes: Map<String, Value>,
    pub tags: Vec<String>,
    pub opted_out: bool,
    pub privacy_consent: bool,
}

impl ContactPush {
    /// The changes a push makes: everything it carries for a new contact; for an
    /// existing one, opt-out and consent are only ever set, never reset by a push that
    /// does not mention them.
    pub fn changes(self, existing: bool) -> ContactChanges {
        let (opted_out, privacy_consent) = if existing {
            (
                self.opted_out.then_some(true),
                self.privacy_consent.then_some(true),
            )
        } else {
            (Some(self.opted_out), Some(self.privacy_consent))
        };
        ContactChanges {
            external_id: self.external_id.map(Some),
            name: Some(self.name),
            phone: self.phone.map(Some),
            email: self.email.map(Some),
            attributes: Some(Some(self.attributes)),
            tags: (!self.tags.is_empty()).then_some(self.tags),
            opted_out,
            privacy_consent,
        }
    }
}

/// A push checked against the tenant's attribute definitions, its tags normalised and
/// its phone validated.
#[derive(Debug, Clone, PartialEq)]
pub struct CheckedPush {
    pub push: ContactPush,
    pub phone: Option<phone::Phone>,
}

impl CheckedPush {
    pub fn check(
        mut push: ContactPush,
        default_region: Option<&str>,
        definitions: &[Definition],
    ) -> Result<Self, Error> {
        let errors = check_values(definitions, &push.attributes, "attributes");
        if !errors.is_empty() {
            return Err(Error::Validation(errors));
        }
        push.tags = normalize_tags(std::mem::take(&mut push.tags));
        let phone = push
            .phone
            .as_deref()
            .and_then(|text| phone::normalize(text, default_region));
        Ok(Self { push, phone })
    }
}

/// An existing contact a push may name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Candidate<'a> {
    pub id: i64,
    pub external_id: Option<&'a str>,
}

/// Which existing contact a push names: the one with its external id, else the one with
/// its validated phone, unless the two carry different external ids (a contact of
/// another system is never taken over). A phone held by a contact other than the one
/// named is 409 `phone_taken`.
pub fn push_target(
    external_id: Option<&str>,
    phone_e164: Option<&str>,
    by_external_id: Option<Candidate<'_>>,
    by_phone: Option<Candidate<'_>>,
) -> Result<Option<i64>, Error> {
    let compatible = |candidate: &Candidate<'_>| {
        external_id.is_none()
            || candidate.external_id.is_none()
            || candidate.external_id == external_id
    };
    let target = by_external_id
        .or(by_phone.filter(compatible))
        .map(|candidate| candidate.id);
    match (phone_e164, by_phone) {
        (Some(phone), Some(owner)) if Some(owner.id) != target => Err(phone_taken(phone)),
        _ => Ok(target),
    }
}

pub fn phone_taken(phone_e164: &str) -> Error {
    Error::conflict(
        "phone_taken",
        format!("Another contact already has the phone {phone_e164}."),
    )
}

pub fn external_id_taken(external_id: &str) -> Error {
    Error::conflict(
        "external_id_taken",
        format!("Another contact already has the external id {external_id}."),
    )
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

    #[test]
    fn a_push_names_its_contact_by_external_id_else_by_compatible_phone() {
        let mine = Candidate {
            id: 1,
            external_id: Some("crm-1"),
        };
        let theirs = Candidate {
            id: 2,
            external_id: Some("crm-2"),
        };
        let anonymous = Candidate {
            id: 3,
            external_id: None,
        };
        let phone = Some("+393331234567");
        assert_eq!(
            push_target(Some("crm-1"), None, Some(mine), None).unwrap(),
            Some(1)
        );
        assert_eq!(
            push_target(None, phone, None, Some(anonymous)).unwrap(),
            Some(3)
        );
        assert_eq!(
            push_target(Some("crm-9"), phone, None, Some(anonymous)).unwrap(),
            Some(3)
        );
        assert_eq!(
            push_target(None, phone, None, Some(theirs)).unwrap(),
            Some(2)
        );
        // Another system's contact holds the phone: never taken over.
        let taken = push_target(Some("crm-9"), phone, None, Some(theirs)).unwrap_err();
        assert!(matches!(
            taken,
            Error::Conflict {
                code: "phone_taken",
                ..
            }
        ));
        // The external id names one contact, the phone another.
        let taken = push_target(Some("crm-1"), phone, Some(mine), Some(anonymous)).unwrap_err();
        assert!(matches!(
            taken,
            Error::Conflict {
                code: "phone_taken",
                ..
            }
        ));
        assert_eq!(push_target(Some("crm-9"), None, None, None).unwrap(), None);
    }

    #[test]
    fn a_push_never_resets_opt_out_or_consent_of_an_existing_contact() {
        let push = ContactPush {
            external_id: None,
            name: "Giulia".into(),
            phone: None,
            email: None,
            attributes: Map::new(),
            tags: Vec::new(),
            opted_out: false,
            privacy_consent: false,
        };
        let existing = push.clone().changes(true);
        assert_eq!((existing.opted_out, existing.privacy_consent), (None, None));
        let new = push.changes(false);
        assert_eq!(
            (new.opted_out, new.privacy_consent),
            (Some(false), Some(false))
        );
    }
}
