//! Injected time, so expiry, nonce rotation and `iat` windows are tested without sleeping.

use std::sync::Mutex;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// A source of the current time.
pub trait Clock: Send + Sync + 'static {
    /// The current time.
    fn now(&self) -> SystemTime;

    /// The current time in whole seconds since the Unix epoch (JWT `NumericDate`).
    fn unix_now(&self) -> i64 {
        unix_seconds(self.now())
    }
}

/// Seconds since the Unix epoch; negative before 1970.
pub fn unix_seconds(t: SystemTime) -> i64 {
    match t.duration_since(UNIX_EPOCH) {
        Ok(d) => i64::try_from(d.as_secs()).unwrap_or(i64::MAX),
        Err(e) => -i64::try_from(e.duration().as_secs()).unwrap_or(i64::MAX),
    }
}

/// A UTC calendar date and time of day, from Unix seconds (proleptic Gregorian; H. Hinnant's
/// civil-from-days algorithm), for timestamps written as text (`createdAt`, CLI output).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UtcDateTime {
    /// Year (astronomical numbering).
    pub year: i64,
    /// Month, 1–12.
    pub month: i64,
    /// Day of the month, 1–31.
    pub day: i64,
    /// Hour, 0–23.
    pub hour: i64,
    /// Minute, 0–59.
    pub minute: i64,
    /// Second, 0–59.
    pub second: i64,
}

impl UtcDateTime {
    /// The UTC date and time of `unix` seconds since 1970-01-01T00:00:00Z.
    pub fn from_unix(unix: i64) -> Self {
        let days = unix.div_euclid(86_400);
        let secs = unix.rem_euclid(86_400);
        let z = days + 719_468;
        let era = z.div_euclid(146_097);
        let doe = z.rem_euclid(146_097);
        let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
        let mp = (5 * doy + 2) / 153;
        let day = doy - (153 * mp + 2) / 5 + 1;
        let month = if mp < 10 { mp + 3 } else { mp - 9 };
        let year = yoe + era * 400 + i64::from(month <= 2);
        Self { year, month, day, hour: secs / 3600, minute: secs % 3600 / 60, second: secs % 60 }
    }
}

/// The system's wall clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> SystemTime {
        SystemTime::now()
    }
}

/// A clock that stands still until advanced: for tests.
#[derive(Debug)]
pub struct ManualClock(Mutex<SystemTime>);

impl ManualClock {
    /// A clock showing `unix_secs` seconds after the epoch.
    pub fn at_unix(unix_secs: u64) -> Self {
        Self(Mutex::new(UNIX_EPOCH + Duration::from_secs(unix_secs)))
    }

    /// Moves the clock forward.
    pub fn advance(&self, by: Duration) {
        let mut t = self.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        *t += by;
    }

    /// Sets the clock.
    pub fn set(&self, to: SystemTime) {
        *self.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner) = to;
    }
}

impl Clock for ManualClock {
    fn now(&self) -> SystemTime {
        *self.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn utc_date_time_of_known_instants() {
        let t =
            |y, mo, d, h, mi, s| UtcDateTime { year: y, month: mo, day: d, hour: h, minute: mi, second: s };
        assert_eq!(UtcDateTime::from_unix(0), t(1970, 1, 1, 0, 0, 0));
        assert_eq!(UtcDateTime::from_unix(951_782_400), t(2000, 2, 29, 0, 0, 0));
        assert_eq!(UtcDateTime::from_unix(1_767_225_599), t(2025, 12, 31, 23, 59, 59));
        assert_eq!(UtcDateTime::from_unix(-1), t(1969, 12, 31, 23, 59, 59));
    }

    #[test]
    fn manual_clock_advances() {
        let c = ManualClock::at_unix(1_000);
        assert_eq!(c.unix_now(), 1_000);
        c.advance(Duration::from_secs(301));
        assert_eq!(c.unix_now(), 1_301);
    }

    #[test]
    fn unix_seconds_before_epoch_is_negative() {
        assert_eq!(unix_seconds(UNIX_EPOCH - Duration::from_secs(5)), -5);
    }
}
