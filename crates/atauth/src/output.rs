//! The only place that writes to the terminal directly. Results (what a script would capture) go to
//! stdout; instructions, progress and errors go to stderr. Logs go through `tracing` (stderr).

use std::io::Write as _;

/// A result line on stdout.
pub(crate) fn say(line: &str) {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{line}");
    let _ = out.flush();
}

/// An instruction or notice on stderr.
pub(crate) fn note(line: &str) {
    let mut err = std::io::stderr().lock();
    let _ = writeln!(err, "{line}");
    let _ = err.flush();
}

/// An error line on stderr, prefixed `atauth: `.
pub(crate) fn error(line: &str) {
    note(&format!("atauth: {line}"));
}

/// Unix seconds as `YYYY-MM-DD HH:MM:SSZ` (UTC).
pub(crate) fn utc(unix: i64) -> String {
    let t = atauth_crypto::clock::UtcDateTime::from_unix(unix);
    format!("{:04}-{:02}-{:02} {:02}:{:02}:{:02}Z", t.year, t.month, t.day, t.hour, t.minute, t.second)
}

#[cfg(test)]
mod tests {
    #[test]
    fn utc_formats_known_instants() {
        assert_eq!(super::utc(0), "1970-01-01 00:00:00Z");
        assert_eq!(super::utc(951_782_400), "2000-02-29 00:00:00Z");
        assert_eq!(super::utc(1_767_225_599), "2025-12-31 23:59:59Z");
    }
}
