//! Instagram professional accounts (business or creator) through the Instagram Graph API with
//! Facebook Login.
//!
//! The connected account is the Instagram user linked to the first Page of
//! `GET /me/accounts?fields=instagram_business_account{id,username}` that has one. Requests use
//! the long-lived Facebook user token, which is also stored as the refresh token (see
//! [`super::meta`]).
//!
//! Publishing is Meta's container sequence: `POST /{ig-user-id}/media` (`image_url`, `caption`;
//! Instagram fetches the image itself) gives a container; `GET /{container-id}?fields=status_code`
//! is polled until `FINISHED` (bounded: [`POLL_INTERVAL`], at most [`POLL_LIMIT`]); then
//! `POST /{ig-user-id}/media_publish` (`creation_id`) gives the media id. Instagram cannot publish
//! text alone, and links in captions are not clickable, so `link_url` is not sent. The account's
//! own quota is read from `GET /{ig-user-id}/content_publishing_limit`.

use std::time::Duration;

use chrono::{DateTime, Utc};
use futures::FutureExt;
use futures::future::BoxFuture;
use serde_json::Value;
use url::Url;

use super::meta::{self, Graph};
use super::{
    AccountInfo, AccountRef, Connector, Fence, Lookup, OAuthApp, PlatformError, PostMetrics,
    PostRequest, Published, Quota, TokenSet,
};
use crate::domain::Platform;

/// Wait between container status reads. Images are usually ready at once or within seconds.
pub const POLL_INTERVAL: Duration = Duration::from_secs(1);
/// How long a container may stay `IN_PROGRESS` before the attempt gives up (transient: a later
/// attempt reconciles first, and an unpublished container simply expires after 24 hours).
pub const POLL_LIMIT: Duration = Duration::from_secs(60);
/// Media read per reconciliation listing.
const MEDIA_PAGE: usize = 50;

pub struct InstagramConnector {
    graph: Graph,
    poll_interval: Duration,
    poll_limit: Duration,
}

impl InstagramConnector {
    pub fn new(base: Option<Url>, http: reqwest::Client) -> InstagramConnector {
        InstagramConnector {
            graph: Graph::new(Platform::Instagram, base, http),
            poll_interval: POLL_INTERVAL,
            poll_limit: POLL_LIMIT,
        }
    }

    /// Other polling bounds (tests).
    pub fn with_polling(mut self, interval: Duration, limit: Duration) -> InstagramConnector {
        self.poll_interval = interval;
        self.poll_limit = limit;
        self
    }

    fn tokens(user: meta::UserToken) -> TokenSet {
        TokenSet {
            access_token: user.token.clone(),
            refresh_token: Some(user.token),
            expires_in: user.expires_in,
            scopes: Vec::new(),
        }
    }

    /// Poll a container until Instagram has processed its media.
    async fn wait_until_finished(&self, token: &str, container: &str) -> Result<(), PlatformError> {
        let started = tokio::time::Instant::now();
        loop {
            let (_, v) = self
                .graph
                .get(token, &[container], &[("fields", "status_code,status")])
                .await?;
            let status = v["status_code"].as_str().unwrap_or_default();
            match status {
                "FINISHED" => return Ok(()),
                "IN_PROGRESS" => {}
                "ERROR" | "EXPIRED" => {
                    return Err(PlatformError::Permanent(format!(
                        "Instagram could not process the media (container {container} is {status}{})",
                        v["status"]
                            .as_str()
                            .map(|s| format!(": {s}"))
                            .unwrap_or_default()
                    )));
                }
                "PUBLISHED" => {
                    return Err(PlatformError::Permanent(format!(
                        "the media container {container} is already published"
                    )));
                }
                other => {
                    return Err(PlatformError::Transient(format!(
                        "unexpected container status `{other}`"
                    )));
                }
            }
            if started.elapsed() + self.poll_interval > self.poll_limit {
                return Err(PlatformError::Transient(format!(
                    "Instagram was still processing the media (container {container}) after {}s",
                    self.poll_limit.as_secs()
                )));
            }
            tokio::time::sleep(self.poll_interval).await;
        }
    }
}

fn parse_time(s: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_str(s, "%Y-%m-%dT%H:%M:%S%z")
        .ok()
        .map(|t| t.with_timezone(&Utc))
}

impl Connector for InstagramConnector {
    fn platform(&self) -> Platform {
        Platform::Instagram
    }

    fn scopes(&self) -> Vec<String> {
        [
            "instagram_basic",
            "instagram_content_publish",
            "instagram_manage_insights",
            "pages_show_list",
            "pages_read_engagement",
        ]
        .map(String::from)
        .to_vec()
    }

    fn issuer(&self) -> Option<String> {
        None
    }

    fn authorization_endpoint(&self) -> Url {
        self.graph.dialog()
    }

    fn authorization_url(
        &self,
        app: &OAuthApp,
        redirect_uri: &Url,
        state: &str,
        pkce_verifier: &str,
    ) -> Url {
        self.graph
            .authorization_url(app, redirect_uri, state, pkce_verifier, &self.scopes())
    }

    fn exchange_code<'a>(
        &'a self,
        app: &'a OAuthApp,
        redirect_uri: &'a Url,
        code: &'a str,
        pkce_verifier: &'a str,
    ) -> BoxFuture<'a, Result<TokenSet, PlatformError>> {
        async move {
            let user = self
                .graph
                .login(app, redirect_uri, code, pkce_verifier)
                .await?;
            Ok(Self::tokens(user))
        }
        .boxed()
    }

    fn refresh<'a>(
        &'a self,
        app: &'a OAuthApp,
        refresh_token: &'a str,
    ) -> BoxFuture<'a, Result<TokenSet, PlatformError>> {
        async move {
            Ok(Self::tokens(
                self.graph.long_lived(app, refresh_token).await?,
            ))
        }
        .boxed()
    }

    fn account_info<'a>(
        &'a self,
        access_token: &'a str,
    ) -> BoxFuture<'a, Result<AccountInfo, PlatformError>> {
        async move {
            let (_, v) = self
                .graph
                .get(
                    access_token,
                    &["me", "accounts"],
                    &[
                        ("fields", "id,name,instagram_business_account{id,username}"),
                        ("limit", "100"),
                    ],
                )
                .await?;
            let linked = v["data"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|page| &page["instagram_business_account"])
                .find(|ig| !ig.is_null());
            let Some(ig) = linked else {
                return Err(PlatformError::Permanent(
                    "none of the Facebook Pages this login granted has an Instagram professional \
                     account linked; link one in the Page's settings and reconnect"
                        .into(),
                ));
            };
            Ok(AccountInfo {
                id: meta::id_of(ig, "id", "Instagram account")?,
                name: ig["username"].as_str().unwrap_or_default().to_owned(),
            })
        }
        .boxed()
    }

    fn publish<'a>(
        &'a self,
        access_token: &'a str,
        post: &'a PostRequest,
        fence: &'a dyn Fence,
    ) -> BoxFuture<'a, Result<Published, PlatformError>> {
        async move {
            let Some(image) = post.media.first() else {
                return Err(PlatformError::Permanent(
                    "Instagram cannot publish a post without an image".into(),
                ));
            };
            let ig = post.account.platform_account_id.as_str();
            fence.check().await?;
            let (_, v) = self
                .graph
                .post(
                    access_token,
                    &[ig, "media"],
                    &[("image_url", image.url.as_str()), ("caption", &post.text)],
                )
                .await?;
            let container = meta::id_of(&v, "id", "media container")?;
            self.wait_until_finished(access_token, &container).await?;
            fence.check().await?;
            let (headers, v) = self
                .graph
                .post(
                    access_token,
                    &[ig, "media_publish"],
                    &[("creation_id", container.as_str())],
                )
                .await?;
            let media = meta::id_of(&v, "id", "media_publish")?;
            // the permalink is a convenience for the console: the post exists whatever this answers
            let url = self
                .graph
                .get(access_token, &[&media], &[("fields", "permalink")])
                .await
                .ok()
                .and_then(|(_, v)| v["permalink"].as_str().map(str::to_owned));
            Ok(Published {
                post_id: media,
                url,
                request_id: meta::trace_id(&headers),
            })
        }
        .boxed()
    }

    fn find_by_marker<'a>(
        &'a self,
        access_token: &'a str,
        post: &'a PostRequest,
        since: DateTime<Utc>,
    ) -> BoxFuture<'a, Result<Lookup, PlatformError>> {
        async move {
            let ig = post.account.platform_account_id.as_str();
            let since_s = since.timestamp().to_string();
            let limit = MEDIA_PAGE.to_string();
            let (_, v) = self
                .graph
                .get(
                    access_token,
                    &[ig, "media"],
                    &[
                        ("fields", "id,caption,timestamp,permalink"),
                        ("since", &since_s),
                        ("limit", &limit),
                    ],
                )
                .await?;
            let Some(items) = v["data"].as_array() else {
                return Ok(Lookup::Unknowable("media answer without data".into()));
            };
            // the listing is newest first; `since` is applied here too in case it was not
            let recent: Vec<&Value> = items
                .iter()
                .filter(|m| {
                    m["timestamp"]
                        .as_str()
                        .and_then(parse_time)
                        .is_none_or(|t| t >= since)
                })
                .collect();
            let matches: Vec<&&Value> = recent
                .iter()
                .filter(|m| m["caption"].as_str() == Some(post.text.as_str()))
                .collect();
            Ok(match matches.as_slice() {
                [] if recent.len() == items.len() && !v["paging"]["next"].is_null() => {
                    Lookup::Unknowable(format!(
                        "more than {MEDIA_PAGE} Instagram posts since {since}; cannot tell whether ours is among them"
                    ))
                }
                [] => Lookup::NotFound,
                [m] => match meta::id_of(m, "id", "media") {
                    Ok(id) => Lookup::Found(Published {
                        post_id: id,
                        url: m["permalink"].as_str().map(str::to_owned),
                        request_id: None,
                    }),
                    Err(e) => Lookup::Unknowable(e.to_string()),
                },
                many => Lookup::Unknowable(format!(
                    "{} Instagram posts since {since} have exactly this caption",
                    many.len()
                )),
            })
        }
        .boxed()
    }

    fn metrics<'a>(
        &'a self,
        access_token: &'a str,
        _account: &'a AccountRef,
        post_id: &'a str,
    ) -> BoxFuture<'a, Result<PostMetrics, PlatformError>> {
        async move {
            let (_, v) = self
                .graph
                .get(
                    access_token,
                    &[post_id],
                    &[("fields", "like_count,comments_count")],
                )
                .await?;
            let insights = meta::optional_insights(
                self.graph
                    .get(
                        access_token,
                        &[post_id, "insights"],
                        &[("metric", "reach,views,shares")],
                    )
                    .await
                    .map(|(_, v)| v),
            )?;
            let read = |name| insights.as_ref().and_then(|i| meta::insight(i, name));
            Ok(PostMetrics {
                likes: v["like_count"].as_i64(),
                comments: v["comments_count"].as_i64(),
                shares: read("shares"),
                reach: read("reach"),
                views: read("views"),
                ..Default::default()
            })
        }
        .boxed()
    }

    fn quota<'a>(
        &'a self,
        access_token: &'a str,
        account: &'a AccountRef,
    ) -> BoxFuture<'a, Result<Option<Quota>, PlatformError>> {
        async move {
            let (_, v) = self
                .graph
                .get(
                    access_token,
                    &[&account.platform_account_id, "content_publishing_limit"],
                    &[("fields", "config,quota_usage")],
                )
                .await?;
            let usage = &v["data"][0];
            Ok(
                match (
                    usage["quota_usage"].as_i64(),
                    usage["config"]["quota_total"].as_i64(),
                ) {
                    (Some(used), Some(limit)) => Some(Quota {
                        used,
                        limit,
                        window: Duration::from_secs(
                            usage["config"]["quota_duration"].as_u64().unwrap_or(86_400),
                        ),
                    }),
                    _ => None,
                },
            )
        }
        .boxed()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::platforms::Unfenced;

    #[test]
    fn instagram_timestamps_parse() {
        assert_eq!(
            parse_time("2026-11-23T18:00:00+0000").unwrap().to_rfc3339(),
            "2026-11-23T18:00:00+00:00"
        );
    }

    #[tokio::test]
    async fn a_post_without_an_image_is_refused_before_any_request() {
        // an unroutable base: any request would fail as transient, not permanent
        let c = InstagramConnector::new(
            Some(Url::parse("http://127.0.0.1:1/instagram/").unwrap()),
            reqwest::Client::new(),
        );
        let post = PostRequest {
            account: AccountRef {
                platform_account_id: "1784".into(),
                kind: "business".into(),
            },
            text: "only words".into(),
            link_url: None,
            media: vec![],
            marker: "mk".into(),
        };
        match c.publish("token", &post, &Unfenced).await {
            Err(PlatformError::Permanent(m)) => assert!(m.contains("without an image"), "{m}"),
            other => panic!("{other:?}"),
        }
    }
}
