//! "Today", as date filters see it: the current date in UTC, or a fixed day (tests).

use chrono::{NaiveDate, Utc};

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Clock {
    /// The machine's current date in UTC.
    #[default]
    System,
    /// Always this day: lets tests run the date rules on any day of the year.
    Fixed(NaiveDate),
}

impl Clock {
    pub fn today(self) -> NaiveDate {
        match self {
            Self::System => Utc::now().date_naive(),
            Self::Fixed(day) => day,
        }
    }
}
