//! Sends as the API shows them, and the outcomes a sender reports.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use validator::Validate;

use crate::core::error::{Error, FieldError};
use crate::core::send::{Applied, Outcome, OutcomeError, Progress, SendRecipient, Status};
use crate::core::types::Channel;
use crate::db::sends::SendRow;
use crate::http::dto::audience::AudienceSummary;
use crate::service::sends::SendWithProgress;

/// How many recipients are in each status; the counts always add up to `total`.
#[derive(Debug, Serialize, ToSchema)]
pub struct SendProgress {
    /// Recipients frozen: the summary's `eligible`. It never changes.
    #[schema(example = 1180)]
    pub total: i64,
    /// Not reported yet, and still reachable: who is left.
    #[schema(example = 380)]
    pub pending: i64,
    #[schema(example = 300)]
    pub sent: i64,
    #[schema(example = 420)]
    pub delivered: i64,
    #[schema(example = 60)]
    pub read: i64,
    #[schema(example = 15)]
    pub failed: i64,
    /// Pending, but opted out after the freeze: never to be messaged.
    #[schema(example = 5)]
    pub skipped: i64,
}

impl From<Progress> for SendProgress {
    fn from(p: Progress) -> Self {
        Self {
            total: p.total,
            pending: p.pending,
            sent: p.sent,
            delivered: p.delivered,
            read: p.read,
            failed: p.failed,
            skipped: p.skipped,
        }
    }
}

/// A send: one delivery of a campaign, its audience frozen when it was created.
#[derive(Debug, Serialize, ToSchema)]
pub struct Send {
    #[schema(example = 12)]
    pub id: i64,
    #[schema(example = 3)]
    pub campaign_id: i64,
    pub channel: Channel,
    #[schema(example = "2026-03-02T10:00:00Z")]
    pub created_at: DateTime<Utc>,
    /// The audience summary at the moment of freezing; its `eligible` is `progress.total`.
    pub summary: AudienceSummary,
    pub progress: SendProgress,
    /// When the recipients were dropped, past the retention horizon (null until then):
    /// `progress` then holds their final counts, and the recipient lists answer 410.
    #[schema(example = json!(null))]
    pub expired_at: Option<DateTime<Utc>>,
}

impl From<SendWithProgress> for Send {
    fn from(value: SendWithProgress) -> Self {
        let overview = SendOverview::from(value.send);
        Self {
            id: overview.id,
            campaign_id: overview.campaign_id,
            channel: overview.channel,
            created_at: overview.created_at,
            summary: overview.summary,
            progress: value.progress.into(),
            expired_at: overview.expired_at,
        }
    }
}

/// A send in a campaign's list: what it froze (read its progress with `GET /v1/sends/{id}`).
#[derive(Debug, Serialize, ToSchema)]
pub struct SendOverview {
    #[schema(example = 12)]
    pub id: i64,
    #[schema(example = 3)]
    pub campaign_id: i64,
    pub channel: Channel,
    #[schema(example = "2026-03-02T10:00:00Z")]
    pub created_at: DateTime<Utc>,
    pub summary: AudienceSummary,
    #[schema(example = json!(null))]
    pub expired_at: Option<DateTime<Utc>>,
}

impl From<SendRow> for SendOverview {
    fn from(row: SendRow) -> Self {
        Self {
            id: row.id,
            campaign_id: row.campaign_id,
            channel: row.channel(),
            created_at: row.created_at,
            summary: row.summary().into(),
            expired_at: row.expired_at,
        }
    }
}

/// Why a message failed, as the sender reported it (or why a recipient was skipped).
#[derive(Debug, Serialize, Deserialize, Validate, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RecipientError {
    /// A short machine code, 1 to 100 characters.
    #[validate(length(min = 1, max = 100))]
    #[schema(example = "number_unreachable", min_length = 1, max_length = 100)]
    pub code: String,
    /// Up to 1,000 characters.
    #[serde(default)]
    #[validate(length(max = 1000))]
    #[schema(example = "The handset was unreachable for 24 h.", max_length = 1000)]
    pub message: String,
}

/// A frozen recipient: the name and address it had at the freeze, and its status now.
#[derive(Debug, Serialize, ToSchema)]
pub struct Recipient {
    #[schema(example = 42)]
    pub contact_id: i64,
    #[schema(example = "Giulia Rossi")]
    pub name: String,
    /// The E.164 phone (WhatsApp, SMS) or the email (email), as frozen.
    #[schema(example = "+393331234567")]
    pub address: String,
    pub status: Status,
    /// When the status was reported (the outcome's `at`); null while pending.
    #[schema(example = "2026-03-02T10:05:00Z")]
    pub status_at: Option<DateTime<Utc>>,
    /// The reported error of a failed message; `opted_out_after_freeze` for skipped.
    pub error: Option<RecipientError>,
}

impl From<SendRecipient> for Recipient {
    fn from(r: SendRecipient) -> Self {
        Self {
            contact_id: r.contact_id,
            name: r.name,
            address: r.address,
            status: r.status,
            status_at: r.status_at,
            error: r.error.map(|e| RecipientError {
                code: e.code,
                message: e.message,
            }),
        }
    }
}

/// A keyset page of recipients, in contact id order.
#[derive(Debug, Serialize, ToSchema)]
pub struct RecipientPage {
    pub items: Vec<Recipient>,
    /// Pass as `after` for the next page; null at the end.
    #[schema(required = true, example = 42)]
    pub next_after: Option<i64>,
}

#[derive(Debug, Deserialize, Validate, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct RecipientParams {
    /// Only recipients in this status (as read now); `pending` is who is left.
    pub status: Option<Status>,
    /// The `next_after` of the previous page; absent for the first.
    #[validate(range(min = 0))]
    #[param(minimum = 0)]
    pub after: Option<i64>,
    /// Recipients per page, 1 to 10,000 (default 1,000).
    #[validate(range(min = 1, max = 10000))]
    #[param(minimum = 1, maximum = 10000, default = 1000)]
    pub limit: Option<i64>,
}

#[derive(Debug, Deserialize, Validate, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct StreamParams {
    /// Only recipients in this status (as read now); `pending` is who is left.
    pub status: Option<Status>,
}

/// What became of the message to one recipient.
#[derive(Debug, Serialize, Deserialize, Validate, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct OutcomeInput {
    #[validate(range(min = 1))]
    #[schema(example = 42, minimum = 1)]
    pub contact_id: i64,
    #[schema(schema_with = crate::http::schemas::reported_status)]
    pub status: Status,
    /// When it happened; default now.
    #[schema(example = "2026-03-02T10:05:00Z")]
    pub at: Option<DateTime<Utc>>,
    /// Why it failed.
    #[validate(nested)]
    pub error: Option<RecipientError>,
}

/// 1 to 10,000 outcomes, in any order; a recipient named twice keeps the furthest.
#[derive(Debug, Deserialize, Validate, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct OutcomesRequest {
    #[validate(
        nested,
        length(min = 1, max = 10000, message = "must list 1 to 10,000 outcomes")
    )]
    #[schema(min_items = 1, max_items = 10000)]
    pub outcomes: Vec<OutcomeInput>,
}

impl OutcomesRequest {
    /// The outcomes, `at` defaulting to `now`; a status a sender cannot report is an
    /// error naming its place.
    pub fn into_outcomes(self, now: DateTime<Utc>) -> Result<Vec<Outcome>, Error> {
        let mut errors = Vec::new();
        let mut outcomes = Vec::with_capacity(self.outcomes.len());
        for (index, input) in self.outcomes.into_iter().enumerate() {
            if !Status::REPORTED.contains(&input.status) {
                errors.push(FieldError::new(
                    format!("outcomes[{index}].status"),
                    "not_reportable",
                    format!(
                        "`{}` is not an outcome: report sent, delivered, read or failed",
                        input.status.as_str()
                    ),
                ));
                continue;
            }
            outcomes.push(Outcome {
                contact_id: input.contact_id,
                status: input.status,
                at: input.at.unwrap_or(now),
                error: input.error.map(|e| OutcomeError {
                    code: e.code,
                    message: e.message,
                }),
            });
        }
        if errors.is_empty() {
            Ok(outcomes)
        } else {
            Err(Error::Validation(errors))
        }
    }
}

/// An outcome naming a contact that is not a recipient of the send.
#[derive(Debug, Serialize, ToSchema)]
pub struct RejectedOutcome {
    #[schema(example = 77)]
    pub contact_id: i64,
    /// `not_a_recipient`.
    #[schema(example = "not_a_recipient")]
    pub code: &'static str,
}

/// What a report did: `updated + unchanged + rejected` is the number of outcomes sent.
#[derive(Debug, Serialize, ToSchema)]
pub struct OutcomesReport {
    /// Recipients whose status moved.
    #[schema(example = 9990)]
    pub updated: i64,
    /// Outcomes that changed nothing: reported before, or behind the current status.
    #[schema(example = 9)]
    pub unchanged: i64,
    pub rejected: Vec<RejectedOutcome>,
}

impl From<Applied> for OutcomesReport {
    fn from(applied: Applied) -> Self {
        Self {
            updated: applied.updated,
            unchanged: applied.unchanged,
            rejected: applied
                .not_recipients
                .into_iter()
                .map(|contact_id| RejectedOutcome {
                    contact_id,
                    code: "not_a_recipient",
                })
                .collect(),
        }
    }
}
