//! Cells read as people fill them: several numbers in one, tag lists in the exports'
//! spellings.

use crate::core::phone::{self, Phone};

/// The number a row's phone cells give, with the text it came from: the first valid one
/// of a mobile column, else the first valid mobile number, else the first valid number.
/// `cells` are (cell, from a mobile column), mobile columns first; a cell may hold several
/// numbers (Google writes ` ::: ` between them).
pub(super) fn best_number(cells: &[(&str, bool)], region: Option<&str>) -> Option<(Phone, String)> {
    let valid: Vec<(Phone, String, bool)> = cells
        .iter()
        .flat_map(|(cell, mobile)| cell.split(":::").map(move |part| (part.trim(), *mobile)))
        .filter(|(part, _)| !part.is_empty())
        .filter_map(|(part, mobile)| {
            read_number(part, region).map(|phone| (phone, part.to_owned(), mobile))
        })
        .collect();
    let chosen = match valid.len() {
        0 | 1 => 0,
        _ => valid
            .iter()
            .position(|(_, _, mobile)| *mobile)
            .or_else(|| {
                valid
                    .iter()
                    .position(|(phone, _, _)| phone::is_mobile(phone))
            })
            .unwrap_or(0),
    };
    valid
        .into_iter()
        .nth(chosen)
        .map(|(phone, text, _)| (phone, text))
}

/// A number as written; one a spreadsheet stored as digits lost its `+`: digits long
/// enough to carry a country code are tried again with it.
fn read_number(text: &str, region: Option<&str>) -> Option<Phone> {
    phone::normalize(text, region).or_else(|| {
        let digits = text.len() >= 11 && text.bytes().all(|b| b.is_ascii_digit());
        digits
            .then(|| phone::normalize(&format!("+{text}"), None))
            .flatten()
    })
}

/// Tags as people write them: `|`-separated; a quoted comma list as Mailchimp writes it
/// (`"VIP","Clienti Milano"`); Google's groups (`* myContacts ::: Friends`, its system
/// group left out).
pub fn split_tags(cell: &str) -> Vec<String> {
    let mut tags = split_tag_cell(cell.trim());
    tags.retain(|tag| !tag.trim().is_empty());
    tags
}

fn split_tag_cell(cell: &str) -> Vec<String> {
    if cell.starts_with('"') {
        let mut reader = csv::ReaderBuilder::new()
            .has_headers(false)
            .from_reader(cell.as_bytes());
        if let Some(Ok(record)) = reader.records().next() {
            return record.iter().map(str::to_owned).collect();
        }
    }
    if cell.contains(":::") || cell.starts_with("* ") {
        return cell
            .split(":::")
            .map(str::trim)
            .filter(|group| *group != "* myContacts" && *group != "* starred")
            .map(|group| group.trim_start_matches("* ").to_owned())
            .collect();
    }
    cell.split('|').map(str::to_owned).collect()
}
