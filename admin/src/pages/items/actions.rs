//! The actions on an item — approve, edit, reject, cancel, regenerate, reschedule a publication —
//! each parsing its form, refusing with a reason or making the change with its audit entry in one
//! transaction, and answering with the card (htmx from the queue), a redirect or the item page.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use chrono::Utc;
use serde::Deserialize;
use uuid::Uuid;

use autosocial_core::audit::{self, Entry};
use autosocial_core::content::generate;
use autosocial_core::domain::Platform;
use autosocial_core::publishing::{self, ApproveError, ApproveFailure};
use autosocial_core::queue;

use crate::app::AppState;
use crate::auth::{CurrentUser, Reviewer};
use crate::error::{AppError, AppResult};
use crate::extract::{Form, Path};
use crate::pages::layout::Htmx;

use super::card::{CardOpts, EditAttempt, Notice, card, done_card, state_label};
use super::fields::{Draft, moderate, parse_hashtags, parse_link, parse_local};
use super::load::load_one;
use super::page::{PageOpts, render_page, reschedulable};
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
    match publishing::approve(&mut tx, user.agency_id, id, Some(user.user_id), variant).await {
        Ok(n) => {
            audit::append(
                &mut tx,
                &user.actor(),
                Entry::new(Some(user.agency_id), "item.approve")
                    .target("content_item", id)
                    .details(serde_json::json!({ "variant": variant, "publications": n })),
            )
            .await?;
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
    if !matches!(item.state.as_str(), "pending_review" | "approved") {
        let m = format!(
            "This item is {}; only items waiting for review or approved and not yet published can be edited.",
            state_label(&item.state).to_lowercase()
        );
        return answer(&state, &user, htmx, id, &f.back, Err(refused(m))).await;
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
    let updated = sqlx::query_scalar!(
        "UPDATE content_items SET caption = $3, hashtags = $4, cta = $5, link_url = $6, chosen_variant = NULL,
                moderation_status = $7, moderation = $8, updated_at = now()
         WHERE id = $1 AND agency_id = $2 AND state IN ('pending_review', 'approved') RETURNING state",
        id,
        agency,
        caption,
        &hashtags,
        cta,
        link,
        status,
        verdict.to_json()
    )
    .fetch_optional(&mut *tx)
    .await?;
    let Some(now_state) = updated else {
        tx.rollback().await?;
        return answer(
            &state,
            &user,
            htmx,
            id,
            &f.back,
            Err(refused("The item changed meanwhile; reload and try again.")),
        )
        .await;
    };
    let resnapshot = if now_state == "approved" {
        publishing::schedule(&mut tx, agency, id).await?
    } else {
        0
    };
    audit::append(
        &mut tx,
        &user.actor(),
        Entry::new(Some(agency), "item.edit")
            .target("content_item", id)
            .details(
                serde_json::json!({ "moderation": status, "publications_updated": resnapshot }),
            ),
    )
    .await?;
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
    let item = load_one(&state, agency, id).await?;
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
    if item.state != "pending_review" {
        let m = format!(
            "This item is {}; only items waiting for review can be rejected.",
            state_label(&item.state).to_lowercase()
        );
        return answer(&state, &user, htmx, id, &f.back, Err(refused(m))).await;
    }
    let mut tx = state.pool.begin().await?;
    let done = sqlx::query!(
        "UPDATE content_items SET state = 'rejected', rejection_reason = $3, updated_at = now()
         WHERE id = $1 AND agency_id = $2 AND state = 'pending_review'",
        id,
        agency,
        reason
    )
    .execute(&mut *tx)
    .await?;
    if done.rows_affected() == 0 {
        tx.rollback().await?;
        return answer(
            &state,
            &user,
            htmx,
            id,
            &f.back,
            Err(refused("The item changed meanwhile; reload and try again.")),
        )
        .await;
    }
    audit::append(
        &mut tx,
        &user.actor(),
        Entry::new(Some(agency), "item.reject")
            .target("content_item", id)
            .details(serde_json::json!({ "reason": reason })),
    )
    .await?;
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
    let item = load_one(&state, agency, id).await?;
    if item.state != "approved" {
        let m = format!(
            "This item is {}; only approved items can be cancelled.",
            state_label(&item.state).to_lowercase()
        );
        return answer(&state, &user, htmx, id, &f.back, Err(refused(m))).await;
    }
    let mut tx = state.pool.begin().await?;
    let cancelled = publishing::cancel_item(&mut tx, agency, id).await?;
    audit::append(
        &mut tx,
        &user.actor(),
        Entry::new(Some(agency), "item.cancel")
            .target("content_item", id)
            .details(serde_json::json!({ "publications": cancelled })),
    )
    .await?;
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
    let agency = user.agency_id;
    let item = load_one(&state, agency, id).await?;
    let mut tx = state.pool.begin().await?;
    let reset = sqlx::query_scalar!(
        "UPDATE content_items SET state = 'planned', chosen_variant = NULL, moderation_status = 'pending',
                moderation = '{}', rejection_reason = NULL, generation_error = NULL, approved_by = NULL,
                approved_at = NULL, updated_at = now()
         WHERE id = $1 AND agency_id = $2 AND state IN ('pending_review', 'rejected', 'planned')
         RETURNING client_id",
        id,
        agency
    )
    .fetch_optional(&mut *tx)
    .await?;
    let Some(client) = reset else {
        tx.rollback().await?;
        let m = format!(
            "This item is {}; only items waiting for review or rejected can be regenerated.",
            state_label(&item.state).to_lowercase()
        );
        return answer(&state, &user, htmx, id, &f.back, Err(refused(m))).await;
    };
    sqlx::query!(
        "DELETE FROM content_variants WHERE item_id = $1 AND agency_id = $2",
        id,
        agency
    )
    .execute(&mut *tx)
    .await?;
    queue::enqueue(&mut tx, &generate::generate_job(agency, client, id)).await?;
    audit::append(
        &mut tx,
        &user.actor(),
        Entry::new(Some(agency), "item.regenerate").target("content_item", id),
    )
    .await?;
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
    let p = sqlx::query!(
        "SELECT state FROM publications WHERE id = $1 AND item_id = $2 AND agency_id = $3",
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
    if !reschedulable(&p.state) {
        let opts = refuse(format!(
            "This publication is {}; only failed ones or ones that need attention can be rescheduled.",
            p.state
        ));
        return render_page(
            &state,
            &user,
            htmx,
            &item,
            &opts,
            StatusCode::UNPROCESSABLE_ENTITY,
        )
        .await;
    }
    let at = match parse_local(&f.at, item.tz) {
        Ok(at) if at < Utc::now() - chrono::TimeDelta::minutes(1) => {
            Err("That time has passed; choose a time from now on.".to_owned())
        }
        other => other,
    };
    let at = match at {
        Ok(at) => at,
        Err(m) => {
            return render_page(
                &state,
                &user,
                htmx,
                &item,
                &refuse(m),
                StatusCode::UNPROCESSABLE_ENTITY,
            )
            .await;
        }
    };
    let mut tx = state.pool.begin().await?;
    if !publishing::reschedule(&mut tx, agency, publication, at).await? {
        tx.rollback().await?;
        let opts = refuse("The publication changed meanwhile; reload and try again.".into());
        return render_page(
            &state,
            &user,
            htmx,
            &item,
            &opts,
            StatusCode::UNPROCESSABLE_ENTITY,
        )
        .await;
    }
    audit::append(
        &mut tx,
        &user.actor(),
        Entry::new(Some(agency), "publication.reschedule")
            .target("publication", publication)
            .details(serde_json::json!({ "item": id, "at": at })),
    )
    .await?;
    tx.commit().await?;
    Ok(Redirect::to(&format!("/items/{id}")).into_response())
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
