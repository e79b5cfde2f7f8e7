//! The saved session of the client commands: `<session dir>/session.json`, mode 0600 in a 0700
//! directory, rewritten atomically.
//!
//! It holds one session: an OAuth session (the client library's `SessionRecord`: tokens, the session's
//! DPoP private key, issuer, PDS) with what is needed to rebuild the same loopback client (its
//! `redirect_uri` and scope make up the `client_id` the tokens are bound to) and the development
//! switches; or a legacy app-password session. [`FileStore`] is the client library's
//! [`SessionStore`] over this file, so refreshed tokens are written back before they are used
//! (T-12). Commands hold [`crate::paths::DirLock`] while they use the file, so two `atauth`
//! processes never refresh the same tokens.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use atauth_client::{
    ClientConfig, DevOptions, OAuthClient, PasswordSessionData, SessionKey, SessionRecord, SessionStore,
    StoreError,
};
use atauth_identity::http::SafeHttpClient;
use atauth_identity::{Did, IdentityResolver, TldPolicy};
use serde::{Deserialize, Serialize};
use url::Url;

use crate::cli::DevArgs;
use crate::error::CliError;
use crate::paths;

/// The file name in the session directory.
pub(crate) const SESSION_FILE: &str = "session.json";
const VERSION: u32 = 1;

/// The development switches a session was created with.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub(crate) struct DevSettings {
    /// Plain http to loopback.
    #[serde(default)]
    pub(crate) allow_http_loopback: bool,
    /// PLC directory override.
    #[serde(default)]
    pub(crate) plc_url: Option<Url>,
    /// XRPC handle resolver.
    #[serde(default)]
    pub(crate) handle_resolver: Option<Url>,
}

impl From<&DevArgs> for DevSettings {
    fn from(a: &DevArgs) -> Self {
        Self {
            allow_http_loopback: a.allow_http_loopback,
            plc_url: a.plc_url.clone(),
            handle_resolver: a.handle_resolver.clone(),
        }
    }
}

impl DevSettings {
    /// The client library's switches.
    pub(crate) fn dev_options(&self) -> DevOptions {
        DevOptions {
            allow_http_loopback: self.allow_http_loopback,
            plc_url: self.plc_url.clone(),
            handle_resolver_url: self.handle_resolver.clone(),
        }
    }

    /// An SSRF-safe HTTP client with these switches.
    pub(crate) fn http_client(&self) -> Result<SafeHttpClient, CliError> {
        SafeHttpClient::builder()
            .allow_http_loopback(self.allow_http_loopback)
            .build()
            .map_err(|e| CliError::failed("could not set up HTTP", e))
    }

    /// An identity resolver with these switches.
    pub(crate) fn identity_resolver(&self, http: SafeHttpClient) -> Result<IdentityResolver, CliError> {
        let mut b = IdentityResolver::builder(http);
        if let Some(plc) = &self.plc_url {
            b = b.plc_directory(plc.clone());
        }
        if let Some(h) = &self.handle_resolver {
            b = b.xrpc_handle_resolver(h.clone()).tld_policy(TldPolicy::development());
        }
        b.build().map_err(|e| CliError::failed("could not set up identity resolution", e))
    }
}

/// What a loopback OAuth client needs besides the session record.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct OAuthClientSettings {
    /// The handle shown to the user (from `getSession` at login), if known.
    pub(crate) handle: Option<String>,
    /// The redirect URI of the loopback client (part of its `client_id`).
    pub(crate) redirect_uri: String,
    /// The scope of the loopback client (part of its `client_id`).
    pub(crate) scope: String,
    /// Development switches.
    #[serde(default)]
    pub(crate) dev: DevSettings,
}

/// A saved session.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
#[allow(clippy::large_enum_variant)] // one value per command, read from and written to a file
pub(crate) enum Saved {
    /// An OAuth session.
    Oauth {
        /// Client settings.
        #[serde(flatten)]
        client: OAuthClientSettings,
        /// The session (tokens and DPoP key).
        session: SessionRecord,
    },
    /// A legacy app-password session.
    AppPassword {
        /// Development switches.
        #[serde(default)]
        dev: DevSettings,
        /// The session (tokens).
        session: PasswordSessionData,
    },
}

impl Saved {
    /// The account DID.
    pub(crate) fn did(&self) -> &Did {
        match self {
            Self::Oauth { session, .. } => &session.key.did,
            Self::AppPassword { session, .. } => &session.did,
        }
    }

    /// The handle, if known.
    pub(crate) fn handle(&self) -> Option<&str> {
        match self {
            Self::Oauth { client, .. } => client.handle.as_deref(),
            Self::AppPassword { session, .. } => Some(session.handle.as_str()),
        }
    }

    /// `handle (did)` or `did`.
    pub(crate) fn describe(&self) -> String {
        match self.handle() {
            Some(h) => format!("{h} ({})", self.did()),
            None => self.did().to_string(),
        }
    }
}

#[derive(Serialize, Deserialize)]
struct FileFormat {
    version: u32,
    #[serde(flatten)]
    saved: Saved,
}

/// The session file in `dir`.
pub(crate) fn path_in(dir: &Path) -> PathBuf {
    dir.join(SESSION_FILE)
}

/// The session directory from the flag, env, or the default.
pub(crate) fn dir_from(arg: Option<&PathBuf>) -> Result<PathBuf, CliError> {
    match arg {
        Some(d) => Ok(d.clone()),
        None => paths::default_session_dir(),
    }
}

/// Reads the saved session, if any.
pub(crate) fn load(dir: &Path) -> Result<Option<Saved>, CliError> {
    let path = path_in(dir);
    let text = match std::fs::read_to_string(&path) {
        Ok(t) => atauth_crypto::SecretString::new(t),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(CliError::failed(format!("could not read {}", path.display()), e)),
    };
    let file: FileFormat = serde_json::from_str(text.expose_secret()).map_err(|e| {
        CliError::Failed(format!(
            "{} is not a session file this atauth understands ({e}); delete it and log in again",
            path.display()
        ))
    })?;
    if file.version != VERSION {
        return Err(CliError::Failed(format!(
            "{} has version {}, this atauth reads version {VERSION}",
            path.display(),
            file.version
        )));
    }
    Ok(Some(file.saved))
}

fn save_io(dir: &Path, saved: &Saved) -> std::io::Result<()> {
    let file = FileFormat { version: VERSION, saved: saved.clone() };
    let json =
        atauth_crypto::SecretString::new(serde_json::to_string_pretty(&file).map_err(std::io::Error::other)?);
    paths::write_private(&path_in(dir), json.expose_secret().as_bytes())
}

/// Writes the session (0600, atomically).
pub(crate) fn save(dir: &Path, saved: &Saved) -> Result<(), CliError> {
    save_io(dir, saved)
        .map_err(|e| CliError::failed(format!("could not save the session in {}", dir.display()), e))
}

/// Deletes the session file (no error if it is absent).
pub(crate) fn remove(dir: &Path) -> Result<(), CliError> {
    match std::fs::remove_file(path_in(dir)) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(CliError::failed("could not delete the session file", e)),
    }
}

fn backend(e: impl std::error::Error + Send + Sync + 'static) -> StoreError {
    StoreError::Backend(Box::new(e))
}

/// The client library's [`SessionStore`] over the session file, for one OAuth session.
#[derive(Debug)]
pub(crate) struct FileStore {
    dir: PathBuf,
    client: Mutex<OAuthClientSettings>,
}

impl FileStore {
    /// A store writing to `dir` with these client settings.
    pub(crate) fn new(dir: &Path, client: OAuthClientSettings) -> Self {
        Self { dir: dir.to_owned(), client: Mutex::new(client) }
    }

    fn settings(&self) -> OAuthClientSettings {
        self.client.lock().unwrap_or_else(std::sync::PoisonError::into_inner).clone()
    }

    /// Sets the handle shown for the session and rewrites the file if it holds a session.
    pub(crate) fn set_handle(&self, handle: Option<String>) -> Result<(), CliError> {
        self.client.lock().unwrap_or_else(std::sync::PoisonError::into_inner).handle = handle;
        if let Some(Saved::Oauth { session, .. }) = load(&self.dir)? {
            save(&self.dir, &Saved::Oauth { client: self.settings(), session })?;
        }
        Ok(())
    }

    fn read(&self) -> Result<Option<SessionRecord>, StoreError> {
        match load(&self.dir) {
            Ok(Some(Saved::Oauth { session, .. })) => Ok(Some(session)),
            Ok(_) => Ok(None),
            Err(e) => Err(backend(std::io::Error::other(e.to_string()))),
        }
    }
}

#[async_trait::async_trait]
impl SessionStore for FileStore {
    async fn get_session(&self, key: &SessionKey) -> Result<Option<SessionRecord>, StoreError> {
        Ok(self.read()?.filter(|r| &r.key == key))
    }

    async fn put_session(&self, record: &SessionRecord) -> Result<(), StoreError> {
        save_io(&self.dir, &Saved::Oauth { client: self.settings(), session: record.clone() })
            .map_err(backend)
    }

    async fn delete_session(&self, key: &SessionKey) -> Result<(), StoreError> {
        if self.read()?.is_some_and(|r| &r.key == key) {
            match std::fs::remove_file(path_in(&self.dir)) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(backend(e)),
            }
        }
        Ok(())
    }

    async fn list_sessions(&self, did: &Did) -> Result<Vec<SessionKey>, StoreError> {
        Ok(self.read()?.filter(|r| &r.key.did == did).map(|r| vec![r.key]).unwrap_or_default())
    }

    async fn list_all_sessions(&self) -> Result<Vec<SessionKey>, StoreError> {
        Ok(self.read()?.map(|r| vec![r.key]).unwrap_or_default())
    }
}

/// The loopback OAuth client for these settings, with `store` as its session store.
pub(crate) fn oauth_client(
    settings: &OAuthClientSettings,
    store: Arc<dyn SessionStore>,
) -> Result<OAuthClient, CliError> {
    let config = ClientConfig::loopback(&[&settings.redirect_uri], &settings.scope)
        .map_err(|e| CliError::Config(format!("invalid login client: {e}")))?
        .with_dev(settings.dev.dev_options());
    OAuthClient::builder(config)
        .session_store(store)
        .build()
        .map_err(|e| CliError::failed("could not set up the OAuth client", e))
}
