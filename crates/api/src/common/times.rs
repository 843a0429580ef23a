//! The dialects' time formats, written digit by digit: a page of key pairs or instances formats
//! a time per item, and an interpreted format description costs several times more than the
//! digits themselves.

use time::{OffsetDateTime, UtcOffset};

/// How a dialect writes a time: the offset it is shown in, what parts follow the date, and
/// what ends it.
#[derive(Debug, Clone, Copy)]
pub struct TimeFormat {
    /// The offset the time is shown in.
    pub offset: UtcOffset,
    /// Between the date and the time of day: `T` or a space.
    pub separator: char,
    /// Whether the seconds are written.
    pub seconds: bool,
    /// What follows the time of day: `Z`, or nothing.
    pub suffix: &'static str,
}

impl TimeFormat {
    /// `2024-01-01T00:00:00Z`.
    pub const ISO_SECONDS: TimeFormat = TimeFormat {
        offset: UtcOffset::UTC,
        separator: 'T',
        seconds: true,
        suffix: "Z",
    };

    /// `2024-01-01T00:00Z`.
    pub const ISO_MINUTES: TimeFormat = TimeFormat {
        offset: UtcOffset::UTC,
        separator: 'T',
        seconds: false,
        suffix: "Z",
    };

    /// Unix seconds `ts` in this format; a time outside what the format can show (before
    /// year 0 or after 9999) is written as the Unix epoch.
    pub fn format(self, ts: i64) -> String {
        let t = OffsetDateTime::from_unix_timestamp(ts)
            .ok()
            .and_then(|t| t.checked_to_offset(self.offset))
            .filter(|t| (0..=9999).contains(&t.year()))
            .unwrap_or(OffsetDateTime::UNIX_EPOCH.to_offset(self.offset));
        let mut out = String::with_capacity(20);
        two(&mut out, (t.year() / 100) as u8);
        two(&mut out, (t.year() % 100) as u8);
        out.push('-');
        two(&mut out, t.month() as u8);
        out.push('-');
        two(&mut out, t.day());
        out.push(self.separator);
        two(&mut out, t.hour());
        out.push(':');
        two(&mut out, t.minute());
        if self.seconds {
            out.push(':');
            two(&mut out, t.second());
        }
        out.push_str(self.suffix);
        out
    }
}

/// `n` (below 100) as two digits.
fn two(out: &mut String, n: u8) {
    out.push(char::from(b'0' + n / 10));
    out.push(char::from(b'0' + n % 10));
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The same time through `time`'s own formatter, for comparison.
    fn reference(ts: i64, f: TimeFormat) -> String {
        let t = OffsetDateTime::from_unix_timestamp(ts)
            .unwrap()
            .to_offset(f.offset);
        let body = match f.seconds {
            true => t.format(time::macros::format_description!(
                "[year]-[month]-[day]T[hour]:[minute]:[second]"
            )),
            false => t.format(time::macros::format_description!(
                "[year]-[month]-[day]T[hour]:[minute]"
            )),
        };
        body.unwrap().replace('T', &f.separator.to_string()) + f.suffix
    }

    #[test]
    fn digits_match_the_formatter_across_centuries_and_offsets() {
        let beijing = TimeFormat {
            offset: UtcOffset::from_hms(8, 0, 0).unwrap(),
            separator: ' ',
            seconds: true,
            suffix: "",
        };
        let times = [
            0,
            1,
            59,
            86_399,
            951_782_400,   // 2000-02-29
            1_700_000_000, // 2023-11-14T22:13:20Z
            1_735_689_599, // the last second of 2024
            4_102_444_800, // 2100-01-01
            -1,
            -62_167_219_200, // 0000-01-01
            253_402_300_799, // 9999-12-31T23:59:59Z
        ];
        for ts in times {
            for f in [TimeFormat::ISO_SECONDS, TimeFormat::ISO_MINUTES] {
                assert_eq!(f.format(ts), reference(ts, f), "{ts}");
            }
            if ts < 253_402_300_799 - 8 * 3600 {
                assert_eq!(beijing.format(ts), reference(ts, beijing), "{ts}");
            }
        }
        assert_eq!(
            TimeFormat::ISO_SECONDS.format(1_700_000_000),
            "2023-11-14T22:13:20Z"
        );
        assert_eq!(
            TimeFormat::ISO_MINUTES.format(1_700_000_000),
            "2023-11-14T22:13Z"
        );
        assert_eq!(beijing.format(1_700_000_000), "2023-11-15 06:13:20");
    }

    #[test]
    fn a_time_the_format_cannot_show_is_the_epoch() {
        assert_eq!(
            TimeFormat::ISO_SECONDS.format(i64::MAX),
            "1970-01-01T00:00:00Z"
        );
        assert_eq!(
            TimeFormat::ISO_SECONDS.format(-62_167_219_201),
            "1970-01-01T00:00:00Z"
        );
    }
}
