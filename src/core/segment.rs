//! Segments: how a list of them is ordered, and what a segment without a filter reads as.

/// What a segment's `filter_summary` says when it has no filter.
pub const NO_FILTERS: &str = "No filters";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SortColumn {
    Name,
    CreatedAt,
    UpdatedAt,
    Recipients,
}

/// The order of a segment list.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Sort {
    pub column: SortColumn,
    pub descending: bool,
}

impl Sort {
    /// `name`, `created_at`, `updated_at` or `recipients`, `-` first for descending.
    pub fn parse(text: &str) -> Option<Self> {
        let (descending, name) = match text.strip_prefix('-') {
            Some(rest) => (true, rest),
            None => (false, text),
        };
        let column = match name {
            "name" => SortColumn::Name,
            "created_at" => SortColumn::CreatedAt,
            "updated_at" => SortColumn::UpdatedAt,
            "recipients" => SortColumn::Recipients,
            _ => return None,
        };
        Some(Self { column, descending })
    }
}

impl Default for Sort {
    /// Newest first: what a list screen opens on.
    fn default() -> Self {
        Self {
            column: SortColumn::CreatedAt,
            descending: true,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sort_parses_direction_and_column() {
        assert_eq!(
            Sort::parse("-recipients"),
            Some(Sort {
                column: SortColumn::Recipients,
                descending: true
            })
        );
        assert_eq!(
            Sort::parse("name"),
            Some(Sort {
                column: SortColumn::Name,
                descending: false
            })
        );
        assert_eq!(Sort::parse("--name"), None);
        assert_eq!(Sort::parse("id"), None);
    }
}
