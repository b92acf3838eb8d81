//! Audience resolution: who a campaign reaches, why the others are left out, and the
//! recipients themselves, paged or streamed.

pub mod query;

use actix_web::{get, post, web, HttpResponse};
use futures_util::stream;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_actix_web::service_config::ServiceConfig;
use validator::Validate;

use self::query::{Audience, Counts, Recipient};
use crate::auth::Caller;
use crate::campaigns::{self, CampaignPath};
use crate::error::{ApiError, Problem};
use crate::extract::{Json, Path, Query};
use crate::segments::Channel;
use crate::tenants::TenantRow;
use crate::{db, AppState};

/// Contacts left out, each counted once, under the first reason that applies, in this
/// order.
#[derive(Debug, Serialize, ToSchema)]
pub struct Excluded {
    /// Members of an exclusion segment.
    #[schema(example = 40)]
    pub by_exclusion: i64,
    /// Opted out of messaging.
    #[schema(example = 12)]
    pub opted_out: i64,
    /// Without privacy consent, on a tenant that requires it.
    #[schema(example = 0)]
    pub no_consent: i64,
    /// Without an address for the channel: a validated phone for WhatsApp and SMS, an
    /// email for email.
    #[schema(example = 18)]
    pub no_address: i64,
}

/// Why the campaign reaches fewer people than its segments hold:
/// `eligible` + every `excluded` count = `total_unique`.
#[derive(Debug, Serialize, ToSchema)]
pub struct AudienceSummary {
    /// Contacts the campaign reaches.
    #[schema(example = 1180)]
    pub eligible: i64,
    /// Distinct members of the included segments.
    #[schema(example = 1250)]
    pub total_unique: i64,
    pub excluded: Excluded,
}

impl From<Counts> for AudienceSummary {
    fn from(counts: Counts) -> Self {
        Self {
            eligible: counts.eligible(),
            total_unique: counts.total_unique,
            excluded: Excluded {
                by_exclusion: counts.by_exclusion,
                opted_out: counts.opted_out,
                no_consent: counts.no_consent,
                no_address: counts.no_address,
            },
        }
    }
}

/// One contact the campaign reaches, with its address on the campaign's channel.
#[derive(Debug, Serialize, ToSchema)]
pub struct AudienceRecipient {
    #[schema(example = 42)]
    pub contact_id: i64,
    #[schema(example = "Giulia Rossi")]
    pub name: String,
    /// The E.164 phone (WhatsApp, SMS) or the email (email).
    #[schema(example = "+393331234567")]
    pub address: String,
}

impl AudienceRecipient {
    fn new(recipient: Recipient, channel: Channel) -> Self {
        Self {
            address: recipient.address(channel),
            contact_id: recipient.contact_id,
            name: recipient.name,
        }
    }
}

/// A keyset page of recipients, in contact id order.
#[derive(Debug, Serialize, ToSchema)]
pub struct AudiencePage {
    pub items: Vec<AudienceRecipient>,
    /// Pass as `after` for the next page; null at the end.
    #[schema(required = true, example = 42)]
    pub next_after: Option<i64>,
}

#[derive(Debug, Deserialize, Validate, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct KeysetParams {
    /// The `next_after` of the previous page; absent for the first.
    #[validate(range(min = 0))]
    #[param(minimum = 0)]
    pub after: Option<i64>,
    /// Recipients per page, 1 to 10,000 (default 1,000).
    #[validate(range(min = 1, max = 10000))]
    #[param(minimum = 1, maximum = 10000, default = 1000)]
    pub limit: Option<i64>,
}

/// Segments to resolve as an audience without saving a campaign. Every segment named
/// must exist in the tenant and have `channel`.
#[derive(Debug, Deserialize, Validate, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ResolveRequest {
    pub channel: Channel,
    /// 1 to 100 segments whose members the audience reaches.
    #[validate(length(min = 1, max = 100, message = "must list 1 to 100 segment ids"))]
    #[schema(example = json!([7, 8]), min_items = 1, max_items = 100)]
    pub segment_ids: Vec<i64>,
    /// Up to 100 segments whose members are left out. Default none.
    #[serde(default)]
    #[validate(length(max = 100, message = "must list at most 100 segment ids"))]
    #[schema(example = json!([9]), max_items = 100)]
    pub exclude_segment_ids: Vec<i64>,
}

fn campaign_audience(
    conn: &mut diesel::PgConnection,
    tenant: &TenantRow,
    id: i64,
) -> Result<Audience, ApiError> {
    let campaign = campaigns::find(conn, tenant.id, id)?;
    let channel = Channel::from_db(&campaign.campaign.channel);
    Audience::resolve(
        conn,
        tenant,
        channel,
        &campaign.segment_ids,
        &campaign.exclude_segment_ids,
    )
}

const NOT_FOUND: &str = "`not_found`: no such campaign.";

/// Summarise a campaign's audience
///
/// How many contacts the campaign reaches now, and why the others are left out. The
/// audience is the union of the members of `segment_ids` (each contact once), minus the
/// members of `exclude_segment_ids`, minus contacts that are opted out, lack privacy
/// consent on a tenant that requires it, or have no address for the channel (a validated
/// phone for WhatsApp and SMS, an email for email). Each excluded contact is counted once,
/// under the first reason in that order, so `eligible` plus the `excluded` counts equals
/// `total_unique`. Dynamic segments are evaluated at this moment.
#[utoipa::path(
    tag = "campaigns",
    params(("id" = i64, Path, description = "Campaign id")),
    responses(
        (status = 200, description = "The audience's counts.", body = AudienceSummary),
        (status = 404, description = NOT_FOUND, body = Problem, content_type = "application/problem+json"),
    )
)]
#[get("/campaigns/{id}/audience/summary")]
async fn get_audience_summary(
    Caller(tenant): Caller,
    state: web::Data<AppState>,
    path: Path<CampaignPath>,
) -> Result<web::Json<AudienceSummary>, ApiError> {
    let id = path.0.id;
    let counts = db::run(&state.pool, move |conn| {
        let audience = campaign_audience(conn, &tenant, id)?;
        Ok::<_, ApiError>(audience.counts(conn)?)
    })
    .await?;
    Ok(web::Json(counts.into()))
}

/// Summarise an audience without a campaign
///
/// The same counts as a campaign's audience summary, for a channel and segments given
/// in the request: nothing is saved. Repeated ids count once. Every segment must exist
/// in the tenant and have the channel.
#[utoipa::path(
    tag = "campaigns",
    request_body = ResolveRequest,
    responses(
        (status = 200, description = "The audience's counts.", body = AudienceSummary),
        (status = 422, description = "`validation_failed`: a segment named does not exist (`segment_not_found`), has another channel (`channel_mismatch`), or is both included and excluded (`included_and_excluded`); each entry names its place, e.g. `segment_ids[1]`.", body = Problem, content_type = "application/problem+json"),
    )
)]
#[post("/audiences/resolve")]
async fn resolve_audience(
    Caller(tenant): Caller,
    state: web::Data<AppState>,
    Json(input): Json<ResolveRequest>,
) -> Result<web::Json<AudienceSummary>, ApiError> {
    let counts = db::run(&state.pool, move |conn| {
        let (included, excluded) = (
            campaigns::unique(&input.segment_ids),
            campaigns::unique(&input.exclude_segment_ids),
        );
        let audience = Audience::resolve(conn, &tenant, input.channel, &included, &excluded)?;
        Ok::<_, ApiError>(audience.counts(conn)?)
    })
    .await?;
    Ok(web::Json(counts.into()))
}

/// List a campaign's recipients, a keyset page at a time
///
/// The eligible contacts (see the audience summary for who is left out), each once, in
/// contact id order, with the address to send to: the E.164 phone for WhatsApp and SMS,
/// the email for email. Start without `after`; pass each answer's `next_after` as
/// `after` for the next page, until it is null. `limit` is 1 to 10,000 (default 1,000).
/// For the whole audience in one response, use `audience.ndjson`.
#[utoipa::path(
    tag = "campaigns",
    params(("id" = i64, Path, description = "Campaign id"), KeysetParams),
    responses(
        (status = 200, description = "A page of recipients.", body = AudiencePage),
        (status = 404, description = NOT_FOUND, body = Problem, content_type = "application/problem+json"),
    )
)]
#[get("/campaigns/{id}/audience")]
async fn list_audience(
    Caller(tenant): Caller,
    state: web::Data<AppState>,
    path: Path<CampaignPath>,
    Query(params): Query<KeysetParams>,
) -> Result<web::Json<AudiencePage>, ApiError> {
    let id = path.0.id;
    let limit = params.limit.unwrap_or(1000);
    let (recipients, channel) = db::run(&state.pool, move |conn| {
        let audience = campaign_audience(conn, &tenant, id)?;
        let recipients = audience.recipients_after(conn, params.after.unwrap_or(0), limit)?;
        Ok::<_, ApiError>((recipients, audience.channel()))
    })
    .await?;
    let next_after = (recipients.len() as i64 == limit)
        .then(|| recipients.last().map(|r| r.contact_id))
        .flatten();
    let items = recipients
        .into_iter()
        .map(|r| AudienceRecipient::new(r, channel))
        .collect();
    Ok(web::Json(AudiencePage { items, next_after }))
}

/// Recipients fetched per database round trip while streaming.
const STREAM_BATCH: usize = 5000;

/// Encoded batches waiting for a slow client; beyond this the database reads pause.
const STREAM_BUFFER: usize = 2;

/// A client that reads nothing for this long loses its stream, so a stalled download
/// cannot hold a database connection and its transaction forever.
const STALLED_CLIENT: std::time::Duration = std::time::Duration::from_secs(60);

/// Hands a batch to the response, waiting while the client is slow; false when the
/// client has gone or stalled.
fn deliver(
    sender: &tokio::sync::mpsc::Sender<Result<web::Bytes, ApiError>>,
    bytes: web::Bytes,
) -> bool {
    let runtime = tokio::runtime::Handle::current();
    matches!(
        runtime.block_on(tokio::time::timeout(STALLED_CLIENT, sender.send(Ok(bytes)))),
        Ok(Ok(()))
    )
}

/// Streams every recipient, encoded by `encode`, from one database cursor read a batch at
/// a time on a blocking thread. The bounded channel is the backpressure: memory stays flat
/// and a slow client slows the reads; a client that goes away ends the transaction.
async fn stream_audience(
    state: web::Data<AppState>,
    tenant: TenantRow,
    id: i64,
    content_type: &'static str,
    header: &'static str,
    encode: fn(&[AudienceRecipient]) -> Result<Vec<u8>, ApiError>,
) -> Result<HttpResponse, ApiError> {
    let audience = db::run(&state.pool, move |conn| {
        campaign_audience(conn, &tenant, id)
    })
    .await?;
    let (sender, receiver) =
        tokio::sync::mpsc::channel::<Result<web::Bytes, ApiError>>(STREAM_BUFFER);
    let pool = state.pool.clone();
    actix_web::rt::spawn(async move {
        let failures = sender.clone();
        let read = db::transaction(&pool, move |conn| {
            let channel = audience.channel();
            audience.open_cursor(conn)?;
            loop {
                let batch = Audience::fetch(conn, STREAM_BATCH)?;
                let done = batch.len() < STREAM_BATCH;
                let recipients: Vec<AudienceRecipient> = batch
                    .into_iter()
                    .map(|r| AudienceRecipient::new(r, channel))
                    .collect();
                let bytes = web::Bytes::from(encode(&recipients)?);
                if !deliver(&sender, bytes) || done {
                    return Ok(());
                }
            }
        })
        .await;
        if let Err(error) = read {
            tracing::warn!(%error, "audience stream cut short");
            let _ = failures.send(Err(error)).await;
        }
    });
    let head =
        stream::once(async move { Ok::<_, ApiError>(web::Bytes::from_static(header.as_bytes())) });
    let body = stream::unfold(receiver, |mut receiver| async move {
        receiver.recv().await.map(|item| (item, receiver))
    });
    Ok(HttpResponse::Ok()
        .content_type(content_type)
        .streaming(futures_util::StreamExt::chain(head, body)))
}

/// Stream a campaign's whole audience as NDJSON
///
/// Every recipient, one JSON object per line (`{"contact_id", "name", "address"}`, as in
/// the paged list), in contact id order, streamed with constant memory whatever the
/// audience's size. A failure midway aborts the transfer (the chunked body never ends
/// properly), so a response that completes holds the whole audience.
#[utoipa::path(
    tag = "campaigns",
    params(("id" = i64, Path, description = "Campaign id")),
    responses(
        (status = 200, description = "One recipient per line.", content_type = "application/x-ndjson", body = String),
        (status = 404, description = NOT_FOUND, body = Problem, content_type = "application/problem+json"),
    )
)]
#[get("/campaigns/{id}/audience.ndjson")]
async fn stream_audience_ndjson(
    Caller(tenant): Caller,
    state: web::Data<AppState>,
    path: Path<CampaignPath>,
) -> Result<HttpResponse, ApiError> {
    stream_audience(
        state,
        tenant,
        path.0.id,
        "application/x-ndjson",
        "",
        |recipients| {
            let mut out = Vec::with_capacity(recipients.len() * 64);
            for recipient in recipients {
                serde_json::to_writer(&mut out, recipient).map_err(ApiError::internal)?;
                out.push(b'\n');
            }
            Ok(out)
        },
    )
    .await
}

/// Stream a campaign's whole audience as CSV
///
/// For people and spreadsheets: a `contact_id,name,address` header, then one recipient
/// per row in contact id order, streamed with constant memory.
#[utoipa::path(
    tag = "campaigns",
    params(("id" = i64, Path, description = "Campaign id")),
    responses(
        (status = 200, description = "`contact_id,name,address`, one recipient per row.", content_type = "text/csv", body = String),
        (status = 404, description = NOT_FOUND, body = Problem, content_type = "application/problem+json"),
    )
)]
#[get("/campaigns/{id}/audience.csv")]
async fn stream_audience_csv(
    Caller(tenant): Caller,
    state: web::Data<AppState>,
    path: Path<CampaignPath>,
) -> Result<HttpResponse, ApiError> {
    stream_audience(
        state,
        tenant,
        path.0.id,
        "text/csv; charset=utf-8",
        "contact_id,name,address\n",
        |recipients| {
            let mut writer = csv::WriterBuilder::new()
                .has_headers(false)
                .from_writer(Vec::with_capacity(recipients.len() * 48));
            for recipient in recipients {
                writer.serialize(recipient).map_err(ApiError::internal)?;
            }
            writer.into_inner().map_err(ApiError::internal)
        },
    )
    .await
}

pub fn configure(config: &mut ServiceConfig) {
    config
        .service(get_audience_summary)
        .service(stream_audience_ndjson)
        .service(stream_audience_csv)
        .service(list_audience)
        .service(resolve_audience);
}
