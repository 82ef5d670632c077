//! Turning content rules into slots: wall-clock times in the client's own time zone, on the
//! rule's weekdays, through daylight-saving changes; then placing them so that no account gets
//! two posts closer than the rules' minimum gap.
//!
//! * `per_day` rules post at the first `posts_per_period` of their (sorted) local times on every
//!   allowed day; a rule asking more posts than it has times posts once per time.
//! * `per_week` rules post at most `posts_per_period` times per ISO week, spread evenly over the
//!   week's allowed (day, time) pairs. The choice is made for the whole week, so a plan that runs
//!   every day with a moving window always picks the same slots.
//! * A local time that does not exist (spring forward) moves to the first valid instant after the
//!   gap (02:30 → 03:00 in New York); an ambiguous one (fall back) takes the earlier instant.
//! * [`place`]: a slot closer than the gap to another post on one of its accounts (from any rule,
//!   planned earlier or now) is pushed later until the gap holds, within the same local day;
//!   a slot that cannot fit that day is dropped with its reason (the planner logs it).

use std::str::FromStr;

use chrono::{
    DateTime, Datelike, Days, LocalResult, NaiveDate, NaiveDateTime, NaiveTime, TimeDelta,
    TimeZone, Timelike, Utc,
};
use chrono_tz::Tz;
use uuid::Uuid;

/// How a rule counts its posts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Frequency {
    PerDay,
    PerWeek,
}

impl FromStr for Frequency {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "per_day" => Ok(Frequency::PerDay),
            "per_week" => Ok(Frequency::PerWeek),
            other => Err(format!(
                "frequency: `{other}` is not one of per_day, per_week"
            )),
        }
    }
}

/// The scheduling part of a content rule.
#[derive(Debug, Clone, PartialEq)]
pub struct RuleSpec {
    pub frequency: Frequency,
    pub posts_per_period: u32,
    /// ISO weekdays, 1 = Monday .. 7 = Sunday.
    pub days_of_week: Vec<u8>,
    /// Wall-clock times in the client's time zone.
    pub local_times: Vec<NaiveTime>,
    pub min_gap_minutes: u32,
}

/// A time zone name that is not in the IANA database.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "{field}: `{value}` is not a known IANA time zone name (like Europe/Berlin or America/New_York)"
)]
pub struct BadTimezone {
    pub field: &'static str,
    pub value: String,
}

/// Parse a time zone name, naming the field it came from when it is not one.
pub fn parse_timezone(field: &'static str, value: &str) -> Result<Tz, BadTimezone> {
    Tz::from_str(value.trim()).map_err(|_| BadTimezone {
        field,
        value: value.to_owned(),
    })
}

/// The instant of a wall-clock time on a local date: the earlier instant when the time occurs
/// twice (fall back), the end of the gap when it does not occur at all (spring forward).
pub fn resolve_local(tz: Tz, date: NaiveDate, time: NaiveTime) -> DateTime<Utc> {
    let mut naive: NaiveDateTime = date.and_time(time);
    // Gaps are at most a few hours long (historical ones included); step through by minute.
    for _ in 0..(26 * 60) {
        match tz.from_local_datetime(&naive) {
            LocalResult::Single(t) => return t.with_timezone(&Utc),
            LocalResult::Ambiguous(a, b) => return a.min(b).with_timezone(&Utc),
            LocalResult::None => {
                // gaps end on a whole minute: continue from the next one
                let floor = naive
                    .with_second(0)
                    .and_then(|n| n.with_nanosecond(0))
                    .unwrap_or(naive);
                naive = floor + TimeDelta::minutes(1);
            }
        }
    }
    // unreachable with the IANA data; read the wall clock as UTC rather than lose the slot
    Utc.from_utc_datetime(&naive)
}

/// The local date of an instant in `tz`.
pub fn local_date(tz: Tz, at: DateTime<Utc>) -> NaiveDate {
    at.with_timezone(&tz).date_naive()
}

/// The rule's slots from `from` over `days` local days (the local date of `from` and the
/// `days - 1` after it), in order, none before `from`.
pub fn slots(rule: &RuleSpec, tz: Tz, from: DateTime<Utc>, days: u32) -> Vec<DateTime<Utc>> {
    if days == 0 || rule.posts_per_period == 0 || rule.local_times.is_empty() {
        return Vec::new();
    }
    let first = local_date(tz, from);
    let last = first + Days::new(u64::from(days) - 1);
    let mut times = rule.local_times.clone();
    times.sort();
    times.dedup();
    let allowed = |d: NaiveDate| {
        rule.days_of_week
            .contains(&(d.weekday().number_from_monday() as u8))
    };
    let wanted = rule.posts_per_period as usize;
    let mut out = Vec::new();
    match rule.frequency {
        Frequency::PerDay => {
            let mut d = first;
            while d <= last {
                if allowed(d) {
                    out.extend(times.iter().take(wanted).map(|t| resolve_local(tz, d, *t)));
                }
                d = d + Days::new(1);
            }
        }
        Frequency::PerWeek => {
            // whole ISO weeks touching the window, so the choice never depends on `from`
            let mut monday = first - Days::new(u64::from(first.weekday().num_days_from_monday()));
            while monday <= last {
                let candidates: Vec<(NaiveDate, NaiveTime)> = (0..7)
                    .map(|i| monday + Days::new(i))
                    .filter(|d| allowed(*d))
                    .flat_map(|d| times.iter().map(move |t| (d, *t)))
                    .collect();
                let c = candidates.len();
                let n = wanted.min(c);
                for i in 0..n {
                    let (d, t) = candidates[i * c / n];
                    if d >= first && d <= last {
                        out.push(resolve_local(tz, d, t));
                    }
                }
                monday = monday + Days::new(7);
            }
        }
    }
    out.retain(|s| *s >= from);
    out.sort();
    // two times inside one spring-forward gap land on the same instant
    out.dedup();
    out
}

/// A slot a rule wants, before collision avoidance.
#[derive(Debug, Clone, PartialEq)]
pub struct Candidate {
    pub rule_id: Uuid,
    /// The rule's own instant for it.
    pub nominal: DateTime<Utc>,
    pub accounts: Vec<Uuid>,
    pub min_gap: TimeDelta,
}

/// A post already on the calendar of some accounts.
#[derive(Debug, Clone, PartialEq)]
pub struct Occupied {
    pub at: DateTime<Utc>,
    pub accounts: Vec<Uuid>,
    pub min_gap: TimeDelta,
}

/// Where a candidate goes.
#[derive(Debug, Clone, PartialEq)]
pub struct Placement {
    pub rule_id: Uuid,
    pub nominal: DateTime<Utc>,
    /// `nominal`, or later when the gap to another post on one of its accounts required it.
    pub at: DateTime<Utc>,
    pub accounts: Vec<Uuid>,
}

/// A candidate that could not be placed on its day.
#[derive(Debug, Clone, PartialEq)]
pub struct Dropped {
    pub rule_id: Uuid,
    pub nominal: DateTime<Utc>,
    pub reason: String,
}

/// Place candidates (in order of their nominal instant, then rule id) around what is already
/// planned: two posts sharing an account stay at least the larger of their two gaps apart. A
/// candidate that conflicts is pushed to the earliest later instant where every gap holds; if
/// that leaves its local day it is dropped.
pub fn place(
    tz: Tz,
    mut candidates: Vec<Candidate>,
    occupied: &[Occupied],
) -> (Vec<Placement>, Vec<Dropped>) {
    candidates.sort_by_key(|c| (c.nominal, c.rule_id));
    let mut taken: Vec<Occupied> = occupied.to_vec();
    let (mut placed, mut dropped) = (Vec::new(), Vec::new());
    for c in candidates {
        let day = local_date(tz, c.nominal);
        let mut at = c.nominal;
        let outcome = loop {
            // the latest instant a conflicting post forces us to
            let pushed = taken
                .iter()
                .filter(|o| o.accounts.iter().any(|a| c.accounts.contains(a)))
                .filter_map(|o| {
                    let gap = o.min_gap.max(c.min_gap);
                    ((at - o.at).abs() < gap).then_some(o.at + gap)
                })
                .max();
            match pushed {
                None => break Ok(at),
                Some(next) if local_date(tz, next) != day => {
                    break Err(format!(
                        "no instant on {day} keeps {} min from the other posts of its accounts",
                        c.min_gap.num_minutes()
                    ));
                }
                Some(next) => at = next,
            }
        };
        match outcome {
            Ok(at) => {
                taken.push(Occupied {
                    at,
                    accounts: c.accounts.clone(),
                    min_gap: c.min_gap,
                });
                placed.push(Placement {
                    rule_id: c.rule_id,
                    nominal: c.nominal,
                    at,
                    accounts: c.accounts,
                });
            }
            Err(reason) => dropped.push(Dropped {
                rule_id: c.rule_id,
                nominal: c.nominal,
                reason,
            }),
        }
    }
    (placed, dropped)
}
