//! Publishing on the Graph API: Page feed and photo posts, Instagram containers, publishing them.

use super::*;

pub(super) async fn edge_post(
    State(sb): State<Sandbox>,
    Extension(ctx): Extension<Ctx>,
    Path((version, id, edge)): Path<(String, String, String)>,
    headers: HeaderMap,
    Query(q): Query<HashMap<String, String>>,
    body: Bytes,
) -> Response {
    if !version_ok(&version) {
        return unknown_version(&version);
    }
    let p = post_params(q, &headers, &body);
    let who = caller(&sb, &ctx, &headers, &p);
    match (ctx.meta, edge.as_str()) {
        (Meta::Facebook, "feed") => fb_feed(&sb, &ctx, &id, who, &p).await,
        (Meta::Facebook, "photos") => fb_photo(&sb, &ctx, &id, who, &p).await,
        (Meta::Instagram, "media") => ig_container(&sb, &ctx, &id, who, &p).await,
        (Meta::Instagram, "media_publish") => ig_publish(&sb, &ctx, &id, who, &p).await,
        _ => invalid(&format!("Unsupported post request. Unknown edge ({edge})")),
    }
}

/// Publishing as a Page takes that Page's token: Meta's permission error otherwise.
pub(super) fn not_the_page(who: &Caller, page: &str) -> Option<Response> {
    match who {
        Caller::Page(p) if p == page => None,
        _ => Some(graph_error(
            StatusCode::FORBIDDEN,
            json!({"message": "(#200) If posting to a page, requires both pages_read_engagement and pages_manage_posts as an admin with sufficient administrative permission", "code": 200}),
        )),
    }
}

/// A post-creating request on a Page: the knobs' faults, then a Page token for that Page.
pub(super) async fn admit_page(
    sb: &Sandbox,
    ctx: &Ctx,
    endpoint: &str,
    who: Option<Caller>,
    page: &str,
) -> Result<(), Response> {
    let who = admit(sb, ctx, endpoint, who.as_ref(), true).await?;
    if let Some(r) = not_the_page(&who, page) {
        refused(sb, ctx, endpoint, who.account(), "forbidden");
        return Err(r);
    }
    Ok(())
}

pub(super) async fn fb_feed(
    sb: &Sandbox,
    ctx: &Ctx,
    page: &str,
    who: Option<Caller>,
    p: &HashMap<String, String>,
) -> Response {
    if let Err(r) = admit_page(sb, ctx, "feed.create", who, page).await {
        return r;
    }
    let message = p.get("message").cloned().unwrap_or_default();
    let link = p.get("link").filter(|l| !l.is_empty());
    if message.trim().is_empty() && link.is_none() {
        refused(sb, ctx, "feed.create", page, "invalid");
        return invalid("(#100) Missing message or attachment");
    }
    if let Some(l) = link
        && url::Url::parse(l).is_err()
    {
        refused(sb, ctx, "feed.create", page, "invalid");
        return invalid("(#100) The link URL is not properly formatted");
    }
    let (post, after) = sb.create_post(NewPost {
        platform: "facebook",
        endpoint: "feed.create",
        account: page,
        text: &message,
        marker: None,
        link_url: link.map(String::as_str),
        media: Vec::new(),
    });
    sb.answer_created(
        after,
        Json(json!({"id": fb_post_id(&post)})).into_response(),
    )
}

pub(super) async fn fb_photo(
    sb: &Sandbox,
    ctx: &Ctx,
    page: &str,
    who: Option<Caller>,
    p: &HashMap<String, String>,
) -> Response {
    if let Err(r) = admit_page(sb, ctx, "photos.create", who, page).await {
        return r;
    }
    let Some(url) = p.get("url").filter(|u| !u.is_empty()) else {
        refused(sb, ctx, "photos.create", page, "invalid");
        return graph_error(
            StatusCode::BAD_REQUEST,
            json!({"message": "(#324) Requires upload file", "code": 324}),
        );
    };
    if let Err(e) = sb.fetch_media(url).await {
        refused(sb, ctx, "photos.create", page, "media_refused");
        return graph_error(
            StatusCode::BAD_REQUEST,
            json!({"message": "(#324) Missing or invalid image file", "code": 324, "error_user_msg": e}),
        );
    }
    let caption = p
        .get("message")
        .or_else(|| p.get("caption"))
        .cloned()
        .unwrap_or_default();
    let (post, after) = sb.create_post(NewPost {
        platform: "facebook",
        endpoint: "photos.create",
        account: page,
        text: &caption,
        marker: None,
        link_url: None,
        media: vec![url.clone()],
    });
    sb.answer_created(
        after,
        Json(json!({"id": post.id, "post_id": fb_post_id(&post)})).into_response(),
    )
}

pub(super) async fn ig_container(
    sb: &Sandbox,
    ctx: &Ctx,
    ig: &str,
    who: Option<Caller>,
    p: &HashMap<String, String>,
) -> Response {
    let who = match admit(sb, ctx, "media.create", who.as_ref(), false).await {
        Ok(w) => w,
        Err(r) => return r,
    };
    if who.account() != ig {
        return unsupported(ig);
    }
    if let Some(kind) = p.get("media_type").filter(|k| *k != "IMAGE") {
        refused(sb, ctx, "media.create", ig, "invalid");
        return invalid(&format!(
            "(#100) The sandbox only supports IMAGE containers, not {kind}"
        ));
    }
    let Some(image_url) = p.get("image_url").filter(|u| !u.is_empty()) else {
        refused(sb, ctx, "media.create", ig, "invalid");
        return invalid("(#100) The parameter image_url is required");
    };
    let caption = p.get("caption").cloned().unwrap_or_default();
    if caption.chars().count() > 2200 {
        refused(sb, ctx, "media.create", ig, "invalid");
        return invalid("(#100) The caption is longer than 2,200 characters");
    }
    if let Err(e) = sb.fetch_media(image_url).await {
        refused(sb, ctx, "media.create", ig, "media_refused");
        return graph_error(
            StatusCode::BAD_REQUEST,
            json!({
                "message": "Only photo or video can be accepted as media type.",
                "code": 9004,
                "error_subcode": 2207052,
                "is_transient": false,
                "error_user_title": "Media download has failed.",
                "error_user_msg": format!("The media could not be fetched from this uri: {image_url} ({e})"),
            }),
        );
    }
    let id = format!("1789{}", now_us() % 1_000_000_000_000);
    ctx.containers.lock().expect("containers").insert(
        id.clone(),
        Container {
            owner: ig.to_owned(),
            image_url: image_url.clone(),
            caption,
            status_reads: 0,
            published: None,
        },
    );
    ok(sb, ctx, "media.create", ig, Some(&id));
    Json(json!({ "id": id })).into_response()
}

pub(super) async fn ig_publish(
    sb: &Sandbox,
    ctx: &Ctx,
    ig: &str,
    who: Option<Caller>,
    p: &HashMap<String, String>,
) -> Response {
    let who = match admit(sb, ctx, "media.publish", who.as_ref(), true).await {
        Ok(w) => w,
        Err(r) => return r,
    };
    if who.account() != ig {
        return unsupported(ig);
    }
    let Some(creation_id) = p.get("creation_id").filter(|c| !c.is_empty()) else {
        refused(sb, ctx, "media.publish", ig, "invalid");
        return invalid("(#100) The parameter creation_id is required");
    };
    let (image_url, caption) = {
        let containers = ctx.containers.lock().expect("containers");
        match containers.get(creation_id).filter(|c| c.owner == ig) {
            None => {
                drop(containers);
                refused(sb, ctx, "media.publish", ig, "invalid");
                return graph_error(
                    StatusCode::BAD_REQUEST,
                    json!({"message": "Media builder not found", "code": 24, "error_subcode": 2207008,
                           "error_user_title": "Media builder not found", "error_user_msg": "The media builder with creation id was not found."}),
                );
            }
            Some(c) if c.published.is_some() => {
                drop(containers);
                refused(sb, ctx, "media.publish", ig, "invalid");
                return invalid("(#100) This media container has already been published");
            }
            Some(c) if c.status_reads < 2 => {
                drop(containers);
                refused(sb, ctx, "media.publish", ig, "not_ready");
                return graph_error(
                    StatusCode::BAD_REQUEST,
                    json!({"message": "Media ID is not available", "code": 9007, "error_subcode": 2207027,
                           "error_user_title": "Media not ready for publishing", "error_user_msg": "The media is not ready for publishing, please wait for a moment"}),
                );
            }
            Some(c) => (c.image_url.clone(), c.caption.clone()),
        }
    };
    let (post, after) = sb.create_post(NewPost {
        platform: "instagram",
        endpoint: "media.publish",
        account: ig,
        text: &caption,
        marker: None,
        link_url: None,
        media: vec![image_url],
    });
    if let Some(c) = ctx
        .containers
        .lock()
        .expect("containers")
        .get_mut(creation_id)
    {
        c.published = Some(post.id.clone());
    }
    sb.answer_created(after, Json(json!({"id": post.id})).into_response())
}
