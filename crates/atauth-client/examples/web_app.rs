//! Placeholder, replaced by the example web app.
fn main() {}
