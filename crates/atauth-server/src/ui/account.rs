//! The account page (`/account`, issue 16): what a person signed in on this browser sees of their
//! account and the sign-outs they can do from it. Framework-free: this module gathers what the
//! page shows and performs the actions; [`crate::web::ui`] has the routes, the CSRF check and the
//! rendering.
//!
//! - **Connected apps**: the account's token families that can still be refreshed (family and
//!   refresh token unexpired: what an app can use without asking again, not the 15-minute access
//!   token's life), grouped by client, plus clients whose consent is remembered on one of the
//!   account's devices (AS-AUTHZ-05). Each shows the name as the consent screen does (trusted
//!   clients by `client_name` from the cached metadata, others by the host of the `client_id`, a
//!   loopback client as "an app on this device"), the full `client_id`, what it was granted in
//!   the consent screen's words ([`super::scopes`]), first and last use and the devices it was
//!   approved on.
//! - **Sign out of an app** revokes every token family of that client for this account at once
//!   (the next refresh answers `invalid_grant`; the resource check refuses its access token, whose
//!   family is gone) and forgets its remembered consent on every device, so the next request asks.
//! - **Devices**: the browsers the account is signed in on (user agent, address and time last
//!   seen, time of sign-in). Signing out of one removes the account from it and revokes the token
//!   families approved on it; "everywhere" does that on every device, revokes every token family
//!   of the account and ends its legacy (`createSession`) sessions.
//! - **App passwords** (LEG-10): create (the password is shown once, in the response to the POST),
//!   list, revoke (which also ends the sessions made with it).

use atauth_oauth::ClientId;

use super::i18n::Text;
use super::scopes::{self, ScopeLine};
use crate::server::AuthServer;
use crate::store::{AccountRecord, DeviceSession, SessionRecord, StoreError, TokenHash};

/// A connected app as the account page lists it.
#[derive(Debug, Clone)]
pub(crate) struct AppView {
    pub(crate) client_id: String,
    pub(crate) title: String,
    pub(crate) verified: bool,
    pub(crate) loopback: bool,
    pub(crate) permissions: Vec<ScopeLine>,
    /// When it was first authorized (its oldest live family, else the consent), and last used.
    pub(crate) first_used: Stamp,
    pub(crate) last_used: Stamp,
    /// Live token families (0: only a remembered consent).
    pub(crate) sessions: usize,
    /// The devices it was approved on, as labelled in the device list.
    pub(crate) devices: Vec<String>,
}

/// A device the account is signed in on.
#[derive(Debug, Clone)]
pub(crate) struct DeviceView {
    /// Hex of the device's hash (the form's `device` field; also the `device_id` of what was
    /// approved on it).
    pub(crate) id: String,
    pub(crate) label: String,
    pub(crate) user_agent: String,
    pub(crate) ip: Option<String>,
    pub(crate) last_seen: Stamp,
    pub(crate) signed_in: Stamp,
    pub(crate) current: bool,
}

/// An app password (never the password).
#[derive(Debug, Clone)]
pub(crate) struct AppPasswordView {
    pub(crate) name: String,
    pub(crate) privileged: bool,
    pub(crate) created: Stamp,
}

/// A time shown on the page: `2026-12-06 23:05 UTC`, and the RFC 3339 form for `<time>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Stamp {
    pub(crate) text: String,
    pub(crate) iso: String,
}

impl Stamp {
    pub(crate) fn new(unix: i64) -> Self {
        let days = unix.div_euclid(86_400);
        let secs = unix.rem_euclid(86_400);
        let (y, m, d) = civil_from_days(days);
        let (hh, mm, ss) = (secs / 3600, secs % 3600 / 60, secs % 60);
        Self {
            text: format!("{y:04}-{m:02}-{d:02} {hh:02}:{mm:02} UTC"),
            iso: format!("{y:04}-{m:02}-{d:02}T{hh:02}:{mm:02}:{ss:02}Z"),
        }
    }
}

/// Days since 1970-01-01 to a proleptic Gregorian date (Howard Hinnant's algorithm).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = u32::try_from(doy - (153 * mp + 2) / 5 + 1).unwrap_or(1);
    let m = u32::try_from(if mp < 10 { mp + 3 } else { mp - 9 }).unwrap_or(1);
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

/// A short name for a browser from its `User-Agent`: "Firefox on Linux", "Chrome on Android".
pub(crate) fn browser_label(user_agent: Option<&str>, t: &Text) -> String {
    let Some(ua) = user_agent.filter(|u| !u.trim().is_empty()) else { return t.unknown_browser.to_owned() };
    let browser = if ua.contains("Edg/") {
        "Edge"
    } else if ua.contains("OPR/") {
        "Opera"
    } else if ua.contains("Firefox/") {
        "Firefox"
    } else if ua.contains("HeadlessChrome/") {
        "Headless Chrome"
    } else if ua.contains("Chrome/") || ua.contains("Chromium/") {
        "Chrome"
    } else if ua.contains("Safari/") {
        "Safari"
    } else {
        let first = ua.split(['/', ' ']).next().unwrap_or("Browser");
        return first.chars().take(40).collect();
    };
    let os = if ua.contains("Android") {
        Some("Android")
    } else if ua.contains("iPhone") || ua.contains("iPad") {
        Some("iOS")
    } else if ua.contains("Windows") {
        Some("Windows")
    } else if ua.contains("Mac OS X") || ua.contains("Macintosh") {
        Some("macOS")
    } else if ua.contains("CrOS") {
        Some("ChromeOS")
    } else if ua.contains("Linux") {
        Some("Linux")
    } else {
        None
    };
    os.map_or_else(|| browser.to_owned(), |os| t.browser_on(browser, os))
}

/// How an app is named on the page: as on the consent screen (AS-CMD-06), from what this server
/// has (the metadata cache), never fetching.
async fn app_title(
    server: &AuthServer,
    client_id: &str,
    t: &Text,
) -> Result<(String, bool, bool), StoreError> {
    match ClientId::parse(client_id) {
        Ok(ClientId::Loopback(_)) => Ok((t.loopback_title.to_owned(), false, true)),
        Ok(ClientId::Discoverable(d)) => {
            let host = d.host().to_owned();
            if !server.config().trusted_clients.iter().any(|t| t == client_id) {
                return Ok((host, false, false));
            }
            let cached = server.stores().clients.get_client(client_id, server.now()).await?;
            let name = cached
                .and_then(|json| serde_json::from_str::<serde_json::Value>(&json).ok())
                .and_then(|v| v.get("client_name").and_then(|n| n.as_str()).map(str::to_owned))
                .filter(|n| !n.trim().is_empty());
            Ok((name.unwrap_or(host), true, false))
        }
        Err(_) => Ok((client_id.to_owned(), false, false)),
    }
}

/// Whether a family can still be used by its app: the family and its refresh token unexpired.
fn refreshable(s: &SessionRecord, now: i64) -> bool {
    s.expires_at > now && s.refresh_expires_at > now
}

/// The device-session lifetime in seconds.
fn sign_in_max_age(server: &AuthServer) -> i64 {
    i64::try_from(server.config().lifetimes.device_session.as_secs()).unwrap_or(i64::MAX)
}

/// The live devices `did` is signed in on (sign-in within the device-session lifetime).
pub(crate) async fn devices_of(server: &AuthServer, did: &str) -> Result<Vec<DeviceSession>, StoreError> {
    let (now, max_age) = (server.now(), sign_in_max_age(server));
    let mut devices = server.stores().devices.devices_for_account(did, now).await?;
    devices.retain(|d| {
        d.accounts.iter().any(|a| a.did == did && now.saturating_sub(a.authenticated_at) < max_age)
    });
    Ok(devices)
}

/// The account's devices, this one (`current`) first, then by last seen, newest first.
pub(crate) fn device_views(
    devices: &[DeviceSession],
    did: &str,
    current: &TokenHash,
    t: &Text,
) -> Vec<DeviceView> {
    let mut out: Vec<DeviceView> = devices
        .iter()
        .filter_map(|d| {
            let entry = d.accounts.iter().find(|a| a.did == did)?;
            Some(DeviceView {
                id: hex::encode(d.id.0),
                label: browser_label(d.user_agent.as_deref(), t),
                user_agent: d.user_agent.clone().unwrap_or_default(),
                ip: entry.ip.clone(),
                last_seen: Stamp::new(entry.last_seen_at.max(entry.authenticated_at)),
                signed_in: Stamp::new(entry.authenticated_at),
                current: d.id == *current,
            })
        })
        .collect();
    out.sort_by(|a, b| b.current.cmp(&a.current).then_with(|| b.last_seen.iso.cmp(&a.last_seen.iso)));
    out
}

/// The connected apps of `account`: live families grouped by client, and clients with a
/// remembered consent on `devices`. Most recently used first.
pub(crate) async fn connected_apps(
    server: &AuthServer,
    account: &AccountRecord,
    devices: &[DeviceView],
    device_sessions: &[DeviceSession],
    t: &Text,
) -> Result<Vec<AppView>, StoreError> {
    let now = server.now();
    let families: Vec<SessionRecord> = server
        .stores()
        .tokens
        .sessions_for_account(&account.did, now)
        .await?
        .into_iter()
        .filter(|s| refreshable(s, now))
        .collect();
    let consents: Vec<_> = device_sessions
        .iter()
        .flat_map(|d| d.accounts.iter().filter(|a| a.did == account.did))
        .flat_map(|a| a.consents.iter())
        .collect();
    let mut client_ids: Vec<&str> = families.iter().map(|s| s.client_id.as_str()).collect();
    client_ids.extend(consents.iter().map(|c| c.client_id.as_str()));
    client_ids.sort_unstable();
    client_ids.dedup();

    let mut apps = Vec::with_capacity(client_ids.len());
    for client_id in client_ids {
        let mine: Vec<&SessionRecord> = families.iter().filter(|s| s.client_id == client_id).collect();
        let granted: Vec<_> = consents.iter().filter(|c| c.client_id == client_id).collect();
        // What it holds: the newest family's scope, else the newest remembered consent's.
        let scope = mine
            .iter()
            .max_by_key(|s| s.updated_at)
            .map(|s| s.scope.clone())
            .or_else(|| granted.iter().max_by_key(|c| c.granted_at).map(|c| c.scope.clone()))
            .unwrap_or_default();
        let first = mine
            .iter()
            .map(|s| s.created_at)
            .chain(granted.iter().map(|c| c.granted_at))
            .min()
            .unwrap_or(now);
        let last = mine
            .iter()
            .map(|s| s.updated_at)
            .chain(granted.iter().map(|c| c.granted_at))
            .max()
            .unwrap_or(now);
        let mut on: Vec<String> = mine
            .iter()
            .filter_map(|s| s.device_id.as_deref())
            .filter_map(|id| devices.iter().find(|d| d.id == id))
            .map(
                |d| if d.current { format!("{} {}", d.label, t.this_device_suffix) } else { d.label.clone() },
            )
            .collect();
        on.sort();
        on.dedup();
        let (title, verified, loopback) = app_title(server, client_id, t).await?;
        apps.push(AppView {
            client_id: client_id.to_owned(),
            title,
            verified,
            loopback,
            permissions: scopes::describe_all(t.lang, &scope),
            first_used: Stamp::new(first),
            last_used: Stamp::new(last),
            sessions: mine.len(),
            devices: on,
        });
    }
    apps.sort_by(|a, b| b.last_used.iso.cmp(&a.last_used.iso).then_with(|| a.client_id.cmp(&b.client_id)));
    Ok(apps)
}

/// The account's app passwords, oldest first.
pub(crate) async fn app_passwords(
    server: &AuthServer,
    did: &str,
) -> Result<Vec<AppPasswordView>, StoreError> {
    Ok(server
        .legacy_store()
        .list_app_passwords(did)
        .await?
        .into_iter()
        .map(|a| AppPasswordView {
            name: a.name,
            privileged: a.privileged,
            created: Stamp::new(a.created_at),
        })
        .collect())
}

/// "Sign out of this app": revokes every token family of `client_id` for `did` and forgets its
/// consent on every device (AS-AUTHZ-05).
pub(crate) async fn sign_out_app(server: &AuthServer, did: &str, client_id: &str) -> Result<(), StoreError> {
    let stores = server.stores();
    let families = stores.tokens.revoke_account_sessions(did, Some(client_id), None).await?;
    let consents = stores.devices.forget_consents(did, client_id).await?;
    tracing::info!(%did, client_id, families, consents, "account page: signed out of an app");
    Ok(())
}

/// "Sign out" of one device: the account leaves it and the token families approved on it are
/// revoked. `false` when `did` is not signed in on that device (nothing changes).
pub(crate) async fn sign_out_device(
    server: &AuthServer,
    did: &str,
    device: &TokenHash,
) -> Result<bool, StoreError> {
    let stores = server.stores();
    let Some(d) = stores.devices.get_device(device, server.now()).await? else { return Ok(false) };
    if !d.accounts.iter().any(|a| a.did == did) {
        return Ok(false);
    }
    stores.devices.remove_device_accounts(device, Some(did)).await?;
    let families = stores.tokens.revoke_account_sessions(did, None, Some(&hex::encode(device.0))).await?;
    tracing::info!(%did, families, "account page: signed out of a device");
    Ok(true)
}

/// "Sign out everywhere": the account leaves every device, every token family of it is revoked and
/// its legacy sessions end (app passwords stay; revoke them one by one).
pub(crate) async fn sign_out_everywhere(server: &AuthServer, did: &str) -> Result<(), StoreError> {
    let stores = server.stores();
    let families = stores.tokens.revoke_account_sessions(did, None, None).await?;
    let devices = stores.devices.remove_account_everywhere(did).await?;
    let legacy = server.legacy_store().delete_refresh_for_did(did).await?;
    tracing::info!(%did, families, devices, legacy, "account page: signed out everywhere");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ui::i18n::EN;

    #[test]
    fn stamps_are_utc_dates() {
        assert_eq!(Stamp::new(0).text, "1970-01-01 00:00 UTC");
        assert_eq!(Stamp::new(1_800_000_000).iso, "2027-01-15T08:00:00Z");
        assert_eq!(Stamp::new(951_782_400).text, "2000-02-29 00:00 UTC");
    }

    #[test]
    fn browsers_are_named() {
        let chrome = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0 Safari/537.36";
        assert_eq!(browser_label(Some(chrome), &EN), "Chrome on Linux");
        let ff = "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:121.0) Gecko/20100101 Firefox/121.0";
        assert_eq!(browser_label(Some(ff), &EN), "Firefox on Windows");
        let safari = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) AppleWebKit/605.1.15 Version/17.0 Mobile/15E148 Safari/604.1";
        assert_eq!(browser_label(Some(safari), &EN), "Safari on iOS");
        assert_eq!(browser_label(Some("curl/8.5.0"), &EN), "curl");
        assert_eq!(browser_label(None, &EN), "Unknown browser");
    }
}
