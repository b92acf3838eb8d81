//! CRM pushes: which existing contact a push names, and what it changes.

use serde_json::{Map, Value};

use super::attributes::{check_values, Definition};
use super::contact::{normalize_tags, ContactChanges};
use super::error::Error;
use super::phone;

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

/// The codes of a push that names a phone or external id another contact holds.
pub const PHONE_TAKEN: &str = "phone_taken";
pub const EXTERNAL_ID_TAKEN: &str = "external_id_taken";

pub fn phone_taken(phone_e164: &str) -> Error {
    Error::conflict(
        PHONE_TAKEN,
        format!("Another contact already has the phone {phone_e164}."),
    )
}

pub fn external_id_taken(external_id: &str) -> Error {
    Error::conflict(
        EXTERNAL_ID_TAKEN,
        format!("Another contact already has the external id {external_id}."),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

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
