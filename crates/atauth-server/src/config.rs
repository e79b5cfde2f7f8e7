//! Server configuration: what an operator sets. Built through [`crate::AuthServerBuilder`].

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use atauth_oauth::Issuer;
use url::Url;

/// How the consent UI presents the server. Only display strings; never trusted for security.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Branding {
    /// Server name shown to users.
    pub name: String,
    /// Logo URL.
    pub logo_uri: Option<String>,
    /// Home page.
    pub home_uri: Option<String>,
    /// Terms of service.
    pub tos_uri: Option<String>,
    /// Privacy policy.
    pub privacy_uri: Option<String>,
    /// Where users get help: a web page or a `mailto:` address.
    pub support_uri: Option<String>,
    /// Primary colour (CSS value).
    pub primary_color: Option<String>,
}

impl Default for Branding {
    fn default() -> Self {
        Self {
            name: "atauth".to_owned(),
            logo_uri: None,
            home_uri: None,
            tos_uri: None,
            privacy_uri: None,
            support_uri: None,
            primary_color: None,
        }
    }
}

/// Token and request lifetimes (checklist AS-LIFE-01 … 04).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Lifetimes {
    /// Access tokens. **Default 15 minutes.** AS-LIFE-01: below 30 minutes when individually
    /// revocable, at most 15 when not. Ours are revocable (the resource verifier checks the token
    /// family is live), so 30 would be allowed; 15 keeps tokens within the stricter bound even for a
    /// resource server that verifies statelessly, and costs a quarter of the refresh traffic of the
    /// 5 minutes the spec recommends. (The reference uses 60 minutes, above the spec's bound.)
    pub access_token: Duration,
    /// A public client's whole session (AS-LIFE-02: ≤ 2 weeks). Default 14 days.
    pub public_session: Duration,
    /// A public client's refresh token, from its issuance (AS-LIFE-02). Default 14 days.
    pub public_refresh: Duration,
    /// A confidential client's whole session (AS-LIFE-03: may be unlimited; REF 2 years). Default 2 years.
    pub confidential_session: Duration,
    /// A confidential client's refresh token (AS-LIFE-03: ≤ 180 days; REF 3 months). Default 90 days.
    pub confidential_refresh: Duration,
    /// A pushed request (`request_uri`, AS-PAR-08 / REF 5 minutes). Default 5 minutes.
    pub par_request: Duration,
    /// An authorization code (AS-CODE-01 / REF 5 minutes). Default 5 minutes.
    pub code: Duration,
    /// How long validated client metadata is cached (AS-CMD-03 / REF 10 minutes). Default 10 minutes.
    pub client_metadata: Duration,
    /// DPoP nonce rotation period (AS-DPOP-03/07). Default 60 s; a nonce stays valid 2–3 periods.
    pub dpop_nonce_period: Duration,
    /// A browser device session of the sign-in UI, and how long a remembered sign-in on it lasts
    /// (after that the password is asked again). Default 30 days.
    pub device_session: Duration,
    /// How long after a refresh the replaced refresh token may be presented once more by the same
    /// client with the same DPoP key and client authentication, for a client whose response was lost
    /// in transit (bluesky-social/atproto#4656): it then gets a fresh rotation instead of losing the
    /// session. Any other replay still revokes the family (AS-REF-01). Default 30 s; zero turns it
    /// off.
    pub refresh_retry_grace: Duration,
}

impl Default for Lifetimes {
    fn default() -> Self {
        const DAY: u64 = 86_400;
        Self {
            access_token: Duration::from_secs(15 * 60),
            public_session: Duration::from_secs(14 * DAY),
            public_refresh: Duration::from_secs(14 * DAY),
            confidential_session: Duration::from_secs(730 * DAY),
            confidential_refresh: Duration::from_secs(90 * DAY),
            par_request: Duration::from_secs(300),
            code: Duration::from_secs(300),
            client_metadata: Duration::from_secs(600),
            dpop_nonce_period: Duration::from_secs(60),
            refresh_retry_grace: Duration::from_secs(30),
            device_session: Duration::from_secs(30 * DAY),
        }
    }
}

/// A token bucket: `burst` attempts at once, then one more every `refill_every`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateLimit {
    /// Bucket size.
    pub burst: u32,
    /// Time to earn back one attempt.
    pub refill_every: Duration,
}

/// Password sign-in rate limits ([`crate::ratelimit`]), applied to every password check that goes
/// through [`crate::AuthServer::sign_in_limited`] (the sign-in page and the interim consent API) and
/// to legacy `createSession`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SignInLimits {
    /// Per (identifier, client address): the tight limit, reset when a sign-in succeeds. Default 10
    /// at once, then one a minute: 60 guesses an hour from one place.
    pub per_identifier_and_ip: RateLimit,
    /// Per identifier (handle, email or DID as typed, normalised) from anywhere: the looser ceiling
    /// against guessing spread over many addresses. Default 100 at once, then one every 36 s.
    pub per_identifier: RateLimit,
    /// Per client IP address (IPv6 per /64). Default 30 at once, then one every 10 s.
    pub per_ip: RateLimit,
}

impl Default for SignInLimits {
    fn default() -> Self {
        Self {
            per_identifier_and_ip: RateLimit { burst: 10, refill_every: Duration::from_secs(60) },
            per_identifier: RateLimit { burst: 100, refill_every: Duration::from_secs(36) },
            per_ip: RateLimit { burst: 30, refill_every: Duration::from_secs(10) },
        }
    }
}

/// The server's configuration. See [`crate::AuthServerBuilder`] for how each value is set.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// The issuer: a bare origin, no trailing slash (AS-META-03, T-09).
    pub issuer: Issuer,
    /// The public base URL of this server's endpoints (for `htu`, T-05). Equal to the issuer for a
    /// combined AS + PDS; it is also the protected resource (`resource`, RS-META-01).
    pub public_url: String,
    /// Where the HTTP server listens (used by [`crate::web::serve`] callers).
    pub bind_addr: SocketAddr,
    /// Data directory (SQLite file, keys). `None` for purely in-memory servers.
    pub data_dir: Option<PathBuf>,
    /// The service DID access tokens are issued for (`aud`, RS-DPOP-01). Default `did:web:<host>`.
    pub service_did: String,
    /// Lifetimes.
    pub lifetimes: Lifetimes,
    /// `scopes_supported` (AS-META-02); must contain `atproto`.
    pub scopes_supported: Vec<String>,
    /// Display branding for the consent UI.
    pub branding: Branding,
    /// Client ids the operator trusts: only for these does the consent UI show the `client_name`,
    /// `logo_uri` and `client_uri` from the client's metadata (AS-CMD-06, CL-MD-13). Compared
    /// exactly. Default empty.
    pub trusted_clients: Vec<String>,
    /// Sign-in rate limits.
    pub sign_in_limits: SignInLimits,
    /// Sign-up: invite codes required or not, and the per-address limit ([`crate::signup`]).
    pub sign_up: crate::signup::SignUpConfig,
    /// The request header a trusted reverse proxy puts the client's address in (`x-forwarded-for`,
    /// of which the right-most address is used, or e.g. `x-real-ip`), for the per-IP sign-in limit.
    /// Default `None`: the TCP peer address ([`crate::web::serve`] records it). Set it only behind a
    /// proxy that overwrites the header, or clients can pick their own bucket.
    pub client_ip_header: Option<String>,
    /// Handle suffixes this server hosts, with a leading dot (e.g. `.pds.example.com`).
    pub handle_domains: Vec<String>,
    /// PLC directory for `did:plc` registration. Default `https://plc.directory`.
    pub plc_directory: Url,
    /// **Development only.** Allow an `http://localhost` issuer, `http` loopback client ids and
    /// loopback fetches. Default off.
    pub dev_mode: bool,
    /// Request body limit in bytes. Default 64 KiB.
    pub max_body_bytes: usize,
    /// Largest client-metadata document accepted (AS-CMD-01). Default 5 KiB, as CIMD recommends.
    pub max_client_metadata_bytes: usize,
    /// Maximum age of a client assertion (AS-CAUTH-03). Default 60 s.
    pub client_assertion_max_age: Duration,
    /// Allowed future clock skew of a client assertion's `iat` (T-06). Default 30 s.
    pub client_assertion_skew: Duration,
    /// How many password hashes may run at once. Default: number of CPUs.
    pub password_hash_concurrency: usize,
    /// Whether the headless password consent API (`POST /oauth/authorize/sign-in-and-approve`) is
    /// served, for tests, benchmarks and scripted logins; see [`crate::web`]. It skips the consent
    /// screen and carries no CSRF token, so it is a different switch from
    /// [`Self::consent_json_api`]. Default: on in development mode only.
    pub password_consent_api: bool,
    /// Whether the JSON consent API for custom front ends (`/oauth/authorize/api/…`: describe a
    /// request, sign in, approve, deny; CSRF-protected, see [`crate::web::ui`] and
    /// docs/CONSENT-API.md) is served. Default: on in development mode only.
    pub consent_json_api: bool,
}
