//! Who may join a segment of a channel: the one rule every route that adds members applies.
//!
//! The rule is a set of [`Requirements`]; the data layer turns them into a SQL condition
//! for set-based writes, and [`Requirements::verdict`] explains, contact by contact, why
//! one was refused or added with a warning.

use super::types::Channel;

/// A reason a contact was refused or warned about, with the words users see.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Issue {
    pub code: &'static str,
    pub message: &'static str,
}

pub const NO_VALIDATED_MOBILE_WARNING: Issue = Issue {
    code: "no_validated_mobile",
    message: "You have added recipient candidates to the segment who do not have a validated \
              mobile number and therefore cannot be contacted via WhatsApp",
};
pub const NO_VALIDATED_MOBILE: Issue = Issue {
    code: "no_validated_mobile",
    message: "The contact has no validated mobile number, so it cannot receive SMS.",
};
pub const NO_EMAIL: Issue = Issue {
    code: "no_email",
    message: "The contact has no valid email address.",
};
pub const NO_PRIVACY_CONSENT: Issue = Issue {
    code: "no_privacy_consent",
    message: "The contact has not given privacy consent, which this account requires.",
};
pub const CONTACT_NOT_FOUND: Issue = Issue {
    code: "contact_not_found",
    message: "No contact with this id exists.",
};

/// What a contact must have to join a segment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Requirements {
    pub validated_phone: bool,
    pub email: bool,
    pub privacy_consent: bool,
    /// Accepted without a validated phone, but worth a warning (WhatsApp).
    pub warn_without_phone: bool,
}

/// The facts about a contact the rule looks at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ContactFacts {
    pub has_validated_phone: bool,
    pub has_email: bool,
    pub has_privacy_consent: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Eligible,
    EligibleWithWarning(Issue),
    Rejected(Issue),
}

impl Requirements {
    /// WhatsApp accepts contacts without a validated phone (with a warning, so someone
    /// fixes them); SMS and email refuse contacts without an address; a tenant that
    /// requires privacy consent refuses contacts without it, on every channel.
    pub fn for_channel(channel: Channel, require_privacy_consent: bool) -> Self {
        Self {
            validated_phone: channel == Channel::Sms,
            email: channel == Channel::Email,
            privacy_consent: require_privacy_consent,
            warn_without_phone: channel == Channel::Whatsapp,
        }
    }

    /// The first failing requirement, in the order: address, then consent.
    pub fn verdict(&self, facts: ContactFacts) -> Verdict {
        if self.validated_phone && !facts.has_validated_phone {
            return Verdict::Rejected(NO_VALIDATED_MOBILE);
        }
        if self.email && !facts.has_email {
            return Verdict::Rejected(NO_EMAIL);
        }
        if self.privacy_consent && !facts.has_privacy_consent {
            return Verdict::Rejected(NO_PRIVACY_CONSENT);
        }
        if self.warn_without_phone && !facts.has_validated_phone {
            return Verdict::EligibleWithWarning(NO_VALIDATED_MOBILE_WARNING);
        }
        Verdict::Eligible
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn facts(phone: bool, email: bool, consent: bool) -> ContactFacts {
        ContactFacts {
            has_validated_phone: phone,
            has_email: email,
            has_privacy_consent: consent,
        }
    }

    #[test]
    fn whatsapp_accepts_without_phone_but_warns_with_the_exact_message() {
        let rules = Requirements::for_channel(Channel::Whatsapp, false);
        assert_eq!(rules.verdict(facts(true, false, false)), Verdict::Eligible);
        let Verdict::EligibleWithWarning(issue) = rules.verdict(facts(false, false, false)) else {
            panic!("expected a warning");
        };
        assert_eq!(issue.code, "no_validated_mobile");
        assert_eq!(
            issue.message,
            "You have added recipient candidates to the segment who do not have a validated mobile \
             number and therefore cannot be contacted via WhatsApp"
        );
    }

    #[test]
    fn sms_rejects_without_a_validated_phone() {
        let rules = Requirements::for_channel(Channel::Sms, false);
        assert_eq!(
            rules.verdict(facts(false, true, true)),
            Verdict::Rejected(NO_VALIDATED_MOBILE)
        );
        assert_eq!(rules.verdict(facts(true, false, false)), Verdict::Eligible);
    }

    #[test]
    fn email_rejects_without_an_email() {
        let rules = Requirements::for_channel(Channel::Email, false);
        assert_eq!(
            rules.verdict(facts(true, false, true)),
            Verdict::Rejected(NO_EMAIL)
        );
        assert_eq!(rules.verdict(facts(false, true, false)), Verdict::Eligible);
    }

    #[test]
    fn required_consent_is_checked_on_every_channel_after_the_address() {
        for channel in [Channel::Whatsapp, Channel::Sms, Channel::Email] {
            let rules = Requirements::for_channel(channel, true);
            assert_eq!(
                rules.verdict(facts(true, true, false)),
                Verdict::Rejected(NO_PRIVACY_CONSENT),
                "{channel:?}"
            );
            assert_eq!(
                rules.verdict(facts(true, true, true)),
                Verdict::Eligible,
                "{channel:?}"
            );
        }
        let sms = Requirements::for_channel(Channel::Sms, true);
        assert_eq!(
            sms.verdict(facts(false, false, false)),
            Verdict::Rejected(NO_VALIDATED_MOBILE)
        );
        let whatsapp = Requirements::for_channel(Channel::Whatsapp, true);
        assert_eq!(
            whatsapp.verdict(facts(false, false, false)),
            Verdict::Rejected(NO_PRIVACY_CONSENT)
        );
    }
}
