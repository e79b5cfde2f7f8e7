//! Runnable examples of atauth, one per kind of user. The library is empty; run an example with
//! `cargo run -p atauth-examples --example NAME -- ARGS` (each file's header says how to run it
//! offline, and the README has the walk-through):
//!
//! | example | for | what |
//! |---|---|---|
//! | `login-and-post` | CLI and desktop apps | log in from a terminal (loopback redirect), post with atrium-api's typed client over the session, read the post back |
//! | `axum-web-app` | web backends | "Log in with atproto": a confidential client (`private_key_jwt`) serving its client metadata and JWKS, sessions in SQLite, logout that revokes |
//! | `pds-auth` | PDS and server authors | the authorization server and the resource-server extractor inside your own axum app, over your own account store |
//! | `service-auth` | services (feed generators, labelers, app views) | verify inter-service JWTs, and call another service with a JWT of your own |
