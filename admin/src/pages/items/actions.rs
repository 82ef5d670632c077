//! The actions on an item — approve, edit, reject, cancel, regenerate, reschedule a publication —
//! each parsing its form, calling the move in `autosocial_core::items` (which checks the item's
//! state, makes the change and writes its audit entry) in one transaction, and answering with the
//! card (htmx from the queue), a redirect or the item page, with the refusal when there is one.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;
use uuid::Uuid;

use autosocial_core::domain::{ItemState, Platform};
use autosocial_core::items::{self as lifecycle, ApproveError, ApproveFailure, Failure, ItemMove};

use crate::app::AppState;
use crate::auth::{CurrentUser, Reviewer};
use crate::error::{AppError, AppResult};
use crate::extract::{Form, Path};
use crate::pages::layout::Htmx;

use super::card::{CardOpts, EditAttempt, Notice, card, done_card, state_label};
use super::fields::{Draft, moderate, parse_hashtags, parse_link, parse_local};
use super::load::load_one;
use super::page::{PageOpts, render_page};
use super::{FieldErrors, VARIANTS};

/// Where an action returns to: the review queue or the item page, never elsewhere.
pub(super) fn back_to(back: &str, id: Uuid) -> String {
    let ok = (back == "/review" || back.starts_with("/review?") || back == format!("/items/{id}"))
        && !back.contains(['\\', '\r', '\n']);
    if ok {
        back.to_owned()
    } else {
        format!("/items/{id}")
    }
}

fn from_queue(htmx: Htmx, back: &str) -> bool {
    htmx.0 && back.starts_with("/review")
}

/// The outcome of an action for the caller: htmx from the queue gets the card, a form gets a
/// redirect (success) or the item page with the message (refused).
async fn answer(
    state: &AppState,
    user: &CurrentUser,
    htmx: Htmx,
    id: Uuid,
    back: &str,
    outcome: Result<Notice, PageOpts>,
) -> AppResult<Response> {
    let back = back_to(back, id);
    match outcome {
        Ok(Notice::Done(message)) if from_queue(htmx, &back) => {
            // gone from the queue (approved, rejected, regenerating) or changed (edited)
            let item = load_one(state, user.agency_id, id).await?;
            if item.state == "pending_review" {
                let n = Notice::Done(message);
                Ok(card(
                    state,
                    user,
                    &item,
                    &CardOpts {
                        back: &back,
                        queue: true,
                        notice: Some(&n),
                        edit: None,
                        reject_error: None,
                    },
                )
                .into_response())
            } else {
                Ok(done_card(id, &message).into_response())
            }
        }
        Ok(_) => Ok(Redirect::to(&back).into_response()),
        Err(opts) => {
            let item = load_one(state, user.agency_id, id).await?;
            if from_queue(htmx, &back) {
                let body = card(
                    state,
                    user,
                    &item,
                    &CardOpts {
                        back: &back,
                        queue: true,
                        notice: opts.notice.as_ref(),
                        edit: opts.edit.as_ref(),
                        reject_error: opts.reject_error.as_deref(),
                    },
                );
                Ok((StatusCode::UNPROCESSABLE_ENTITY, body).into_response())
            } else {
                render_page(
                    state,
                    user,
                    Htmx(false),
                    &item,
                    &opts,
                    StatusCode::UNPROCESSABLE_ENTITY,
                )
                .await
            }
        }
    }
}

fn refused(message: impl Into<String>) -> PageOpts {
    PageOpts {
        notice: Some(Notice::Refused(message.into())),
        ..PageOpts::default()
    }
}

/// A move the item's state does not allow (the lifecycle's table), said as the lifecycle says it.
fn wrong_state(state: &str, wanted: ItemMove) -> PageOpts {
    match state.parse::<ItemState>() {
        Ok(state) => refused(lifecycle::Refusal::ItemState { state, wanted }.to_string()),
        Err(_) => refused("The item changed meanwhile; reload and try again."),
    }
}

/// What a move's failure means for the person: a refusal to show, or an error.
fn refusal_of(e: Failure) -> AppResult<PageOpts> {
    match e {
        Failure::Refused(lifecycle::Refusal::NotFound) => Err(AppError::NotFound),
        Failure::Refused(lifecycle::Refusal::ItemState { state, wanted }) => {
            Ok(wrong_state(state.as_str(), wanted))
        }
        Failure::Refused(r) => Ok(refused(r.to_string())),
        Failure::Database(e) => Err(e.into()),
    }
}

/// Why an approval was refused, for a person.
pub fn approve_message(e: &ApproveError) -> String {
    match e {
        ApproveError::Blocked => "Moderation blocked this item, so it cannot be approved. Edit it until it passes (or choose a variant that passes), or reject it.".into(),
        ApproveError::WrongState(s) => format!("This item is {}; only items waiting for review can be approved.", state_label(s).to_lowercase()),
        ApproveError::NoTargets => "This item has no target accounts, so there is nothing to publish. Reject it or regenerate it.".into(),
        ApproveError::NoVariant(v) => format!("There is no variant “{v}” for this item."),
        ApproveError::NotFound => "This item no longer exists.".into(),
    }
}

/// Approve one item in its own transaction (with its audit entry). `Ok(Err(message))`: refused.
pub async fn approve_one(
    state: &AppState,
    user: &CurrentUser,
    id: Uuid,
    variant: Option<&str>,
) -> AppResult<Result<usize, String>> {
    let mut tx = state.pool.begin().await?;
    match lifecycle::approve(&mut tx, &user.actor(), user.agency_id, id, variant).await {
        Ok(n) => {
            tx.commit().await?;
            Ok(Ok(n))
        }
        Err(ApproveFailure::Refused(ApproveError::NotFound)) => Err(AppError::NotFound),
        Err(ApproveFailure::Refused(e)) => Ok(Err(approve_message(&e))),
        Err(ApproveFailure::Database(e)) => Err(e.into()),
    }
}

#[derive(Debug, Deserialize, Default)]
pub struct ApproveForm {
    #[serde(default)]
    variant: String,
    #[serde(default)]
    back: String,
}

/// `POST /items/{id}/approve`.
pub async fn approve(
    State(state): State<AppState>,
    user: Reviewer,
    htmx: Htmx,
    Path(id): Path<Uuid>,
    Form(f): Form<ApproveForm>,
) -> AppResult<Response> {
    let variant = match f.variant.trim() {
        "" => None,
        v if VARIANTS.contains(&v) => Some(v),
        _ => {
            return answer(
                &state,
                &user,
                htmx,
                id,
                &f.back,
                Err(refused("Choose one of the variants shown.")),
            )
            .await;
        }
    };
    let outcome = match approve_one(&state, &user, id, variant).await? {
        Ok(n) => Ok(Notice::Done(format!(
            "Approved: {n} post{} scheduled.",
            if n == 1 { "" } else { "s" }
        ))),
        Err(m) => Err(refused(m)),
    };
    answer(&state, &user, htmx, id, &f.back, outcome).await
}

#[derive(Debug, Deserialize, Default, Clone)]
pub struct EditForm {
    #[serde(default)]
    pub caption: String,
    #[serde(default)]
    pub hashtags: String,
    #[serde(default)]
    pub cta: String,
    #[serde(default)]
    pub link_url: String,
    #[serde(default)]
    pub back: String,
}

/// `POST /items/{id}/edit`: save the text, re-run moderation for the item's platforms, and
/// re-snapshot the publications of an approved item that have not gone out.
pub async fn edit(
    State(state): State<AppState>,
    user: Reviewer,
    htmx: Htmx,
    Path(id): Path<Uuid>,
    Form(f): Form<EditForm>,
) -> AppResult<Response> {
    let agency = user.agency_id;
    let item = load_one(&state, agency, id).await?;
    if !item
        .state
        .parse()
        .is_ok_and(|s: ItemState| ItemMove::Edit.allows(s))
    {
        let opts = wrong_state(&item.state, ItemMove::Edit);
        return answer(&state, &user, htmx, id, &f.back, Err(opts)).await;
    }
    let mut errors = FieldErrors::new();
    let caption = f.caption.trim_end().to_owned();
    if caption.trim().is_empty() {
        errors.insert("caption", "Write the caption.".into());
    } else if caption.chars().count() > 63_206 {
        errors.insert("caption", "Use at most 63,206 characters.".into());
    }
    let hashtags = parse_hashtags(&f.hashtags);
    let cta = Some(f.cta.trim().to_owned()).filter(|c| !c.is_empty());
    if cta.as_ref().is_some_and(|c| c.chars().count() > 500) {
        errors.insert("cta", "Use at most 500 characters.".into());
    }
    let link = match parse_link(&f.link_url) {
        Ok(l) => l,
        Err(m) => {
            errors.insert("link_url", m);
            None
        }
    };
    if !errors.is_empty() {
        let opts = PageOpts {
            edit: Some(EditAttempt {
                form: f.clone(),
                errors,
                reasons: Vec::new(),
            }),
            ..PageOpts::default()
        };
        return answer(&state, &user, htmx, id, &f.back, Err(opts)).await;
    }
    let mut platforms: Vec<Platform> = item.targets.iter().map(|t| t.platform).collect();
    platforms.dedup();
    let verdict = moderate(
        &state,
        agency,
        item.client_id,
        &platforms,
        &Draft {
            caption: &caption,
            cta: cta.as_deref(),
            hashtags: &hashtags,
            link: link.as_deref(),
        },
    )
    .await?;
    if item.state == "approved" && !verdict.passed() {
        // an approved post may not turn into a blocked one: keep what was approved
        let opts = PageOpts {
            edit: Some(EditAttempt {
                form: f.clone(),
                errors: FieldErrors::new(),
                reasons: verdict.reasons,
            }),
            ..PageOpts::default()
        };
        return answer(&state, &user, htmx, id, &f.back, Err(opts)).await;
    }
    let status = if verdict.passed() { "pass" } else { "blocked" };
    let mut tx = state.pool.begin().await?;
    let edit = lifecycle::Edit {
        caption: &caption,
        hashtags: &hashtags,
        cta: cta.as_deref(),
        link: link.as_deref(),
        moderation_status: status,
        moderation: verdict.to_json(),
    };
    let resnapshot = match lifecycle::edit(&mut tx, &user.actor(), agency, id, &edit).await {
        Ok(n) => n,
        Err(e) => {
            tx.rollback().await?;
            let opts = refusal_of(e)?;
            return answer(&state, &user, htmx, id, &f.back, Err(opts)).await;
        }
    };
    tx.commit().await?;
    let message = match (status, resnapshot) {
        ("blocked", _) => "Saved, but moderation blocks it: see the reasons.".to_owned(),
        (_, 0) => "Saved; moderation passed.".to_owned(),
        (_, n) => format!(
            "Saved; moderation passed and {n} scheduled post{} updated.",
            if n == 1 { " was" } else { "s were" }
        ),
    };
    answer(&state, &user, htmx, id, &f.back, Ok(Notice::Done(message))).await
}

#[derive(Debug, Deserialize, Default)]
pub struct RejectForm {
    #[serde(default)]
    reason: String,
    #[serde(default)]
    back: String,
}

/// `POST /items/{id}/reject`: a reason is required.
pub async fn reject(
    State(state): State<AppState>,
    user: Reviewer,
    htmx: Htmx,
    Path(id): Path<Uuid>,
    Form(f): Form<RejectForm>,
) -> AppResult<Response> {
    let agency = user.agency_id;
    let reason = f.reason.trim();
    let error = if reason.is_empty() {
        Some("Say why it is rejected: the reason is kept with the item.")
    } else if reason.chars().count() > 2000 {
        Some("Use at most 2000 characters.")
    } else {
        None
    };
    if let Some(e) = error {
        let opts = PageOpts {
            reject_error: Some(e.into()),
            ..PageOpts::default()
        };
        return answer(&state, &user, htmx, id, &f.back, Err(opts)).await;
    }
    let mut tx = state.pool.begin().await?;
    if let Err(e) = lifecycle::reject(&mut tx, &user.actor(), agency, id, reason).await {
        tx.rollback().await?;
        let opts = refusal_of(e)?;
        return answer(&state, &user, htmx, id, &f.back, Err(opts)).await;
    }
    tx.commit().await?;
    answer(
        &state,
        &user,
        htmx,
        id,
        &f.back,
        Ok(Notice::Done("Rejected.".into())),
    )
    .await
}

/// `POST /items/{id}/cancel`: an approved item's posts that have not gone out are cancelled
/// with their publish jobs (what already went out stays).
pub async fn cancel(
    State(state): State<AppState>,
    user: Reviewer,
    htmx: Htmx,
    Path(id): Path<Uuid>,
    Form(f): Form<BackForm>,
) -> AppResult<Response> {
    let agency = user.agency_id;
    let mut tx = state.pool.begin().await?;
    let cancelled = match lifecycle::cancel(&mut tx, &user.actor(), agency, id).await {
        Ok(n) => n,
        Err(e) => {
            tx.rollback().await?;
            let opts = refusal_of(e)?;
            return answer(&state, &user, htmx, id, &f.back, Err(opts)).await;
        }
    };
    tx.commit().await?;
    let notice = if cancelled == 0 {
        Err(refused(
            "Nothing was left to cancel: the posts are going out or have gone out.",
        ))
    } else {
        Ok(Notice::Done(format!(
            "Cancelled {cancelled} scheduled post(s)."
        )))
    };
    answer(&state, &user, htmx, id, &f.back, notice).await
}

#[derive(Debug, Deserialize, Default)]
pub struct BackForm {
    #[serde(default)]
    back: String,
}

/// `POST /items/{id}/regenerate`: back to `planned` without its variants, and the item's
/// `generate` job enqueued in the same transaction (generation claims only planned items).
pub async fn regenerate(
    State(state): State<AppState>,
    user: Reviewer,
    htmx: Htmx,
    Path(id): Path<Uuid>,
    Form(f): Form<BackForm>,
) -> AppResult<Response> {
    let mut tx = state.pool.begin().await?;
    if let Err(e) = lifecycle::regenerate(&mut tx, &user.actor(), user.agency_id, id).await {
        tx.rollback().await?;
        let opts = refusal_of(e)?;
        return answer(&state, &user, htmx, id, &f.back, Err(opts)).await;
    }
    tx.commit().await?;
    answer(
        &state,
        &user,
        htmx,
        id,
        &f.back,
        Ok(Notice::Done(
            "Regenerating: the new variants will be back in the queue shortly.".into(),
        )),
    )
    .await
}

#[derive(Debug, Deserialize, Default)]
pub struct RescheduleForm {
    #[serde(default)]
    at: String,
}

/// `POST /items/{id}/publications/{publication}/reschedule`: a failed (or needs-attention)
/// publication back on schedule at a local time of the client.
pub async fn reschedule(
    State(state): State<AppState>,
    user: Reviewer,
    htmx: Htmx,
    Path((id, publication)): Path<(Uuid, Uuid)>,
    Form(f): Form<RescheduleForm>,
) -> AppResult<Response> {
    let agency = user.agency_id;
    let item = load_one(&state, agency, id).await?;
    // the publication must be this item's
    sqlx::query_scalar!(
        "SELECT id FROM publications WHERE id = $1 AND item_id = $2 AND agency_id = $3",
        publication,
        id,
        agency
    )
    .fetch_optional(&state.pool)
    .await?
    .ok_or(AppError::NotFound)?;
    let refuse = |m: String| PageOpts {
        reschedule_error: Some((publication, m, f.at.clone())),
        ..PageOpts::default()
    };
    let refusal = match parse_local(&f.at, item.tz) {
        Err(m) => m,
        Ok(at) => {
            let mut tx = state.pool.begin().await?;
            let actor = user.actor();
            match lifecycle::publications::reschedule(&mut tx, &actor, agency, publication, at)
                .await
            {
                Ok(()) => {
                    tx.commit().await?;
                    return Ok(Redirect::to(&format!("/items/{id}")).into_response());
                }
                Err(Failure::Refused(lifecycle::Refusal::NotFound)) => {
                    return Err(AppError::NotFound);
                }
                Err(Failure::Refused(r)) => r.to_string(),
                Err(Failure::Database(e)) => return Err(e.into()),
            }
        }
    };
    render_page(
        &state,
        &user,
        htmx,
        &item,
        &refuse(refusal),
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn actions_return_only_to_our_pages() {
        let id = Uuid::nil();
        assert_eq!(back_to("/review?client=x", id), "/review?client=x");
        assert_eq!(back_to(&format!("/items/{id}"), id), format!("/items/{id}"));
        assert_eq!(back_to("https://evil.example/", id), format!("/items/{id}"));
        assert_eq!(back_to("//evil.example/review", id), format!("/items/{id}"));
    }
}
