//! Instants as the sources write them, and as the bridge writes them back.
//!
//! Sources use three spellings, none ambiguous with another: RFC 3339 with
//! an offset and up to nanoseconds (Salesloft, HubSpot's dates), epoch
//! milliseconds as digits (HubSpot's `hs_timestamp` and
//! `hs_lastmodifieddate` in some portals), and a zone-less
//! `YYYY-MM-DD HH:MM:SS` in UTC (Aloware). [`parse`] reads all three.
//!
//! Only `time`'s RFC 3339 parser is used (the Kendo side needs it too): its
//! general format-description parser and formatter would add about 45 KB to
//! the component for two fixed layouts.

use time::format_description::well_known::Rfc3339;
use time::{OffsetDateTime, UtcOffset};

use crate::fields::Node;
use crate::types::InputError;

/// Reads an instant in any of the sources' spellings, in UTC.
pub(crate) fn parse(text: &str) -> Option<OffsetDateTime> {
    let text = text.trim();
    if !text.is_empty() && text.bytes().all(|byte| byte.is_ascii_digit()) {
        return from_epoch_ms(text.parse().ok()?);
    }
    let instant = match OffsetDateTime::parse(text, &Rfc3339) {
        Ok(instant) => instant,
        Err(_) => OffsetDateTime::parse(&zoned_utc(text)?, &Rfc3339).ok()?,
    };
    instant.checked_to_offset(UtcOffset::UTC)
}

/// `YYYY-MM-DD HH:MM:SS[.fff]` (or with `T`) and no zone, as RFC 3339 in UTC.
fn zoned_utc(text: &str) -> Option<String> {
    let (date, time) = (text.get(..10)?, text.get(11..)?);
    let zone_less = matches!(text.as_bytes().get(10), Some(b' ' | b'T'))
        && time.len() >= 8
        && time
            .bytes()
            .all(|byte| byte.is_ascii_digit() || byte == b':' || byte == b'.');
    zone_less.then(|| format!("{date}T{time}Z"))
}

/// An instant from epoch milliseconds.
pub(crate) fn from_epoch_ms(ms: u64) -> Option<OffsetDateTime> {
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000).ok()
}

/// Epoch milliseconds; none before 1970.
pub(crate) fn epoch_ms(instant: OffsetDateTime) -> Option<u64> {
    u64::try_from(instant.unix_timestamp_nanos().div_euclid(1_000_000)).ok()
}

/// Kendo's `callDate`: `2026-04-22T15:30:00Z`.
pub(crate) fn call_date(instant: OffsetDateTime) -> Option<String> {
    let utc = in_range_utc(instant)?;
    Some(format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}Z",
        utc.year(),
        u8::from(utc.month()),
        utc.day(),
        utc.hour(),
        utc.minute(),
        utc.second()
    ))
}

/// A cursor bound with microseconds: `2026-04-22T15:30:00.123456Z`.
pub(crate) fn cursor(instant: OffsetDateTime) -> Option<String> {
    let utc = in_range_utc(instant)?;
    Some(format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:06}Z",
        utc.year(),
        u8::from(utc.month()),
        utc.day(),
        utc.hour(),
        utc.minute(),
        utc.second(),
        utc.microsecond()
    ))
}

/// In UTC, with a four-digit year as RFC 3339 requires.
fn in_range_utc(instant: OffsetDateTime) -> Option<OffsetDateTime> {
    instant
        .checked_to_offset(UtcOffset::UTC)
        .filter(|utc| (0..=9999).contains(&utc.year()))
}

/// The instant in a field, or `invalid-value` naming it.
pub(crate) fn field(node: &Node<'_, '_>) -> Result<Option<OffsetDateTime>, InputError> {
    let Some(text) = node.scalar_text()? else {
        return Ok(None);
    };
    match parse(&text) {
        Some(instant) => Ok(Some(instant)),
        None => Err(node.invalid(format!(
            "\"{text}\" is not a date and time (expected ISO 8601 with a zone, \
             `YYYY-MM-DD HH:MM:SS` in UTC, or epoch milliseconds)"
        ))),
    }
}

/// A field's instant as Kendo's `callDate`, or `invalid-value` naming it.
pub(crate) fn call_date_field(node: &Node<'_, '_>) -> Result<Option<String>, InputError> {
    match field(node)? {
        Some(instant) => call_date(instant)
            .map(Some)
            .ok_or_else(|| node.invalid("cannot be written as a UTC date".to_owned())),
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
}
