//! Timestamps at the REST edge: Phoenix writes ISO 8601 with microseconds and an offset
//! (`2024-01-01T12:00:00.123456+00:00`) and reads ISO 8601 where a naive time means UTC.

use time::format_description::well_known::Rfc3339;
use time::macros::format_description;
use time::{OffsetDateTime, PrimitiveDateTime, UtcOffset};

/// Unix nanoseconds as Phoenix's ISO 8601 (UTC, microseconds).
pub fn iso_from_nanos(nanos: i64) -> String {
    iso(i128::from(nanos))
}

fn iso(nanos: i128) -> String {
    let dt = OffsetDateTime::from_unix_timestamp_nanos(nanos).unwrap_or(OffsetDateTime::UNIX_EPOCH);
    let format =
        format_description!("[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:6]+00:00");
    dt.format(&format).unwrap_or_else(|_| "1970-01-01T00:00:00.000000+00:00".into())
}

/// Unix milliseconds as Phoenix's ISO 8601.
pub fn iso_from_millis(millis: i64) -> String {
    iso(i128::from(millis) * 1_000_000)
}

/// Parses ISO 8601 / RFC 3339; a time without offset is UTC (Phoenix: naive = UTC).
pub fn parse_iso(value: &str) -> Option<OffsetDateTime> {
    let value = value.trim();
    if let Ok(dt) = OffsetDateTime::parse(value, &Rfc3339) {
        return Some(dt);
    }
    let with_fraction = format_description!("[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond]");
    let whole = format_description!("[year]-[month]-[day]T[hour]:[minute]:[second]");
    let minutes = format_description!("[year]-[month]-[day]T[hour]:[minute]");
    let date = format_description!("[year]-[month]-[day]");
    let value = value.replace(' ', "T");
    PrimitiveDateTime::parse(&value, &with_fraction)
        .or_else(|_| PrimitiveDateTime::parse(&value, &whole))
        .or_else(|_| PrimitiveDateTime::parse(&value, &minutes))
        .ok()
        .map(|dt| dt.assume_offset(UtcOffset::UTC))
        .or_else(|| time::Date::parse(&value, &date).ok().map(|d| d.midnight().assume_utc()))
}

/// Unix milliseconds of an ISO 8601 value.
pub fn parse_iso_millis(value: &str) -> Option<i64> {
    parse_iso(value).and_then(|dt| i64::try_from(dt.unix_timestamp_nanos() / 1_000_000).ok())
}

/// Unix nanoseconds of an ISO 8601 value.
pub fn parse_iso_nanos(value: &str) -> Option<i64> {
    parse_iso(value).and_then(|dt| i64::try_from(dt.unix_timestamp_nanos()).ok())
}

/// Milliseconds since the Unix epoch, now.
pub fn now_millis() -> i64 {
    i64::try_from(OffsetDateTime::now_utc().unix_timestamp_nanos() / 1_000_000).unwrap_or(i64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_and_parses() {
        assert_eq!(iso_from_millis(1_704_110_400_123), "2024-01-01T12:00:00.123000+00:00");
        assert_eq!(iso_from_millis(32_503_680_000_000), "3000-01-01T00:00:00.000000+00:00");
        assert_eq!(parse_iso_millis("2024-01-01T12:00:00.123Z"), Some(1_704_110_400_123));
        assert_eq!(parse_iso_millis("2024-01-01T12:00:00"), Some(1_704_110_400_000));
        assert_eq!(parse_iso_millis("2024-01-01T13:00:00+01:00"), Some(1_704_110_400_000));
        assert_eq!(parse_iso_millis("2024-01-01"), Some(1_704_067_200_000));
        assert_eq!(parse_iso_millis("tomorrow"), None);
    }
}
