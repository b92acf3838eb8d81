//! Webhooks: where a tenant's events are pushed (see [`super::webhook_delivery`] for the
//! pushing).

use super::{check, Env, Precondition};
use crate::core::error::Error;
use crate::core::event::EventType;
use crate::core::tenant::Tenant;
use crate::core::webhook::{check_url, generate_secret};
use crate::db::locks::{self, Lock};
use crate::db::webhooks::{self, DeliveryRow, NewWebhook, WebhookChanges, WebhookRow};
use crate::db::{events, pool};

/// Most webhooks per tenant: each is a delivery stream the replicas keep going.
pub const MAX_WEBHOOKS: i64 = 10;

pub struct WebhookSpec {
    pub url: String,
    pub event_types: Vec<EventType>,
    pub description: Option<String>,
}

/// Fields left out keep their value.
pub struct WebhookUpdate {
    pub url: Option<String>,
    pub event_types: Option<Vec<EventType>>,
    pub description: Option<Option<String>>,
    pub enabled: Option<bool>,
}

fn type_names(types: &[EventType]) -> Vec<String> {
    let mut names: Vec<String> = types.iter().map(|t| t.as_str().to_owned()).collect();
    names.sort();
    names.dedup();
    names
}

/// The URL as it will be stored, or 422 naming `url`.
fn checked_url(env: &Env, url: &str) -> Result<url::Url, Error> {
    check_url(url, env.webhooks_may_reach_private).map_err(|error| Error::Validation(vec![error]))
}

/// Creates a webhook that receives the events recorded from now on; its row carries the
/// signing secret, shown this once.
pub async fn create(env: &Env, tenant: Tenant, spec: WebhookSpec) -> Result<WebhookRow, Error> {
    let url = checked_url(env, &spec.url)?;
    pool::transaction(&env.pool.tenant(tenant.id), move |conn| {
        // Counted under the tenant's webhook lock: two creates at once cannot both pass.
        locks::exclusive(conn, Lock::Webhooks(tenant.id))?;
        if webhooks::count(conn, tenant.id)? >= MAX_WEBHOOKS {
            return Err(Error::unprocessable(
                "too_many_webhooks",
                format!("A tenant has at most {MAX_WEBHOOKS} webhooks; delete one first."),
            ));
        }
        // Events already recorded have ids up to this one; later ones are delivered.
        let delivered_through = events::last_id(conn, tenant.id)?;
        let secret = generate_secret();
        let types = type_names(&spec.event_types);
        let new = NewWebhook {
            url: url.as_str(),
            event_types: &types,
            description: spec.description.as_deref(),
            secret: &secret,
            delivered_through,
        };
        Ok(webhooks::insert(conn, tenant.id, &new)?)
    })
    .await
}

pub async fn list(
    env: &Env,
    tenant: Tenant,
    limit: i64,
    offset: i64,
) -> Result<(Vec<WebhookRow>, i64), Error> {
    pool::run(&env.pool.tenant(tenant.id), move |conn| {
        webhooks::list(conn, tenant.id, limit, offset)
    })
    .await
}

pub async fn get(env: &Env, tenant: Tenant, id: i64) -> Result<WebhookRow, Error> {
    pool::run(&env.pool.tenant(tenant.id), move |conn| {
        webhooks::get(conn, tenant.id, id)
    })
    .await
    .map_err(|e| e.or_not_found("webhook"))
}

/// Changes a webhook. Enabling a disabled one starts its retries afresh; the events it
/// missed meanwhile (still kept) are delivered first, in order.
pub async fn update(
    env: &Env,
    tenant: Tenant,
    id: i64,
    update: WebhookUpdate,
    precondition: Option<Precondition<WebhookRow>>,
) -> Result<WebhookRow, Error> {
    let url = update
        .url
        .as_deref()
        .map(|url| checked_url(env, url))
        .transpose()?;
    pool::transaction(&env.pool.tenant(tenant.id), move |conn| {
        let current = webhooks::get_for_change(conn, tenant.id, id)
            .map_err(|e| Error::from(e).or_not_found("webhook"))?;
        check(&precondition, &current)?;
        let types = match &update.event_types {
            Some(types) => type_names(types),
            None => current.event_types.clone(),
        };
        let changes = WebhookChanges {
            url: url
                .as_ref()
                .map_or(current.url.as_str(), |url| url.as_str()),
            event_types: &types,
            description: match &update.description {
                Some(description) => description.as_deref(),
                None => current.description.as_deref(),
            },
            enabled: update.enabled.unwrap_or(current.enabled),
        };
        Ok(webhooks::update(
            conn,
            tenant.id,
            id,
            &changes,
            chrono::Utc::now(),
        )?)
    })
    .await
}

pub async fn delete(
    env: &Env,
    tenant: Tenant,
    id: i64,
    precondition: Option<Precondition<WebhookRow>>,
) -> Result<(), Error> {
    pool::transaction(&env.pool.tenant(tenant.id), move |conn| {
        let current = webhooks::get_for_change(conn, tenant.id, id)
            .map_err(|e| Error::from(e).or_not_found("webhook"))?;
        check(&precondition, &current)?;
        webhooks::delete(conn, tenant.id, id)?;
        Ok(())
    })
    .await
}

/// The webhook's latest delivery attempts, newest first.
pub async fn deliveries(
    env: &Env,
    tenant: Tenant,
    id: i64,
    limit: i64,
) -> Result<Vec<DeliveryRow>, Error> {
    pool::run(&env.pool.tenant(tenant.id), move |conn| {
        webhooks::get(conn, tenant.id, id).map_err(|e| Error::from(e).or_not_found("webhook"))?;
        Ok::<_, Error>(webhooks::deliveries(conn, tenant.id, id, limit)?)
    })
    .await
}
