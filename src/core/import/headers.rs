//! Which column of a file holds what: the headers the common exports write (Google
//! Contacts, Outlook, HubSpot, Mailchimp, Excel lists) and their spellings in the
//! tenants' languages (English, Italian, Spanish, French, German, Portuguese). This table
//! is the one place they are listed; the import's OpenAPI description is generated from
//! it ([`describe`]).
//!
//! Headers are compared folded: lower case, accents removed, every run of punctuation and
//! space one space (`E-mail Address`, `e-mail address` and `EMAIL_ADDRESS` are one name).

use unicode_normalization::UnicodeNormalization;

/// What a recognised column holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Field {
    /// A mobile number: preferred over other phone columns.
    Mobile,
    Phone,
    /// A full name.
    Name,
    /// `Name`, `Nome`, `Nombre`, `Nom`: a full name, unless the file also has a first name
    /// column (then it is the last name, as in German `Vorname;Name`) or a last name
    /// column (then it is the first name, as in Italian `Nome;Cognome`).
    NameOrPart,
    FirstName,
    LastName,
    Email,
    Tags,
}

impl Field {
    /// The field as the preview and `mapping` name it.
    pub fn as_str(self) -> &'static str {
        match self {
            Field::Mobile | Field::Phone => "phone",
            Field::Name | Field::NameOrPart => "name",
            Field::FirstName => "first_name",
            Field::LastName => "last_name",
            Field::Email => "email",
            Field::Tags => "tags",
        }
    }
}

/// The recognised headers, by field, in the order they are tried.
pub const RECOGNISED: &[(Field, &[&str])] = &[
    (
        Field::Mobile,
        &[
            "mobile",
            "mobile phone",
            "mobile number",
            "mobile phone number",
            "cell",
            "cell phone",
            "cellphone",
            "whatsapp",
            "whatsapp number",
            "cellulare",
            "numero cellulare",
            "numero di cellulare",
            "telefono cellulare",
            "numero whatsapp",
            "móvil",
            "teléfono móvil",
            "celular",
            "número de celular",
            "portable",
            "téléphone portable",
            "numéro de portable",
            "handy",
            "handynummer",
            "mobiltelefon",
            "mobilnummer",
            "mobilfunknummer",
            "telemóvel",
            "número de telemóvel",
            "telefone celular",
        ],
    ),
    (
        Field::Phone,
        &[
            "phone",
            "phone number",
            "telephone",
            "telephone number",
            "tel",
            "msisdn",
            "Phone 1 - Value",
            "Phone 2 - Value",
            "Phone 3 - Value",
            "primary phone",
            "home phone",
            "business phone",
            "other phone",
            "telefono",
            "numero di telefono",
            "numero telefono",
            "número de teléfono",
            "numéro de téléphone",
            "telefon",
            "telefonnummer",
            "telefone",
            "número de telefone",
        ],
    ),
    (
        Field::Name,
        &[
            "full name",
            "display name",
            "contact name",
            "nome completo",
            "nominativo",
            "nombre completo",
            "nom complet",
            "vollständiger Name",
        ],
    ),
    (Field::NameOrPart, &["name", "nome", "nombre", "nom"]),
    (
        Field::FirstName,
        &[
            "first name",
            "firstname",
            "given name",
            "prenome",
            "nome proprio",
            "primer nombre",
            "prénom",
            "vorname",
            "primeiro nome",
        ],
    ),
    (
        Field::LastName,
        &[
            "last name",
            "lastname",
            "surname",
            "family name",
            "cognome",
            "apellido",
            "apellidos",
            "nom de famille",
            "nachname",
            "familienname",
            "sobrenome",
            "apelido",
            "último nome",
        ],
    ),
    (
        Field::Email,
        &[
            "email",
            "e-mail",
            "email address",
            "e-mail address",
            "E-mail 1 - Value",
            "mail",
            "indirizzo email",
            "indirizzo e-mail",
            "posta elettronica",
            "correo",
            "correo electrónico",
            "courriel",
            "adresse email",
            "adresse e-mail",
            "E-Mail-Adresse",
            "email adresse",
            "endereço de email",
            "endereço de e-mail",
        ],
    ),
    (
        Field::Tags,
        &[
            "tags",
            "tag",
            "labels",
            "categories",
            "group membership",
            "groups",
            "etichette",
            "gruppi",
            "etiquetas",
            "grupos",
            "étiquettes",
            "groupes",
            "Schlagwörter",
            "gruppen",
        ],
    ),
];

/// A header folded for comparison: lower case, accents removed, punctuation and spaces
/// one space.
pub fn fold(header: &str) -> String {
    let mut folded = String::with_capacity(header.len());
    let mut space = false;
    for c in header.nfkd().filter(|c| !is_combining(*c)) {
        if c.is_alphanumeric() {
            if space && !folded.is_empty() {
                folded.push(' ');
            }
            space = false;
            folded.extend(c.to_lowercase());
        } else {
            space = true;
        }
    }
    folded
}

/// Combining marks (the accents NFKD splits off): U+0300 to U+036F.
fn is_combining(c: char) -> bool {
    ('\u{0300}'..='\u{036F}').contains(&c)
}

/// The field a header names, if any.
pub fn recognise(header: &str) -> Option<Field> {
    let folded = fold(header);
    if folded.is_empty() {
        return None;
    }
    RECOGNISED
        .iter()
        .find(|(_, names)| names.iter().any(|name| fold(name) == folded))
        .map(|(field, _)| *field)
}

/// The table for people: one line per field, its headers in a list.
pub fn describe() -> String {
    let mut text = String::new();
    for (field, names) in RECOGNISED {
        let label = match field {
            Field::Mobile => "phone (a mobile column, preferred)",
            Field::Phone => "phone",
            Field::Name => "name (a full name)",
            Field::NameOrPart => {
                "name, or first name beside a last name column, or last name beside a first name column"
            }
            Field::FirstName => "first name (joined with the last name into `name`)",
            Field::LastName => "last name",
            Field::Email => "email",
            Field::Tags => "tags",
        };
        let quoted: Vec<String> = names.iter().map(|name| format!("`{name}`")).collect();
        text.push_str(&format!("- {label}: {}\n", quoted.join(", ")));
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headers_fold_to_one_spelling() {
        assert_eq!(fold("E-mail Address"), "e mail address");
        assert_eq!(fold("  PHONE_NUMBER "), "phone number");
        assert_eq!(fold("Téléphone portable"), "telephone portable");
        assert_eq!(fold("Città"), "citta");
        assert_eq!(fold("Phone 1 - Value"), "phone 1 value");
        assert_eq!(fold("Vollständiger Name"), "vollstandiger name");
        assert_eq!(fold("---"), "");
    }

    #[test]
    fn the_common_exports_and_six_languages_are_recognised() {
        let cases = [
            ("Phone 1 - Value", Some(Field::Phone)),
            ("Mobile Phone", Some(Field::Mobile)),
            ("Mobile Phone Number", Some(Field::Mobile)),
            ("E-mail Address", Some(Field::Email)),
            ("Email Address", Some(Field::Email)),
            ("E-mail 1 - Value", Some(Field::Email)),
            ("First Name", Some(Field::FirstName)),
            ("Given Name", Some(Field::FirstName)),
            ("Family Name", Some(Field::LastName)),
            ("TAGS", Some(Field::Tags)),
            ("Group Membership", Some(Field::Tags)),
            ("Cellulare", Some(Field::Mobile)),
            ("Cognome", Some(Field::LastName)),
            ("Nome", Some(Field::NameOrPart)),
            ("Teléfono móvil", Some(Field::Mobile)),
            ("Apellidos", Some(Field::LastName)),
            ("Prénom", Some(Field::FirstName)),
            ("Courriel", Some(Field::Email)),
            ("Handynummer", Some(Field::Mobile)),
            ("Nachname", Some(Field::LastName)),
            ("Telemóvel", Some(Field::Mobile)),
            ("Sobrenome", Some(Field::LastName)),
            ("Notes", None),
            ("", None),
        ];
        for (header, field) in cases {
            assert_eq!(recognise(header), field, "{header}");
        }
    }

    #[test]
    fn no_header_is_listed_for_two_fields() {
        let mut seen = std::collections::HashMap::new();
        for (field, names) in RECOGNISED {
            for name in *names {
                if let Some(other) = seen.insert(fold(name), *field) {
                    assert_eq!(other, *field, "{name} listed twice");
                    panic!("{name} listed twice");
                }
            }
        }
    }
}
