//! The plugin reads and writes dates with a small hand-written module (the
//! `time` crate costs the component too much of its size budget). These
//! properties hold it to `time` 0.3, which it replaced: every date the
//! plugin reads goes through the public interface here, and the expected
//! answer is what the `time`-based code gave.

use kendo_bridge_guest::Plugin;
use kendo_bridge_guest::types::{Call, Header, Source, SyncMethod};
use kendo_bridge_guest::{hubspot_api, kendo_api, salesloft_api};
use proptest::prelude::*;
use time::format_description::well_known::Rfc3339;
use time::{Date, Month, OffsetDateTime, PrimitiveDateTime, Time, UtcOffset};

// ---------------------------------------------------------------------------
// the `time`-based reference, as the plugin had it
// ---------------------------------------------------------------------------

fn reference_parse(text: &str) -> Option<OffsetDateTime> {
    let text = text.trim();
    if !text.is_empty() && text.bytes().all(|byte| byte.is_ascii_digit()) {
        let ms: u64 = text.parse().ok()?;
        return OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000).ok();
    }
    let instant = match OffsetDateTime::parse(text, &Rfc3339) {
        Ok(instant) => instant,
        Err(_) => OffsetDateTime::parse(&reference_zoned_utc(text)?, &Rfc3339).ok()?,
    };
    instant.checked_to_offset(UtcOffset::UTC)
}

fn reference_zoned_utc(text: &str) -> Option<String> {
    let (date, time) = (text.get(..10)?, text.get(11..)?);
    let zone_less = matches!(text.as_bytes().get(10), Some(b' ' | b'T'))
        && time.len() >= 8
        && time
            .bytes()
            .all(|byte| byte.is_ascii_digit() || byte == b':' || byte == b'.');
    zone_less.then(|| format!("{date}T{time}Z"))
}

fn reference_cursor(instant: OffsetDateTime) -> Option<String> {
    let utc = instant
        .checked_to_offset(UtcOffset::UTC)
        .filter(|utc| (0..=9999).contains(&utc.year()))?;
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

fn reference_epoch_ms(instant: OffsetDateTime) -> Option<u64> {
    u64::try_from(instant.unix_timestamp_nanos().div_euclid(1_000_000)).ok()
}

fn reference_http_date(value: &str) -> Option<i64> {
    let mut tokens = value
        .split([' ', ',', '-'])
        .filter(|t| !t.is_empty())
        .skip(1);
    let first = tokens.next()?;
    let (day, month, year, clock) = if first.bytes().all(|b| b.is_ascii_digit()) {
        let month = tokens.next()?;
        let year = tokens.next()?;
        let clock = tokens.next()?;
        if !tokens.next()?.eq_ignore_ascii_case("GMT") {
            return None;
        }
        (first, month, year, clock)
    } else {
        let day = tokens.next()?;
        let clock = tokens.next()?;
        let year = tokens.next()?;
        (day, first, year, clock)
    };
    if tokens.next().is_some() {
        return None;
    }
    let day: u8 = day.parse().ok()?;
    let month = MONTHS
        .iter()
        .position(|abbr| abbr.eq_ignore_ascii_case(month))
        .and_then(|index| Month::try_from(u8::try_from(index + 1).ok()?).ok())?;
    let year: i32 = match year.len() {
        4 => year.parse().ok()?,
        2 => {
            let yy: i32 = year.parse().ok()?;
            if yy < 70 { 2000 + yy } else { 1900 + yy }
        }
        _ => return None,
    };
    let mut hms = clock.split(':');
    let hour: u8 = hms.next()?.parse().ok()?;
    let minute: u8 = hms.next()?.parse().ok()?;
    let second: u8 = hms.next()?.parse().ok()?;
    if hms.next().is_some() {
        return None;
    }
    let date = Date::from_calendar_date(year, month, day).ok()?;
    let clock = Time::from_hms(hour, minute, second).ok()?;
    Some(
        PrimitiveDateTime::new(date, clock)
            .assume_utc()
            .unix_timestamp(),
    )
}

const MONTHS: [&str; 12] = [
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
];

// ---------------------------------------------------------------------------
// the plugin, through its public interface
// ---------------------------------------------------------------------------

/// The cursor text Salesloft `read-page` writes for a call's `updated_at`.
fn plugin_cursor(text: &str) -> Option<String> {
    let body = serde_json::json!({"data": [{"id": 1, "updated_at": text}]}).to_string();
    let cursor = salesloft_api::Cursor {
        updated_since: None,
        page: 1,
    };
    let page = <Plugin as salesloft_api::Guest>::read_page(cursor, body).ok()?;
    Some(page.calls.into_iter().next()?.updated_at)
}

/// The epoch milliseconds HubSpot `read-search` reads from
/// `hs_lastmodifieddate`.
fn plugin_epoch_ms(text: &str) -> Option<u64> {
    let body = serde_json::json!({
        "results": [{"id": "1", "properties": {"hs_lastmodifieddate": text}}]
    })
    .to_string();
    let cursor = hubspot_api::Cursor {
        since_ms: None,
        after: None,
        high_water_ms: None,
    };
    let options = hubspot_api::SearchOptions {
        limit: 100,
        lookback_ms: 0,
    };
    let page = <Plugin as hubspot_api::Guest>::read_search(cursor, options, body).ok()?;
    Some(page.calls.into_iter().next()?.modified_ms)
}

/// Whether `build-ingest` takes `text` as a `callDate`.
fn plugin_accepts_call_date(text: &str) -> bool {
    let call = Call {
        source: Source::Hubspot,
        source_id: "1".into(),
        title: "Call".into(),
        rep_name: None,
        rep_email: Some("rep@example.com".into()),
        started_at: Some(text.into()),
        duration_seconds: None,
        audio_url: Some("https://example.com/a.mp3".into()),
        transcript: None,
        direction: None,
        disposition: None,
        sync_method: SyncMethod::Polling,
        metadata: Vec::new(),
        warnings: Vec::new(),
    };
    let options = kendo_api::PayloadOptions {
        max_body_bytes: 5_000_000,
    };
    match <Plugin as kendo_api::Guest>::build_ingest(call, options) {
        Ok(_) => true,
        Err(kendo_api::BuildError::InvalidCallDate(_)) => false,
        Err(other) => panic!("unexpected {other:?} for {text:?}"),
    }
}

fn plugin_retry_after(value: &str, now: u64) -> u32 {
    let headers = vec![Header {
        name: "Retry-After".into(),
        value: value.into(),
    }];
    match <Plugin as kendo_api::Guest>::read_ingest_response(429, headers, String::new(), now) {
        kendo_api::IngestOutcome::RetryAfter(seconds) => seconds,
        other => panic!("expected retry-after, got {other:?}"),
    }
}

fn reference_retry_after(value: &str, now: u64) -> u32 {
    match reference_http_date(value.trim()) {
        Some(at) => {
            let now = i64::try_from(now).unwrap_or(i64::MAX);
            let seconds = u64::try_from(at.saturating_sub(now)).unwrap_or(0);
            u32::try_from(seconds.clamp(1, 3600)).unwrap()
        }
        None => 60,
    }
}

/// Checks one text through every path that reads dates.
fn check_everywhere(text: &str) -> Result<(), TestCaseError> {
    let reference = reference_parse(text);
    prop_assert_eq!(
        plugin_cursor(text),
        reference.and_then(reference_cursor),
        "cursor of {:?}",
        text
    );
    prop_assert_eq!(
        plugin_epoch_ms(text),
        reference.and_then(reference_epoch_ms),
        "epoch ms of {:?}",
        text
    );
    prop_assert_eq!(
        plugin_accepts_call_date(text),
        OffsetDateTime::parse(text, &Rfc3339).is_ok(),
        "callDate {:?}",
        text
    );
    Ok(())
}

// ---------------------------------------------------------------------------
// generators
// ---------------------------------------------------------------------------

/// `time`'s whole range, in nanoseconds.
fn any_instant() -> impl Strategy<Value = OffsetDateTime> {
    let min = OffsetDateTime::new_utc(Date::MIN, Time::MIDNIGHT).unix_timestamp_nanos();
    let max = OffsetDateTime::new_utc(Date::MAX, Time::MAX).unix_timestamp_nanos();
    prop_oneof![
        min..=max,
        // Dates a source actually sends.
        0i128..4_102_444_800_000_000_000,
    ]
    .prop_map(|nanos| OffsetDateTime::from_unix_timestamp_nanos(nanos).unwrap())
}

fn any_offset() -> impl Strategy<Value = UtcOffset> {
    (-23i8..=23, 0i8..=59).prop_map(|(hours, minutes)| {
        let minutes = if hours < 0 { -minutes } else { minutes };
        UtcOffset::from_hms(hours, minutes, 0).unwrap()
    })
}

/// RFC 3339 spellings of an instant: any offset, 0 to 12 fraction digits,
/// any separator, `Z` or `z` at UTC.
fn rfc3339_text() -> impl Strategy<Value = String> {
    (
        any_instant(),
        any_offset(),
        0usize..=12,
        prop::sample::select(vec!['T', 't', ' ', '_']),
        any::<bool>(),
    )
        .prop_filter_map(
            "local year outside 0-9999",
            |(instant, offset, digits, sep, z)| {
                let local = instant.checked_to_offset(offset)?;
                if !(0..=9999).contains(&local.year()) {
                    return None;
                }
                let fraction = if digits == 0 {
                    String::new()
                } else {
                    let nanos = format!("{:09}000", local.nanosecond());
                    format!(".{}", &nanos[..digits])
                };
                let zone = if offset.is_utc() {
                    if z { "Z".to_owned() } else { "z".to_owned() }
                } else {
                    let (hours, minutes, _) = offset.as_hms();
                    let sign = if offset.is_negative() { '-' } else { '+' };
                    format!("{sign}{:02}:{:02}", hours.abs(), minutes.abs())
                };
                Some(format!(
                    "{:04}-{:02}-{:02}{sep}{:02}:{:02}:{:02}{fraction}{zone}",
                    local.year(),
                    u8::from(local.month()),
                    local.day(),
                    local.hour(),
                    local.minute(),
                    local.second(),
                ))
            },
        )
}

/// Components each a little past its range: month 13, day 32, hour 24,
/// second 60 and 61, offsets up to 24:60.
fn raw_text() -> impl Strategy<Value = String> {
    (
        (0u32..=9999, 0u32..=13, 0u32..=32),
        (0u32..=24, 0u32..=60, 0u32..=61),
        prop::option::of("[0-9]{0,3}"),
        prop::option::of((any::<bool>(), 0u32..=24, 0u32..=60)),
    )
        .prop_map(
            |((year, month, day), (hour, minute, second), fraction, offset)| {
                let fraction = fraction.map(|digits| format!(".{digits}")).unwrap_or_default();
                let zone = match offset {
                    None => "Z".to_owned(),
                    Some((negative, hours, minutes)) => {
                        format!("{}{hours:02}:{minutes:02}", if negative { '-' } else { '+' })
                    }
                };
                format!("{year:04}-{month:02}-{day:02}T{hour:02}:{minute:02}:{second:02}{fraction}{zone}")
            },
        )
}

/// A leap second written in some offset: valid only when it is the last
/// second of a month in UTC, which the generator makes likely.
fn leap_second_text() -> impl Strategy<Value = String> {
    (0i32..=9999, 1u8..=12, any::<bool>(), any_offset()).prop_filter_map(
        "local year outside 0-9999",
        |(year, month, month_end, offset)| {
            let month = Month::try_from(month).unwrap();
            let day = if month_end {
                month.length(year)
            } else {
                month.length(year) - 1
            };
            let utc = PrimitiveDateTime::new(
                Date::from_calendar_date(year, month, day).ok()?,
                Time::from_hms(23, 59, 59).unwrap(),
            )
            .assume_utc();
            let local = utc.checked_to_offset(offset)?;
            if !(0..=9999).contains(&local.year()) {
                return None;
            }
            let (hours, minutes, _) = offset.as_hms();
            let sign = if offset.is_negative() { '-' } else { '+' };
            Some(format!(
                "{:04}-{:02}-{:02}T{:02}:{:02}:60{sign}{:02}:{:02}",
                local.year(),
                u8::from(local.month()),
                local.day(),
                local.hour(),
                local.minute(),
                hours.abs(),
                minutes.abs()
            ))
        },
    )
}

/// Aloware's zone-less `YYYY-MM-DD HH:MM:SS`, sometimes with a fraction.
fn zone_less_text() -> impl Strategy<Value = String> {
    (
        any_instant(),
        prop::sample::select(vec![' ', 'T']),
        "(\\.[0-9]{1,4})?",
    )
        .prop_filter_map("year outside 0-9999", |(instant, sep, fraction)| {
            (0..=9999).contains(&instant.year()).then(|| {
                format!(
                    "{:04}-{:02}-{:02}{sep}{:02}:{:02}:{:02}{fraction}",
                    instant.year(),
                    u8::from(instant.month()),
                    instant.day(),
                    instant.hour(),
                    instant.minute(),
                    instant.second(),
                )
            })
        })
}

/// One byte replaced, removed or inserted: the parsers must agree on what
/// they refuse as well as on what they accept.
fn mutated(text: impl Strategy<Value = String>) -> impl Strategy<Value = String> {
    (
        text,
        any::<prop::sample::Index>(),
        0u8..3,
        prop::sample::select(b"0123456789-:.+TtZz 6_".to_vec()),
    )
        .prop_map(|(text, index, kind, byte)| {
            let mut bytes = text.into_bytes();
            let at = index.index(bytes.len() + 1);
            match kind {
                0 if at < bytes.len() => bytes[at] = byte,
                1 if at < bytes.len() => {
                    bytes.remove(at);
                }
                _ => bytes.insert(at, byte),
            }
            String::from_utf8(bytes).unwrap()
        })
}

/// Kendo's `Retry-After` as an HTTP date in each of RFC 9110's three forms.
fn http_date_text() -> impl Strategy<Value = (String, i64)> {
    let instant = (0i128..253_402_300_799_000_000_000)
        .prop_map(|nanos| OffsetDateTime::from_unix_timestamp_nanos(nanos).unwrap());
    (instant, 0u8..3).prop_map(|(at, form)| {
        let weekday = &at.weekday().to_string()[..3];
        let month = MONTHS[usize::from(u8::from(at.month()) - 1)];
        let (h, m, s) = (at.hour(), at.minute(), at.second());
        let text = match form {
            0 => format!(
                "{weekday}, {:02} {month} {:04} {h:02}:{m:02}:{s:02} GMT",
                at.day(),
                at.year()
            ),
            1 => format!(
                "{}, {:02}-{month}-{:02} {h:02}:{m:02}:{s:02} GMT",
                at.weekday(),
                at.day(),
                at.year() % 100
            ),
            _ => format!(
                "{weekday} {month} {:2} {h:02}:{m:02}:{s:02} {:04}",
                at.day(),
                at.year()
            ),
        };
        (text, at.unix_timestamp())
    })
}

/// HTTP dates with components past their range (day 32, 25:61:61, Feb 30).
fn raw_http_date_text() -> impl Strategy<Value = String> {
    (
        0u32..=33,
        0usize..12,
        prop::sample::select(vec![
            "1994", "2026", "0000", "9999", "94", "69", "70", "+999", "-999",
        ]),
        (0u32..=25, 0u32..=61, 0u32..=61),
    )
        .prop_map(|(day, month, year, (h, m, s))| {
            format!(
                "Sun, {day:02} {} {year} {h:02}:{m:02}:{s:02} GMT",
                MONTHS[month]
            )
        })
}

// ---------------------------------------------------------------------------
// properties
// ---------------------------------------------------------------------------

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn rfc3339_dates_read_as_time_reads_them(text in rfc3339_text()) {
        check_everywhere(&text)?;
    }

    #[test]
    fn out_of_range_components_are_refused_as_time_refuses_them(text in raw_text()) {
        check_everywhere(&text)?;
    }

    #[test]
    fn leap_seconds_are_accepted_only_where_time_accepts_them(text in leap_second_text()) {
        check_everywhere(&text)?;
    }

    #[test]
    fn zone_less_utc_dates_read_as_before(text in zone_less_text()) {
        check_everywhere(&text)?;
    }

    #[test]
    fn mutated_dates_are_accepted_or_refused_as_time_decides(
        text in prop_oneof![mutated(rfc3339_text()), mutated(zone_less_text()), mutated(raw_text())]
    ) {
        check_everywhere(&text)?;
    }

    #[test]
    fn epoch_milliseconds_read_as_before(
        ms in prop_oneof![any::<u64>(), 0u64..=253_402_300_799_999, 253_402_300_799_000u64..=253_402_300_800_999]
    ) {
        check_everywhere(&ms.to_string())?;
    }

    #[test]
    fn http_dates_give_the_retry_after_time_gives((text, at) in http_date_text(), ahead in 0i64..4000) {
        let now = u64::try_from(at - ahead).unwrap_or(0);
        prop_assert_eq!(plugin_retry_after(&text, now), reference_retry_after(&text, now), "{}", text);
    }

    #[test]
    fn out_of_range_http_dates_are_refused_as_time_refuses_them(text in raw_http_date_text(), now in 0u64..4_000_000_000) {
        prop_assert_eq!(plugin_retry_after(&text, now), reference_retry_after(&text, now), "{}", text);
    }

    #[test]
    fn mutated_http_dates_are_read_as_time_reads_them(text in mutated(http_date_text().prop_map(|(text, _)| text)), now in 0u64..4_000_000_000) {
        prop_assert_eq!(plugin_retry_after(&text, now), reference_retry_after(&text, now), "{}", text);
    }
}

#[test]
fn the_reference_accepts_the_spellings_the_sources_send() {
    // Guards the properties above against a reference that refuses everything.
    for text in [
        "2026-04-22T11:30:00.512384-04:00",
        "2026-04-22T15:30:00Z",
        "2026-03-05 18:10:00",
        "1772641800000",
    ] {
        assert!(reference_parse(text).is_some(), "{text}");
        assert!(plugin_cursor(text).is_some(), "{text}");
    }
    assert_eq!(
        reference_http_date("Sun, 06 Nov 1994 08:49:37 GMT"),
        Some(784_111_777)
    );
}
