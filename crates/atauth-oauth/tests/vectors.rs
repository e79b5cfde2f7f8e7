//! Checklist vectors (§4.4) and one test per failing check of CL-MD-*, CL-DISC-*, CL-TOK-02.
#![allow(clippy::unwrap_used, clippy::type_complexity)]

use atauth_crypto::{Algorithm, Jwks, PrivateKey};
use atauth_oauth::client_metadata::ClientMetadataError as E;
use atauth_oauth::metadata::AsMetadataError;
use atauth_oauth::scope::{Permission, PermissionError, ScopeSyntax, ScopeSyntaxError};
use atauth_oauth::*;

// ------------------------------------------------------------------ scopes (§4.4, SPEC-PERM) ---

#[test]
fn scope_04_spec_valid_vectors() {
    for s in [
        "identity:*",
        "identity:*?",
        "rpc?lxm=*&aud=did:web:api.example.com%23svc_appview",
        "blob?accept=video/*&accept=text/html",
        "repo:app.example.profile?action=create&action=update&action=delete",
        "include:app.example.authFull?aud=did:web:api.example.com%23svc_chat",
    ] {
        Permission::parse(s).unwrap_or_else(|e| panic!("{s}: {e}"));
    }
}

#[test]
fn scope_04_syntactically_valid_semantically_invalid() {
    for s in [
        "resource",
        "resource:positional?key=val",
        "resource:positional&thing?key=val",
        "service:did:web:com.example#type?key=val",
        "resource:",
        "resource:?",
        "resource:&",
        "resource?",
    ] {
        ScopeSyntax::parse(s).unwrap_or_else(|e| panic!("{s} should parse syntactically: {e}"));
        assert!(
            matches!(Permission::parse(s), Err(PermissionError::UnknownResource { .. })),
            "{s} must be semantically invalid"
        );
    }
}

#[test]
fn scope_04_syntax_errors() {
    for s in ["resource:positional?key=québec", "emoji:☺️"] {
        assert!(matches!(ScopeSyntax::parse(s), Err(ScopeSyntaxError::InvalidCharacter { .. })), "{s}");
        assert!(matches!(Permission::parse(s), Err(PermissionError::Syntax(_))), "{s}");
    }
}

#[test]
fn scope_06_rpc_invalid_vectors_from_ref() {
    assert!(matches!(Permission::parse("rpc:*"), Err(PermissionError::MissingParameter { key: "aud", .. })));
    assert!(matches!(
        Permission::parse("rpc:com.example.method1"),
        Err(PermissionError::MissingParameter { key: "aud", .. })
    ));
    assert_eq!(Permission::parse("rpc?aud=*&lxm=*"), Err(PermissionError::RpcWildcardBoth));
    assert_eq!(Permission::parse("rpc:*?aud=*"), Err(PermissionError::RpcWildcardBoth));
    assert!(matches!(
        Permission::parse("rpc:com.example.service?aud=invalid"),
        Err(PermissionError::InvalidValue { key: "aud", .. })
    ));
    // REF rejects bare-DID audiences (SCOPE-06).
    assert!(matches!(
        Permission::parse("rpc:foo.bar.baz?aud=did:plc:111"),
        Err(PermissionError::InvalidValue { key: "aud", .. })
    ));
    assert!(matches!(
        Permission::parse("rpc:com.example.method1?aud=did:web:example.com&lxm=com.example.method2"),
        Err(PermissionError::PositionalAndNamed { key: "lxm", .. })
    ));
}

#[test]
fn scope_06_rpc_round_trips_like_ref() {
    let one = Permission::parse("rpc:com.example.method1?aud=*").unwrap();
    assert_eq!(one.to_string(), "rpc:com.example.method1?aud=*");
    let two = Permission::parse(
        "rpc?lxm=com.example.method1&lxm=com.example.method2&aud=did:web:example.com%23service_id",
    )
    .unwrap();
    assert_eq!(
        two.to_string(),
        "rpc?lxm=com.example.method1&lxm=com.example.method2&aud=did:web:example.com%23service_id"
    );
}

#[test]
fn scope_05_repo_rules() {
    assert!(Permission::parse("repo:app.example.profile").is_ok());
    assert!(Permission::parse("repo?collection=a.b.c&collection=a.b.d").is_ok());
    assert!(Permission::parse("repo:*?action=delete").is_ok());
    assert!(matches!(
        Permission::parse("repo:com.example.*"),
        Err(PermissionError::InvalidValue { key: "collection", .. })
    ));
    assert!(matches!(
        Permission::parse("repo:a.b.c?collection=x.y.z"),
        Err(PermissionError::PositionalAndNamed { .. })
    ));
    assert!(matches!(
        Permission::parse("repo:a.b.c?action=publish"),
        Err(PermissionError::InvalidValue { key: "action", .. })
    ));
    assert!(matches!(Permission::parse("repo:a.b.c?foo=1"), Err(PermissionError::UnknownParameter { .. })));
    assert!(matches!(Permission::parse("repo"), Err(PermissionError::MissingParameter { .. })));
    assert_eq!(
        Permission::parse("repo:a.b.c?action=create").unwrap().to_string(),
        "repo:a.b.c?action=create"
    );
}

#[test]
fn scope_07_to_09_blob_account_identity() {
    assert!(Permission::parse("blob:*/*").is_ok());
    assert!(Permission::parse("blob:image/png").is_ok());
    assert!(matches!(Permission::parse("blob:png"), Err(PermissionError::InvalidValue { .. })));
    assert!(matches!(Permission::parse("blob:*/png"), Err(PermissionError::InvalidValue { .. })));
    assert!(Permission::parse("account:email").is_ok());
    assert!(Permission::parse("account:repo?action=manage").is_ok());
    assert!(matches!(Permission::parse("account:*"), Err(PermissionError::InvalidValue { .. })));
    assert!(matches!(
        Permission::parse("account:email?action=write"),
        Err(PermissionError::InvalidValue { .. })
    ));
    assert!(Permission::parse("identity:handle").is_ok());
    assert!(matches!(Permission::parse("identity:email"), Err(PermissionError::InvalidValue { .. })));
}

#[test]
fn scope_03_transitional_and_static() {
    assert!(matches!(Permission::parse("atproto"), Ok(Permission::Atproto)));
    assert!(matches!(Permission::parse("transition:generic"), Ok(Permission::Transition(_))));
    assert!(matches!(Permission::parse("transition:chat.bsky"), Ok(Permission::Transition(_))));
    assert!(matches!(Permission::parse("transition:email"), Ok(Permission::Transition(_))));
    assert!(matches!(Permission::parse("transition:other"), Err(PermissionError::InvalidStaticScope { .. })));
    assert!(matches!(Permission::parse("atproto:x"), Err(PermissionError::InvalidStaticScope { .. })));
}

// ----------------------------------------------------------- loopback client ids (§4.4, LOOP) ---

#[test]
fn cl_md_loop_valid_forms() {
    for s in [
        "http://localhost",
        "http://localhost/",
        "http://localhost?scope=atproto%20transition%3Ageneric&redirect_uri=http%3A%2F%2F127.0.0.1%3A8080%2Fcb",
    ] {
        assert!(matches!(ClientId::parse(s), Ok(ClientId::Loopback(_))), "{s}");
    }
    let ClientId::Loopback(def) = ClientId::parse("http://localhost").unwrap() else { unreachable!() };
    assert_eq!(def.redirect_uris(), ["http://127.0.0.1/", "http://[::1]/"]);
    assert_eq!(def.scope().to_string(), "atproto");
    let ClientId::Loopback(l) = ClientId::parse(
        "http://localhost?scope=atproto%20transition%3Ageneric&redirect_uri=http%3A%2F%2F127.0.0.1%3A8080%2Fcb",
    )
    .unwrap() else {
        unreachable!()
    };
    assert_eq!(l.redirect_uris(), ["http://127.0.0.1:8080/cb"]);
    assert_eq!(l.scope().to_string(), "atproto transition:generic");
}

#[test]
fn cl_md_loop_invalid_forms() {
    use ClientIdError as C;
    let cases: [(&str, fn(&ClientIdError) -> bool); 7] = [
        ("http://localhost:8080", |e| *e == C::HasPort),
        ("http://127.0.0.1", |e| *e == C::SchemeNotAllowed),
        ("http://localhost/path", |e| *e == C::LoopbackPath),
        ("http://localhost?foo=bar", |e| matches!(e, C::LoopbackUnknownParameter { .. })),
        ("http://localhost?scope=a&scope=b", |e| *e == C::LoopbackRepeatedScope),
        ("http://localhost#x", |e| *e == C::HasFragment),
        ("http://localhost?redirect_uri=http%3A%2F%2Flocalhost%2Fcb", |e| {
            matches!(e, C::LoopbackBadRedirectUri { .. })
        }),
    ];
    for (s, check) in cases {
        let err = ClientId::parse(s).unwrap_err();
        assert!(check(&err), "{s}: unexpected {err:?}");
    }
    assert_eq!(
        ClientId::parse("http://localhost?scope=transition%3Ageneric"),
        Err(C::LoopbackScopeWithoutAtproto)
    );
}

#[test]
fn cl_md_loop_04_virtual_document_validates() {
    let id = LoopbackClientId::new(&["http://127.0.0.1:4321/callback"], &ScopeSet::parse("atproto").unwrap())
        .unwrap();
    assert_eq!(id.as_str(), "http://localhost?redirect_uri=http%3A%2F%2F127.0.0.1%3A4321%2Fcallback");
    let meta = id.metadata();
    let cid = ClientId::Loopback(id);
    meta.validate(&cid).unwrap();
    assert_eq!(meta.application_type.as_deref(), Some("native"));
    assert_eq!(meta.token_endpoint_auth_method.as_deref(), Some("none"));
    let with_uri = ClientMetadata { client_uri: Some("https://x.example.com".into()), ..meta.clone() };
    assert!(matches!(with_uri.validate(&cid), Err(E::ClientUriMismatch(_))));
    let web = ClientMetadata { application_type: Some("web".into()), ..meta };
    assert!(web.validate(&cid).is_err());
}

// ------------------------------------------------------------ discoverable client ids (MD-01/02) ---

#[test]
fn cl_md_01_02_discoverable_client_ids() {
    use ClientIdError as C;
    assert!(matches!(
        ClientId::parse("https://app.example.com/oauth-client-metadata.json"),
        Ok(ClientId::Discoverable(_))
    ));
    assert_eq!(ClientId::parse("https://app.example.com"), Err(C::BadPath));
    assert_eq!(ClientId::parse("https://app.example.com/"), Err(C::BadPath));
    assert_eq!(ClientId::parse("https://app.example.com/meta/"), Err(C::BadPath));
    assert_eq!(ClientId::parse("https://app.example.com/m.json#f"), Err(C::HasFragment));
    assert_eq!(ClientId::parse("https://u:p@app.example.com/m.json"), Err(C::HasCredentials));
    assert_eq!(ClientId::parse("https://app.example.com:8443/m.json"), Err(C::HasPort));
    assert_eq!(ClientId::parse("https://192.0.2.1/m.json"), Err(C::IpHost));
    assert!(matches!(ClientId::parse("https://app.test/m.json"), Err(C::LocalHost { .. })));
    assert!(matches!(ClientId::parse("https://intranet/m.json"), Err(C::LocalHost { .. })));
    assert!(matches!(ClientId::parse("https://app.example.com/a/../m.json"), Err(C::NotCanonical { .. })));
    assert!(matches!(ClientId::parse("https://App.Example.com/m.json"), Err(C::NotCanonical { .. })));
    assert_eq!(ClientId::parse("http://app.example.com/m.json"), Err(C::SchemeNotAllowed));
    // Development policy: a metadata document served from loopback.
    let dev = ClientIdPolicy { allow_http_loopback: true };
    assert!(matches!(
        ClientId::parse_with("http://127.0.0.1:8080/client.json", dev),
        Ok(ClientId::Discoverable(_))
    ));
    assert!(matches!(
        ClientId::parse_with("http://localhost:8080/client.json", dev),
        Ok(ClientId::Discoverable(_))
    ));
}

// --------------------------------------------------------------------- client metadata (MD-*) ---

const WEB_ID: &str = "https://app.example.com/oauth/client-metadata.json";
const NATIVE_ID: &str = "https://app.example.com/native-client.json";

fn web_public() -> ClientMetadata {
    serde_json::from_value(serde_json::json!({
        "client_id": WEB_ID,
        "application_type": "web",
        "client_name": "Example",
        "client_uri": "https://app.example.com",
        "dpop_bound_access_tokens": true,
        "grant_types": ["authorization_code", "refresh_token"],
        "redirect_uris": ["https://app.example.com/oauth/callback"],
        "response_types": ["code"],
        "scope": "atproto transition:generic",
        "token_endpoint_auth_method": "none"
    }))
    .unwrap()
}

fn web_confidential() -> ClientMetadata {
    let key = PrivateKey::generate(Algorithm::Es256);
    let jwks = Jwks { keys: vec![key.public_key().to_jwk().with_kid("k1")] };
    ClientMetadata {
        token_endpoint_auth_method: Some("private_key_jwt".into()),
        token_endpoint_auth_signing_alg: Some("ES256".into()),
        jwks: Some(jwks),
        ..web_public()
    }
}

fn native() -> ClientMetadata {
    ClientMetadata {
        client_id: NATIVE_ID.into(),
        application_type: Some("native".into()),
        client_uri: None,
        redirect_uris: vec!["com.example.app:/callback".into(), "http://127.0.0.1/callback".into()],
        ..web_public()
    }
}

fn web_cid() -> ClientId {
    ClientId::parse(WEB_ID).unwrap()
}

fn native_cid() -> ClientId {
    ClientId::parse(NATIVE_ID).unwrap()
}

fn check(m: &ClientMetadata, cid: &ClientId) -> Result<(), E> {
    m.validate(cid)
}

#[test]
fn cl_md_pub_01_conf_nat_valid_documents() {
    check(&web_public(), &web_cid()).unwrap();
    check(&web_confidential(), &web_cid()).unwrap();
    check(&native(), &native_cid()).unwrap();
}

#[test]
fn cl_md_04_client_id_mismatch() {
    let m = ClientMetadata { client_id: "https://app.example.com/other.json".into(), ..web_public() };
    assert!(matches!(check(&m, &web_cid()), Err(E::ClientIdMismatch { .. })));
}

#[test]
fn cl_md_05_application_type() {
    let m = ClientMetadata { application_type: Some("desktop".into()), ..web_public() };
    assert_eq!(check(&m, &web_cid()), Err(E::UnknownApplicationType("desktop".into())));
}

#[test]
fn cl_md_06_grant_types() {
    let g = |v: &[&str]| ClientMetadata {
        grant_types: v.iter().map(|s| s.to_string()).collect(),
        ..web_public()
    };
    assert_eq!(check(&g(&["refresh_token"]), &web_cid()), Err(E::MissingAuthorizationCodeGrant));
    assert_eq!(
        check(&g(&["authorization_code", "implicit"]), &web_cid()),
        Err(E::UnsupportedGrantType("implicit".into()))
    );
    assert_eq!(
        check(&g(&["authorization_code", "authorization_code"]), &web_cid()),
        Err(E::DuplicateGrantType("authorization_code".into()))
    );
}

#[test]
fn cl_md_07_scope() {
    let s = |v: Option<&str>| ClientMetadata { scope: v.map(str::to_owned), ..web_public() };
    assert_eq!(check(&s(None), &web_cid()), Err(E::MissingScope));
    assert_eq!(check(&s(Some("transition:generic")), &web_cid()), Err(E::ScopeWithoutAtproto));
    assert!(matches!(check(&s(Some("atproto atproto")), &web_cid()), Err(E::InvalidScope(_))));
    assert!(matches!(check(&s(Some("atproto  x")), &web_cid()), Err(E::InvalidScope(_))));
}

#[test]
fn cl_md_08_response_types() {
    let m = ClientMetadata { response_types: vec!["token".into()], ..web_public() };
    assert_eq!(check(&m, &web_cid()), Err(E::UnsupportedResponseType("token".into())));
    let m = ClientMetadata { response_types: vec![], ..web_public() };
    assert_eq!(check(&m, &web_cid()), Err(E::MissingCodeResponseType));
}

#[test]
fn cl_md_09_no_redirect_uris() {
    let m = ClientMetadata { redirect_uris: vec![], ..web_public() };
    let err = check(&m, &web_cid()).unwrap_err();
    assert_eq!(err, E::NoRedirectUris);
    assert_eq!(err.oauth_error_code(), OAuthErrorCode::InvalidRedirectUri);
}

#[test]
fn cl_md_10_dpop_bound() {
    for v in [None, Some(false)] {
        let m = ClientMetadata { dpop_bound_access_tokens: v, ..web_public() };
        assert_eq!(check(&m, &web_cid()), Err(E::DpopNotBound));
    }
}

#[test]
fn cl_md_11_t15_auth_method_rules() {
    let m = ClientMetadata { token_endpoint_auth_method: None, ..web_public() };
    assert_eq!(check(&m, &web_cid()), Err(E::MissingTokenEndpointAuthMethod));
    let m = ClientMetadata { token_endpoint_auth_method: Some("tls_client_auth".into()), ..web_public() };
    assert!(matches!(check(&m, &web_cid()), Err(E::UnsupportedAuthMethod(_))));
    let m = ClientMetadata { token_endpoint_auth_signing_alg: Some("ES256".into()), ..web_public() };
    assert_eq!(check(&m, &web_cid()), Err(E::SigningAlgWithoutAuth));
    let m = ClientMetadata { jwks_uri: Some("https://app.example.com/jwks.json".into()), ..web_public() };
    assert_eq!(check(&m, &web_cid()), Err(E::KeysOnPublicClient));
}

#[test]
fn cl_md_12_no_symmetric_secrets() {
    for method in ["client_secret_basic", "client_secret_post", "client_secret_jwt"] {
        let m = ClientMetadata { token_endpoint_auth_method: Some(method.into()), ..web_public() };
        assert_eq!(check(&m, &web_cid()), Err(E::SymmetricAuthMethod(method.into())));
    }
    let mut m = web_public();
    m.extra.insert("client_secret".into(), "s3cret".into());
    assert_eq!(check(&m, &web_cid()), Err(E::ForbiddenMember("client_secret")));
}

#[test]
fn cl_md_13_display_uris() {
    let m = ClientMetadata { client_uri: Some("https://other.example.com".into()), ..web_public() };
    assert!(matches!(check(&m, &web_cid()), Err(E::ClientUriMismatch(_))));
    let m = ClientMetadata { client_uri: Some("https://app.example.com/elsewhere".into()), ..web_public() };
    assert!(matches!(check(&m, &web_cid()), Err(E::ClientUriMismatch(_))));
    let m = ClientMetadata { client_uri: Some("https://app.example.com/oauth".into()), ..web_public() };
    check(&m, &web_cid()).unwrap();
    let m = ClientMetadata { logo_uri: Some("http://app.example.com/logo.png".into()), ..web_public() };
    assert_eq!(check(&m, &web_cid()), Err(E::NonHttpsUri { field: "logo_uri" }));
}

#[test]
fn cl_md_14_oidc_only_fields() {
    let mut m = web_public();
    m.extra.insert("id_token_signed_response_alg".into(), "ES256".into());
    assert_eq!(check(&m, &web_cid()), Err(E::ForbiddenMember("id_token_signed_response_alg")));
    let mut m = web_public();
    m.extra.insert("subject_type".into(), "pairwise".into());
    assert_eq!(check(&m, &web_cid()), Err(E::UnsupportedSubjectType));
}

#[test]
fn cl_md_15_redirect_uri_rules() {
    let r = |uri: &str| ClientMetadata { redirect_uris: vec![uri.into()], ..web_public() };
    let cases: [(&str, fn(&E) -> bool); 7] = [
        ("not a url", |e| matches!(e, E::RedirectUriNotUrl(_))),
        ("https://u:p@app.example.com/cb", |e| matches!(e, E::RedirectUriCredentialsOrFragment(_))),
        ("https://app.example.com/cb#x", |e| matches!(e, E::RedirectUriCredentialsOrFragment(_))),
        ("http://localhost/cb", |e| matches!(e, E::RedirectUriLocalhost(_))),
        ("http://app.example.com/cb", |e| matches!(e, E::RedirectUriHttpNotAllowed(_))),
        ("https://localhost/cb", |e| matches!(e, E::RedirectUriLocalHost(_))),
        ("com.example.app:/cb", |e| matches!(e, E::RedirectUriBadCustomScheme(_))),
    ];
    for (uri, ok) in cases {
        let err = check(&r(uri), &web_cid()).unwrap_err();
        assert!(ok(&err), "{uri}: {err:?}");
        assert_eq!(err.oauth_error_code(), OAuthErrorCode::InvalidRedirectUri, "{uri}");
    }
}

#[test]
fn cl_md_nat_04_loopback_ip_only_for_native() {
    let m = ClientMetadata { redirect_uris: vec!["http://127.0.0.1/cb".into()], ..web_public() };
    assert!(matches!(check(&m, &web_cid()), Err(E::RedirectUriHttpNotAllowed(_))));
}

#[test]
fn cl_md_conf_rules() {
    let m = ClientMetadata { jwks: None, ..web_confidential() };
    assert_eq!(check(&m, &web_cid()), Err(E::MissingKeys));
    let m =
        ClientMetadata { jwks_uri: Some("https://app.example.com/jwks.json".into()), ..web_confidential() };
    assert_eq!(check(&m, &web_cid()), Err(E::BothJwksAndJwksUri));
    let m = ClientMetadata { jwks: Some(Jwks { keys: vec![] }), ..web_confidential() };
    assert_eq!(check(&m, &web_cid()), Err(E::EmptyJwks));
    let key = PrivateKey::generate(Algorithm::Es256);
    let m =
        ClientMetadata { jwks: Some(Jwks { keys: vec![key.public_key().to_jwk()] }), ..web_confidential() };
    assert_eq!(check(&m, &web_cid()), Err(E::KeyWithoutKid), "CL-MD-CONF-04");
    let m = ClientMetadata {
        jwks: Some(Jwks { keys: vec![key.to_private_jwk().with_kid("k")] }),
        ..web_confidential()
    };
    assert_eq!(check(&m, &web_cid()), Err(E::PrivateKeyInJwks));
    let m = ClientMetadata {
        jwks: None,
        jwks_uri: Some("http://app.example.com/jwks".into()),
        ..web_confidential()
    };
    assert_eq!(check(&m, &web_cid()), Err(E::InvalidJwksUri));
    let m = ClientMetadata { token_endpoint_auth_signing_alg: None, ..web_confidential() };
    assert_eq!(check(&m, &web_cid()), Err(E::MissingSigningAlg));
    let m = ClientMetadata { token_endpoint_auth_signing_alg: Some("none".into()), ..web_confidential() };
    assert_eq!(check(&m, &web_cid()), Err(E::UnsupportedSigningAlg("none".into())));
    // CL-MD-CONF-06: no explicit :443.
    let m =
        ClientMetadata { redirect_uris: vec!["https://app.example.com:443/cb".into()], ..web_confidential() };
    assert!(matches!(check(&m, &web_cid()), Err(E::RedirectUriDefaultPort(_))));
    let m = ClientMetadata {
        redirect_uris: vec!["https://app.example.com:8443/cb".into()],
        ..web_confidential()
    };
    check(&m, &web_cid()).unwrap();
}

#[test]
fn cl_md_nat_01_02_03_t19() {
    let m =
        ClientMetadata { token_endpoint_auth_method: Some("private_key_jwt".into()), ..web_confidential() };
    let m = ClientMetadata {
        application_type: Some("native".into()),
        client_id: NATIVE_ID.into(),
        client_uri: None,
        ..m
    };
    assert_eq!(check(&m, &native_cid()), Err(E::NativeMustBePublic));
    let r = |uri: &str| ClientMetadata { redirect_uris: vec![uri.into()], ..native() };
    // T-19: partial reversal, double slash, and a scheme without a dot.
    for bad in ["com.example:/cb", "com.example.app://cb", "app.example.com:/cb"] {
        assert!(matches!(check(&r(bad), &native_cid()), Err(E::RedirectUriBadCustomScheme(_))), "{bad}");
    }
    assert!(check(&r("com.example.app:/cb"), &native_cid()).is_ok());
    // CL-MD-NAT-03 (spec): native https redirects share the client_id origin.
    assert!(check(&r("https://app.example.com/cb"), &native_cid()).is_ok());
    assert!(matches!(
        check(&r("https://other.example.com/cb"), &native_cid()),
        Err(E::RedirectUriOriginMismatch(_))
    ));
}

// ------------------------------------------------------------------------- discovery (DISC-*) ---

fn issuer() -> Issuer {
    Issuer::parse("https://auth.example.com").unwrap()
}

#[test]
fn cl_disc_04_issuer_exact() {
    let m = AuthorizationServerMetadata::atproto_default(&issuer());
    m.validate_atproto("https://auth.example.com").unwrap();
    assert!(matches!(
        m.validate_atproto("https://auth.example.com/"),
        Err(AsMetadataError::IssuerMismatch { .. })
    ));
    let mut m2 = m;
    m2.issuer = "https://auth.example.com/".into();
    assert!(matches!(
        m2.validate_atproto("https://auth.example.com/"),
        Err(AsMetadataError::InvalidIssuer(_))
    ));
}

#[test]
fn cl_disc_05_required_fields() {
    let base = AuthorizationServerMetadata::atproto_default(&issuer());
    let iss = "https://auth.example.com";
    let mut m = base.clone();
    m.scopes_supported = Some(vec!["openid".into()]);
    assert_eq!(
        m.validate_atproto(iss),
        Err(AsMetadataError::MissingValue { field: "scopes_supported", value: "atproto" })
    );
    let mut m = base.clone();
    m.code_challenge_methods_supported = Some(vec!["plain".into()]);
    assert!(matches!(m.validate_atproto(iss), Err(AsMetadataError::MissingValue { value: "S256", .. })));
    let mut m = base.clone();
    m.require_pushed_authorization_requests = None;
    assert_eq!(m.validate_atproto(iss), Err(AsMetadataError::ParNotRequired));
    let mut m = base.clone();
    m.pushed_authorization_request_endpoint = None;
    assert_eq!(m.validate_atproto(iss), Err(AsMetadataError::MissingParEndpoint));
    let mut m = base.clone();
    m.dpop_signing_alg_values_supported = Some(vec!["ES256K".into()]);
    assert!(matches!(m.validate_atproto(iss), Err(AsMetadataError::MissingValue { value: "ES256", .. })));
    let mut m = base.clone();
    m.token_endpoint_auth_methods_supported = Some(vec!["none".into()]);
    assert!(matches!(
        m.validate_atproto(iss),
        Err(AsMetadataError::MissingValue { value: "private_key_jwt", .. })
    ));
    let mut m = base.clone();
    m.token_endpoint_auth_signing_alg_values_supported = Some(vec!["ES256".into(), "none".into()]);
    assert_eq!(m.validate_atproto(iss), Err(AsMetadataError::SigningAlgNone));
    let mut m = base.clone();
    m.authorization_response_iss_parameter_supported = Some(false);
    assert_eq!(m.validate_atproto(iss), Err(AsMetadataError::IssParameterNotSupported));
    let mut m = base.clone();
    m.client_id_metadata_document_supported = None;
    assert_eq!(m.validate_atproto(iss), Err(AsMetadataError::ClientIdMetadataDocumentNotSupported));
    let mut m = base.clone();
    m.require_request_uri_registration = Some(false);
    assert_eq!(m.validate_atproto(iss), Err(AsMetadataError::RequestUriRegistrationFalse));
    let mut m = base.clone();
    m.authorization_endpoint = "javascript:alert(1)".into();
    assert!(matches!(
        m.validate_atproto(iss),
        Err(AsMetadataError::InvalidEndpoint { field: "authorization_endpoint", .. })
    ));
    let mut m = base;
    m.protected_resources = Some(vec!["https://pds.example.com".into()]);
    m.check_protected_resource("https://pds.example.com").unwrap();
    assert!(matches!(
        m.check_protected_resource("https://other.example.com"),
        Err(AsMetadataError::ResourceNotListed { .. })
    ));
}

#[test]
fn cl_disc_02_protected_resource() {
    let p = IssuerPolicy::production();
    let ok = ProtectedResourceMetadata::new("https://pds.example.com", &issuer());
    assert_eq!(ok.validate("https://pds.example.com", p).unwrap(), issuer());
    assert!(matches!(
        ok.validate("https://pds.example.com/", p),
        Err(ResourceMetadataError::ResourceMismatch { .. })
    ));
    let none = ProtectedResourceMetadata { authorization_servers: Some(vec![]), ..ok.clone() };
    assert_eq!(
        none.validate("https://pds.example.com", p),
        Err(ResourceMetadataError::NoAuthorizationServer)
    );
    let two = ProtectedResourceMetadata {
        authorization_servers: Some(vec!["https://a.example.com".into(), "https://b.example.com".into()]),
        ..ok.clone()
    };
    assert_eq!(
        two.validate("https://pds.example.com", p),
        Err(ResourceMetadataError::MultipleAuthorizationServers { count: 2 })
    );
    let slash = ProtectedResourceMetadata {
        authorization_servers: Some(vec!["https://a.example.com/".into()]),
        ..ok
    };
    assert!(matches!(
        slash.validate("https://pds.example.com", p),
        Err(ResourceMetadataError::InvalidIssuer(_))
    ));
}

#[test]
fn reference_pds_metadata_parses_and_validates() {
    // Shape of @atproto/oauth-provider 0.22 metadata in the interop harness (http dev issuer).
    let json = r#"{"issuer":"http://localhost:2583","scopes_supported":["atproto","transition:email","transition:generic","transition:chat.bsky"],
      "subject_types_supported":["public"],"response_types_supported":["code"],"response_modes_supported":["query","fragment","form_post"],
      "grant_types_supported":["authorization_code","refresh_token"],"code_challenge_methods_supported":["S256"],
      "ui_locales_supported":["en-US"],"display_values_supported":["page","popup","touch"],"request_parameter_supported":true,
      "request_uri_parameter_supported":true,"require_request_uri_registration":true,"jwks_uri":"http://localhost:2583/oauth/jwks",
      "authorization_endpoint":"http://localhost:2583/oauth/authorize","token_endpoint":"http://localhost:2583/oauth/token",
      "token_endpoint_auth_methods_supported":["none","private_key_jwt"],"token_endpoint_auth_signing_alg_values_supported":["RS256","ES256","ES256K"],
      "revocation_endpoint":"http://localhost:2583/oauth/revoke","pushed_authorization_request_endpoint":"http://localhost:2583/oauth/par",
      "require_pushed_authorization_requests":true,"dpop_signing_alg_values_supported":["RS256","ES256","ES256K"],
      "client_id_metadata_document_supported":true,"authorization_response_iss_parameter_supported":true,"protected_resources":["http://localhost:2583"]}"#;
    let m: AuthorizationServerMetadata = serde_json::from_str(json).unwrap();
    m.validate_atproto("http://localhost:2583").unwrap();
    m.check_protected_resource("http://localhost:2583").unwrap();
    assert!(m.extra.contains_key("ui_locales_supported"));
}

// ------------------------------------------------------------------------- wire (TOK, CB) ---

fn token(json: serde_json::Value) -> TokenResponse {
    serde_json::from_value(json).unwrap()
}

#[test]
fn cl_tok_02_token_response_checks() {
    let ok = serde_json::json!({"access_token":"a","token_type":"DPoP","scope":"atproto","sub":"did:plc:abc123","expires_in":60});
    let info = token(ok.clone()).validate_atproto().unwrap();
    assert_eq!(info.sub.as_str(), "did:plc:abc123");
    let with = |k: &str, v: serde_json::Value| {
        let mut j = ok.clone();
        j[k] = v;
        token(j).validate_atproto()
    };
    assert_eq!(with("token_type", "Bearer".into()), Err(TokenResponseError::NotDpop("Bearer".into())));
    assert!(with("token_type", "dpop".into()).is_ok());
    assert_eq!(with("scope", serde_json::Value::Null), Err(TokenResponseError::MissingScope));
    assert_eq!(with("scope", "transition:generic".into()), Err(TokenResponseError::ScopeWithoutAtproto));
    assert_eq!(with("sub", serde_json::Value::Null), Err(TokenResponseError::MissingSub));
    assert!(matches!(with("sub", "did:key:zabc".into()), Err(TokenResponseError::InvalidSub(_))));
    assert!(matches!(with("sub", "alice.test".into()), Err(TokenResponseError::InvalidSub(_))));
}

#[test]
fn cl_cb_01_03_callback_params() {
    let p = CallbackParams::from_query("code=c1&state=s1&iss=https%3A%2F%2Fauth.example.com").unwrap();
    assert_eq!(p.state, "s1");
    assert_eq!(p.iss.as_deref(), Some("https://auth.example.com"));
    assert!(matches!(p.outcome, CallbackOutcome::Code(ref c) if c.expose_secret() == "c1"));
    let e = CallbackParams::from_query("error=access_denied&error_description=no&state=s1&iss=x").unwrap();
    assert!(matches!(e.outcome, CallbackOutcome::Error(ref r) if r.error == OAuthErrorCode::AccessDenied));
    assert_eq!(CallbackParams::from_query("code=c"), Err(CallbackParamsError::MissingState));
    assert_eq!(CallbackParams::from_query("state=s"), Err(CallbackParamsError::MissingCode));
    assert_eq!(
        CallbackParams::from_query("state=s&state=t&code=c"),
        Err(CallbackParamsError::Repeated("state".into()))
    );
    assert_eq!(CallbackParams::from_query("state=s&response=eyJ"), Err(CallbackParamsError::JarmResponse));
    assert!(!format!("{p:?}").contains("c1"), "codes are redacted in Debug");
}

#[test]
fn par_request_form_pairs_skip_absent() {
    let r = PushedAuthorizationRequest {
        client_id: "http://localhost".into(),
        response_type: "code".into(),
        state: Some("s".into()),
        ..Default::default()
    };
    assert_eq!(
        r.to_form_pairs(),
        vec![("client_id", "http://localhost"), ("response_type", "code"), ("state", "s")]
    );
}
