//! The network path of Lexicon resolution (SCOPE-10): `_lexicon` DNS → DID → PDS → `getRecord`.

use std::sync::Arc;
use std::time::Duration;

use http::StatusCode;
use http::header::{self, HeaderValue};
use serde::Deserialize;
use url::Url;

use super::{
    LEXICON_SCHEMA_COLLECTION, LexiconOrigin, LexiconResolveError, LexiconResolver, ResolvedLexicon,
    check_document, lexicon_authority_domain, shorten,
};
use crate::did::DidResolver;
use crate::handle::{TxtLookup, TxtLookupError};
use crate::http::{HttpError, HttpRequest, SafeHttpClient};
use crate::syntax::{Did, Nsid, TldPolicy, validate_dns_name};

/// Default cap on the `getRecord` response body: 256 KiB. Real permission sets are a few KiB (the
/// largest Lexicon documents in the atproto repository are under 30 KiB); anything beyond the cap is
/// refused with [`LexiconResolveError::TooLarge`] as soon as the cap is crossed, without reading the
/// rest.
pub const DEFAULT_MAX_LEXICON_BYTES: usize = 256 * 1024;

/// Default timeout of the `_lexicon` TXT lookup.
pub const DEFAULT_LEXICON_DNS_TIMEOUT: Duration = Duration::from_secs(5);

/// Default total timeout of the `getRecord` request (connect, request, body).
pub const DEFAULT_LEXICON_FETCH_TIMEOUT: Duration = Duration::from_secs(10);

/// Default bound on one whole resolution (DNS + DID document + record): an authorization request
/// waits at most this long for a permission set.
pub const DEFAULT_LEXICON_TIMEOUT: Duration = Duration::from_secs(15);

/// Resolves Lexicon documents over the network (SCOPE-10; Lexicon spec §Lexicon Publication and
/// Resolution):
///
/// 1. The authority domain: the NSID without its name segment, reversed
///    ([`lexicon_authority_domain`](super::lexicon_authority_domain)). It must be a valid DNS name
///    allowed by the TLD policy (production: no `.local`, `.arpa`, `.test`, …).
/// 2. DNS TXT at `_lexicon.<domain>` through the injected [`TxtLookup`] — that one name only, never
///    a parent or child. Values starting with `did=` count; they must all name the same valid DID.
/// 3. The DID document through the injected [`DidResolver`], and its `#atproto_pds` endpoint.
/// 4. `GET <pds>/xrpc/com.atproto.repo.getRecord?repo=<did>&collection=com.atproto.lexicon.schema&rkey=<nsid>`
///    through the [`SafeHttpClient`] (its SSRF policy decides whether the PDS address may be
///    reached), JSON only, body capped at [`DEFAULT_MAX_LEXICON_BYTES`].
/// 5. Checks: `uri` is `at://<did>/com.atproto.lexicon.schema/<nsid>`, `value.$type` is
///    `com.atproto.lexicon.schema`, `value.id` is the NSID, `value.lexicon` is 1.
///
/// Unlike the reference resolver (`@atproto/lex-resolver`), the record is read with
/// `com.atproto.repo.getRecord` and its repository commit signature is not verified: the PDS named by
/// the authority's DID document is trusted for the record's content, as it is for the DID's other
/// records.
#[derive(Clone)]
pub struct AtprotoLexiconResolver {
    txt: Arc<dyn TxtLookup>,
    dids: Arc<dyn DidResolver>,
    http: SafeHttpClient,
    tld_policy: TldPolicy,
    dns_timeout: Duration,
    fetch_timeout: Duration,
    timeout: Duration,
    max_record_bytes: usize,
}

impl std::fmt::Debug for AtprotoLexiconResolver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AtprotoLexiconResolver")
            .field("http", &self.http)
            .field("tld_policy", &self.tld_policy)
            .field("dns_timeout", &self.dns_timeout)
            .field("fetch_timeout", &self.fetch_timeout)
            .field("timeout", &self.timeout)
            .field("max_record_bytes", &self.max_record_bytes)
            .finish_non_exhaustive()
    }
}

/// The `com.atproto.repo.getRecord` output.
#[derive(Deserialize)]
struct GetRecordOutput {
    uri: String,
    #[serde(default)]
    cid: Option<String>,
    value: serde_json::Value,
}

/// An XRPC error body.
#[derive(Deserialize)]
struct XrpcErrorBody {
    #[serde(default)]
    error: Option<String>,
}

impl AtprotoLexiconResolver {
    /// A resolver looking up `_lexicon` TXT records with `txt`, DID documents with `dids`, and fetching
    /// records with `http`. Production TLD policy and the default timeouts and size cap.
    pub fn new(txt: Arc<dyn TxtLookup>, dids: Arc<dyn DidResolver>, http: SafeHttpClient) -> Self {
        Self {
            txt,
            dids,
            http,
            tld_policy: TldPolicy::production(),
            dns_timeout: DEFAULT_LEXICON_DNS_TIMEOUT,
            fetch_timeout: DEFAULT_LEXICON_FETCH_TIMEOUT,
            timeout: DEFAULT_LEXICON_TIMEOUT,
            max_record_bytes: DEFAULT_MAX_LEXICON_BYTES,
        }
    }

    /// Which authority-domain TLDs may be looked up (the handle rules, ID-HANDLE-03). Default:
    /// production (no `.test`).
    #[must_use]
    pub fn tld_policy(mut self, policy: TldPolicy) -> Self {
        self.tld_policy = policy;
        self
    }

    /// Timeout of the TXT lookup. Default 5 s.
    #[must_use]
    pub fn dns_timeout(mut self, timeout: Duration) -> Self {
        self.dns_timeout = timeout;
        self
    }

    /// Total timeout of the `getRecord` request. Default 10 s.
    #[must_use]
    pub fn fetch_timeout(mut self, timeout: Duration) -> Self {
        self.fetch_timeout = timeout;
        self
    }

    /// Bound on one whole resolution. Default 15 s.
    #[must_use]
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Cap on the `getRecord` response body. Default [`DEFAULT_MAX_LEXICON_BYTES`].
    #[must_use]
    pub fn max_record_bytes(mut self, limit: usize) -> Self {
        self.max_record_bytes = limit;
        self
    }

    /// Steps 1–2: the DID that is the Lexicon authority for `nsid`, from `_lexicon.<domain>` TXT.
    pub async fn resolve_authority(&self, nsid: &Nsid) -> Result<Did, LexiconResolveError> {
        let domain = lexicon_authority_domain(nsid);
        validate_dns_name(&domain).map_err(|reason| LexiconResolveError::InvalidAuthorityDomain {
            nsid: nsid.clone(),
            domain: domain.clone(),
            reason,
        })?;
        self.tld_policy.check_name(&domain).map_err(|reason| {
            LexiconResolveError::UnresolvableAuthorityDomain {
                nsid: nsid.clone(),
                domain: domain.clone(),
                reason,
            }
        })?;
        let name = super::lexicon_dns_name(nsid);
        let records = match tokio::time::timeout(self.dns_timeout, self.txt.txt(&name)).await {
            Ok(Ok(records)) => records,
            Ok(Err(TxtLookupError::NotFound)) => {
                return Err(LexiconResolveError::NoAuthorityRecord { nsid: nsid.clone(), name });
            }
            Ok(Err(source)) => {
                return Err(LexiconResolveError::DnsLookupFailed { nsid: nsid.clone(), name, source });
            }
            Err(_elapsed) => {
                return Err(LexiconResolveError::DnsLookupFailed {
                    nsid: nsid.clone(),
                    name,
                    source: TxtLookupError::Timeout,
                });
            }
        };
        did_from_lexicon_txt(nsid, &name, &records)
    }

    /// Steps 3–5: the Lexicon record for `nsid` in the repository of `did`.
    pub async fn fetch_from_repo(
        &self,
        nsid: &Nsid,
        did: &Did,
    ) -> Result<ResolvedLexicon, LexiconResolveError> {
        let doc = self.dids.resolve_did(did).await.map_err(|source| {
            LexiconResolveError::DidResolutionFailed { nsid: nsid.clone(), did: did.clone(), source }
        })?;
        let pds = doc.pds_endpoint().map_err(|source| LexiconResolveError::NoPds {
            nsid: nsid.clone(),
            did: did.clone(),
            source,
        })?;
        let mut url = pds.clone();
        url.set_path("/xrpc/com.atproto.repo.getRecord");
        url.query_pairs_mut()
            .append_pair("repo", did.as_str())
            .append_pair("collection", LEXICON_SCHEMA_COLLECTION)
            .append_pair("rkey", nsid.as_str());
        let request = HttpRequest::get(url)
            .header(header::ACCEPT, HeaderValue::from_static("application/json"))
            .max_response_bytes(self.max_record_bytes)
            .timeout(self.fetch_timeout);
        let response = self.http.send(request).await.map_err(|e| self.http_error(nsid, did, &pds, e))?;
        let invalid = |reason: String| LexiconResolveError::InvalidResponse {
            nsid: nsid.clone(),
            pds: pds.to_string(),
            reason,
        };
        if response.status != StatusCode::OK {
            let error = response
                .json::<XrpcErrorBody>()
                .ok()
                .and_then(|b| b.error)
                .map(|e| e.chars().filter(char::is_ascii_alphanumeric).take(64).collect::<String>())
                .filter(|e| !e.is_empty());
            // The reference PDS answers a missing record with 400 `RecordNotFound`; others use 404.
            if response.status == StatusCode::NOT_FOUND
                || (response.status == StatusCode::BAD_REQUEST && error.as_deref() == Some("RecordNotFound"))
            {
                return Err(LexiconResolveError::NotFound { nsid: nsid.clone(), did: did.clone() });
            }
            return Err(LexiconResolveError::PdsRefused {
                nsid: nsid.clone(),
                pds: pds.to_string(),
                status: response.status,
                error,
            });
        }
        if response.media_type().as_deref() != Some("application/json") {
            return Err(invalid(format!(
                "content type {}",
                response.media_type().map_or_else(|| "(none)".to_owned(), |t| shorten(&t))
            )));
        }
        let output: GetRecordOutput = serde_json::from_slice(&response.body)
            .map_err(|e| invalid(format!("not a getRecord output: {}", shorten(&e.to_string()))))?;
        let expected_uri = format!("at://{did}/{LEXICON_SCHEMA_COLLECTION}/{nsid}");
        if output.uri != expected_uri {
            return Err(LexiconResolveError::UriMismatch {
                nsid: nsid.clone(),
                expected: expected_uri,
                found: shorten(&output.uri),
            });
        }
        if !output.value.is_object() {
            return Err(invalid("the record value is not an object".to_owned()));
        }
        match output.value.get("$type") {
            Some(serde_json::Value::String(t)) if t == LEXICON_SCHEMA_COLLECTION => {}
            Some(serde_json::Value::String(t)) => {
                return Err(LexiconResolveError::WrongRecordType { nsid: nsid.clone(), found: shorten(t) });
            }
            Some(other) => {
                return Err(LexiconResolveError::WrongRecordType {
                    nsid: nsid.clone(),
                    found: shorten(&other.to_string()),
                });
            }
            None => {
                return Err(LexiconResolveError::WrongRecordType {
                    nsid: nsid.clone(),
                    found: "(none)".to_owned(),
                });
            }
        }
        check_document(nsid, &output.value)?;
        Ok(ResolvedLexicon {
            nsid: nsid.clone(),
            document: Arc::new(output.value),
            origin: LexiconOrigin::Network {
                did: did.clone(),
                uri: output.uri,
                cid: output.cid,
                pds: pds.to_string(),
            },
        })
    }

    fn http_error(&self, nsid: &Nsid, did: &Did, pds: &Url, error: HttpError) -> LexiconResolveError {
        let (nsid, did, pds) = (nsid.clone(), did.clone(), pds.to_string());
        match error {
            HttpError::Blocked { .. }
            | HttpError::PlainHttpToNonLoopback { .. }
            | HttpError::SchemeNotAllowed { .. }
            | HttpError::CredentialsInUrl
            | HttpError::MissingHost => {
                LexiconResolveError::PdsAddressRefused { nsid, did, pds, source: error }
            }
            HttpError::TooLarge { limit } => LexiconResolveError::TooLarge { nsid, limit },
            HttpError::Redirect { status, .. } => LexiconResolveError::InvalidResponse {
                nsid,
                pds,
                reason: format!("redirect ({status}) refused"),
            },
            HttpError::UnexpectedStatus { status } => {
                LexiconResolveError::PdsRefused { nsid, pds, status, error: None }
            }
            HttpError::UnexpectedContentType { .. } | HttpError::InvalidJson(_) | HttpError::InvalidUtf8 => {
                LexiconResolveError::InvalidResponse { nsid, pds, reason: error.to_string() }
            }
            _ => LexiconResolveError::PdsUnreachable { nsid, did, pds, source: error },
        }
    }

    async fn resolve_without_deadline(&self, nsid: &Nsid) -> Result<ResolvedLexicon, LexiconResolveError> {
        let did = self.resolve_authority(nsid).await?;
        self.fetch_from_repo(nsid, &did).await
    }
}

/// Picks the authority DID out of `_lexicon` TXT values (SCOPE-10): only `did=` values count, all must
/// name the same valid DID.
fn did_from_lexicon_txt(nsid: &Nsid, name: &str, records: &[String]) -> Result<Did, LexiconResolveError> {
    let mut found: Option<Did> = None;
    for value in records {
        let Some(raw) = value.strip_prefix("did=") else {
            continue;
        };
        let did = Did::new(raw).map_err(|_| LexiconResolveError::MalformedAuthorityRecord {
            nsid: nsid.clone(),
            name: name.to_owned(),
            value: shorten(value),
        })?;
        match &found {
            None => found = Some(did),
            Some(first) if *first == did => {}
            Some(first) => {
                return Err(LexiconResolveError::ConflictingAuthorityRecords {
                    nsid: nsid.clone(),
                    name: name.to_owned(),
                    first: first.clone(),
                    second: did,
                });
            }
        }
    }
    found.ok_or_else(|| LexiconResolveError::NoAuthorityRecord { nsid: nsid.clone(), name: name.to_owned() })
}

#[async_trait::async_trait]
impl LexiconResolver for AtprotoLexiconResolver {
    async fn resolve_lexicon(&self, nsid: &Nsid) -> Result<ResolvedLexicon, LexiconResolveError> {
        match tokio::time::timeout(self.timeout, self.resolve_without_deadline(nsid)).await {
            Ok(result) => result,
            Err(_elapsed) => Err(LexiconResolveError::Timeout { nsid: nsid.clone() }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn nsid() -> Nsid {
        Nsid::new("com.example.perms.authBasic").expect("nsid")
    }

    #[test]
    fn txt_values_pick_one_did() {
        // SCOPE-10: `did=` values only; duplicates of one DID are fine.
        let name = "_lexicon.perms.example.com";
        let records = vec![
            "v=spf1 -all".to_owned(),
            "did=did:plc:ewvi7nxzyoun6zhxrhs64oiz".to_owned(),
            "did=did:plc:ewvi7nxzyoun6zhxrhs64oiz".to_owned(),
        ];
        assert_eq!(
            did_from_lexicon_txt(&nsid(), name, &records).expect("did").as_str(),
            "did:plc:ewvi7nxzyoun6zhxrhs64oiz"
        );
        assert!(matches!(
            did_from_lexicon_txt(&nsid(), name, &["hello".to_owned()]),
            Err(LexiconResolveError::NoAuthorityRecord { .. })
        ));
        assert!(matches!(
            did_from_lexicon_txt(&nsid(), name, &["did=nope".to_owned()]),
            Err(LexiconResolveError::MalformedAuthorityRecord { value, .. }) if value == "did=nope"
        ));
        let two = vec![
            "did=did:plc:aaaaaaaaaaaaaaaaaaaaaaaa".to_owned(),
            "did=did:plc:bbbbbbbbbbbbbbbbbbbbbbbb".to_owned(),
        ];
        assert!(matches!(
            did_from_lexicon_txt(&nsid(), name, &two),
            Err(LexiconResolveError::ConflictingAuthorityRecords { .. })
        ));
    }
}
