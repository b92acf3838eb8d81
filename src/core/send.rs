//! Campaign sends: a frozen audience and what became of each recipient. The rules here
//! (which status may follow which, how a batch of outcomes is read) are the only place
//! they are written; the data layer binds them into its statements.

use chrono::{DateTime, Utc};

/// Most outcomes in one report.
pub const MAX_OUTCOMES: usize = 10_000;

/// Where a recipient stands. `Skipped` is never stored: a pending recipient who opted out
/// after the freeze reads as skipped.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Pending,
    Sent,
    Delivered,
    Read,
    Failed,
    Skipped,
}

/// Why a pending recipient reads as skipped.
pub const OPTED_OUT_AFTER_FREEZE: &str = "opted_out_after_freeze";

impl Status {
    pub const ALL: [Status; 6] = [
        Self::Pending,
        Self::Sent,
        Self::Delivered,
        Self::Read,
        Self::Failed,
        Self::Skipped,
    ];

    /// What a sender may report.
    pub const REPORTED: [Status; 4] = [Self::Sent, Self::Delivered, Self::Read, Self::Failed];

    /// The statuses that mean the message went out: reaching one from pending sets the
    /// contact's `last_messaged_at`.
    pub const WENT_OUT: [Status; 3] = [Self::Sent, Self::Delivered, Self::Read];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Sent => "sent",
            Self::Delivered => "delivered",
            Self::Read => "read",
            Self::Failed => "failed",
            Self::Skipped => "skipped",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|status| status.as_str() == text)
    }

    /// Its code in storage; `Skipped` has none (it is read, never written).
    pub fn code(self) -> Option<i16> {
        match self {
            Self::Pending => Some(0),
            Self::Sent => Some(1),
            Self::Delivered => Some(2),
            Self::Read => Some(3),
            Self::Failed => Some(4),
            Self::Skipped => None,
        }
    }

    pub fn from_code(code: i16) -> Self {
        match code {
            1 => Self::Sent,
            2 => Self::Delivered,
            3 => Self::Read,
            4 => Self::Failed,
            _ => Self::Pending,
        }
    }

    /// Status only moves forward: pending -> sent -> delivered -> read, or failed from
    /// pending or sent. Nothing leaves failed, and nothing moves back.
    pub fn may_follow(self, current: Status) -> bool {
        use Status::*;
        match self {
            Sent | Delivered | Read => {
                matches!(current, Pending | Sent | Delivered) && current < self
            }
            Failed => matches!(current, Pending | Sent),
            Pending | Skipped => false,
        }
    }

    /// How far along a status is, to pick one of two outcomes reported for a recipient
    /// in one batch: the one a sender would have reported last.
    fn reach(self) -> u8 {
        match self {
            Self::Pending | Self::Skipped => 0,
            Self::Sent => 1,
            Self::Failed => 2,
            Self::Delivered => 3,
            Self::Read => 4,
        }
    }

    /// Every allowed move as `from * 8 + to` in storage codes, for the data layer to bind.
    pub fn moves() -> Vec<i32> {
        let stored: Vec<Status> = Self::ALL
            .into_iter()
            .filter_map(|s| s.code().map(|_| s))
            .collect();
        let mut moves = Vec::new();
        for from in &stored {
            for to in &stored {
                if to.may_follow(*from) {
                    let (from, to) = (from.code().unwrap_or(0), to.code().unwrap_or(0));
                    moves.push(i32::from(from) * 8 + i32::from(to));
                }
            }
        }
        moves
    }
}

/// What a sender reports for one recipient.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    pub contact_id: i64,
    pub status: Status,
    pub at: DateTime<Utc>,
    pub error: Option<OutcomeError>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutcomeError {
    pub code: String,
    pub message: String,
}

/// One outcome per recipient, in contact id order (the order rows are locked in): of
/// several reported for one recipient, the furthest along; the others are unchanged.
pub fn one_per_recipient(mut outcomes: Vec<Outcome>) -> Vec<Outcome> {
    outcomes.sort_by(|a, b| {
        a.contact_id
            .cmp(&b.contact_id)
            .then(b.status.reach().cmp(&a.status.reach()))
    });
    outcomes.dedup_by_key(|outcome| outcome.contact_id);
    outcomes
}

/// How many recipients are in each status; the counts add up to `total`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Progress {
    pub total: i64,
    pub pending: i64,
    pub sent: i64,
    pub delivered: i64,
    pub read: i64,
    pub failed: i64,
    pub skipped: i64,
}

/// What a report of outcomes did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Applied {
    pub updated: i64,
    pub unchanged: i64,
    /// Contact ids that are not recipients of the send.
    pub not_recipients: Vec<i64>,
}

/// A frozen recipient as stored, its status as read now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SendRecipient {
    pub contact_id: i64,
    pub name: String,
    pub address: String,
    pub status: Status,
    pub status_at: Option<DateTime<Utc>>,
    pub error: Option<OutcomeError>,
}

impl SendRecipient {
    /// A recipient's status as read now: one still pending who opted out after the freeze
    /// is skipped (and says why), never pending.
    pub fn status_as_read(
        stored: Status,
        opted_out_since: bool,
        error: Option<OutcomeError>,
    ) -> (Status, Option<OutcomeError>) {
        if stored == Status::Pending && opted_out_since {
            let why = OutcomeError {
                code: OPTED_OUT_AFTER_FREEZE.into(),
                message: "the contact opted out after the send was frozen".into(),
            };
            (Status::Skipped, Some(why))
        } else {
            (stored, error)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use Status::*;

    #[test]
    fn status_only_moves_forward() {
        let allowed = [
            (Pending, Sent),
            (Pending, Delivered),
            (Pending, Read),
            (Pending, Failed),
            (Sent, Delivered),
            (Sent, Read),
            (Sent, Failed),
            (Delivered, Read),
        ];
        for from in Status::ALL {
            for to in Status::ALL {
                assert_eq!(
                    to.may_follow(from),
                    allowed.contains(&(from, to)),
                    "{from:?} -> {to:?}"
                );
            }
        }
        assert_eq!(Status::moves().len(), allowed.len());
        assert!(Status::moves().contains(&(8 + 4)), "sent (1) -> failed (4)");
    }

    #[test]
    fn a_pending_recipient_who_opted_out_reads_as_skipped() {
        let (status, error) = SendRecipient::status_as_read(Pending, true, None);
        assert_eq!(status, Skipped);
        assert_eq!(error.unwrap().code, OPTED_OUT_AFTER_FREEZE);
        // Once the message went out, a later opt-out does not rewrite what happened.
        assert_eq!(
            SendRecipient::status_as_read(Sent, true, None),
            (Sent, None)
        );
        assert_eq!(
            SendRecipient::status_as_read(Pending, false, None),
            (Pending, None)
        );
    }

    #[test]
    fn codes_round_trip_and_skipped_is_never_stored() {
        for status in Status::ALL {
            match status.code() {
                Some(code) => assert_eq!(Status::from_code(code), status),
                None => assert_eq!(status, Skipped),
            }
            assert_eq!(Status::parse(status.as_str()), Some(status));
        }
    }

    #[test]
    fn of_two_outcomes_for_one_recipient_the_furthest_wins() {
        let at = Utc::now();
        let outcome = |contact_id, status| Outcome {
            contact_id,
            status,
            at,
            error: None,
        };
        let kept = one_per_recipient(vec![
            outcome(9, Sent),
            outcome(3, Delivered),
            outcome(9, Read),
            outcome(3, Sent),
            outcome(5, Failed),
            outcome(5, Sent),
        ]);
        let kept: Vec<(i64, Status)> = kept.iter().map(|o| (o.contact_id, o.status)).collect();
        assert_eq!(kept, [(3, Delivered), (5, Failed), (9, Read)]);
    }
}
