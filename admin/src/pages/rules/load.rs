//! Rules: loading rules and their accounts.

use super::*;

// ---------------------------------------------------------------------------------------------
// Loading
// ---------------------------------------------------------------------------------------------

pub(crate) struct RuleRow {
    pub(crate) id: Uuid,
    pub(crate) name: String,
    pub(crate) enabled: bool,
    pub(crate) frequency: String,
    pub(crate) posts_per_period: i32,
    pub(crate) days_of_week: Vec<i16>,
    pub(crate) local_times: Vec<NaiveTime>,
    pub(crate) content_types: Vec<String>,
    pub(crate) min_gap_minutes: i32,
    pub(crate) account_ids: Vec<Uuid>,
}

impl RuleRow {
    pub(crate) fn spec(&self) -> Option<RuleSpec> {
        Some(RuleSpec {
            frequency: self.frequency.parse().ok()?,
            posts_per_period: u32::try_from(self.posts_per_period).ok()?,
            days_of_week: self.days_of_week.iter().map(|d| *d as u8).collect(),
            local_times: self.local_times.clone(),
            min_gap_minutes: u32::try_from(self.min_gap_minutes).ok()?,
        })
    }
}

pub(crate) async fn rules_of(
    state: &AppState,
    agency: Uuid,
    client: Uuid,
    only: Option<Uuid>,
) -> AppResult<Vec<RuleRow>> {
    Ok(sqlx::query_as!(
        RuleRow,
        r#"SELECT r.id, r.name, r.enabled, r.frequency, r.posts_per_period, r.days_of_week, r.local_times,
                  r.content_types, r.min_gap_minutes,
                  coalesce(array_agg(ra.account_id ORDER BY ra.account_id) FILTER (WHERE ra.account_id IS NOT NULL), '{}')
                      AS "account_ids!: Vec<Uuid>"
           FROM content_rules r
           LEFT JOIN content_rule_accounts ra ON ra.rule_id = r.id AND ra.agency_id = r.agency_id
           WHERE r.client_id = $1 AND r.agency_id = $2 AND ($3::uuid IS NULL OR r.id = $3)
           GROUP BY r.id
           ORDER BY lower(r.name), r.id"#,
        client,
        agency,
        only
    )
    .fetch_all(&state.pool)
    .await?)
}

pub(super) async fn rule_of(
    state: &AppState,
    agency: Uuid,
    client: Uuid,
    rule: Uuid,
) -> AppResult<RuleRow> {
    rules_of(state, agency, client, Some(rule))
        .await?
        .into_iter()
        .next()
        .ok_or(AppError::NotFound)
}

pub(crate) struct AccountRow {
    pub(crate) id: Uuid,
    pub(crate) platform: Platform,
    pub(crate) display_name: String,
    pub(crate) status: AccountStatus,
}

pub(crate) async fn accounts_of(
    state: &AppState,
    agency: Uuid,
    client: Uuid,
) -> AppResult<Vec<AccountRow>> {
    Ok(sqlx::query_as!(
        AccountRow,
        r#"SELECT id, platform AS "platform: Platform", display_name, status AS "status: AccountStatus"
           FROM social_accounts WHERE client_id = $1 AND agency_id = $2
           ORDER BY platform, display_name, id"#,
        client,
        agency
    )
    .fetch_all(&state.pool)
    .await?)
}

// ---------------------------------------------------------------------------------------------
