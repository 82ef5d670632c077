//! Brand: saving a checked form (the console's form and the API's PATCH).

use super::*;

/// Save a checked brand for a client of `agency` and audit it, in the caller's transaction: the
/// console's form and the API's PATCH both end here.
pub(crate) async fn save_brand(
    conn: &mut sqlx::PgConnection,
    actor: &autosocial_core::audit::Actor,
    agency: Uuid,
    id: Uuid,
    v: &ValidBrand,
) -> AppResult<()> {
    let hashtag_sets = serde_json::to_value(&v.hashtag_sets).map_err(anyhow::Error::from)?;
    let [primary, secondary, background, text] = &v.colors;
    sqlx::query!(
        "INSERT INTO brand_settings (client_id, agency_id, voice, tone, pillars, ctas, banned_terms, hashtag_sets,
                                     color_primary, color_secondary, color_background, color_text, font, handle)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)
         ON CONFLICT (client_id) DO UPDATE SET
             voice = EXCLUDED.voice, tone = EXCLUDED.tone, pillars = EXCLUDED.pillars, ctas = EXCLUDED.ctas,
             banned_terms = EXCLUDED.banned_terms, hashtag_sets = EXCLUDED.hashtag_sets,
             color_primary = EXCLUDED.color_primary, color_secondary = EXCLUDED.color_secondary,
             color_background = EXCLUDED.color_background, color_text = EXCLUDED.color_text,
             font = EXCLUDED.font, handle = EXCLUDED.handle, updated_at = now()
         WHERE brand_settings.agency_id = EXCLUDED.agency_id",
        id,
        agency,
        v.voice,
        v.tone,
        &v.pillars,
        &v.ctas,
        &v.banned_terms,
        hashtag_sets,
        primary,
        secondary,
        background,
        text,
        v.font,
        v.handle,
    )
    .execute(&mut *conn)
    .await?;
    audit::append(
        &mut *conn,
        actor,
        Entry::new(Some(agency), "brand.update")
            .target("client", id)
            .details(serde_json::json!({
                "tone": v.tone, "pillars": v.pillars.len(), "ctas": v.ctas.len(),
                "banned_terms": v.banned_terms.len(), "hashtag_sets": v.hashtag_sets.len(),
                "colors": v.colors, "font": v.font, "handle": v.handle,
            })),
    )
    .await?;
    Ok(())
}
