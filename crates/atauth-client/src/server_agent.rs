//! Requests to the authorization server: PAR, token (code and refresh), revocation. Each HTTP
//! attempt carries a fresh DPoP proof and, for confidential clients, a freshly signed client
//! assertion with `exp` (T-06, T-07, T-08; CL-PAR-04, CL-TOK-01, CL-REF-01, CL-REV-01).

use atauth_crypto::dpop::DpopSigner;
use atauth_crypto::jws::{self, JwsHeader};
use atauth_crypto::random::generate_jti;
use atauth_identity::http::{HttpRequest, HttpResponse};
use atauth_oauth::wire::{ClientAuthentication, RevocationRequest};
use atauth_oauth::{
    AuthorizationServerMetadata, ClientAssertionClaims, Issuer, OAuthErrorResponse, ParResponse,
    PushedAuthorizationRequest, TokenRequest, TokenResponse,
};
use serde::de::DeserializeOwned;
use url::Url;

use crate::config::ClientConfig;
use crate::dpop::DpopSender;
use crate::error::TokenError;
use crate::store::ClientAuthRecord;

/// Cap on token, PAR and revocation response bodies.
pub(crate) const MAX_TOKEN_RESPONSE_BYTES: usize = 64 * 1024;

/// Seconds subtracted from `iat` of client assertions: REF refuses assertions from the future (T-06).
const ASSERTION_IAT_SKEW: i64 = 5;

pub(crate) struct ServerAgent<'a> {
    pub(crate) sender: &'a DpopSender,
    pub(crate) config: &'a ClientConfig,
    pub(crate) issuer: &'a Issuer,
    pub(crate) metadata: &'a AuthorizationServerMetadata,
}

impl ServerAgent<'_> {
    /// The client authentication for one attempt (a new assertion every time, T-07).
    fn client_authentication(&self, auth: &ClientAuthRecord) -> Result<ClientAuthentication, TokenError> {
        let client_id = self.config.client_id.as_str();
        match auth {
            ClientAuthRecord::None => Ok(ClientAuthentication::public(client_id)),
            ClientAuthRecord::PrivateKeyJwt { kid } => {
                let key = self
                    .config
                    .keyset
                    .as_ref()
                    .and_then(|k| k.get(kid))
                    .ok_or_else(|| TokenError::ClientKeyMissing { kid: kid.clone() })?;
                let iat = self.sender.clock.unix_now() - ASSERTION_IAT_SKEW;
                let claims = ClientAssertionClaims {
                    iss: client_id.to_owned(),
                    sub: client_id.to_owned(),
                    aud: self.issuer.as_str().to_owned(),
                    jti: generate_jti(),
                    iat,
                    exp: Some(iat + 60),
                };
                let header = JwsHeader::new("ES256", None).with_kid(kid.clone());
                let assertion = jws::sign(&header, &claims, key).map_err(|_| TokenError::AssertionSigning)?;
                Ok(ClientAuthentication::private_key_jwt(client_id, assertion))
            }
        }
    }

    async fn post(
        &self,
        endpoint: &str,
        signer: &DpopSigner,
        auth: &ClientAuthRecord,
        fields: &[(&str, &str)],
    ) -> Result<HttpResponse, TokenError> {
        let url = Url::parse(endpoint).map_err(|_| TokenError::InvalidEndpoint)?;
        self.sender
            .send(signer, "POST", None, || {
                let authentication = self.client_authentication(auth)?;
                let mut pairs: Vec<(&str, &str)> = fields.to_vec();
                pairs.extend(authentication.form_pairs());
                Ok::<_, TokenError>(
                    HttpRequest::post_form(url.clone(), &pairs).max_response_bytes(MAX_TOKEN_RESPONSE_BYTES),
                )
            })
            .await
    }

    fn parse<T: DeserializeOwned>(res: &HttpResponse, ok: &[u16]) -> Result<T, TokenError> {
        let status = res.status.as_u16();
        if ok.contains(&status) {
            return serde_json::from_slice(&res.body).map_err(TokenError::InvalidBody);
        }
        match serde_json::from_slice::<OAuthErrorResponse>(&res.body) {
            Ok(error) => Err(TokenError::OAuth { status, error }),
            Err(_) => Err(TokenError::UnexpectedStatus { status }),
        }
    }

    /// PAR (CL-PAR-01 … 05): 201 (200 tolerated) with `{request_uri, expires_in}`.
    pub(crate) async fn par(
        &self,
        signer: &DpopSigner,
        auth: &ClientAuthRecord,
        request: &PushedAuthorizationRequest,
    ) -> Result<ParResponse, TokenError> {
        let endpoint = self.metadata.pushed_authorization_request_endpoint.as_deref().unwrap_or_default();
        let res = self.post(endpoint, signer, auth, &request.authorization_pairs()).await?;
        let par: ParResponse = Self::parse(&res, &[200, 201])?;
        if par.request_uri.is_empty() {
            return Err(TokenError::UnexpectedStatus { status: res.status.as_u16() });
        }
        Ok(par)
    }

    /// Token request (CL-TOK-01, CL-REF-01); the response is validated by the caller (CL-TOK-02).
    pub(crate) async fn token(
        &self,
        signer: &DpopSigner,
        auth: &ClientAuthRecord,
        request: &TokenRequest,
    ) -> Result<TokenResponse, TokenError> {
        let res = self.post(&self.metadata.token_endpoint, signer, auth, &request.form_pairs()).await?;
        Self::parse(&res, &[200])
    }

    /// Revocation (CL-REV-01). `Ok(false)` when the AS has no revocation endpoint.
    pub(crate) async fn revoke(
        &self,
        signer: &DpopSigner,
        auth: &ClientAuthRecord,
        token: &str,
        hint: &str,
    ) -> Result<bool, TokenError> {
        let Some(endpoint) = self.metadata.revocation_endpoint.as_deref() else {
            return Ok(false);
        };
        let request = RevocationRequest { token: token.to_owned(), token_type_hint: Some(hint.to_owned()) };
        let res = self.post(endpoint, signer, auth, &request.form_pairs()).await?;
        if res.status.is_success() {
            Ok(true)
        } else {
            Self::parse::<serde_json::Value>(&res, &[]).map(|_| true)
        }
    }
}
