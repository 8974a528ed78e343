//! Instants as the sources write them, and as the bridge writes them back.
//!
//! Sources use three spellings, none ambiguous with another: RFC 3339 with
//! an offset and up to nanoseconds (Salesloft, HubSpot's dates), epoch
//! milliseconds as digits (HubSpot's `hs_timestamp` and
//! `hs_lastmodifieddate` in some portals), and a zone-less
//! `YYYY-MM-DD HH:MM:SS` in UTC (Aloware). [`parse`] reads all three;
//! [`unix_seconds`] serves Kendo's HTTP dates.
//!
//! Hand-written rather than the `time` crate because of the component's size
//! budget (256 KB): `time`'s parser, formatter and their tables cost the
//! component about 20 KB for a handful of fixed layouts, this module about
//! 2 KB. It follows `time` 0.3's RFC 3339 parser rule for rule (any byte as
//! the date/time separator, `z` as `Z`, digits past nanoseconds ignored, a
//! leap second only as the last second of a month in UTC, years -9999 to
//! 9999 in UTC), and `tests/datetime.rs` checks it against `time` with
//! random instants, offsets and mutations.

use crate::prelude::*;

use crate::fields::{Node, Outcome};

const NANOS_PER_SECOND: u32 = 1_000_000_000;
const SECONDS_PER_DAY: i64 = 86_400;
/// `9999-12-31T23:59:59Z` and `-9999-01-01T00:00:00Z`: `time`'s range.
const MAX_SECONDS: i64 = 253_402_300_799;
const MIN_SECONDS: i64 = -377_705_116_800;

/// A moment in UTC, to the nanosecond. Fields in this order so the derived
/// ordering is chronological.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct Instant {
    seconds: i64,
    nanos: u32,
}

impl Instant {
    /// Within the years -9999 to 9999, as `time` allows.
    fn in_range(self) -> Option<Self> {
        (MIN_SECONDS..=MAX_SECONDS)
            .contains(&self.seconds)
            .then_some(self)
    }

    /// One microsecond later (None past year 9999).
    pub(crate) fn plus_microsecond(self) -> Option<Self> {
        let nanos = self.nanos + 1_000;
        let carry = nanos / NANOS_PER_SECOND;
        Instant {
            seconds: self.seconds + i64::from(carry),
            nanos: nanos % NANOS_PER_SECOND,
        }
        .in_range()
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's
/// `days_from_civil`).
fn days_from_civil(year: i64, month: u32, day: u32) -> i64 {
    let year = if month <= 2 { year - 1 } else { year };
    let era = year.div_euclid(400);
    let year_of_era = year - era * 400;
    let month = i64::from(month);
    let day_of_year =
        (153 * (if month > 2 { month - 3 } else { month + 9 }) + 2) / 5 + i64::from(day) - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    era * 146_097 + day_of_era - 719_468
}

/// The date of a day since 1970-01-01 (Howard Hinnant's `civil_from_days`).
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let days = days + 719_468;
    let era = days.div_euclid(146_097);
    let day_of_era = days - era * 146_097;
    let year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let shifted_month = (5 * day_of_year + 2) / 153;
    // Both in range by construction: 1..=31 and 1..=12.
    let day = (day_of_year - (153 * shifted_month + 2) / 5 + 1) as u32;
    let month = if shifted_month < 10 {
        shifted_month + 3
    } else {
        shifted_month - 9
    } as u32;
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

fn days_in_month(year: i64, month: u32) -> u32 {
    match month {
        2 if year % 4 == 0 && (year % 100 != 0 || year % 400 == 0) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Seconds since the epoch of a date and time in UTC, or None when a
/// component is out of range (a 31st of April, hour 24, year 10000).
pub(crate) fn unix_seconds(
    year: i64,
    month: u32,
    day: u32,
    hour: u32,
    minute: u32,
    second: u32,
) -> Option<i64> {
    let valid = (-9999..=9999).contains(&year)
        && (1..=12).contains(&month)
        && day >= 1
        && day <= days_in_month(year, month)
        && hour < 24
        && minute < 60
        && second < 60;
    valid.then(|| {
        days_from_civil(year, month, day) * SECONDS_PER_DAY
            + i64::from(hour * 3600 + minute * 60 + second)
    })
}

/// Exactly `N` ASCII digits at `at`.
fn digits<const N: usize>(bytes: &[u8], at: usize) -> Option<u32> {
    let mut value = 0;
    for &byte in bytes.get(at..at + N)? {
        if !byte.is_ascii_digit() {
            return None;
        }
        value = value * 10 + u32::from(byte - b'0');
    }
    Some(value)
}

/// RFC 3339 (`2026-04-22T11:30:00.123456-04:00`), as `time`'s
/// `OffsetDateTime::parse(text, &Rfc3339)` reads it, as an instant in UTC.
/// The UTC instant may fall a day outside years 0 to 9999 (`time` keeps the
/// local time, so it accepts those).
pub(crate) fn rfc3339(text: &str) -> Option<Instant> {
    let bytes = text.as_bytes();
    let literal = |at: usize, expected: u8| bytes.get(at) == Some(&expected);
    let year = digits::<4>(bytes, 0)?;
    let month = digits::<2>(bytes, 5)?;
    let day = digits::<2>(bytes, 8)?;
    // RFC 3339 lets any separator stand between date and time; `time` takes
    // any single byte there.
    bytes.get(10)?;
    let hour = digits::<2>(bytes, 11)?;
    let minute = digits::<2>(bytes, 14)?;
    let mut second = digits::<2>(bytes, 17)?;
    if !(literal(4, b'-') && literal(7, b'-') && literal(13, b':') && literal(16, b':')) {
        return None;
    }
    let mut at = 19;
    let mut nanos = 0;
    if literal(at, b'.') {
        at += 1;
        let start = at;
        let mut scale = 100_000_000;
        while let Some(digit) = bytes.get(at).filter(|byte| byte.is_ascii_digit()) {
            // Digits past the ninth are read and ignored.
            nanos += u32::from(digit - b'0') * scale;
            scale /= 10;
            at += 1;
        }
        if at == start {
            return None;
        }
    }
    let offset_seconds = match bytes.get(at)? {
        b'Z' | b'z' => {
            at += 1;
            0
        }
        sign @ (b'+' | b'-') => {
            let hours = digits::<2>(bytes, at + 1)?;
            let minutes = digits::<2>(bytes, at + 4)?;
            if !literal(at + 3, b':') || hours > 23 || minutes > 59 {
                return None;
            }
            at += 6;
            let seconds = i64::from(hours * 3600 + minutes * 60);
            if *sign == b'-' { -seconds } else { seconds }
        }
        _ => return None,
    };
    if at != bytes.len() {
        return None;
    }
    // A leap second stands for the nanosecond before it.
    let leap = second == 60;
    if leap {
        second = 59;
        nanos = NANOS_PER_SECOND - 1;
    }
    let local = unix_seconds(i64::from(year), month, day, hour, minute, second)?;
    let instant = Instant {
        seconds: local - offset_seconds,
        nanos,
    };
    if leap {
        // Only the last second of a month in UTC can be a leap second.
        let (year, month, day, clock) = civil(instant);
        if clock != SECONDS_PER_DAY - 1 || day != days_in_month(year, month) {
            return None;
        }
    }
    Some(instant)
}

/// The UTC date and the seconds since midnight.
fn civil(instant: Instant) -> (i64, u32, u32, i64) {
    let days = instant.seconds.div_euclid(SECONDS_PER_DAY);
    let (year, month, day) = civil_from_days(days);
    (
        year,
        month,
        day,
        instant.seconds.rem_euclid(SECONDS_PER_DAY),
    )
}

/// Reads an instant in any of the sources' spellings, in UTC.
pub(crate) fn parse(text: &str) -> Option<Instant> {
    let text = text.trim();
    if !text.is_empty() && text.bytes().all(|byte| byte.is_ascii_digit()) {
        return from_epoch_ms(crate::fields::parse_u64(text)?);
    }
    match rfc3339(text) {
        Some(instant) => instant.in_range(),
        None => rfc3339(&zoned_utc(text)?)?.in_range(),
    }
}

/// `YYYY-MM-DD HH:MM:SS[.fff]` (or with `T`) and no zone, as RFC 3339 in UTC.
fn zoned_utc(text: &str) -> Option<String> {
    let (date, time) = (text.get(..10)?, text.get(11..)?);
    let zone_less = matches!(text.as_bytes().get(10), Some(b' ' | b'T'))
        && time.len() >= 8
        && time
            .bytes()
            .all(|byte| byte.is_ascii_digit() || byte == b':' || byte == b'.');
    zone_less.then(|| {
        let mut out = String::with_capacity(text.len() + 1);
        out.push_str(date);
        out.push('T');
        out.push_str(time);
        out.push('Z');
        out
    })
}

/// An instant from epoch milliseconds.
pub(crate) fn from_epoch_ms(ms: u64) -> Option<Instant> {
    let seconds = i64::try_from(ms / 1000).ok()?;
    // Below 1000, so the product is below a second.
    let nanos = (ms % 1000) as u32 * 1_000_000;
    Instant { seconds, nanos }.in_range()
}

/// Epoch milliseconds; none before 1970.
pub(crate) fn epoch_ms(instant: Instant) -> Option<u64> {
    let seconds = u64::try_from(instant.seconds).ok()?;
    Some(seconds * 1000 + u64::from(instant.nanos / 1_000_000))
}

/// Appends `value` in `width` digits, zero-padded.
fn push_padded(out: &mut String, value: u32, width: u32) {
    let mut scale = 10u32.pow(width - 1);
    while scale > 0 {
        // One decimal digit.
        out.push(char::from(b'0' + (value / scale % 10) as u8));
        scale /= 10;
    }
}

/// `YYYY-MM-DDTHH:MM:SS` in UTC; None outside years 0 to 9999, which RFC
/// 3339 cannot write.
fn date_time(instant: Instant) -> Option<String> {
    let (year, month, day, clock) = civil(instant);
    let year = u32::try_from(year).ok().filter(|year| *year <= 9999)?;
    // Below 86,400.
    let clock = clock as u32;
    let mut out = String::with_capacity(27);
    push_padded(&mut out, year, 4);
    for (separator, value) in [
        ('-', month),
        ('-', day),
        ('T', clock / 3600),
        (':', clock / 60 % 60),
        (':', clock % 60),
    ] {
        out.push(separator);
        push_padded(&mut out, value, 2);
    }
    Some(out)
}

/// Kendo's `callDate`: `2026-04-22T15:30:00Z`.
pub(crate) fn call_date(instant: Instant) -> Option<String> {
    let mut out = date_time(instant)?;
    out.push('Z');
    Some(out)
}

/// A cursor bound with microseconds: `2026-04-22T15:30:00.123456Z`.
pub(crate) fn cursor(instant: Instant) -> Option<String> {
    let mut out = date_time(instant)?;
    out.push('.');
    push_padded(&mut out, instant.nanos / 1_000, 6);
    out.push('Z');
    Some(out)
}

/// The instant in a field, or `invalid-value` naming it.
pub(crate) fn field(node: &Node<'_, '_>) -> Outcome<Option<Instant>> {
    let Some(text) = node.scalar_text()? else {
        return Ok(None);
    };
    match parse(&text) {
        Some(instant) => Ok(Some(instant)),
        None => Err(node.invalid(alloc::format!(
            "\"{text}\" is not a date and time (expected ISO 8601 with a zone, \
             `YYYY-MM-DD HH:MM:SS` in UTC, or epoch milliseconds)"
        ))),
    }
}

/// A field's instant as Kendo's `callDate`, or `invalid-value` naming it.
pub(crate) fn call_date_field(node: &Node<'_, '_>) -> Outcome<Option<String>> {
    match field(node)? {
        Some(instant) => call_date(instant)
            .map(Some)
            .ok_or_else(|| node.invalid("cannot be written as a UTC date".into())),
        None => Ok(None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn round_trip(text: &str) -> Option<String> {
        parse(text).and_then(cursor)
    }

    #[test]
    fn rfc3339_offsets_are_converted_to_utc_keeping_microseconds() {
        assert_eq!(
            round_trip("2026-04-22T11:30:00.123456-04:00").as_deref(),
            Some("2026-04-22T15:30:00.123456Z")
        );
        assert_eq!(
            round_trip("2026-04-22T15:30:00Z").as_deref(),
            Some("2026-04-22T15:30:00.000000Z")
        );
    }

    #[test]
    fn nanoseconds_are_truncated_not_rounded_in_cursors() {
        assert_eq!(
            round_trip("2026-04-22T15:30:00.1234569Z").as_deref(),
            Some("2026-04-22T15:30:00.123456Z")
        );
    }

    #[test]
    fn epoch_milliseconds_are_read_as_utc() {
        let instant = parse("1772641800000").unwrap();
        assert_eq!(call_date(instant).as_deref(), Some("2026-03-04T16:30:00Z"));
        assert_eq!(epoch_ms(instant), Some(1_772_641_800_000));
    }

    #[test]
    fn aloware_zone_less_times_are_utc() {
        let instant = parse("2026-03-05 18:10:00").unwrap();
        assert_eq!(call_date(instant).as_deref(), Some("2026-03-05T18:10:00Z"));
        assert!(parse("2026-03-05 18:10:00.250").is_some());
    }

    #[test]
    fn call_dates_drop_sub_seconds() {
        let instant = parse("2026-04-22T15:30:00.999999+00:00").unwrap();
        assert_eq!(call_date(instant).as_deref(), Some("2026-04-22T15:30:00Z"));
    }

    #[test]
    fn nonsense_and_out_of_range_values_are_refused() {
        for text in [
            "",
            "yesterday",
            "2026-02-31 10:30:00",
            "2026-04-22",
            "99999999999999999999999",
            "18446744073709551615",
        ] {
            assert!(parse(text).is_none(), "{text}");
        }
    }

    #[test]
    fn conversion_to_utc_past_year_9999_does_not_panic() {
        assert!(parse("9999-12-31T23:00:00-05:00").is_none());
    }

    #[test]
    fn a_leap_second_is_read_only_at_the_end_of_a_utc_month() {
        assert_eq!(
            round_trip("2016-12-31T23:59:60Z").as_deref(),
            Some("2016-12-31T23:59:59.999999Z")
        );
        assert_eq!(
            round_trip("2016-12-31T18:59:60-05:00").as_deref(),
            Some("2016-12-31T23:59:59.999999Z")
        );
        assert!(parse("2016-12-30T23:59:60Z").is_none());
        assert!(parse("2016-12-31T23:58:60Z").is_none());
    }

    #[test]
    fn one_microsecond_later_carries_into_the_next_second() {
        let instant = parse("2026-04-22T15:30:59.999999Z").unwrap();
        assert_eq!(
            instant.plus_microsecond().and_then(cursor).as_deref(),
            Some("2026-04-22T15:31:00.000000Z")
        );
        let last = parse("9999-12-31T23:59:59.9999995Z").unwrap();
        assert_eq!(last.plus_microsecond(), None);
    }

    #[test]
    fn civil_days_round_trip_across_eras() {
        for days in [-3_652_059 - 719_468, -719_468, -1, 0, 59, 2_932_896] {
            let (year, month, day) = civil_from_days(days);
            assert_eq!(days_from_civil(year, month, day), days);
        }
    }
}
