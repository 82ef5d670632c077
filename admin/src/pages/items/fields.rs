//! An item's fields as people type and read them: times in the client's zone, hashtags, links,
//! moderation of a draft before it is saved, and signed links to its images.

use std::time::Duration;

use chrono::{DateTime, NaiveDateTime, Utc};
use chrono_tz::Tz;
use uuid::Uuid;

use autosocial_core::content::moderation::{self, Verdict};
use autosocial_core::content::{brand, schedule};
use autosocial_core::domain::Platform;
use autosocial_core::publishing;

use crate::app::AppState;
use crate::error::{AppError, AppResult};
use crate::pages::{format_in_zone, relative};

/// How long a signed image link in the console stays valid.
const PREVIEW_URL_TTL: Duration = Duration::from_secs(3600);

/// "2026-11-23 16:04 CET (Europe/Berlin) · in 3 h".
pub fn when(at: DateTime<Utc>, tz: Tz, now: DateTime<Utc>) -> String {
    format!("{} · {}", format_in_zone(at, tz), relative(at, now))
}

/// The value for an `<input type="datetime-local">` showing `at` in `tz`.
pub fn local_input(at: DateTime<Utc>, tz: Tz) -> String {
    at.with_timezone(&tz).format("%Y-%m-%dT%H:%M").to_string()
}

/// A local date-time typed in the client's zone (`2026-11-23T16:30`, as a datetime-local input
/// sends it, or with a space or seconds). A time the clocks skip is moved to the next valid
/// instant, an ambiguous one (clocks turned back) takes the first.
pub fn parse_local(input: &str, tz: Tz) -> Result<DateTime<Utc>, String> {
    let s = input.trim();
    if s.is_empty() {
        return Err("Enter a date and time.".into());
    }
    let naive = ["%Y-%m-%dT%H:%M", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%d %H:%M"]
        .iter()
        .find_map(|f| NaiveDateTime::parse_from_str(s, f).ok())
        .ok_or_else(|| {
            let shown: String = s.chars().take(40).collect();
            format!("“{shown}” is not a date and time like 2026-11-23 16:30.")
        })?;
    if !crate::pages::in_date_window(naive.date()) {
        return Err(crate::pages::outside_window(
            &s.chars().take(40).collect::<String>(),
        ));
    }
    Ok(schedule::resolve_local(tz, naive.date(), naive.time()))
}

/// Hashtags as typed (spaces, commas or new lines between them), each with one leading `#`.
pub fn parse_hashtags(input: &str) -> Vec<String> {
    input
        .split(|c: char| c.is_whitespace() || c == ',')
        .map(str::trim)
        .filter(|t| !t.is_empty() && *t != "#")
        .map(|t| format!("#{}", t.trim_start_matches('#')))
        .collect()
}

/// An optional http(s) link: empty is none.
pub fn parse_link(input: &str) -> Result<Option<String>, String> {
    let s = input.trim();
    if s.is_empty() {
        return Ok(None);
    }
    match url::Url::parse(s) {
        Ok(u) if matches!(u.scheme(), "http" | "https") && u.host_str().is_some() => {
            Ok(Some(s.to_owned()))
        }
        _ => Err("Enter a full link starting with https:// (or http://).".into()),
    }
}

/// Moderation of a text for `platforms` with the client's banned terms, measured as it will be
/// posted (caption with the call to action, then hashtags; the link on X).
pub async fn moderate(
    state: &AppState,
    agency: Uuid,
    client: Uuid,
    platforms: &[Platform],
    draft: &Draft<'_>,
) -> AppResult<Verdict> {
    let Some(banned_terms) = brand::banned_terms(&state.pool, agency, client).await? else {
        return Err(AppError::NotFound);
    };
    Ok(moderate_with(platforms, draft, &banned_terms))
}

/// [`moderate`] with the client's banned terms already read.
pub fn moderate_with(
    platforms: &[Platform],
    draft: &Draft<'_>,
    banned_terms: &[String],
) -> Verdict {
    let text = publishing::compose_text(draft.caption, draft.cta, &[]);
    moderation::check(
        platforms,
        &moderation::Input {
            text: &text,
            hashtags: draft.hashtags,
            link_url: draft.link,
            banned_terms,
        },
    )
}

/// A post's text as typed, before it is saved.
pub struct Draft<'a> {
    pub caption: &'a str,
    pub cta: Option<&'a str>,
    pub hashtags: &'a [String],
    pub link: Option<&'a str>,
}

/// A signed `/media/...` link for an image, valid for an hour (the console's own `<img>`s go
/// through the same signed route the platforms use).
pub fn media_url(state: &AppState, path: &str) -> Option<String> {
    autosocial_core::media::valid_path(path).then(|| {
        autosocial_core::media::sign(
            &state.vault,
            &state.web.public_url,
            path,
            Utc::now().timestamp(),
            PREVIEW_URL_TTL,
        )
        .to_string()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn local_times_resolve_in_the_clients_zone() {
        let berlin = chrono_tz::Europe::Berlin;
        let at = parse_local("2026-07-01T14:00", berlin).unwrap();
        assert_eq!(at.to_rfc3339(), "2026-07-01T12:00:00+00:00");
        // spring forward: 02:30 does not exist, the next valid instant is 03:00 CEST
        let gap = parse_local("2026-03-29T02:30", berlin).unwrap();
        assert_eq!(gap.to_rfc3339(), "2026-03-29T01:00:00+00:00");
        // fall back: 02:30 happens twice, the first (CEST) is taken
        let twice = parse_local("2026-10-25 02:30", berlin).unwrap();
        assert_eq!(twice.to_rfc3339(), "2026-10-25T00:30:00+00:00");
        assert!(parse_local("tomorrow", berlin).is_err());
        assert!(parse_local("", berlin).is_err());
    }

    #[test]
    fn hashtags_and_links_are_normalised() {
        assert_eq!(
            parse_hashtags("spring, #sale  ##new\n#"),
            vec!["#spring", "#sale", "#new"]
        );
        assert_eq!(parse_link(" ").unwrap(), None);
        assert!(parse_link("javascript:alert(1)").is_err());
        assert!(parse_link("example.com").is_err());
        assert_eq!(
            parse_link("https://example.com/a").unwrap().as_deref(),
            Some("https://example.com/a")
        );
    }
}
