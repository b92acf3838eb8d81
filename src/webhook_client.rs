//! The HTTP client webhook deliveries go out with: the system's OpenSSL for `https`, no
//! redirects, a time limit, and a resolver that refuses private addresses (unless
//! allowed), so a tenant cannot make the service call into its own network, not even
//! through a name that later resolves elsewhere.

use std::error::Error as StdError;
use std::net::SocketAddr;
use std::time::Duration;

use actix_tls::connect::{Connector as TcpConnector, Resolve, Resolver};
use futures_util::future::LocalBoxFuture;

use crate::core::webhook::is_public;
use crate::service::webhook_delivery::{Answer, Sender, SLOTS, TIMEOUT};

/// Resolves a receiver's name, refusing it when any of its addresses is private: the
/// connection then goes to exactly the addresses checked. (IP literals skip resolvers;
/// the dispatcher checks those itself.)
struct GuardedResolver {
    allow_private: bool,
}

impl Resolve for GuardedResolver {
    fn lookup<'a>(
        &'a self,
        host: &'a str,
        port: u16,
    ) -> LocalBoxFuture<'a, Result<Vec<SocketAddr>, Box<dyn StdError>>> {
        Box::pin(async move {
            let addresses: Vec<SocketAddr> = tokio::net::lookup_host((host, port)).await?.collect();
            if !self.allow_private && addresses.iter().any(|address| !is_public(address.ip())) {
                return Err(format!(
                    "{host} resolves to a private, loopback or link-local address"
                )
                .into());
            }
            Ok(addresses)
        })
    }
}

/// Sends deliveries with awc.
pub struct WebhookClient {
    client: awc::Client,
}

impl WebhookClient {
    pub fn new(allow_private: bool) -> Self {
        let resolver = Resolver::custom(GuardedResolver { allow_private });
        let connector = awc::Connector::new()
            .connector(TcpConnector::new(resolver).service())
            .timeout(TIMEOUT)
            .limit(SLOTS);
        let client = awc::Client::builder()
            .connector(connector)
            .timeout(TIMEOUT)
            .disable_redirects()
            .add_default_header(("user-agent", "Segments-Webhooks/1"))
            .finish();
        Self { client }
    }
}

/// Most bytes of a receiver's answer read (it is not kept; reading lets the connection
/// be reused).
const MAX_ANSWER: usize = 64 * 1024;

impl Sender for WebhookClient {
    fn post<'a>(
        &'a self,
        url: &'a str,
        headers: Vec<(&'static str, String)>,
        body: Vec<u8>,
    ) -> LocalBoxFuture<'a, Answer> {
        Box::pin(async move {
            let mut request = self.client.post(url);
            for header in headers {
                request = request.insert_header(header);
            }
            match request.send_body(body).await {
                Ok(mut response) => {
                    let _ = tokio::time::timeout(
                        Duration::from_secs(1),
                        response.body().limit(MAX_ANSWER),
                    )
                    .await;
                    Answer::Status(response.status().as_u16())
                }
                Err(error) => Answer::Failed(error.to_string()),
            }
        })
    }
}
