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
pub mod items;
pub mod layout;
pub mod live;
pub mod login;
pub mod onboarding;
pub mod review;
pub mod rules;
pub mod settings;
pub mod switches;

use chrono::{DateTime, Utc};
use chrono_tz::Tz;

/// "2026-11-23 16:04 CET (Europe/Berlin)" — times are shown in the client's zone, named.
pub fn format_in_zone(at: DateTime<Utc>, tz: Tz) -> String {
    let local = at.with_timezone(&tz);
    format!("{} ({})", local.format("%Y-%m-%d %H:%M %Z"), tz.name())
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
