//! Webhooks: where a tenant's events are pushed, how deliveries are signed (the Standard
//! Webhooks specification), and which addresses a delivery may reach.

use std::net::IpAddr;

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine;
use hmac::{Hmac, Mac};
use rand::RngCore;
use sha2::Sha256;

use crate::core::error::FieldError;

/// Every signing secret starts with this, as the specification's examples do.
pub const SECRET_PREFIX: &str = "whsec_";

/// A new signing secret: 256 random bits, base64 after the prefix.
pub fn generate_secret() -> String {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    format!("{SECRET_PREFIX}{}", BASE64.encode(bytes))
}

/// The `webhook-signature` header for a message: `v1,` and the base64 HMAC-SHA256 of
/// `id.timestamp.body` keyed with the secret's bytes.
pub fn signature(secret: &str, id: &str, timestamp: i64, body: &[u8]) -> String {
    let key = secret
        .strip_prefix(SECRET_PREFIX)
        .and_then(|encoded| BASE64.decode(encoded).ok())
        .unwrap_or_else(|| secret.as_bytes().to_vec());
    // HMAC takes keys of any length: this never fails.
    let Ok(mut mac) = <Hmac<Sha256> as Mac>::new_from_slice(&key) else {
        return String::new();
    };
    mac.update(id.as_bytes());
    mac.update(b".");
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    format!("v1,{}", BASE64.encode(mac.finalize().into_bytes()))
}

/// The longest webhook URL accepted.
pub const MAX_URL_LENGTH: usize = 2000;

/// Checks a webhook URL: absolute `http` or `https`, with a host, no credentials, and,
/// unless `allow_private`, not an address on a private, loopback or link-local network
/// (names are checked again when each delivery resolves them).
pub fn check_url(text: &str, allow_private: bool) -> Result<url::Url, FieldError> {
    let refuse = |code: &str, message: &str| FieldError::new("url", code, message);
    if text.chars().count() > MAX_URL_LENGTH {
        return Err(refuse("too_long", "must be at most 2000 characters"));
    }
    let url = url::Url::parse(text)
        .map_err(|_| refuse("invalid_url", "must be an absolute http or https URL"))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(refuse("invalid_url", "must be an http or https URL"));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(refuse(
            "invalid_url",
            "must not carry credentials; verify deliveries with the signature instead",
        ));
    }
    let host = match url.host() {
        Some(host) => host,
        None => return Err(refuse("invalid_url", "must name a host")),
    };
    if allow_private {
        return Ok(url);
    }
    let literal = match host {
        url::Host::Ipv4(ip) => Some(IpAddr::V4(ip)),
        url::Host::Ipv6(ip) => Some(IpAddr::V6(ip)),
        url::Host::Domain(name) => {
            let name = name.trim_end_matches('.').to_ascii_lowercase();
            if name == "localhost" || name.ends_with(".localhost") {
                return Err(private_refused());
            }
            None
        }
    };
    match literal {
        Some(ip) if !is_public(ip) => Err(private_refused()),
        _ => Ok(url),
    }
}

fn private_refused() -> FieldError {
    FieldError::new(
        "url",
        "private_address",
        "must not point to a private, loopback or link-local address",
    )
}

/// Whether a delivery may connect to `ip`: not loopback, private, link-local, shared
/// (carrier-grade NAT), unspecified, multicast, broadcast or documentation space, in v4
/// or v6 (IPv4-mapped v6 addresses are judged as v4).
pub fn is_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => {
            let [a, b, ..] = v4.octets();
            !(v4.is_loopback()
                || v4.is_private()
                || v4.is_link_local()
                || v4.is_unspecified()
                || v4.is_multicast()
                || v4.is_broadcast()
                || v4.is_documentation()
                || a == 0
                || (a == 100 && (64..128).contains(&b))
                || (a == 198 && (b == 18 || b == 19))
                || a >= 240)
        }
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return is_public(IpAddr::V4(v4));
            }
            let first = v6.segments()[0];
            !(v6.is_loopback()
                || v6.is_unspecified()
                || v6.is_multicast()
                || (first & 0xfe00) == 0xfc00
                || (first & 0xffc0) == 0xfe80
                || first == 0x2001 && v6.segments()[1] == 0x0db8)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signs_as_the_specification_example() {
        // The example of the Standard Webhooks specification's reference libraries.
        let secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
        let body = br#"{"test": 2432232314}"#;
        assert_eq!(
            signature(secret, "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, body),
            "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
        );
    }

    #[test]
    fn secrets_are_new_each_time_and_decode_to_32_bytes() {
        let (a, b) = (generate_secret(), generate_secret());
        assert_ne!(a, b);
        let bytes = BASE64
            .decode(a.strip_prefix(SECRET_PREFIX).unwrap())
            .unwrap();
        assert_eq!(bytes.len(), 32);
    }

    #[test]
    fn urls_must_be_http_and_public_unless_private_is_allowed() {
        for good in [
            "https://hooks.example.com/segments",
            "http://93.184.216.34:8080/in",
            "https://[2606:2800:220:1::]/x",
        ] {
            assert!(check_url(good, false).is_ok(), "{good}");
        }
        for (bad, code) in [
            ("ftp://example.com/", "invalid_url"),
            ("/relative", "invalid_url"),
            ("https://user:pw@example.com/", "invalid_url"),
            ("http://127.0.0.1:9000/", "private_address"),
            ("http://localhost/", "private_address"),
            ("http://api.localhost./", "private_address"),
            ("http://10.1.2.3/", "private_address"),
            ("http://172.16.0.1/", "private_address"),
            ("http://192.168.1.1/", "private_address"),
            ("http://169.254.169.254/latest/meta-data", "private_address"),
            ("http://100.64.0.1/", "private_address"),
            ("http://0.0.0.0/", "private_address"),
            ("http://[::1]/", "private_address"),
            ("http://[fe80::1]/", "private_address"),
            ("http://[fd00::1]/", "private_address"),
            ("http://[::ffff:127.0.0.1]/", "private_address"),
            ("http://2130706433/", "private_address"),
        ] {
            assert_eq!(check_url(bad, false).unwrap_err().code, code, "{bad}");
        }
        assert!(check_url("http://127.0.0.1:9000/", true).is_ok());
        assert!(check_url(&format!("https://e.com/{}", "a".repeat(2000)), true).is_err());
    }
}
