//! A posting rule's candidate slots: the one computation of what a rule asks to be planned,
//! used by the planner ([`super::generate::plan`]) and by the rules page's preview, so the
//! preview shows the slots the planner will place.
//!
//! A candidate is one of the rule's slots ([`schedule::slots`]: wall-clock times in the client's
//! zone, through daylight-saving changes) for all of the rule's accounts, with the rule's gap;
//! [`schedule::place`] then keeps the gaps between them. A slot's content type rotates through
//! the rule's content types by the slot's place in the calendar. Pure: no database, no clock.

use chrono::{DateTime, Datelike, Utc};
use chrono_tz::Tz;
use uuid::Uuid;

use super::brand::Rule;
use super::provider::ContentType;
use super::schedule::{self, Candidate, RuleSpec};

/// A rule's candidate with the content type its slot posts.
#[derive(Debug, Clone, PartialEq)]
pub struct RuleSlot {
    pub candidate: Candidate,
    pub content_type: ContentType,
}

/// The candidates of a rule given by its parts (the rules page previews rules that are not
/// saved yet): one per slot of `spec` over `days` local days from `from`, in time order, each for
/// all of `accounts` with the rule's gap.
pub fn candidates(
    rule_id: Uuid,
    spec: &RuleSpec,
    accounts: &[Uuid],
    tz: Tz,
    from: DateTime<Utc>,
    days: u32,
) -> Vec<Candidate> {
    let min_gap = chrono::TimeDelta::minutes(i64::from(spec.min_gap_minutes));
    schedule::slots(spec, tz, from, days)
        .into_iter()
        .map(|at| Candidate {
            rule_id,
            nominal: at,
            accounts: accounts.to_vec(),
            min_gap,
        })
        .collect()
}

/// The candidates of a client's enabled rule, each with its content type, over `days` local
/// days from `from`. A rule without an active account has none: nothing is planned for it.
pub fn rule_slots(rule: &Rule, tz: Tz, from: DateTime<Utc>, days: u32) -> Vec<RuleSlot> {
    if rule.accounts.is_empty() {
        return Vec::new();
    }
    let accounts: Vec<Uuid> = rule.accounts.iter().map(|a| a.id).collect();
    candidates(rule.id, &rule.spec, &accounts, tz, from, days)
        .into_iter()
        .enumerate()
        .map(|(n, candidate)| RuleSlot {
            content_type: content_type(&rule.content_types, tz, candidate.nominal, n),
            candidate,
        })
        .collect()
}

/// The content type of a rule's `n`-th slot (at `at`): the rule's types in turn, by the slot's
/// local day and its place among the rule's slots. A rule always has a type (the table checks
/// it); one without posts text.
pub fn content_type(types: &[ContentType], tz: Tz, at: DateTime<Utc>, n: usize) -> ContentType {
    if types.is_empty() {
        return ContentType::Text;
    }
    let day = schedule::local_date(tz, at).num_days_from_ce().max(0) as usize;
    types[(day + n) % types.len()]
}

#[cfg(test)]
mod tests {
    use chrono::{NaiveTime, TimeDelta, TimeZone};

    use super::*;
    use crate::content::brand::RuleAccount;
    use crate::content::schedule::Frequency;
    use crate::domain::Platform;

    fn utc(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s)
            .expect("an RFC 3339 instant")
            .with_timezone(&Utc)
    }

    fn spec(times: &[&str], gap: u32) -> RuleSpec {
        RuleSpec {
            frequency: Frequency::PerDay,
            posts_per_period: times.len() as u32,
            days_of_week: (1..=7).collect(),
            local_times: times
                .iter()
                .map(|t| NaiveTime::parse_from_str(t, "%H:%M").expect("a time"))
                .collect(),
            min_gap_minutes: gap,
        }
    }

    fn rule(times: &[&str], accounts: &[Uuid], types: &[ContentType]) -> Rule {
        Rule {
            id: Uuid::from_u128(7),
            name: "rule".into(),
            spec: spec(times, 45),
            content_types: types.to_vec(),
            accounts: accounts
                .iter()
                .map(|id| RuleAccount {
                    id: *id,
                    platform: Platform::Sandbox,
                })
                .collect(),
        }
    }

    fn local(tz: Tz, at: DateTime<Utc>) -> String {
        at.with_timezone(&tz)
            .format("%Y-%m-%d %H:%M %Z")
            .to_string()
    }

    #[test]
    fn a_rule_wants_its_slots_for_all_its_accounts_with_its_gap() {
        let tz = chrono_tz::Europe::Berlin;
        let accounts = [Uuid::from_u128(1), Uuid::from_u128(2)];
        // 10:00 in Berlin: the day's 09:00 has passed
        let from = utc("2026-06-01T08:00:00Z");
        let got = candidates(
            Uuid::from_u128(9),
            &spec(&["09:00", "17:30"], 30),
            &accounts,
            tz,
            from,
            2,
        );
        let shown: Vec<String> = got.iter().map(|c| local(tz, c.nominal)).collect();
        assert_eq!(
            shown,
            [
                "2026-06-01 17:30 CEST",
                "2026-06-02 09:00 CEST",
                "2026-06-02 17:30 CEST"
            ]
        );
        for c in &got {
            assert_eq!(c.rule_id, Uuid::from_u128(9));
            assert_eq!(c.accounts, accounts);
            assert_eq!(c.min_gap, TimeDelta::minutes(30));
        }
    }

    #[test]
    fn slots_keep_the_clients_wall_clock_on_both_daylight_saving_days() {
        let tz = chrono_tz::America::New_York;
        let accounts = [Uuid::from_u128(1)];
        let s = spec(&["01:30", "02:30", "09:00"], 0);
        // spring forward (8 March 2026): 02:30 does not exist and moves to 03:00 EDT
        let spring = candidates(
            Uuid::nil(),
            &s,
            &accounts,
            tz,
            utc("2026-03-08T05:00:00Z"),
            1,
        );
        let shown: Vec<String> = spring.iter().map(|c| local(tz, c.nominal)).collect();
        assert_eq!(
            shown,
            [
                "2026-03-08 01:30 EST",
                "2026-03-08 03:00 EDT",
                "2026-03-08 09:00 EDT"
            ]
        );
        // fall back (1 November 2026): 01:30 happens twice and the first (EDT) is taken
        let fall = candidates(
            Uuid::nil(),
            &s,
            &accounts,
            tz,
            utc("2026-11-01T04:00:00Z"),
            1,
        );
        let shown: Vec<String> = fall.iter().map(|c| local(tz, c.nominal)).collect();
        assert_eq!(
            shown,
            [
                "2026-11-01 01:30 EDT",
                "2026-11-01 02:30 EST",
                "2026-11-01 09:00 EST"
            ]
        );
        assert_eq!(fall[0].nominal, utc("2026-11-01T05:30:00Z"));
    }

    #[test]
    fn a_rule_without_an_active_account_wants_nothing() {
        let tz = chrono_tz::Europe::Berlin;
        let r = rule(&["09:00"], &[], &[ContentType::Text]);
        assert!(rule_slots(&r, tz, utc("2026-06-01T00:00:00Z"), 7).is_empty());
    }

    #[test]
    fn a_rules_slots_are_its_candidates_with_content_types_in_turn() {
        let tz = chrono_tz::Australia::Sydney;
        let accounts = [Uuid::from_u128(3)];
        let types = [ContentType::Text, ContentType::Image, ContentType::Link];
        let r = rule(&["08:00", "20:00"], &accounts, &types);
        // Sydney leaves daylight saving on 5 April 2026
        let from = tz
            .with_ymd_and_hms(2026, 4, 4, 0, 0, 0)
            .unwrap()
            .with_timezone(&Utc);
        let got = rule_slots(&r, tz, from, 3);
        let plain = candidates(r.id, &r.spec, &accounts, tz, from, 3);
        assert_eq!(
            got.iter().map(|s| s.candidate.clone()).collect::<Vec<_>>(),
            plain
        );
        assert_eq!(got.len(), 6);
        for (n, s) in got.iter().enumerate() {
            let day = schedule::local_date(tz, s.candidate.nominal)
                .num_days_from_ce()
                .max(0) as usize;
            assert_eq!(s.content_type, types[(day + n) % types.len()]);
            assert_eq!(s.candidate.min_gap, r.min_gap());
        }
        let shown: Vec<String> = got.iter().map(|s| local(tz, s.candidate.nominal)).collect();
        assert_eq!(shown[2], "2026-04-05 08:00 AEST");
        // consecutive slots never repeat a type while the rule has more than one
        assert!(
            got.windows(2)
                .all(|w| w[0].content_type != w[1].content_type)
        );
    }

    #[test]
    fn a_rule_without_content_types_posts_text() {
        let tz = chrono_tz::UTC;
        assert_eq!(
            content_type(&[], tz, utc("2026-06-01T09:00:00Z"), 3),
            ContentType::Text
        );
    }
}
