//! A client filter for agencies with thousands of clients (the review queue, the agency-wide
//! calendar): one text field for the client's name instead of a list of every client.
//!
//! * With JavaScript, htmx fetches suggestions as one types (`GET /clients/suggest`, at most
//!   [`SUGGESTIONS`] names) into the field's `<datalist>`.
//! * Without it, the same form is submitted as typed: the server resolves the name (names are
//!   unique within an agency): an exact name, or a single client whose name contains the text,
//!   filters by that client; several matches are offered as links; none says so.
//! * Links and paging carry the resolved client's id (`client=`).
//!
//! Every lookup is scoped by the session's agency: another agency's client is as absent as a
//! made-up one.

use std::str::FromStr;

use axum::extract::State;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use maud::{Markup, html};
use serde::Deserialize;
use uuid::Uuid;

use crate::app::AppState;
use crate::auth::Viewer;
use crate::error::{AppError, AppResult};
use crate::extract::Query;

/// Names suggested (and matches offered without JavaScript) at most.
pub const SUGGESTIONS: i64 = 20;
/// The form field's name.
pub const FIELD: &str = "client_name";

/// What the filter resolved to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Resolved {
    /// No client filter: every client.
    All,
    /// One client.
    One { id: Uuid, name: String },
    /// The typed text matches several clients: choose one (`more`: beyond those listed).
    Choices {
        typed: String,
        matches: Vec<(Uuid, String)>,
        more: bool,
    },
    /// Nothing matches the typed text.
    NoMatch { typed: String },
}

impl Resolved {
    pub fn client(&self) -> Option<Uuid> {
        match self {
            Resolved::One { id, .. } => Some(*id),
            _ => None,
        }
    }

    /// The text for the field: the chosen client's name, or what was typed.
    pub fn text(&self) -> &str {
        match self {
            Resolved::All => "",
            Resolved::One { name, .. } => name,
            Resolved::Choices { typed, .. } | Resolved::NoMatch { typed } => typed,
        }
    }
}

/// `ILIKE` pattern matching `text` anywhere, with the wildcards in it taken literally.
pub fn contains_pattern(text: &str) -> String {
    format!(
        "%{}%",
        text.replace('\\', "\\\\")
            .replace('%', "\\%")
            .replace('_', "\\_")
    )
}

/// The agency's clients (not archived) whose name contains `text`, names starting with it
/// first, then by name; at most `limit`.
async fn matching(
    state: &AppState,
    agency: Uuid,
    text: &str,
    limit: i64,
) -> AppResult<Vec<(Uuid, String)>> {
    Ok(sqlx::query!(
        r#"SELECT id, name FROM clients
           WHERE agency_id = $1 AND status <> 'archived' AND name ILIKE $2
           ORDER BY strpos(lower(name), lower($3)) <> 1, lower(name), id
           LIMIT $4"#,
        agency,
        contains_pattern(text),
        text,
        limit
    )
    .fetch_all(&state.pool)
    .await?
    .into_iter()
    .map(|r| (r.id, r.name))
    .collect())
}

/// Resolve the filter from a client id (`client=`, from links) or a typed name (`client_name=`,
/// from the form; it wins when present). An id that is not one of the agency's clients is 404.
pub async fn resolve(
    state: &AppState,
    agency: Uuid,
    id: &str,
    typed: Option<&str>,
) -> AppResult<Resolved> {
    if let Some(typed) = typed {
        let typed = typed.trim();
        if typed.is_empty() {
            return Ok(Resolved::All);
        }
        if let Some(r) = sqlx::query!(
            "SELECT id, name FROM clients WHERE agency_id = $1 AND name = $2",
            agency,
            typed
        )
        .fetch_optional(&state.pool)
        .await?
        {
            return Ok(Resolved::One {
                id: r.id,
                name: r.name,
            });
        }
        let mut matches = matching(state, agency, typed, SUGGESTIONS + 1).await?;
        let more = matches.len() as i64 > SUGGESTIONS;
        matches.truncate(SUGGESTIONS as usize);
        return Ok(match matches.len() {
            0 => Resolved::NoMatch {
                typed: typed.to_owned(),
            },
            1 => {
                let (id, name) = matches.pop().expect("one match");
                Resolved::One { id, name }
            }
            _ => Resolved::Choices {
                typed: typed.to_owned(),
                matches,
                more,
            },
        });
    }
    match id.trim() {
        "" => Ok(Resolved::All),
        s => {
            let id = Uuid::from_str(s).map_err(|_| AppError::NotFound)?;
            let name = sqlx::query_scalar!(
                "SELECT name FROM clients WHERE id = $1 AND agency_id = $2",
                id,
                agency
            )
            .fetch_optional(&state.pool)
            .await?
            .ok_or(AppError::NotFound)?;
            Ok(Resolved::One { id, name })
        }
    }
}

/// The label, field and suggestion list (inside the page's GET form). `id` is the field's id.
pub fn field(id: &str, resolved: &Resolved, all_label: &str) -> Markup {
    let list = format!("{id}-suggestions");
    let hint = format!("{id}-hint");
    html! {
        label for=(id) { "Client" }
        input id=(id) type="search" name=(FIELD) value=(resolved.text()) list=(list)
            autocomplete="off" placeholder=(all_label) aria-describedby=(hint)
            data-hx-get="/clients/suggest" data-hx-trigger="input changed delay:250ms"
            data-hx-target={ "#" (list) } data-hx-swap="innerHTML" data-hx-sync="this:replace";
        datalist id=(list) {}
        p.hint id=(hint) { "Type part of a name; leave empty for " (all_label.to_lowercase()) "." }
    }
}

/// What the page says about a name that did not resolve to one client: the matches as links
/// (`href` makes a link for a client id), or that there is none.
pub fn outcome(resolved: &Resolved, href: impl Fn(Uuid) -> String) -> Markup {
    html! {
        @match resolved {
            Resolved::Choices { typed, matches, more } => {
                section.client-choices role="status" aria-labelledby="client-choices-title" {
                    h2 #client-choices-title { "Several clients match “" (typed) "”: choose one" }
                    ul {
                        @for (id, name) in matches {
                            li { a href=(href(*id)) { (name) } }
                        }
                    }
                    @if *more { p.hint { "Only the first " (SUGGESTIONS) " are listed: type more of the name." } }
                }
            }
            Resolved::NoMatch { typed } => {
                p.alert role="status" { "No client’s name contains “" (typed) "”. Showing every client." }
            }
            _ => {}
        }
    }
}

#[derive(Debug, Deserialize, Default)]
pub struct SuggestQuery {
    #[serde(default, rename = "client_name")]
    text: String,
}

/// `GET /clients/suggest?client_name=…`: `<option>`s for the field's datalist.
pub async fn suggest(
    State(state): State<AppState>,
    user: Viewer,
    Query(q): Query<SuggestQuery>,
) -> AppResult<Response> {
    let text = q.text.trim();
    let names = if text.is_empty() {
        Vec::new()
    } else {
        matching(&state, user.agency_id, text, SUGGESTIONS).await?
    };
    let body = html! {
        @for (_, name) in &names { option value=(name) {} }
    };
    let mut r = body.into_response();
    r.headers_mut()
        .insert(header::VARY, HeaderValue::from_static("HX-Request"));
    Ok(r)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn typed_wildcards_match_literally() {
        assert_eq!(contains_pattern("50%_off\\"), "%50\\%\\_off\\\\%");
        let r = Resolved::Choices {
            typed: "Ba".into(),
            matches: vec![(Uuid::nil(), "Bakery <1>".into())],
            more: true,
        };
        let html = outcome(&r, |id| format!("/review?client={id}")).into_string();
        assert!(html.contains("Bakery &lt;1&gt;"));
        assert!(html.contains("type more of the name"));
        assert_eq!(r.text(), "Ba");
        assert_eq!(r.client(), None);
    }
}
