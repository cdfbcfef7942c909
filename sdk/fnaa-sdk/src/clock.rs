//! The host's wall clock. Read time here rather than through `std`, so that
//! the host can run plugins against a fixed clock in tests.
//!
//! Off wasm32 (unit tests) it reads the system clock.

use std::time::Duration;

/// A point in time: seconds and nanoseconds since the Unix epoch (UTC).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Timestamp {
    /// Whole seconds since 1970-01-01T00:00:00Z.
    pub seconds: u64,
    /// Nanoseconds within the second (below 1,000,000,000).
    pub nanoseconds: u32,
}

/// The current wall-clock time according to the host.
pub fn now() -> Timestamp {
    imp::now()
}

impl Timestamp {
    /// The time since the Unix epoch as a [`Duration`].
    pub fn since_epoch(&self) -> Duration {
        Duration::new(self.seconds, self.nanoseconds)
    }

    /// RFC 3339 text in UTC, as CloudEvents' `time` wants it, with as many
    /// fraction digits as needed (none, 3, 6 or 9):
    /// `2024-05-01T12:00:00.250Z`.
    pub fn to_rfc3339(&self) -> String {
        let days = self.seconds / 86_400;
        let second_of_day = self.seconds % 86_400;
        let (year, month, day) = civil_from_days(days);
        let (hour, minute, second) = (
            second_of_day / 3600,
            second_of_day / 60 % 60,
            second_of_day % 60,
        );
        let nanos = self.nanoseconds % 1_000_000_000;
        let fraction = if nanos == 0 {
            String::new()
        } else if nanos.is_multiple_of(1_000_000) {
            format!(".{:03}", nanos / 1_000_000)
        } else if nanos.is_multiple_of(1_000) {
            format!(".{:06}", nanos / 1_000)
        } else {
            format!(".{nanos:09}")
        };
        format!("{year:04}-{month:02}-{day:02}T{hour:02}:{minute:02}:{second:02}{fraction}Z")
    }
}

/// Year, month and day of the `days`-th day after 1970-01-01 (Howard
/// Hinnant's `civil_from_days`, restricted to dates after the epoch).
fn civil_from_days(days: u64) -> (u64, u64, u64) {
    let z = days + 719_468;
    let era = z / 146_097;
    let day_of_era = z - era * 146_097;
    let year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let month_index = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * month_index + 2) / 5 + 1;
    let month = if month_index < 10 {
        month_index + 3
    } else {
        month_index - 9
    };
    let year = year_of_era + era * 400 + u64::from(month <= 2);
    (year, month, day)
}

#[cfg(target_arch = "wasm32")]
mod imp {
    use super::Timestamp;
    use crate::bindings::processor::fnaa::plugin::clock as host;

    pub fn now() -> Timestamp {
        let now = host::now();
        Timestamp {
            seconds: now.seconds,
            nanoseconds: now.nanoseconds,
        }
    }
}

#[cfg(not(target_arch = "wasm32"))]
mod imp {
    use super::Timestamp;

    pub fn now() -> Timestamp {
        let since = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default();
        Timestamp {
            seconds: since.as_secs(),
            nanoseconds: since.subsec_nanos(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_rfc3339() {
        let t = |seconds, nanoseconds| {
            Timestamp {
                seconds,
                nanoseconds,
            }
            .to_rfc3339()
        };
        assert_eq!(t(0, 0), "1970-01-01T00:00:00Z");
        assert_eq!(t(951_782_400, 250_000_000), "2000-02-29T00:00:00.250Z");
        assert_eq!(t(1_714_564_800, 1_000), "2024-05-01T12:00:00.000001Z");
        assert_eq!(t(4_102_444_799, 1), "2099-12-31T23:59:59.000000001Z");
    }
}
