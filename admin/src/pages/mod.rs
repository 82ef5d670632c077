//! Pages: a full page wraps a partial; htmx requests get only the partial.

pub mod account;
pub mod audit;
pub mod brand;
pub mod calendar;
pub mod client_filter;
pub mod client_tabs;
pub mod clients;
pub mod composer;
pub mod dashboard;
pub mod fleet;
pub mod invitations;
pub mod items;
pub mod layout;
pub mod live;
pub mod login;
pub mod onboarding;
pub mod review;
pub mod rules;
pub mod settings;
pub mod switches;

use chrono::{DateTime, NaiveDate, Utc};
use chrono_tz::Tz;

/// The first and last day the console reads from a form or an address. Posts, audit entries and
/// calendars live well inside it; outside it, date arithmetic (a month's grid, a day's end in a
/// zone) and Postgres' timestamps would overflow, so such dates are refused at the edge.
pub fn date_window() -> (NaiveDate, NaiveDate) {
    (
        NaiveDate::from_ymd_opt(1970, 1, 1).expect("a valid date"),
        NaiveDate::from_ymd_opt(2199, 12, 31).expect("a valid date"),
    )
}

/// Whether `d` is inside [`date_window`].
pub fn in_date_window(d: NaiveDate) -> bool {
    let (first, last) = date_window();
    (first..=last).contains(&d)
}

/// The message for a date outside [`date_window`].
pub fn outside_window(typed: &str) -> String {
    let (first, last) = date_window();
    format!(
        "“{typed}” is outside the dates the console works with: choose one from {first} to {last}."
    )
}

/// A `YYYY-MM-DD` field: empty is `None`; anything else must be a calendar date inside
/// [`date_window`]. The error is the field's message.
pub fn parse_day(s: &str) -> Result<Option<NaiveDate>, String> {
    let s = s.trim();
    if s.is_empty() {
        return Ok(None);
    }
    let shown: String = s.chars().take(40).collect();
    match NaiveDate::parse_from_str(s, "%Y-%m-%d") {
        Ok(d) if in_date_window(d) => Ok(Some(d)),
        Ok(_) => Err(outside_window(&shown)),
        Err(_) => Err(format!("“{shown}” is not a date like 2026-11-23.")),
    }
}

/// "2026-11-23 16:04 CET (Europe/Berlin)" — times are shown in the client's zone, named.
pub fn format_in_zone(at: DateTime<Utc>, tz: Tz) -> String {
    let local = at.with_timezone(&tz);
    format!("{} ({})", local.format("%Y-%m-%d %H:%M %Z"), tz.name())
}

/// An instant as a `<time datetime>` value: UTC, with milliseconds only when it has a fraction
/// of a second. HTML's valid date-time strings allow one to three fraction digits, and the
/// instants Postgres keeps (a post's `published_at`) carry microseconds, so every page writes its
/// machine-readable times through here rather than with `to_rfc3339`.
pub fn html_datetime<Z: chrono::TimeZone>(at: &DateTime<Z>) -> String {
    let at = at.with_timezone(&Utc);
    let format = if at.timestamp_subsec_millis() == 0 {
        chrono::SecondsFormat::Secs
    } else {
        chrono::SecondsFormat::Millis
    };
    at.to_rfc3339_opts(format, true)
}

/// "in 3 h", "5 min ago" relative to `now`.
pub fn relative(at: DateTime<Utc>, now: DateTime<Utc>) -> String {
    let secs = (at - now).num_seconds();
    let (future, s) = (secs >= 0, secs.unsigned_abs());
    let amount = match s {
        0..=59 => {
            return if future {
                "in under a minute".into()
            } else {
                "just now".into()
            };
        }
        60..=3599 => format!("{} min", s / 60),
        3600..=86_399 => format!("{} h", s / 3600),
        _ => format!("{} d", s / 86_400),
    };
    if future {
        format!("in {amount}")
    } else {
        format!("{amount} ago")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn days_are_read_inside_the_window_only() {
        assert_eq!(parse_day(""), Ok(None));
        assert_eq!(
            parse_day(" 2026-11-23 "),
            Ok(NaiveDate::from_ymd_opt(2026, 11, 23))
        );
        for hostile in ["-262143-01-01", "+262142-12-31", "1969-12-31", "2200-01-01"] {
            let e = parse_day(hostile).unwrap_err();
            assert!(e.contains("1970-01-01 to 2199-12-31"), "{hostile}: {e}");
        }
        assert!(parse_day("23/11/2026").unwrap_err().contains("not a date"));
        assert!(parse_day("99999-01-01").unwrap_err().contains("not a date"));
        assert!(parse_day(&"9".repeat(10_000)).unwrap_err().chars().count() < 100);
    }

    #[test]
    fn html_datetimes_have_at_most_three_fraction_digits() {
        let whole = Utc.with_ymd_and_hms(2026, 12, 6, 23, 44, 30).unwrap();
        assert_eq!(html_datetime(&whole), "2026-12-06T23:44:30Z");
        let micros = whole + chrono::TimeDelta::microseconds(93_655);
        assert_eq!(html_datetime(&micros), "2026-12-06T23:44:30.093Z");
        // under a millisecond: whole seconds, not ".000"
        let tiny = whole + chrono::TimeDelta::microseconds(655);
        assert_eq!(html_datetime(&tiny), "2026-12-06T23:44:30Z");
        // a local time is written as the same instant in UTC
        let berlin = micros.with_timezone(&chrono_tz::Europe::Berlin);
        assert_eq!(html_datetime(&berlin), "2026-12-06T23:44:30.093Z");
    }

    #[test]
    fn times_are_shown_in_the_named_zone_and_relative() {
        let at = Utc.with_ymd_and_hms(2026, 7, 1, 12, 0, 0).unwrap();
        assert_eq!(
            format_in_zone(at, chrono_tz::Europe::Berlin),
            "2026-07-01 14:00 CEST (Europe/Berlin)"
        );
        let now = Utc.with_ymd_and_hms(2026, 7, 1, 9, 0, 0).unwrap();
        assert_eq!(relative(at, now), "in 3 h");
        assert_eq!(relative(now, at), "3 h ago");
        assert_eq!(relative(now, now), "in under a minute");
    }
}
