//! Settings: Members: inviting, roles, removing.

use super::*;

// ---------------------------------------------------------------------------------------------
// Members
// ---------------------------------------------------------------------------------------------

#[derive(Debug, Deserialize)]
pub struct InviteForm {
    #[serde(default)]
    email: String,
    #[serde(default)]
    role: String,
}

pub(super) fn valid_email(email: &str) -> bool {
    let Some((local, domain)) = email.split_once('@') else {
        return false;
    };
    !local.is_empty()
        && domain.contains('.')
        && !domain.starts_with('.')
        && !domain.ends_with('.')
        && !domain.contains('@')
        && email.len() <= 254
        && !email.chars().any(|c| c.is_whitespace() || c.is_control())
}

pub async fn invite(
    State(state): State<AppState>,
    user: Owner,
    htmx: Htmx,
    Form(f): Form<InviteForm>,
) -> AppResult<Response> {
    let email = f.email.trim();
    let refused = |field: &str, msg: &str| {
        Flash::error(field, msg)
            .value("invite-email", email)
            .value("invite-role", &f.role)
    };
    if !valid_email(email) {
        let flash = refused(
            "invite-email",
            "Enter an email address like name@example.com.",
        );
        return page(&state, htmx, &user, StatusCode::UNPROCESSABLE_ENTITY, flash).await;
    }
    let Ok(role) = Role::from_str(&f.role) else {
        let flash = refused("invite-role", "Choose owner, admin, reviewer or viewer.");
        return page(&state, htmx, &user, StatusCode::UNPROCESSABLE_ENTITY, flash).await;
    };
    let mut tx = state.pool.begin().await?;
    let invited = invitations::create(&mut tx, &user.actor(), user.agency_id, email, role).await?;
    let invitation = match invited {
        Invited::Created(i) => i,
        Invited::AlreadyMember => {
            let flash = refused(
                "invite-email",
                "This person is already a member of your agency.",
            );
            return page(&state, htmx, &user, StatusCode::UNPROCESSABLE_ENTITY, flash).await;
        }
    };
    tx.commit().await?;
    let link = format!(
        "{}/invite/{}",
        state.web.public_url.as_str().trim_end_matches('/'),
        invitation.token
    );
    // the same answer whether or not the address has an account anywhere
    let notice = html! {
        div.notice role="status" {
            p { "Invited " strong { (email) } " as " (role.as_str()) ". Send them this link over a channel you trust; it is shown only now, works once and expires " (when(invitation.expires_at)) "." }
            label for="invite-link" { "Invitation link" }
            input #invite-link type="text" readonly value=(link);
            p.hint { "They join when they open it and accept, with the password of their account or by choosing one." }
        }
    };
    let flash = Flash {
        notice: Some(notice),
        ..Flash::default()
    };
    let mut r = page(&state, htmx, &user, StatusCode::CREATED, flash).await?;
    r.headers_mut().insert(
        axum::http::header::CACHE_CONTROL,
        axum::http::HeaderValue::from_static("no-store"),
    );
    Ok(r)
}

/// `POST /settings/invitations/{id}/revoke`: the link stops working.
pub async fn revoke_invitation(
    State(state): State<AppState>,
    user: Owner,
    Path(id): Path<Uuid>,
) -> AppResult<Response> {
    let mut tx = state.pool.begin().await?;
    if !invitations::revoke(&mut tx, &user.actor(), user.agency_id, id).await? {
        return Err(AppError::NotFound);
    }
    tx.commit().await?;
    Ok(back("invitations"))
}

#[derive(Debug, Deserialize)]
pub struct RoleForm {
    #[serde(default)]
    role: String,
}

/// Lock the agency's owners and the member (so two owners demoting each other cannot both
/// succeed) and return the member's role and the number of owners.
async fn lock_member(
    tx: &mut sqlx::PgConnection,
    agency: Uuid,
    member: Uuid,
) -> AppResult<(Role, usize)> {
    let rows = sqlx::query!(
        r#"SELECT user_id, role AS "role: Role" FROM memberships
           WHERE agency_id = $1 AND (role = 'owner' OR user_id = $2)
           ORDER BY user_id FOR UPDATE"#,
        agency,
        member
    )
    .fetch_all(&mut *tx)
    .await?;
    let role = rows
        .iter()
        .find(|r| r.user_id == member)
        .map(|r| r.role)
        .ok_or(AppError::NotFound)?;
    let owners = rows.iter().filter(|r| r.role == Role::Owner).count();
    Ok((role, owners))
}

const LAST_OWNER: &str = "The agency needs at least one owner: make someone else owner first.";

pub async fn change_role(
    State(state): State<AppState>,
    user: Owner,
    htmx: Htmx,
    Path(member): Path<Uuid>,
    Form(f): Form<RoleForm>,
) -> AppResult<Response> {
    let field = format!("member-{member}");
    let mut tx = state.pool.begin().await?;
    let (current, owners) = lock_member(&mut tx, user.agency_id, member).await?;
    let Ok(role) = Role::from_str(&f.role) else {
        let flash = Flash::error(field, "Choose owner, admin, reviewer or viewer.");
        return page(&state, htmx, &user, StatusCode::UNPROCESSABLE_ENTITY, flash).await;
    };
    if current == role {
        return Ok(back("members"));
    }
    if current == Role::Owner && owners <= 1 {
        return page(
            &state,
            htmx,
            &user,
            StatusCode::UNPROCESSABLE_ENTITY,
            Flash::error(field, LAST_OWNER),
        )
        .await;
    }
    sqlx::query!(
        "UPDATE memberships SET role = $3 WHERE agency_id = $1 AND user_id = $2",
        user.agency_id,
        member,
        role.as_str()
    )
    .execute(&mut *tx)
    .await?;
    audit::append(
        &mut tx,
        &user.actor(),
        Entry::new(Some(user.agency_id), "member.role")
            .target("user", member)
            .details(serde_json::json!({ "from": current, "to": role })),
    )
    .await?;
    tx.commit().await?;
    Ok(back("members"))
}

pub async fn remove_member(
    State(state): State<AppState>,
    user: Owner,
    htmx: Htmx,
    Path(member): Path<Uuid>,
) -> AppResult<Response> {
    let mut tx = state.pool.begin().await?;
    let (current, owners) = lock_member(&mut tx, user.agency_id, member).await?;
    if current == Role::Owner && owners <= 1 {
        let flash = Flash::error(format!("member-{member}"), LAST_OWNER);
        return page(&state, htmx, &user, StatusCode::UNPROCESSABLE_ENTITY, flash).await;
    }
    // their sessions in this agency go with the membership (foreign key cascade)
    sqlx::query!(
        "DELETE FROM memberships WHERE agency_id = $1 AND user_id = $2",
        user.agency_id,
        member
    )
    .execute(&mut *tx)
    .await?;
    audit::append(
        &mut tx,
        &user.actor(),
        Entry::new(Some(user.agency_id), "member.remove")
            .target("user", member)
            .details(serde_json::json!({ "role": current })),
    )
    .await?;
    tx.commit().await?;
    Ok(back("members"))
}
