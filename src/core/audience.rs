//! An audience's summary and its recipients, as counted and read by the data layer.

/// Why members are left out, each counted once under the first reason in this order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Counts {
    /// Distinct members of the included segments.
    pub total_unique: i64,
    pub by_exclusion: i64,
    pub opted_out: i64,
    pub no_consent: i64,
    pub no_address: i64,
}

impl Counts {
    /// `eligible` plus the excluded counts equals `total_unique`.
    pub fn eligible(&self) -> i64 {
        self.total_unique - self.by_exclusion - self.opted_out - self.no_consent - self.no_address
    }
}

/// One recipient, with its address on the audience's channel: the E.164 phone for
/// WhatsApp and SMS, the email for email.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Recipient {
    pub contact_id: i64,
    pub name: String,
    pub address: String,
}

/// Ids in the order given, each once.
pub fn unique(ids: &[i64]) -> Vec<i64> {
    let mut seen = Vec::with_capacity(ids.len());
    for id in ids {
        if !seen.contains(id) {
            seen.push(*id);
        }
    }
    seen
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn eligible_is_what_no_reason_removes() {
        let counts = Counts {
            total_unique: 100,
            by_exclusion: 10,
            opted_out: 5,
            no_consent: 3,
            no_address: 2,
        };
        assert_eq!(counts.eligible(), 80);
    }

    #[test]
    fn repeated_ids_count_once_in_order() {
        assert_eq!(unique(&[3, 1, 3, 2, 1]), [3, 1, 2]);
    }
}
