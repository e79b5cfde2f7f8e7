//! The browser device session cookie and the CSRF token bound to it.
//!
//! - **Cookie.** 32 random bytes, hex. Stored only as its SHA-256 ([`TokenHash`]); the hex of that
//!   hash is the `device_id` pending requests and codes are bound to (AS-PAR-08), so no store holds
//!   the cookie itself. Attributes: `HttpOnly; SameSite=Lax; Path=/` and, when the issuer is
//!   `https`, `Secure` with the `__Host-` name prefix (the browser then refuses the cookie from
//!   plain http or with a `Domain`). Not `Secure` for the `http://localhost` development issuer,
//!   where browsers would drop it. `Lax` still sends it on the top-level navigation from the client
//!   to `/oauth/authorize`, and never on cross-site POSTs.
//! - **CSRF.** A synchronizer token derived from the cookie: `hex(SHA-256("atauth-ui-csrf\0" ‖
//!   cookie))`. Only someone who can read the (HttpOnly) cookie can compute it, it differs from the
//!   stored hash (so a leaked database does not give it away), and it needs no storage. Every form
//!   carries it; a POST without the cookie, or with a token that does not match, changes nothing
//!   and gets 403. Cross-origin POSTs are also refused by `Origin` / `Sec-Fetch-Site` (when the
//!   browser sends them), before the token is looked at.
//! - **Store.** [`find_device`], [`open_device`] and [`remember_sign_in`] are the device-session
//!   steps of the authorization page, on the server's device store.

use atauth_crypto::hash::sha256;
use atauth_crypto::secret::ct_eq;
use http::HeaderMap;
use http::header;

use crate::server::AuthServer;
use crate::store::{DeviceAccount, DeviceSession, StoreError, TokenHash};

/// Cookie name over https (`__Host-` prefix: Secure, Path=/, no Domain).
pub const SECURE_COOKIE: &str = "__Host-atauth-device";
/// Cookie name for the plain-http development issuer.
pub const DEV_COOKIE: &str = "atauth-device";

/// A device cookie value (a secret: never logged).
#[derive(Clone)]
pub struct DeviceCookie(String);

impl std::fmt::Debug for DeviceCookie {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("DeviceCookie([redacted])")
    }
}

impl DeviceCookie {
    /// A fresh random cookie.
    pub fn generate() -> Self {
        Self(hex::encode(atauth_crypto::random::random_bytes::<32>()))
    }

    /// The store key.
    pub fn hash(&self) -> TokenHash {
        TokenHash::of(&self.0)
    }

    /// The `device_id` requests and codes are bound to: hex of the hash.
    pub fn device_id(&self) -> String {
        hex::encode(self.hash().0)
    }

    /// The CSRF token of this device.
    pub fn csrf_token(&self) -> String {
        let mut input = b"atauth-ui-csrf\0".to_vec();
        input.extend_from_slice(self.0.as_bytes());
        hex::encode(sha256(input))
    }

    /// Whether `token` is this device's CSRF token (constant time).
    pub fn csrf_matches(&self, token: &str) -> bool {
        ct_eq(self.csrf_token().as_bytes(), token.as_bytes())
    }

    /// Reads the cookie from a request (`secure` picks the name). Malformed values count as absent.
    pub fn from_headers(headers: &HeaderMap, secure: bool) -> Option<Self> {
        let name = if secure { SECURE_COOKIE } else { DEV_COOKIE };
        headers
            .get_all(header::COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(';'))
            .filter_map(|pair| pair.trim().split_once('='))
            .find(|(k, _)| *k == name)
            .map(|(_, v)| v.trim())
            .filter(|v| v.len() == 64 && v.bytes().all(|b| b.is_ascii_hexdigit()))
            .map(|v| Self(v.to_ascii_lowercase()))
    }

    /// The `Set-Cookie` value for a session of `max_age_secs`.
    pub fn set_cookie(&self, secure: bool, max_age_secs: i64) -> String {
        if secure {
            format!(
                "{SECURE_COOKIE}={}; Path=/; Max-Age={max_age_secs}; HttpOnly; Secure; SameSite=Lax",
                self.0
            )
        } else {
            format!("{DEV_COOKIE}={}; Path=/; Max-Age={max_age_secs}; HttpOnly; SameSite=Lax", self.0)
        }
    }
}

/// Whether a state-changing request may come from this browser context: `Sec-Fetch-Site` (when
/// sent) is not `cross-site`/`same-site`, and `Origin` (when sent) is `origin` exactly.
pub fn same_origin_post(headers: &HeaderMap, origin: &str) -> bool {
    let fetch_site = headers.get("sec-fetch-site").and_then(|v| v.to_str().ok());
    if matches!(fetch_site, Some("cross-site" | "same-site")) {
        return false;
    }
    match headers.get(header::ORIGIN) {
        None => true,
        Some(v) => v.to_str().is_ok_and(|o| o == origin),
    }
}

fn device_lifetime(server: &AuthServer) -> i64 {
    i64::try_from(server.config().lifetimes.device_session.as_secs()).unwrap_or(i64::MAX)
}

/// The live device session of the request's cookie (`secure` picks the cookie name), if any.
pub async fn find_device(
    server: &AuthServer,
    headers: &HeaderMap,
    secure: bool,
) -> Result<Option<(DeviceCookie, DeviceSession)>, StoreError> {
    let Some(cookie) = DeviceCookie::from_headers(headers, secure) else { return Ok(None) };
    let device = server.stores().devices.get_device(&cookie.hash(), server.now()).await?;
    Ok(device.map(|d| (cookie, d)))
}

/// Opens a device session for a browser that has none: the new cookie, the stored session and the
/// cookie's `Set-Cookie` value. The user agent is kept (256 characters at most) to show the device
/// to its owner.
pub async fn open_device(
    server: &AuthServer,
    secure: bool,
    user_agent: Option<&str>,
) -> Result<(DeviceCookie, DeviceSession, String), StoreError> {
    let cookie = DeviceCookie::generate();
    let (now, lifetime) = (server.now(), device_lifetime(server));
    let session = DeviceSession {
        id: cookie.hash(),
        accounts: Vec::new(),
        created_at: now,
        expires_at: now.saturating_add(lifetime),
        user_agent: user_agent.map(|s| s.chars().take(256).collect()),
    };
    server.stores().devices.put_device(session.clone()).await?;
    let set = cookie.set_cookie(secure, lifetime);
    Ok((cookie, session, set))
}

/// Records that the device session `device` was used now, from `ip` (the account page shows when
/// and from where). Best effort: a failure is logged, and the page works on without it.
pub async fn record_use(server: &AuthServer, device: &TokenHash, ip: Option<std::net::IpAddr>) {
    let ip = ip.map(|i| i.to_string());
    if let Err(e) = server.stores().devices.touch_device(device, server.now(), ip.as_deref()).await {
        tracing::warn!(error = %e, "could not record the device's last use");
    }
}

/// Records that `did` signed in on the device now from `ip` (kept after the request only with
/// `remember`), extending the device session. `false` when the device session is gone.
pub async fn remember_sign_in(
    server: &AuthServer,
    device: &TokenHash,
    did: &str,
    remember: bool,
    ip: Option<std::net::IpAddr>,
) -> Result<bool, StoreError> {
    let now = server.now();
    let entry = DeviceAccount {
        did: did.to_owned(),
        authenticated_at: now,
        remember,
        consents: Vec::new(),
        last_seen_at: now,
        ip: ip.map(|i| i.to_string()),
    };
    server
        .stores()
        .devices
        .upsert_device_account(device, entry, now.saturating_add(device_lifetime(server)), now)
        .await
}

/// Remembers that `account` (signed in on the device with "remember") granted `scope` to
/// `client_id` (AS-AUTHZ-05), replacing what it granted that client before.
pub async fn remember_consent(
    server: &AuthServer,
    device: &TokenHash,
    account: &DeviceAccount,
    client_id: &str,
    scope: &str,
) -> Result<bool, StoreError> {
    let now = server.now();
    let mut entry = account.clone();
    entry.consents.retain(|c| c.client_id != client_id);
    entry.consents.push(crate::store::RememberedConsent {
        client_id: client_id.to_owned(),
        scope: scope.to_owned(),
        granted_at: now,
    });
    server
        .stores()
        .devices
        .upsert_device_account(device, entry, now.saturating_add(device_lifetime(server)), now)
        .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cookie_round_trip_and_csrf() {
        let c = DeviceCookie::generate();
        let set = c.set_cookie(true, 60);
        assert!(
            set.starts_with("__Host-atauth-device=") && set.contains("HttpOnly") && set.contains("Secure")
        );
        assert!(!c.set_cookie(false, 60).contains("Secure"));
        let mut h = HeaderMap::new();
        let pair = set.split(';').next().unwrap().to_owned();
        h.insert(header::COOKIE, format!("other=1; {pair}").parse().unwrap());
        let back = DeviceCookie::from_headers(&h, true).unwrap();
        assert_eq!(back.hash(), c.hash());
        assert!(DeviceCookie::from_headers(&h, false).is_none(), "dev name differs");
        assert!(back.csrf_matches(&c.csrf_token()));
        assert!(!back.csrf_matches(&DeviceCookie::generate().csrf_token()));
        assert_ne!(c.csrf_token(), c.device_id(), "the token is not the stored hash");
    }

    #[test]
    fn origin_checks() {
        let mut h = HeaderMap::new();
        assert!(same_origin_post(&h, "https://pds.example.com"));
        h.insert(header::ORIGIN, "https://evil.example".parse().unwrap());
        assert!(!same_origin_post(&h, "https://pds.example.com"));
        h.insert(header::ORIGIN, "https://pds.example.com".parse().unwrap());
        h.insert("sec-fetch-site", "cross-site".parse().unwrap());
        assert!(!same_origin_post(&h, "https://pds.example.com"));
        h.insert("sec-fetch-site", "same-origin".parse().unwrap());
        assert!(same_origin_post(&h, "https://pds.example.com"));
    }
}
