//! Per-key rate limits (GCRA, the `governor` crate): every `/v1` answer says where the
//! caller stands (`RateLimit-Limit`, `RateLimit-Remaining`, `RateLimit-Reset`), and a
//! caller past its limit gets 429 `rate_limited` with `Retry-After`.

use std::net::IpAddr;
use std::num::NonZeroU32;
use std::time::Duration;

use actix_web::body::{BoxBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::{HeaderName, HeaderValue, AUTHORIZATION, RETRY_AFTER};
use actix_web::middleware::Next;
use actix_web::{web, ResponseError};
use governor::clock::{Clock, DefaultClock};
use governor::middleware::StateInformationMiddleware;
use governor::{Quota, RateLimiter};
use sha2::{Digest, Sha256};

use crate::http::error::ApiError;

type Keyed<K> = RateLimiter<
    K,
    governor::state::keyed::DefaultKeyedStateStore<K>,
    DefaultClock,
    StateInformationMiddleware,
>;

/// Who a request counts against: the key it carries, or where it comes from.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum Caller {
    Key([u8; 32]),
    Address(Option<IpAddr>),
}

pub struct RateLimits {
    /// `None`: limits are off.
    requests: Option<(Keyed<Caller>, u32, u32)>,
    /// Database lookups of keys the cache does not know, by address: a client trying
    /// made-up keys costs the database this much at most.
    key_lookups: Keyed<Option<IpAddr>>,
}

/// Lookups of unknown keys one address may cause: a burst, then this many a second.
const KEY_LOOKUPS_PER_SECOND: u32 = 20;
const KEY_LOOKUPS_BURST: u32 = 100;

impl RateLimits {
    /// `per_second` requests a second for each key, in bursts of up to `burst`; 0 turns
    /// the request limit off.
    pub fn new(per_second: u32, burst: u32) -> Self {
        let requests = NonZeroU32::new(per_second).map(|rate| {
            let burst = NonZeroU32::new(burst.max(per_second)).unwrap_or(rate);
            let limiter = RateLimiter::keyed(Quota::per_second(rate).allow_burst(burst))
                .with_middleware::<StateInformationMiddleware>();
            (limiter, rate.get(), burst.get())
        });
        let lookups = Quota::per_second(NonZeroU32::MIN.saturating_add(KEY_LOOKUPS_PER_SECOND - 1))
            .allow_burst(NonZeroU32::MIN.saturating_add(KEY_LOOKUPS_BURST - 1));
        Self {
            requests,
            key_lookups: RateLimiter::keyed(lookups)
                .with_middleware::<StateInformationMiddleware>(),
        }
    }

    /// Whether `address` may cause another database lookup of an unknown key now.
    pub fn may_look_up_key(&self, address: Option<IpAddr>) -> bool {
        self.key_lookups.check_key(&address).is_ok()
    }

    /// Forgets callers that have been quiet long enough to be back at a full burst, so
    /// the memory held stays proportional to recent callers.
    pub fn forget_idle(&self) {
        if let Some((limiter, _, _)) = &self.requests {
            limiter.retain_recent();
            limiter.shrink_to_fit();
        }
        self.key_lookups.retain_recent();
        self.key_lookups.shrink_to_fit();
    }
}

fn caller(request: &ServiceRequest) -> Caller {
    let token = request
        .headers()
        .get(AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.split_once(' '))
        .map(|(_, token)| token.trim())
        .filter(|token| !token.is_empty());
    match token {
        Some(token) => Caller::Key(Sha256::digest(token.as_bytes()).into()),
        None => Caller::Address(request.peer_addr().map(|address| address.ip())),
    }
}

fn header(name: &'static str, value: u64) -> (HeaderName, HeaderValue) {
    (HeaderName::from_static(name), HeaderValue::from(value))
}

/// Counts each request against its caller's limit (the probes and `/metrics` too: every
/// answer says where its caller stands).
pub async fn limit_requests(
    request: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<BoxBody>, actix_web::Error> {
    let limits = request.app_data::<web::Data<RateLimits>>().cloned();
    let limits = limits.as_ref().and_then(|limits| limits.requests.as_ref());
    let Some((limiter, rate, burst)) = limits else {
        return next
            .call(request)
            .await
            .map(ServiceResponse::map_into_boxed_body);
    };
    let (rate, burst) = (u64::from(*rate), u64::from(*burst));
    match limiter.check_key(&caller(&request)) {
        Ok(snapshot) => {
            let remaining = u64::from(snapshot.remaining_burst_capacity());
            let mut response = next.call(request).await?.map_into_boxed_body();
            // Seconds until the caller is back at a full burst.
            let reset = (burst - remaining.min(burst)).div_ceil(rate);
            for (name, value) in [
                header("ratelimit-limit", burst),
                header("ratelimit-remaining", remaining),
                header("ratelimit-reset", reset),
            ] {
                response.headers_mut().insert(name, value);
            }
            Ok(response)
        }
        Err(not_until) => {
            let wait = not_until.wait_time_from(DefaultClock::default().now());
            let retry_after = wait.max(Duration::from_secs(1)).as_secs_f64().ceil() as u64;
            let mut response = ApiError::RateLimited.error_response();
            for (name, value) in [
                header("ratelimit-limit", burst),
                header("ratelimit-remaining", 0),
                header("ratelimit-reset", retry_after),
            ] {
                response.headers_mut().insert(name, value);
            }
            response
                .headers_mut()
                .insert(RETRY_AFTER, HeaderValue::from(retry_after));
            Ok(request.into_response(response))
        }
    }
}
