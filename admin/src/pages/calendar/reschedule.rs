//! Rescheduling from the calendar: the form, its checks in the client's timezone, the handlers.

use super::*;

#[derive(Debug, Deserialize, Default)]
pub struct RescheduleForm {
    #[serde(default)]
    at: String,
    #[serde(default)]
    view: String,
    #[serde(default)]
    date: String,
    #[serde(default)]
    client: String,
    /// "client" when the form came from a client's own calendar.
    #[serde(default)]
    scope: String,
}

impl RescheduleForm {
    fn back(&self) -> AppResult<(Scope, CalendarQuery)> {
        let client = parse_client(&self.client)?;
        // the view to come back to is checked like the calendar's own address
        CalendarQuery {
            view: self.view.clone(),
            date: self.date.clone(),
            ..CalendarQuery::default()
        }
        .checked(Utc::now().date_naive())?;
        let scope = match (self.scope.as_str(), client) {
            ("client", Some(c)) => Scope::Client(c),
            _ => Scope::Agency(client),
        };
        Ok((
            scope,
            CalendarQuery {
                view: self.view.clone(),
                date: self.date.clone(),
                client: match scope {
                    Scope::Agency(Some(c)) => c.to_string(),
                    _ => String::new(),
                },
                client_name: None,
                after: String::new(),
            },
        ))
    }
}

pub(super) async fn refused(
    state: &AppState,
    user: &CurrentUser,
    htmx: Htmx,
    f: &RescheduleForm,
    refusal: Refusal,
) -> AppResult<Response> {
    let (scope, q) = f.back()?;
    let (title, body) = render(state, user, scope, &q, Some(&refusal)).await?;
    let nav = match scope {
        Scope::Client(_) => Nav::Clients,
        Scope::Agency(_) => Nav::Calendar,
    };
    Ok((
        StatusCode::UNPROCESSABLE_ENTITY,
        respond(htmx, user, &title, nav, body),
    )
        .into_response())
}

pub(super) fn back_to(f: &RescheduleForm) -> AppResult<Response> {
    let (scope, q) = f.back()?;
    let (view, anchor, _) = q.checked(Utc::now().date_naive())?;
    Ok(Redirect::to(&scope.url(view, anchor)).into_response())
}

/// The client's zone of an item or publication of the agency (`None`: no such row).
pub(super) async fn zone_of(
    state: &AppState,
    agency: Uuid,
    item: Option<Uuid>,
    publication: Option<Uuid>,
) -> AppResult<Tz> {
    let zone = sqlx::query_scalar!(
        "SELECT c.timezone FROM clients c
         WHERE c.agency_id = $1 AND c.id = (
             SELECT client_id FROM content_items WHERE id = $2 AND agency_id = $1
             UNION ALL
             SELECT client_id FROM publications WHERE id = $3 AND agency_id = $1
             LIMIT 1)",
        agency,
        item,
        publication
    )
    .fetch_optional(&state.pool)
    .await?
    .ok_or(AppError::NotFound)?;
    Ok(Tz::from_str(&zone).unwrap_or(chrono_tz::UTC))
}

/// Parse, call, render: the new time is read in the client's zone, the move is `items`'s, and
/// a refusal (a time, or a post that may not move) is shown beside the form that asked.
pub(super) async fn reschedule_with(
    state: &AppState,
    user: &CurrentUser,
    htmx: Htmx,
    f: &RescheduleForm,
    target: Uuid,
    tz: Tz,
    publication: bool,
) -> AppResult<Response> {
    f.back()?;
    let refuse = |message: String| Refusal {
        target,
        value: f.at.clone(),
        message,
    };
    let at = match parse_local(&f.at, tz) {
        Ok(at) => at,
        Err(message) => return refused(state, user, htmx, f, refuse(message)).await,
    };
    let mut tx = state.pool.begin().await?;
    let actor = user.actor();
    let done = if publication {
        items::publications::reschedule(&mut tx, &actor, user.agency_id, target, at).await
    } else {
        items::reschedule(&mut tx, &actor, user.agency_id, target, at)
            .await
            .map(|_| ())
    };
    match done {
        Ok(()) => {
            tx.commit().await?;
            back_to(f)
        }
        Err(Failure::Refused(items::Refusal::NotFound)) => Err(AppError::NotFound),
        Err(Failure::Refused(r)) => {
            drop(tx);
            refused(state, user, htmx, f, refuse(r.to_string())).await
        }
        Err(Failure::Database(e)) => Err(e.into()),
    }
}

/// `POST /calendar/items/{id}/reschedule`: move an approved item (all its pending posts).
pub async fn reschedule_item(
    State(state): State<AppState>,
    user: Reviewer,
    htmx: Htmx,
    Path(id): Path<Uuid>,
    Form(f): Form<RescheduleForm>,
) -> AppResult<Response> {
    f.back()?;
    let tz = zone_of(&state, user.agency_id, Some(id), None).await?;
    reschedule_with(&state, &user, htmx, &f, id, tz, false).await
}

/// `POST /calendar/publications/{id}/reschedule`: try a failed publication again at a new time.
pub async fn reschedule_publication(
    State(state): State<AppState>,
    user: Reviewer,
    htmx: Htmx,
    Path(id): Path<Uuid>,
    Form(f): Form<RescheduleForm>,
) -> AppResult<Response> {
    f.back()?;
    let tz = zone_of(&state, user.agency_id, None, Some(id)).await?;
    reschedule_with(&state, &user, htmx, &f, id, tz, true).await
}
