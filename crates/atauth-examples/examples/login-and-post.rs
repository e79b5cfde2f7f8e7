//! Log in from a terminal, post, and read the post back.
//!
//! The CLI / desktop flow: a loopback OAuth client (no client-metadata document to host), a
//! listener on `127.0.0.1:<random port>` for the redirect, the authorization URL printed for the
//! user to open. Then atrium-api's typed client over the session (`atauth-atrium`): every call is
//! DPoP-bound, nonce retries and token refresh are the session's, and requests go to the PDS the
//! account's DID document names.
//!
//! ```sh
//! cargo run -p atauth-examples --example login-and-post -- HANDLE [TEXT]
//! ```
//!
//! Offline, against the `pds-auth` example (which serves `createRecord`/`getRecord`):
//!
//! ```sh
//! interop/node22 interop/ref-pds.mjs --plc-only            # prints {"plcUrl": …}
//! cargo run -p atauth-examples --example pds-auth -- --plc-url PLC   # prints alice's password
//! ATAUTH_DEV_PLC_URL=PLC ATAUTH_DEV_HANDLE_RESOLVER=http://localhost:2590 \
//!   cargo run -p atauth-examples --example login-and-post -- alice.test "hello"
//! scripts/demo.sh approve --password PASSWORD 'AUTHORIZE-URL'     # or open the URL in a browser
//! ```
//!
//! Against the reference PDS (`interop/node22 interop/ref-pds.mjs` prints `pdsUrl`, `plcUrl` and
//! alice's password), use its PLC and `pdsUrl` in the two variables and sign in in a browser.
//! Without the variables the example uses the real network (DNS, `plc.directory`, https).

use std::time::Duration;

use atauth_atrium::AtriumSession;
use atauth_client::loopback::LoopbackListener;
use atauth_client::{AuthorizeOptions, ClientConfig, DevOptions, OAuthClient};
use atrium_api::agent::Agent;
use atrium_api::app::bsky::feed::post;
use atrium_api::com::atproto::repo::{create_record, get_record};
use atrium_api::types::string::{AtIdentifier, Datetime, Nsid, RecordKey};
use atrium_api::types::{TryFromUnknown, TryIntoUnknown};

type Error = Box<dyn std::error::Error + Send + Sync>;

/// Development switches from the environment (both also allow plain http to loopback).
fn dev_options() -> Result<DevOptions, Error> {
    let plc = std::env::var("ATAUTH_DEV_PLC_URL").ok().map(|u| u.parse()).transpose()?;
    let resolver = std::env::var("ATAUTH_DEV_HANDLE_RESOLVER").ok().map(|u| u.parse()).transpose()?;
    let dev = plc.is_some() || resolver.is_some();
    Ok(DevOptions { allow_http_loopback: dev, plc_url: plc, handle_resolver_url: resolver })
}

#[allow(clippy::print_stdout)]
#[tokio::main]
async fn main() -> Result<(), Error> {
    let mut args = std::env::args().skip(1);
    let handle = args.next().ok_or("usage: login-and-post HANDLE [TEXT]")?;
    let text = args.next().unwrap_or_else(|| "Hello from atauth + atrium".to_owned());

    // 1. Log in: a loopback client whose redirect URI is our listener (CL-MD-LOOP).
    let listener = LoopbackListener::bind("/callback").await?;
    let config = ClientConfig::loopback(&[&listener.redirect_uri()], "atproto transition:generic")?
        .with_dev(dev_options()?);
    let client = OAuthClient::builder(config).build()?;
    let url = client.authorize(&handle, AuthorizeOptions::default()).await?;
    println!("Open this URL in a browser and approve:\n\n  {url}\n");
    let query = listener.wait(Duration::from_secs(300)).await?;
    let session = client.callback_query(&query).await?.session;
    println!("logged in as {}", session.did());

    // 2. Post through atrium-api's typed client.
    let agent = Agent::new(AtriumSession::new(session.clone()).await);
    let record = post::RecordData {
        created_at: Datetime::now(),
        embed: None,
        entities: None,
        facets: None, // atauth_client::Agent::post detects link and mention facets for you
        labels: None,
        langs: None,
        reply: None,
        tags: None,
        text,
    };
    let created = agent
        .api
        .com
        .atproto
        .repo
        .create_record(
            create_record::InputData {
                collection: Nsid::new("app.bsky.feed.post".into())?,
                record: record.try_into_unknown()?,
                repo: AtIdentifier::Did(agent.did().await.ok_or("no DID")?),
                rkey: None,
                swap_commit: None,
                validate: None,
            }
            .into(),
        )
        .await?;
    println!("posted {} (cid {})", created.uri, created.cid.as_ref());

    // 3. Read it back (a GET with a query string: the DPoP proof signs the URL without it).
    let rkey = created.uri.rsplit('/').next().ok_or("no rkey in the URI")?;
    let got = agent
        .api
        .com
        .atproto
        .repo
        .get_record(
            get_record::ParametersData {
                cid: None,
                collection: Nsid::new("app.bsky.feed.post".into())?,
                repo: AtIdentifier::Did(agent.did().await.ok_or("no DID")?),
                rkey: RecordKey::new(rkey.to_owned())?,
            }
            .into(),
        )
        .await?;
    let read = post::Record::try_from_unknown(got.data.value)?;
    println!("read back: {:?}", read.text);

    // 4. Sign out: revoke the tokens at the authorization server.
    session.sign_out().await?;
    println!("signed out");
    Ok(())
}
