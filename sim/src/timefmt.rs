//! The timestamp spellings each vendor uses, and a strict ISO 8601 reader.

use time::{Date, Month, OffsetDateTime, PrimitiveDateTime, Time, UtcOffset};

/// Salesloft: microseconds and a numeric offset, e.g.
/// `2026-04-22T11:30:00.123456-04:00`.
pub fn salesloft(at: OffsetDateTime, offset: UtcOffset) -> String {
    let t = at.to_offset(offset);
    let (h, m, _) = offset.as_hms();
    let sign = if offset.is_negative() { '-' } else { '+' };
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:06}{}{:02}:{:02}",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second(),
        t.microsecond(),
        sign,
        h.unsigned_abs(),
        m.unsigned_abs(),
    )
}

/// HubSpot: UTC with milliseconds, e.g. `2026-04-22T15:30:00.123Z`.
pub fn millis_z(at: OffsetDateTime) -> String {
    let t = at.to_offset(UtcOffset::UTC);
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}Z",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second(),
        t.millisecond(),
    )
}

/// UTC to the second, e.g. `2026-04-22T15:30:00Z`.
pub fn seconds_z(at: OffsetDateTime) -> String {
    let t = at.to_offset(UtcOffset::UTC);
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}Z",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second(),
    )
}

/// Aloware: UTC without a zone, e.g. `2026-03-05 18:10:00`.
pub fn aloware(at: OffsetDateTime) -> String {
    let t = at.to_offset(UtcOffset::UTC);
    format!(
        "{:04}-{:02}-{:02} {:02}:{:02}:{:02}",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second(),
    )
}

/// Epoch milliseconds.
pub fn epoch_ms(at: OffsetDateTime) -> i64 {
    i64::try_from(at.unix_timestamp_nanos() / 1_000_000).unwrap_or(i64::MAX)
}

/// From epoch milliseconds.
pub fn from_epoch_ms(ms: i64) -> Option<OffsetDateTime> {
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000).ok()
}

/// Reads an ISO 8601 date or date-time in the extended format:
/// `YYYY-MM-DD`, optionally followed by `T` and `HH:MM`, `:SS`, a fraction,
/// and a zone (`Z`, `±HH:MM`, `±HHMM` or `±HH`). A date-time without a zone is
/// taken as UTC. A space instead of `T` is refused: it is not ISO 8601.
pub fn parse_iso8601(s: &str) -> Option<OffsetDateTime> {
    let b = s.as_bytes();
    let mut i = 0;
    let year = digits(b, &mut i, 4)?;
    expect(b, &mut i, b'-')?;
    let month = digits(b, &mut i, 2)?;
    expect(b, &mut i, b'-')?;
    let day = digits(b, &mut i, 2)?;
    let month = Month::try_from(u8::try_from(month).ok()?).ok()?;
    let date =
        Date::from_calendar_date(i32::try_from(year).ok()?, month, u8::try_from(day).ok()?).ok()?;
    if i == b.len() {
        return Some(PrimitiveDateTime::new(date, Time::MIDNIGHT).assume_utc());
    }
    match b.get(i) {
        Some(b'T' | b't') => i += 1,
        _ => return None,
    }
    let hour = digits(b, &mut i, 2)?;
    expect(b, &mut i, b':')?;
    let minute = digits(b, &mut i, 2)?;
    let mut second = 0;
    let mut nanos = 0u32;
    if b.get(i) == Some(&b':') {
        i += 1;
        second = digits(b, &mut i, 2)?;
        if matches!(b.get(i), Some(b'.' | b',')) {
            i += 1;
            let start = i;
            while b.get(i).is_some_and(u8::is_ascii_digit) {
                i += 1;
            }
            let frac = s.get(start..i)?;
            if frac.is_empty() {
                return None;
            }
            let kept: String = frac.chars().take(9).collect();
            let scale = 10u32.pow(9 - u32::try_from(kept.len()).ok()?);
            nanos = kept.parse::<u32>().ok()?.checked_mul(scale)?;
        }
    }
    let time = Time::from_hms_nano(
        u8::try_from(hour).ok()?,
        u8::try_from(minute).ok()?,
        u8::try_from(second).ok()?,
        nanos,
    )
    .ok()?;
    let local = PrimitiveDateTime::new(date, time);
    let offset = match b.get(i) {
        None => return Some(local.assume_utc()),
        Some(b'Z' | b'z') => {
            i += 1;
            UtcOffset::UTC
        }
        Some(&sign @ (b'+' | b'-')) => {
            i += 1;
            let oh = digits(b, &mut i, 2)?;
            let mut om = 0;
            if b.get(i) == Some(&b':') {
                i += 1;
                om = digits(b, &mut i, 2)?;
            } else if i < b.len() {
                om = digits(b, &mut i, 2)?;
            }
            let neg = sign == b'-';
            let oh = i8::try_from(oh).ok()?;
            let om = i8::try_from(om).ok()?;
            UtcOffset::from_hms(if neg { -oh } else { oh }, if neg { -om } else { om }, 0).ok()?
        }
        Some(_) => return None,
    };
    if i != b.len() {
        return None;
    }
    Some(local.assume_offset(offset))
}

fn digits(b: &[u8], i: &mut usize, n: usize) -> Option<u32> {
    let slice = b.get(*i..*i + n)?;
    let mut v = 0u32;
    for c in slice {
        if !c.is_ascii_digit() {
            return None;
        }
        v = v * 10 + u32::from(c - b'0');
    }
    *i += n;
    Some(v)
}

fn expect(b: &[u8], i: &mut usize, c: u8) -> Option<()> {
    (b.get(*i) == Some(&c)).then(|| *i += 1)
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    #[test]
    fn reads_rfc3339_with_microseconds_and_offset() {
        let t = parse_iso8601("2026-04-22T11:30:00.123456-04:00").unwrap();
        assert_eq!(t, datetime!(2026-04-22 15:30:00.123456 UTC));
    }

    #[test]
    fn reads_dates_and_zone_less_times_as_utc() {
        assert_eq!(
            parse_iso8601("2026-04-22").unwrap(),
            datetime!(2026-04-22 0:00 UTC)
        );
        assert_eq!(
            parse_iso8601("2026-04-22T15:30").unwrap(),
            datetime!(2026-04-22 15:30 UTC)
        );
        assert_eq!(
            parse_iso8601("2026-04-22T15:30:00+0200").unwrap(),
            datetime!(2026-04-22 13:30 UTC)
        );
    }

    #[test]
    fn refuses_what_is_not_iso8601() {
        for bad in [
            "",
            "yesterday",
            "2026-04-22 15:30:00",
            "2026-13-01",
            "2026-02-30",
            "2026-04-22T25:00:00Z",
            "2026-04-22T15:30:00.Z",
            "2026-04-22T15:30:00Zjunk",
            "1713799800",
        ] {
            assert!(parse_iso8601(bad).is_none(), "{bad}");
        }
    }

    #[test]
    fn salesloft_spelling_keeps_microseconds_and_offset() {
        let off = UtcOffset::from_hms(-4, 0, 0).unwrap();
        assert_eq!(
            salesloft(datetime!(2026-04-22 15:30:00.000042 UTC), off),
            "2026-04-22T11:30:00.000042-04:00"
        );
    }

    #[test]
    fn hubspot_and_aloware_spellings() {
        let t = datetime!(2026-03-05 18:10:00.5 UTC);
        assert_eq!(millis_z(t), "2026-03-05T18:10:00.500Z");
        assert_eq!(aloware(t), "2026-03-05 18:10:00");
        assert_eq!(seconds_z(t), "2026-03-05T18:10:00Z");
    }
}
