//! Rules: the slot preview.

use super::*;

// ---------------------------------------------------------------------------------------------
// The slot preview
// ---------------------------------------------------------------------------------------------

/// One previewed slot.
#[derive(Debug, Clone, PartialEq)]
pub struct PreviewSlot {
    /// The rule's own instant.
    pub nominal: DateTime<Utc>,
    /// Where it lands after keeping the gaps (`None`: dropped, with the reason).
    pub at: Option<DateTime<Utc>>,
    pub reason: Option<String>,
}

/// The rule's slots over [`PLAN_DAYS`] local days from `from`, placed like the planner places
/// them: together with the client's other enabled rules (`others`), keeping every shared
/// account's gap.
pub fn preview(
    tz: Tz,
    rule: &RuleSpec,
    accounts: &[Uuid],
    others: &[core_brand::Rule],
    from: DateTime<Utc>,
) -> Vec<PreviewSlot> {
    // a placeholder id for the previewed rule (it may not exist yet)
    let me = Uuid::nil();
    // without accounts the rule's own gap still shows (as if it had one account)
    let accounts = if accounts.is_empty() {
        vec![Uuid::from_u128(u128::MAX)]
    } else {
        accounts.to_vec()
    };
    let mut candidates = slots::candidates(me, rule, &accounts, tz, from, PLAN_DAYS);
    for o in others {
        candidates.extend(
            slots::rule_slots(o, tz, from, PLAN_DAYS)
                .into_iter()
                .map(|s| s.candidate),
        );
    }
    let (placed, dropped) = schedule::place(tz, candidates, &[]);
    let mut out: Vec<PreviewSlot> = placed
        .into_iter()
        .filter(|p| p.rule_id == me)
        .map(|p| PreviewSlot {
            nominal: p.nominal,
            at: Some(p.at),
            reason: None,
        })
        .chain(
            dropped
                .into_iter()
                .filter(|d| d.rule_id == me)
                .map(|d| PreviewSlot {
                    nominal: d.nominal,
                    at: None,
                    reason: Some(d.reason),
                }),
        )
        .collect();
    out.sort_by_key(|s| s.nominal);
    out
}

/// "Sun 29 Mar 09:00 CEST".
pub(super) fn local_label(at: DateTime<Utc>, tz: Tz) -> String {
    at.with_timezone(&tz)
        .format("%a %d %b %H:%M %Z")
        .to_string()
}

pub(super) fn utc_label(at: DateTime<Utc>) -> String {
    at.format("%Y-%m-%d %H:%M UTC").to_string()
}

pub(super) fn slot_time(at: DateTime<Utc>, tz: Tz) -> Markup {
    html! {
        time datetime=(crate::pages::html_datetime(&at)) title=(utc_label(at)) { (local_label(at, tz)) }
        " " span.utc { "(" (utc_label(at)) ")" }
    }
}

pub(super) fn preview_list(
    slots: &[PreviewSlot],
    tz: Tz,
    now: DateTime<Utc>,
    idle: bool,
) -> Markup {
    html! {
        @if idle {
            p.hint { "No connected account is chosen: these slots are planned only once one is." }
        }
        @if slots.is_empty() {
            p.empty { "No slot in these seven days." }
        } @else {
            ol.slots {
                @for s in slots {
                    li {
                        @match s.at {
                            Some(at) => {
                                (slot_time(at, tz))
                                @if at >= now { " " span.hint { (relative(at, now)) } }
                                @if at != s.nominal {
                                    " " span.moved { "moved from " (local_label(s.nominal, tz)) " to keep the gap" }
                                }
                            }
                            None => {
                                del { (slot_time(s.nominal, tz)) }
                                " " span.moved { "dropped: " (s.reason.as_deref().unwrap_or("")) }
                            }
                        }
                    }
                }
            }
        }
    }
}

/// The preview's first instant: the start of a chosen local date, else now.
pub(super) fn preview_from(
    tz: Tz,
    from: &str,
    now: DateTime<Utc>,
) -> Result<DateTime<Utc>, String> {
    let from = from.trim();
    if from.is_empty() {
        return Ok(now);
    }
    let date = NaiveDate::parse_from_str(from, "%Y-%m-%d").map_err(|_| {
        let shown: String = from.chars().take(40).collect();
        format!("“{shown}” is not a date (YYYY-MM-DD).")
    })?;
    let today = schedule::local_date(tz, now);
    if (date - today).num_days().abs() > 366 * 2 {
        return Err("Preview a week within two years of today.".into());
    }
    Ok(schedule::resolve_local(tz, date, NaiveTime::MIN))
}

pub(super) fn preview_section(client: &Client, body: Markup, from: DateTime<Utc>) -> Markup {
    let tz = client.timezone;
    let start = schedule::local_date(tz, from);
    html! {
        p.hint {
            "Seven days from " (start.format("%a %d %b %Y")) ", in " strong { (tz.name()) }
            " (the client's timezone); UTC in brackets."
        }
        (body)
    }
}
