//! Phone numbers: read as people write them, validated, normalised to E.164. Every
//! number is read on one thread (see [`thread`]); callers with many numbers hand them
//! over together with [`on_phone_thread`].

mod thread;

pub use thread::on_phone_thread;

use phonenumber::country::Id;
use phonenumber::metadata::DATABASE;
use phonenumber::Mode;

/// A validated phone number.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Phone {
    /// `+393331234567`
    pub e164: String,
    /// ISO 3166 alpha-2 region, e.g. `IT`.
    pub country: String,
}

/// Parses `input` as written, reading numbers without an international prefix as numbers
/// of `default_region`. `None` when the text is not a valid number.
pub fn normalize(input: &str, default_region: Option<&str>) -> Option<Phone> {
    let text = input.trim();
    if text.is_empty() || text.len() > 64 {
        return None;
    }
    let (text, region) = (text.to_owned(), default_region.map(str::to_owned));
    on_phone_thread(move || read(&text, region.as_deref()))
}

/// [`normalize`] of trimmed text, on the phone thread.
fn read(text: &str, default_region: Option<&str>) -> Option<Phone> {
    if let Some(metadata) = default_region.and_then(|id| DATABASE.by_id(id)) {
        thread::compile_patterns(metadata.country_code());
    }
    let region = default_region.and_then(|code| code.parse::<Id>().ok());
    // "00" is the international prefix people in most of the world type instead of "+".
    let text = match text.strip_prefix("00") {
        Some(rest) => format!("+{rest}"),
        None => text.to_owned(),
    };
    let number = phonenumber::parse(region, &text).ok()?;
    if thread::compile_patterns(number.country().code()) {
        // The first number of its calling code: read again with the patterns just made.
        return read(&text, default_region);
    }
    if !phonenumber::is_valid(&number) {
        return None;
    }
    let country = country_of(&number, default_region)?;
    Some(Phone {
        e164: number.format().mode(Mode::E164).to_string(),
        country,
    })
}

/// phonenumber 0.3.10 gives no region for some valid numbers (Italian landlines,
/// `+39 0...`): derive it from the calling code, preferring the tenant's region where the
/// code is shared (+39 is IT and VA).
fn country_of(number: &phonenumber::PhoneNumber, default_region: Option<&str>) -> Option<String> {
    if let Some(id) = number.country().id() {
        return Some(id.as_ref().to_owned());
    }
    let regions = DATABASE.by_code(&number.country().code())?;
    let preferred = regions
        .iter()
        .find(|m| Some(m.id()) == default_region)
        .or_else(|| regions.iter().find(|m| m.is_main_country_for_code()))
        .or_else(|| regions.first())?;
    Some(preferred.id().to_owned())
}

/// Whether the number is a mobile one (or one its region cannot tell from a landline,
/// as in the US).
pub fn is_mobile(phone: &Phone) -> bool {
    use phonenumber::Type;
    let e164 = phone.e164.clone();
    on_phone_thread(move || {
        phonenumber::parse(None, &e164).is_ok_and(|number| {
            thread::compile_patterns(number.country().code());
            matches!(
                number.number_type(&DATABASE),
                Type::Mobile | Type::FixedLineOrMobile
            )
        })
    })
}

/// Whether `code` is a region the phone library knows (`IT`, `GB`, ...).
pub fn is_known_region(code: &str) -> bool {
    code.len() == 2 && code.parse::<Id>().is_ok() && DATABASE.by_id(code).is_some()
}

/// Starts the phone thread, which decodes the metadata (~60 ms) and compiles every
/// region's patterns (~0.3 s) before it reads a number: at start-up, not in a request.
pub fn warm_up() {
    let _ = normalize("+39 333 123 4567", None);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn real_world_spellings_normalise_to_e164() {
        let cases: &[(&str, Option<&str>, &str, &str)] = &[
            // Italy: mobile and landline, national and international spellings.
            ("333 123 4567", Some("IT"), "+393331234567", "IT"),
            ("333-123-4567", Some("IT"), "+393331234567", "IT"),
            ("+39 333 1234567", None, "+393331234567", "IT"),
            ("0039 333 1234567", None, "+393331234567", "IT"),
            ("(+39) 333.123.4567", Some("GB"), "+393331234567", "IT"),
            ("02 1234 5678", Some("IT"), "+390212345678", "IT"),
            ("+39 06 6982 1234", None, "+390669821234", "IT"),
            // United Kingdom.
            ("07400 123456", Some("GB"), "+447400123456", "GB"),
            ("+44 7400 123456", None, "+447400123456", "GB"),
            ("020 7946 0958", Some("GB"), "+442079460958", "GB"),
            // United States.
            ("(201) 555-0123", Some("US"), "+12015550123", "US"),
            ("201.555.0123", Some("US"), "+12015550123", "US"),
            ("+1 201 555 0123", None, "+12015550123", "US"),
            // Germany.
            ("0151 23456789", Some("DE"), "+4915123456789", "DE"),
            ("+49 30 901820", None, "+4930901820", "DE"),
            // France.
            ("06 12 34 56 78", Some("FR"), "+33612345678", "FR"),
            ("+33 1 42 68 53 00", None, "+33142685300", "FR"),
            // Spain.
            ("612 34 56 78", Some("ES"), "+34612345678", "ES"),
            ("0034 912 345 678", None, "+34912345678", "ES"),
            // India.
            ("098765 43210", Some("IN"), "+919876543210", "IN"),
            ("+91 98765-43210", None, "+919876543210", "IN"),
            // Brazil.
            ("(11) 91234-5678", Some("BR"), "+5511912345678", "BR"),
            ("+55 21 2345-6789", None, "+552123456789", "BR"),
        ];
        for (input, region, e164, country) in cases {
            let phone = normalize(input, *region)
                .unwrap_or_else(|| panic!("{input:?} with {region:?} should be valid"));
            assert_eq!(phone.e164, *e164, "{input:?}");
            assert_eq!(phone.country, *country, "{input:?}");
        }
    }

    #[test]
    fn italian_landlines_get_their_region_despite_the_library() {
        let phone = normalize("+39 02 1234 5678", None).expect("valid Milan landline");
        assert_eq!(phone.country, "IT");
    }

    #[test]
    fn invalid_numbers_are_refused() {
        let cases: &[(&str, Option<&str>)] = &[
            ("", Some("IT")),
            ("   ", Some("IT")),
            ("not a phone", Some("IT")),
            ("333 1234567", None), // national number and no region to read it with
            ("123", Some("IT")),
            ("+39 333", None),
            ("+1 555 0100", None),
            ("0000000000", Some("US")),
            ("+999 1234567", None),
            ("12345678901234567890", Some("DE")),
        ];
        for (input, region) in cases {
            assert_eq!(normalize(input, *region), None, "{input:?} with {region:?}");
        }
    }

    #[test]
    fn regions_are_checked_against_the_metadata() {
        assert!(is_known_region("IT"));
        assert!(is_known_region("GB"));
        assert!(!is_known_region("XX"));
        assert!(!is_known_region("it"));
        assert!(!is_known_region("ITA"));
    }
}
