//! Approving an authorization request without a person: given the authorize URL a client produced,
//! sign in and consent, and return the URL the authorization server redirects the browser to (the
//! client's `redirect_uri` with `code`, `state` and `iss`). Delivering that redirect (a GET to the
//! client's loopback listener) is the caller's choice.
//!
//! - [`reference_provider`]: what `@atproto/oauth-provider-ui` does in a browser, over plain HTTP
//!   (the `api` driver of `interop/lib.mjs`): the authorize page (cookies + CSRF token), `~api/sign-in`,
//!   `~api/consent`, then the provider's redirect endpoint, which answers 303.
//! - [`atauth_interim`]: atauth-server's interim consent API, `POST /oauth/authorize/sign-in-and-approve`
//!   (see `atauth_server::web`), which answers 303 in one step.
//! - [`atauth_json_api`]: atauth-server's JSON consent API for custom front ends
//!   (docs/CONSENT-API.md), called as a same-origin single-page app would: describe the request
//!   (device cookie + CSRF token), sign in, approve or deny, then the `redirect` it answers.

use url::Url;

const UA: &str = "Mozilla/5.0 (X11; Linux x86_64) atauth-testkit";

fn http() -> Result<reqwest::Client, String> {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .map_err(|e| format!("http client: {e}"))
}

#[derive(Default)]
struct Jar(Vec<(String, String)>);

impl Jar {
    fn absorb(&mut self, res: &reqwest::Response) {
        for sc in res.headers().get_all("set-cookie").iter().filter_map(|v| v.to_str().ok()) {
            let pair = sc.split(';').next().unwrap_or_default();
            let Some((name, value)) = pair.split_once('=') else { continue };
            let (name, value) = (name.trim().to_owned(), value.trim().to_owned());
            self.0.retain(|(n, _)| *n != name);
            let lower = sc.to_ascii_lowercase();
            if !value.is_empty()
                && !lower.contains("max-age=0")
                && !lower.contains("expires=thu, 01 jan 1970")
            {
                self.0.push((name, value));
            }
        }
    }

    fn get(&self, name: &str) -> Option<&str> {
        self.0.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_str())
    }

    fn header(&self) -> String {
        self.0.iter().map(|(n, v)| format!("{n}={v}")).collect::<Vec<_>>().join("; ")
    }
}

fn location(res: &reqwest::Response, what: &str) -> Result<Url, String> {
    if res.status() != 303 {
        return Err(format!("{what}: expected 303, got {}", res.status()));
    }
    let loc = res
        .headers()
        .get("location")
        .and_then(|v| v.to_str().ok())
        .ok_or_else(|| format!("{what}: 303 without Location"))?;
    Url::parse(loc).map_err(|e| format!("{what}: Location {loc:?}: {e}"))
}

struct Api<'a> {
    http: &'a reqwest::Client,
    origin: String,
    referer: &'a str,
    csrf: String,
}

impl Api<'_> {
    async fn post(
        &self,
        jar: &mut Jar,
        endpoint: &str,
        body: &serde_json::Value,
        bearer: Option<&str>,
    ) -> Result<serde_json::Value, String> {
        let mut req = self
            .http
            .post(format!("{}/@atproto/oauth-provider/~api{endpoint}", self.origin))
            .header("content-type", "application/json")
            .header("accept", "application/json")
            .header("user-agent", UA)
            .header("origin", &self.origin)
            .header("referer", self.referer)
            .header("sec-fetch-mode", "same-origin")
            .header("sec-fetch-site", "same-origin")
            .header("sec-fetch-dest", "empty")
            .header("x-csrf-token", &self.csrf)
            .header("cookie", jar.header())
            .body(body.to_string());
        if let Some(t) = bearer {
            req = req.header("authorization", format!("Bearer {t}"));
        }
        let res = req.send().await.map_err(|e| format!("{endpoint}: {e}"))?;
        jar.absorb(&res);
        let status = res.status();
        let text = res.text().await.map_err(|e| format!("{endpoint}: {e}"))?;
        if status != 200 {
            return Err(format!("{endpoint}: HTTP {status}: {text}"));
        }
        serde_json::from_str(&text).map_err(|e| format!("{endpoint}: {e}: {text}"))
    }
}

/// Signs in as `username` and consents through the reference OAuth provider's UI API; returns the
/// redirect target.
///
/// # Errors
///
/// A description of the step that failed (status and body), e.g. a wrong password.
pub async fn reference_provider(authorize_url: &Url, username: &str, password: &str) -> Result<Url, String> {
    let http = http()?;
    let mut jar = Jar::default();
    let page = http
        .get(authorize_url.as_str())
        .header("accept", "text/html")
        .header("user-agent", UA)
        .header("sec-fetch-mode", "navigate")
        .header("sec-fetch-dest", "document")
        .header("sec-fetch-site", "cross-site")
        .send()
        .await
        .map_err(|e| format!("authorize page: {e}"))?;
    jar.absorb(&page);
    if page.status() != 200 {
        return Err(format!("authorize page: HTTP {}", page.status()));
    }
    let csrf = jar.get("csrf-token").ok_or("authorize page set no csrf-token cookie")?.to_owned();
    let api = Api {
        http: &http,
        origin: authorize_url.origin().ascii_serialization(),
        referer: authorize_url.as_str(),
        csrf,
    };
    let body =
        serde_json::json!({"locale": "en", "username": username, "password": password, "remember": false});
    let sign_in = api.post(&mut jar, "/sign-in", &body, None).await?;
    let did = sign_in["account"]["did"]
        .as_str()
        .or(sign_in["account"]["sub"].as_str())
        .ok_or_else(|| format!("/sign-in: no account DID in {sign_in}"))?
        .to_owned();
    let ephemeral = sign_in["ephemeralToken"].as_str().map(str::to_owned);
    let consent =
        api.post(&mut jar, "/consent", &serde_json::json!({"did": did}), ephemeral.as_deref()).await?;
    let next = consent["url"].as_str().ok_or_else(|| format!("/consent: no url in {consent}"))?;
    let redirect = http
        .get(next)
        .header("accept", "text/html")
        .header("user-agent", UA)
        .header("referer", authorize_url.as_str())
        .header("sec-fetch-mode", "navigate")
        .header("sec-fetch-dest", "document")
        .header("sec-fetch-site", "same-origin")
        .header("cookie", jar.header())
        .send()
        .await
        .map_err(|e| format!("authorize/redirect: {e}"))?;
    location(&redirect, "authorize/redirect")
}

/// Signs in and approves (or, with `approve = false`, denies) through atauth-server's interim consent
/// API; returns the redirect target.
///
/// # Errors
///
/// A description of what failed (status and body), e.g. a wrong password (401 XRPC error).
pub async fn atauth_interim(
    authorize_url: &Url,
    identifier: &str,
    password: &str,
    approve: bool,
) -> Result<Url, String> {
    let q: std::collections::HashMap<String, String> = authorize_url.query_pairs().into_owned().collect();
    let (Some(client_id), Some(request_uri)) = (q.get("client_id"), q.get("request_uri")) else {
        return Err(format!("authorize URL without client_id/request_uri: {authorize_url}"));
    };
    let mut endpoint = authorize_url.clone();
    endpoint.set_query(None);
    endpoint.set_path("/oauth/authorize/sign-in-and-approve");
    let mut form = vec![
        ("client_id", client_id.as_str()),
        ("request_uri", request_uri.as_str()),
        ("identifier", identifier),
        ("password", password),
    ];
    if !approve {
        form.push(("decision", "deny"));
    }
    let body = url::form_urlencoded::Serializer::new(String::new()).extend_pairs(form).finish();
    let res = http()?
        .post(endpoint.as_str())
        .header("content-type", "application/x-www-form-urlencoded")
        .body(body)
        .send()
        .await
        .map_err(|e| format!("sign-in-and-approve: {e}"))?;
    if res.status() != 303 {
        let status = res.status();
        let text = res.text().await.unwrap_or_default();
        return Err(format!("sign-in-and-approve: HTTP {status}: {text}"));
    }
    location(&res, "sign-in-and-approve")
}

/// Signs in as `identifier` and approves (granting `scopes`, or everything requested when `None`)
/// or, with `approve = false`, denies through atauth-server's JSON consent API, as a single-page
/// front end on the server's origin does: `GET …/api/request` (the device cookie and the CSRF
/// token), `POST …/api/sign-in`, `POST …/api/approve` or `…/api/deny`, each `POST` with
/// `Content-Type: application/json`, the `X-CSRF-Token` header and the browser's same-origin
/// `Origin` / `Sec-Fetch-Site`. Returns the `redirect` the API answered (the client's
/// `redirect_uri` with `code` or `error`, `state` and `iss`).
///
/// # Errors
///
/// A description of the call that failed (status and body), e.g. a wrong password (401
/// `invalid_credentials`).
pub async fn atauth_json_api(
    authorize_url: &Url,
    identifier: &str,
    password: &str,
    scopes: Option<&[&str]>,
    approve: bool,
) -> Result<Url, String> {
    let q: std::collections::HashMap<String, String> = authorize_url.query_pairs().into_owned().collect();
    let (Some(client_id), Some(request_uri)) = (q.get("client_id"), q.get("request_uri")) else {
        return Err(format!("authorize URL without client_id/request_uri: {authorize_url}"));
    };
    let origin = authorize_url.origin().ascii_serialization();
    let http = http()?;
    let mut jar = Jar::default();
    let mut describe = authorize_url.clone();
    describe.set_path("/oauth/authorize/api/request");
    let res = http
        .get(describe.as_str())
        .header("accept", "application/json")
        .header("user-agent", UA)
        .header("sec-fetch-site", "same-origin")
        .header("sec-fetch-mode", "cors")
        .send()
        .await
        .map_err(|e| format!("api/request: {e}"))?;
    jar.absorb(&res);
    let status = res.status();
    let text = res.text().await.map_err(|e| format!("api/request: {e}"))?;
    if status != 200 {
        return Err(format!("api/request: HTTP {status}: {text}"));
    }
    let request: serde_json::Value =
        serde_json::from_str(&text).map_err(|e| format!("api/request: {e}: {text}"))?;
    let csrf =
        request["csrf_token"].as_str().ok_or_else(|| format!("api/request: no csrf_token in {text}"))?;
    let post = |jar: &Jar, path: &str, body: serde_json::Value| {
        http.post(format!("{origin}/oauth/authorize/api/{path}"))
            .header("content-type", "application/json")
            .header("accept", "application/json")
            .header("user-agent", UA)
            .header("origin", &origin)
            .header("sec-fetch-site", "same-origin")
            .header("sec-fetch-mode", "cors")
            .header("x-csrf-token", csrf)
            .header("cookie", jar.header())
            .body(body.to_string())
    };
    let call = |name: &'static str, req: reqwest::RequestBuilder| async move {
        let res = req.send().await.map_err(|e| format!("api/{name}: {e}"))?;
        let status = res.status();
        let text = res.text().await.map_err(|e| format!("api/{name}: {e}"))?;
        if status != 200 {
            return Err(format!("api/{name}: HTTP {status}: {text}"));
        }
        serde_json::from_str::<serde_json::Value>(&text).map_err(|e| format!("api/{name}: {e}: {text}"))
    };
    let ids = serde_json::json!({ "client_id": client_id, "request_uri": request_uri });
    let answer = if approve {
        let mut body = ids.clone();
        body["identifier"] = identifier.into();
        body["password"] = password.into();
        let signed_in = call("sign-in", post(&jar, "sign-in", body)).await?;
        if signed_in["redirect"].is_string() {
            signed_in // remembered consent: approved without a screen
        } else {
            let account = signed_in["account"]
                .as_str()
                .ok_or_else(|| format!("api/sign-in: no consent account in {signed_in}"))?;
            let mut body = ids.clone();
            body["account"] = account.into();
            if let Some(s) = scopes {
                body["scopes"] = s.into();
            }
            call("approve", post(&jar, "approve", body)).await?
        }
    } else {
        call("deny", post(&jar, "deny", ids)).await?
    };
    let redirect = answer["redirect"].as_str().ok_or_else(|| format!("no redirect in {answer}"))?;
    Url::parse(redirect).map_err(|e| format!("redirect {redirect:?}: {e}"))
}

/// Delivers a redirect to a client's loopback listener (a plain GET, as the browser would) and
/// returns the status and body of its answer.
///
/// # Errors
///
/// Transport failures.
pub async fn deliver(redirect: &Url) -> Result<(u16, String), String> {
    let res = http()?
        .get(redirect.as_str())
        .header("accept", "text/html")
        .send()
        .await
        .map_err(|e| format!("callback: {e}"))?;
    let status = res.status().as_u16();
    Ok((status, res.text().await.unwrap_or_default()))
}
