//! Dates as the sources and operators write them.

use time::format_description::well_known::Rfc3339;
use time::macros::format_description;
use time::{Date, OffsetDateTime, PrimitiveDateTime, Time};

use crate::store::Millis;

fn at(ms: Millis) -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
        .unwrap_or(OffsetDateTime::UNIX_EPOCH)
}

/// `2026-04-22T15:30:00.123000Z`: Salesloft's filters take microseconds.
pub fn micros(ms: Millis) -> String {
    let fmt =
        format_description!("[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:6]Z");
    at(ms).format(&fmt).unwrap_or_default()
}

/// `2026-04-22T15:30:00Z`, for people.
pub fn iso(ms: Millis) -> String {
    let fmt = format_description!("[year]-[month]-[day]T[hour]:[minute]:[second]Z");
    at(ms).format(&fmt).unwrap_or_default()
}

/// Reads an operator's date: `2026-04-01` (midnight UTC) or RFC 3339.
pub fn parse_date(text: &str) -> Result<Millis, String> {
    let text = text.trim();
    if let Ok(t) = OffsetDateTime::parse(text, &Rfc3339) {
        return Ok((t.unix_timestamp_nanos() / 1_000_000) as Millis);
    }
    let day = format_description!("[year]-[month]-[day]");
    match Date::parse(text, &day) {
        Ok(d) => {
            let t = PrimitiveDateTime::new(d, Time::MIDNIGHT).assume_utc();
            Ok((t.unix_timestamp_nanos() / 1_000_000) as Millis)
        }
        Err(_) => Err(format!(
            "`{text}` is not a date: use 2026-04-01 or 2026-04-01T09:00:00Z"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn salesloft_cursors_carry_six_fractional_digits() {
        assert_eq!(micros(1_776_871_800_123), "2026-04-22T15:30:00.123000Z");
    }

    #[test]
    fn a_plain_date_is_midnight_utc() {
        assert_eq!(
            parse_date("2026-04-22").map(iso).unwrap(),
            "2026-04-22T00:00:00Z"
        );
    }

    #[test]
    fn a_non_date_is_explained() {
        assert!(parse_date("yesterday").unwrap_err().contains("not a date"));
    }
}
