//! Slots from content rules in the client's time zone, across daylight-saving changes in both
//! directions, and the minimum gap between two posts on one account.

use autosocial_core::content::schedule::{
    self, Candidate, Frequency, Occupied, RuleSpec, parse_timezone, resolve_local, slots,
};
use chrono::{DateTime, NaiveDate, NaiveTime, TimeDelta, TimeZone, Utc};
use chrono_tz::Tz;
use uuid::Uuid;

fn utc(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
}

fn t(s: &str) -> NaiveTime {
    NaiveTime::parse_from_str(s, "%H:%M").unwrap()
}

fn d(y: i32, m: u32, day: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(y, m, day).unwrap()
}

fn daily(times: &[&str]) -> RuleSpec {
    RuleSpec {
        frequency: Frequency::PerDay,
        posts_per_period: times.len() as u32,
        days_of_week: vec![1, 2, 3, 4, 5, 6, 7],
        local_times: times.iter().map(|s| t(s)).collect(),
        min_gap_minutes: 60,
    }
}

fn local(tz: Tz, at: DateTime<Utc>) -> String {
    at.with_timezone(&tz)
        .format("%Y-%m-%d %H:%M %Z")
        .to_string()
}

#[test]
fn nine_oclock_stays_nine_oclock_across_new_york_spring_forward_and_fall_back() {
    let ny: Tz = "America/New_York".parse().unwrap();
    // DST starts 2026-03-08 02:00 EST
    let spring = slots(&daily(&["09:00"]), ny, utc("2026-03-06T05:00:00Z"), 4);
    let shown: Vec<String> = spring.iter().map(|s| local(ny, *s)).collect();
    assert_eq!(
        shown,
        [
            "2026-03-06 09:00 EST",
            "2026-03-07 09:00 EST",
            "2026-03-08 09:00 EDT",
            "2026-03-09 09:00 EDT"
        ]
    );
    assert_eq!(spring[1], utc("2026-03-07T14:00:00Z"));
    assert_eq!(spring[2], utc("2026-03-08T13:00:00Z"));
    // DST ends 2026-11-01 02:00 EDT
    let fall = slots(&daily(&["09:00"]), ny, utc("2026-10-31T04:00:00Z"), 3);
    let shown: Vec<String> = fall.iter().map(|s| local(ny, *s)).collect();
    assert_eq!(
        shown,
        [
            "2026-10-31 09:00 EDT",
            "2026-11-01 09:00 EST",
            "2026-11-02 09:00 EST"
        ]
    );
    assert_eq!(fall[0], utc("2026-10-31T13:00:00Z"));
    assert_eq!(fall[1], utc("2026-11-01T14:00:00Z"));
}

#[test]
fn the_window_starts_at_from_and_keeps_todays_later_slots() {
    let ny: Tz = "America/New_York".parse().unwrap();
    // 12:00Z = 08:00 EDT on the 31st: 09:00 that day is still ahead
    let s = slots(&daily(&["09:00"]), ny, utc("2026-10-31T12:00:00Z"), 2);
    assert_eq!(
        s,
        [utc("2026-10-31T13:00:00Z"), utc("2026-11-01T14:00:00Z")]
    );
    // 13:30Z = 09:30 EDT: today's slot is gone
    let s = slots(&daily(&["09:00"]), ny, utc("2026-10-31T13:30:00Z"), 2);
    assert_eq!(s, [utc("2026-11-01T14:00:00Z")]);
}

#[test]
fn nonexistent_local_times_move_to_the_end_of_the_gap_and_ambiguous_ones_take_the_first() {
    let ny: Tz = "America/New_York".parse().unwrap();
    assert_eq!(
        resolve_local(ny, d(2026, 3, 8), t("02:30")),
        utc("2026-03-08T07:00:00Z"),
        "02:30 does not exist: 03:00 EDT"
    );
    assert_eq!(
        resolve_local(ny, d(2026, 11, 1), t("01:30")),
        utc("2026-11-01T05:30:00Z"),
        "01:30 happens twice: the EDT one"
    );
    let berlin: Tz = "Europe/Berlin".parse().unwrap();
    assert_eq!(
        resolve_local(berlin, d(2026, 3, 29), t("02:30")),
        utc("2026-03-29T01:00:00Z"),
        "03:00 CEST"
    );
    assert_eq!(
        resolve_local(berlin, d(2026, 10, 25), t("02:30")),
        utc("2026-10-25T00:30:00Z"),
        "02:30 CEST, the first of the two"
    );
    let sydney: Tz = "Australia/Sydney".parse().unwrap();
    // DST ends 2026-04-05 03:00 AEDT → 02:00 AEST; starts 2026-10-04 02:00 AEST → 03:00 AEDT
    assert_eq!(
        resolve_local(sydney, d(2026, 4, 5), t("02:30")),
        utc("2026-04-04T15:30:00Z"),
        "02:30 AEDT (+11), the first of the two"
    );
    assert_eq!(
        resolve_local(sydney, d(2026, 10, 4), t("02:30")),
        utc("2026-10-03T16:00:00Z"),
        "03:00 AEDT"
    );
}

#[test]
fn berlin_and_sydney_rules_keep_their_wall_clock_across_both_changes() {
    let berlin: Tz = "Europe/Berlin".parse().unwrap();
    for from in [utc("2026-03-27T00:00:00Z"), utc("2026-10-23T00:00:00Z")] {
        let s = slots(&daily(&["08:15", "18:45"]), berlin, from, 5);
        assert_eq!(s.len(), 10);
        for (i, at) in s.iter().enumerate() {
            let l = at.with_timezone(&berlin).format("%H:%M").to_string();
            assert_eq!(l, if i % 2 == 0 { "08:15" } else { "18:45" });
        }
    }
    let sydney: Tz = "Australia/Sydney".parse().unwrap();
    for from in [utc("2026-04-01T13:00:00Z"), utc("2026-09-30T14:00:00Z")] {
        let s = slots(&daily(&["02:30", "09:00"]), sydney, from, 6);
        let shown: Vec<String> = s.iter().map(|x| local(sydney, *x)).collect();
        // every day has both posts; the 02:30 of the spring-forward day moves to 03:00
        assert_eq!(s.len(), 12, "{shown:?}");
        for x in &shown {
            assert!(
                x.contains(" 02:30 ") || x.contains(" 09:00 ") || x.starts_with("2026-10-04 03:00"),
                "{x}"
            );
        }
        assert!(s.windows(2).all(|w| w[0] < w[1]));
    }
    let spring = slots(&daily(&["02:30"]), sydney, utc("2026-10-02T14:00:00Z"), 2);
    assert_eq!(local(sydney, spring[1]), "2026-10-04 03:00 AEDT");
}

#[test]
fn per_day_rules_post_at_their_first_times_on_their_weekdays_only() {
    let utc_tz: Tz = "UTC".parse().unwrap();
    let rule = RuleSpec {
        frequency: Frequency::PerDay,
        posts_per_period: 2,
        days_of_week: vec![1, 3], // Monday, Wednesday
        local_times: vec![t("17:00"), t("08:00"), t("12:00")],
        min_gap_minutes: 0,
    };
    // 2026-11-23 is a Monday
    let s = slots(&rule, utc_tz, utc("2026-11-23T00:00:00Z"), 7);
    assert_eq!(
        s,
        [
            utc("2026-11-23T08:00:00Z"),
            utc("2026-11-23T12:00:00Z"),
            utc("2026-11-25T08:00:00Z"),
            utc("2026-11-25T12:00:00Z")
        ]
    );
}

#[test]
fn per_week_rules_spread_over_the_week_and_pick_the_same_slots_whatever_day_the_plan_runs() {
    let utc_tz: Tz = "UTC".parse().unwrap();
    let rule = RuleSpec {
        frequency: Frequency::PerWeek,
        posts_per_period: 3,
        days_of_week: vec![1, 3, 5],
        local_times: vec![t("09:00"), t("17:00")],
        min_gap_minutes: 60,
    };
    let from_monday = slots(&rule, utc_tz, utc("2026-11-23T00:00:00Z"), 7);
    assert_eq!(
        from_monday,
        [
            utc("2026-11-23T09:00:00Z"),
            utc("2026-11-25T09:00:00Z"),
            utc("2026-11-27T09:00:00Z")
        ]
    );
    // planned again on Tuesday: the rest of this week is unchanged, next Monday is added
    let from_tuesday = slots(&rule, utc_tz, utc("2026-11-24T10:00:00Z"), 7);
    assert_eq!(
        from_tuesday,
        [
            utc("2026-11-25T09:00:00Z"),
            utc("2026-11-27T09:00:00Z"),
            utc("2026-11-30T09:00:00Z")
        ]
    );
    // never more than the rule's posts in one ISO week, even over two weeks
    let two_weeks = slots(&rule, utc_tz, utc("2026-11-23T00:00:00Z"), 14);
    assert_eq!(two_weeks.len(), 6);
    let more_than_slots = RuleSpec {
        posts_per_period: 10,
        ..rule
    };
    assert_eq!(
        slots(&more_than_slots, utc_tz, utc("2026-11-23T00:00:00Z"), 7).len(),
        6
    );
}

#[test]
fn an_unknown_time_zone_is_refused_naming_the_field() {
    let err = parse_timezone("clients.timezone", "Mars/Olympus_Mons").unwrap_err();
    let text = err.to_string();
    assert!(
        text.starts_with("clients.timezone: `Mars/Olympus_Mons`"),
        "{text}"
    );
    assert!(parse_timezone("clients.timezone", "Europe/Berlin").is_ok());
}

fn cand(rule: Uuid, at: &str, accounts: &[Uuid], gap: i64) -> Candidate {
    Candidate {
        rule_id: rule,
        nominal: utc(at),
        accounts: accounts.to_vec(),
        min_gap: TimeDelta::minutes(gap),
    }
}

#[test]
fn posts_sharing_an_account_are_pushed_apart_by_the_larger_gap() {
    let berlin: Tz = "Europe/Berlin".parse().unwrap();
    let (r1, r2, r3) = (Uuid::now_v7(), Uuid::now_v7(), Uuid::now_v7());
    let (a, b) = (Uuid::now_v7(), Uuid::now_v7());
    let existing = [Occupied {
        at: utc("2026-11-23T08:00:00Z"),
        accounts: vec![a],
        min_gap: TimeDelta::minutes(30),
    }];
    let (placed, dropped) = schedule::place(
        berlin,
        vec![
            // 30 min after an existing post on `a`, with a 90 min gap: to 09:30
            cand(r1, "2026-11-23T08:30:00Z", &[a], 90),
            // same instant, other account: stays
            cand(r2, "2026-11-23T08:30:00Z", &[b], 90),
            // shares `a` with r1's new place at 09:30 (gap 90 from r1): to 11:00
            cand(r3, "2026-11-23T09:45:00Z", &[b, a], 15),
        ],
        &existing,
    );
    assert!(dropped.is_empty(), "{dropped:?}");
    let at = |r: Uuid| placed.iter().find(|p| p.rule_id == r).unwrap().at;
    assert_eq!(at(r1), utc("2026-11-23T09:30:00Z"));
    assert_eq!(at(r2), utc("2026-11-23T08:30:00Z"));
    assert_eq!(at(r3), utc("2026-11-23T11:00:00Z"));
    // every pair sharing an account honours the larger gap
    for p in &placed {
        for q in &placed {
            if p.rule_id != q.rule_id && p.accounts.iter().any(|x| q.accounts.contains(x)) {
                assert!((p.at - q.at).abs() >= TimeDelta::minutes(15));
            }
        }
    }
}

#[test]
fn a_post_that_cannot_keep_its_gap_on_its_own_day_is_dropped_with_a_reason() {
    let ny: Tz = "America/New_York".parse().unwrap();
    let a = Uuid::now_v7();
    let rule = Uuid::now_v7();
    // 23:00 EST existing post; the new one at 23:30 EST would need 00:00 the next day
    let existing = [Occupied {
        at: ny
            .with_ymd_and_hms(2026, 11, 23, 23, 0, 0)
            .unwrap()
            .with_timezone(&Utc),
        accounts: vec![a],
        min_gap: TimeDelta::minutes(60),
    }];
    let nominal = ny
        .with_ymd_and_hms(2026, 11, 23, 23, 30, 0)
        .unwrap()
        .with_timezone(&Utc);
    let (placed, dropped) = schedule::place(
        ny,
        vec![Candidate {
            rule_id: rule,
            nominal,
            accounts: vec![a],
            min_gap: TimeDelta::minutes(60),
        }],
        &existing,
    );
    assert!(placed.is_empty());
    assert_eq!(dropped.len(), 1);
    assert!(
        dropped[0].reason.contains("2026-11-23"),
        "{}",
        dropped[0].reason
    );
}
