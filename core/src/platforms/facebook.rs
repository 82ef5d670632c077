//! Facebook Pages through the Graph API and Facebook Login.
//!
//! The connected account is a Page (account kind `page`), not the person who logged in: after
//! login, `GET /me/accounts` lists the Pages the person manages with a Page access token each,
//! and this connector connects the **first** one. (Choosing among several Pages is a
//! simplification left for later; a person managing several Pages for different clients logs in
//! once per client and must grant only that Page in the dialog.)
//!
//! Tokens: the stored access token is the Page token (a Page token obtained with a long-lived
//! user token does not expire), the stored refresh token is the long-lived user token and the
//! expiry is that user token's (about 60 days). `refresh()` re-exchanges the user token
//! (see [`super::meta`]) and reads the Page token again, so both stay fresh.
//!
//! Publishing: text and links with `POST /{page-id}/feed` (`message`, `link`), an image with
//! `POST /{page-id}/photos` (`url` — Facebook fetches the image itself — and `message`). A link
//! given with an image is not attached (a photo post has no link card); put it in the text.
//! Reconciliation lists `GET /{page-id}/feed` since the attempt started and matches the exact
//! message. Metrics: likes, comments and shares from the post's fields; impressions and reach from
//! the post insights when Meta has them.

use futures::FutureExt;
use futures::future::BoxFuture;
use secrecy::{ExposeSecret, SecretString};
use serde_json::Value;
use url::Url;

use chrono::{DateTime, Utc};

use super::meta::{self, Graph};
use super::{
    AccountInfo, AccountRef, Connector, Fence, Lookup, OAuthApp, PlatformError, PostMetrics,
    PostRequest, Published, Quota, TokenSet,
};
use crate::domain::Platform;

/// Posts read per reconciliation listing; more posts than this since the attempt began make the
/// answer unknowable rather than a false "not found".
const FEED_PAGE: usize = 100;

pub struct FacebookConnector {
    graph: Graph,
}

/// A Page the person manages, with its Page access token.
struct Page {
    id: String,
    name: String,
    token: SecretString,
}

impl FacebookConnector {
    pub fn new(base: Option<Url>, http: reqwest::Client) -> FacebookConnector {
        FacebookConnector {
            graph: Graph::new(Platform::Facebook, base, http),
        }
    }

    /// The first Page of `GET /me/accounts`, with its token.
    async fn first_page(&self, user_token: &str) -> Result<Page, PlatformError> {
        let (_, v) = self
            .graph
            .get(
                user_token,
                &["me", "accounts"],
                &[("fields", "id,name,access_token")],
            )
            .await?;
        let Some(first) = v["data"].as_array().and_then(|d| d.first()) else {
            return Err(PlatformError::Permanent(
                "this Facebook login manages no Page (or granted none to AutoSocial); \
                 reconnect and select the Page to publish to"
                    .into(),
            ));
        };
        let token = first["access_token"]
            .as_str()
            .filter(|t| !t.is_empty())
            .ok_or_else(|| {
                PlatformError::Permanent(
                    "Facebook gave no Page access token; the login must grant pages_show_list \
                     and pages_manage_posts"
                        .into(),
                )
            })?;
        Ok(Page {
            id: meta::id_of(first, "id", "Page list")?,
            name: first["name"].as_str().unwrap_or_default().to_owned(),
            token: SecretString::from(token.to_owned()),
        })
    }

    /// Long-lived user token → the tokens we store (see the module comment).
    async fn tokens_for(&self, user: meta::UserToken) -> Result<TokenSet, PlatformError> {
        let page = self.first_page(user.token.expose_secret()).await?;
        tracing::debug!(page = %page.id, name = %page.name, "using the first Page of the login");
        Ok(TokenSet {
            access_token: page.token,
            refresh_token: Some(user.token),
            expires_in: user.expires_in,
            scopes: Vec::new(),
        })
    }
}

fn post_url(post_id: &str) -> String {
    format!("https://www.facebook.com/{post_id}")
}

impl Connector for FacebookConnector {
    fn platform(&self) -> Platform {
        Platform::Facebook
    }

    fn scopes(&self) -> Vec<String> {
        [
            "pages_show_list",
            "pages_manage_posts",
            "pages_read_engagement",
            "read_insights",
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
            self.tokens_for(user).await
        }
        .boxed()
    }

    fn refresh<'a>(
        &'a self,
        app: &'a OAuthApp,
        refresh_token: &'a str,
    ) -> BoxFuture<'a, Result<TokenSet, PlatformError>> {
        async move {
            let user = self.graph.long_lived(app, refresh_token).await?;
            self.tokens_for(user).await
        }
        .boxed()
    }

    /// With a Page token, `/me` is the Page.
    fn account_info<'a>(
        &'a self,
        access_token: &'a str,
    ) -> BoxFuture<'a, Result<AccountInfo, PlatformError>> {
        async move {
            let (_, v) = self
                .graph
                .get(access_token, &["me"], &[("fields", "id,name")])
                .await?;
            Ok(AccountInfo {
                id: meta::id_of(&v, "id", "Page")?,
                name: v["name"].as_str().unwrap_or_default().to_owned(),
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
            let page = post.account.platform_account_id.as_str();
            let (headers, v) = if let Some(image) = post.media.first() {
                let mut form = vec![("url", image.url.as_str())];
                if !post.text.is_empty() {
                    form.push(("message", post.text.as_str()));
                }
                fence.check().await?;
                self.graph
                    .post(access_token, &[page, "photos"], &form)
                    .await?
            } else {
                if post.text.trim().is_empty() && post.link_url.is_none() {
                    return Err(PlatformError::Permanent(
                        "a Facebook post needs text, a link or an image".into(),
                    ));
                }
                let mut form = vec![("message", post.text.as_str())];
                if let Some(link) = &post.link_url {
                    form.push(("link", link.as_str()));
                }
                fence.check().await?;
                self.graph
                    .post(access_token, &[page, "feed"], &form)
                    .await?
            };
            // photos answer {"id": photo, "post_id": page_post}; the feed answers {"id": page_post}
            let post_id =
                meta::id_of(&v, "post_id", "photo").or_else(|_| meta::id_of(&v, "id", "post"))?;
            Ok(Published {
                url: Some(post_url(&post_id)),
                post_id,
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
            let page = post.account.platform_account_id.as_str();
            let since_s = since.timestamp().to_string();
            let limit = FEED_PAGE.to_string();
            let (_, v) = self
                .graph
                .get(
                    access_token,
                    &[page, "feed"],
                    &[
                        ("fields", "id,message,created_time"),
                        ("since", &since_s),
                        ("limit", &limit),
                    ],
                )
                .await?;
            let Some(items) = v["data"].as_array() else {
                return Ok(Lookup::Unknowable("feed answer without data".into()));
            };
            let matches: Vec<&Value> = items
                .iter()
                .filter(|p| p["message"].as_str() == Some(post.text.as_str()))
                .collect();
            Ok(match matches.as_slice() {
                [] if !v["paging"]["next"].is_null() => Lookup::Unknowable(format!(
                    "more than {FEED_PAGE} Page posts since {since}; cannot tell whether ours is among them"
                )),
                [] => Lookup::NotFound,
                [p] => match meta::id_of(p, "id", "feed") {
                    Ok(id) => Lookup::Found(Published {
                        url: Some(post_url(&id)),
                        post_id: id,
                        request_id: None,
                    }),
                    Err(e) => Lookup::Unknowable(e.to_string()),
                },
                many => Lookup::Unknowable(format!(
                    "{} Page posts since {since} have exactly this text",
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
                    &[(
                        "fields",
                        "likes.summary(true).limit(0),comments.summary(true).limit(0),shares",
                    )],
                )
                .await?;
            let insights = meta::optional_insights(
                self.graph
                    .get(
                        access_token,
                        &[post_id, "insights"],
                        &[("metric", "post_impressions,post_total_media_view_unique")],
                    )
                    .await
                    .map(|(_, v)| v),
            )?;
            let likes = v["likes"]["summary"]["total_count"].as_i64();
            Ok(PostMetrics {
                likes,
                comments: v["comments"]["summary"]["total_count"].as_i64(),
                // Meta leaves `shares` out of a post nobody shared
                shares: v["shares"]["count"].as_i64().or(likes.map(|_| 0)),
                impressions: insights
                    .as_ref()
                    .and_then(|i| meta::insight(i, "post_impressions")),
                reach: insights
                    .as_ref()
                    .and_then(|i| meta::insight(i, "post_total_media_view_unique")),
                ..Default::default()
            })
        }
        .boxed()
    }

    /// Facebook Pages publish no posting quota read-out.
    fn quota<'a>(
        &'a self,
        _access_token: &'a str,
        _account: &'a AccountRef,
    ) -> BoxFuture<'a, Result<Option<Quota>, PlatformError>> {
        async { Ok(None) }.boxed()
    }
}
