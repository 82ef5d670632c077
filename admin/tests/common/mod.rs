//! Drive the console's Router in process, with a cookie jar, like a browser would.

#![allow(dead_code)]

use std::collections::HashMap;

use autosocial_admin::app::{AppState, router};
use autosocial_admin::config::WebArgs;
use autosocial_core::domain::Role;
use axum::Router;
use axum::body::Body;
use axum::http::{HeaderMap, Method, Request, StatusCode, header};
use http_body_util::BodyExt;
use sqlx::PgPool;
use tower::ServiceExt;
use uuid::Uuid;

pub const PASSWORD: &str = "correct horse battery staple";

pub async fn state(pool: PgPool) -> AppState {
    state_with(pool, WebArgs::for_tests()).await
}

pub async fn state_with(pool: PgPool, web: WebArgs) -> AppState {
    let redis = autosocial_core::redis::connect(&autosocial_core::testing::redis_url().into())
        .await
        .expect("Redis at REDIS_URL (deploy/dev test provides it)");
    AppState::new(pool, redis, autosocial_core::testing::vault(), web)
}

/// Create a user with `role` in agency `agency` (created if new).
pub async fn user(pool: &PgPool, agency: &str, email: &str, role: Role) -> Uuid {
    autosocial_admin::seed::create_user(pool, agency, email, role, PASSWORD)
        .await
        .unwrap()
}

/// Log in as `email` (created beforehand) and return the browser and its CSRF token.
pub async fn logged_in(pool: &PgPool, email: &str) -> (Browser, String) {
    let mut b = Browser::new(state(pool.clone()).await);
    let csrf = b.logged_in(email).await;
    (b, csrf)
}

/// An account on `platform` for `client` (a placeholder ciphertext: nothing here decrypts it).
pub async fn account(pool: &PgPool, client: Uuid, platform: &str, name: &str) -> Uuid {
    let agency: Uuid = sqlx::query_scalar("SELECT agency_id FROM clients WHERE id = $1")
        .bind(client)
        .fetch_one(pool)
        .await
        .unwrap();
    let id = Uuid::now_v7();
    autosocial_core::testing::build::account(agency, client)
        .id(id)
        .platform(platform.parse().unwrap())
        .platform_account_id(format!("acct-{id}"))
        .display_name(name)
        .insert(pool)
        .await
}

pub async fn agency_id(pool: &PgPool, name: &str) -> Uuid {
    sqlx::query_scalar("SELECT id FROM agencies WHERE name = $1")
        .bind(name)
        .fetch_one(pool)
        .await
        .unwrap()
}

pub async fn client(pool: &PgPool, agency: &str, name: &str) -> Uuid {
    autosocial_core::testing::build::client(agency_id(pool, agency).await)
        .name(name)
        .timezone("Europe/Berlin")
        .insert(pool)
        .await
}

pub struct Response {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: String,
}

impl Response {
    pub fn location(&self) -> Option<&str> {
        self.headers
            .get(header::LOCATION)
            .and_then(|v| v.to_str().ok())
    }

    /// The value of the first hidden `_csrf` field on the page.
    pub fn csrf(&self) -> String {
        let marker = "name=\"_csrf\" value=\"";
        let start = self.body.find(marker).expect("page has a _csrf field") + marker.len();
        self.body[start..].split('"').next().unwrap().to_owned()
    }
}

/// A browser-like client: keeps cookies, sends same-origin headers on POSTs by default.
pub struct Browser {
    pub app: Router,
    pub cookies: HashMap<String, String>,
}

impl Browser {
    pub fn new(state: AppState) -> Browser {
        Browser {
            app: router(state),
            cookies: HashMap::new(),
        }
    }

    /// Another person's browser on the same console process (same router and state, own
    /// cookies).
    pub fn sharing(&self) -> Browser {
        Browser {
            app: self.app.clone(),
            cookies: HashMap::new(),
        }
    }

    pub async fn request(
        &mut self,
        method: Method,
        uri: &str,
        form: Option<&[(&str, &str)]>,
        extra: &[(&str, &str)],
    ) -> Response {
        let mut req = Request::builder().method(method).uri(uri);
        for (k, v) in extra {
            req = req.header(*k, *v);
        }
        let body = match form {
            Some(fields) => {
                req = req.header(header::CONTENT_TYPE, "application/x-www-form-urlencoded");
                let mut s = url::form_urlencoded::Serializer::new(String::new());
                for (k, v) in fields {
                    s.append_pair(k, v);
                }
                Body::from(s.finish())
            }
            None => Body::empty(),
        };
        self.send(req.body(body).unwrap()).await
    }

    /// Send a request with this browser's cookies, keeping the cookies it sets.
    pub async fn send(&mut self, mut req: Request<Body>) -> Response {
        if !self.cookies.is_empty() && !req.headers().contains_key(header::COOKIE) {
            let cookie = self
                .cookies
                .iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect::<Vec<_>>()
                .join("; ");
            req.headers_mut()
                .insert(header::COOKIE, cookie.parse().unwrap());
        }
        let res = self.app.clone().oneshot(req).await.unwrap();
        for sc in res.headers().get_all(header::SET_COOKIE) {
            let sc = sc.to_str().unwrap();
            let (pair, attrs) = sc.split_once(';').unwrap_or((sc, ""));
            let (name, value) = pair.split_once('=').unwrap();
            let removed = attrs.to_ascii_lowercase().contains("max-age=0") || value.is_empty();
            if removed {
                self.cookies.remove(name);
            } else {
                self.cookies.insert(name.to_owned(), value.to_owned());
            }
        }
        let status = res.status();
        let headers = res.headers().clone();
        // a stream of server-sent events never ends: its body is not read here
        let streaming = headers
            .get(header::CONTENT_TYPE)
            .is_some_and(|v| v.as_bytes().starts_with(b"text/event-stream"));
        let bytes = if streaming {
            Default::default()
        } else {
            res.into_body().collect().await.unwrap().to_bytes()
        };
        Response {
            status,
            headers,
            body: String::from_utf8_lossy(&bytes).into_owned(),
        }
    }

    /// POST a multipart form with `fields` and one file, the way a page of ours would
    /// (same-origin headers); `extra` adds headers (htmx sends the CSRF token as one).
    pub async fn upload(
        &mut self,
        uri: &str,
        fields: &[(&str, &str)],
        file: (&str, &str, &[u8]),
        extra: &[(&str, &str)],
    ) -> Response {
        let boundary = "----autosocial-test-boundary-7d1f";
        let mut body = Vec::new();
        for (name, value) in fields {
            body.extend_from_slice(
                format!(
                    "--{boundary}\r\nContent-Disposition: form-data; name=\"{name}\"\r\n\r\n{value}\r\n"
                )
                .as_bytes(),
            );
        }
        let (field, filename, bytes) = file;
        body.extend_from_slice(
            format!(
                "--{boundary}\r\nContent-Disposition: form-data; name=\"{field}\"; filename=\"{filename}\"\r\nContent-Type: application/octet-stream\r\n\r\n"
            )
            .as_bytes(),
        );
        body.extend_from_slice(bytes);
        body.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
        let mut req = Request::builder()
            .method(Method::POST)
            .uri(uri)
            .header(
                header::CONTENT_TYPE,
                format!("multipart/form-data; boundary={boundary}"),
            )
            .header("sec-fetch-site", "same-origin")
            .header("origin", "http://127.0.0.1:8080");
        for (k, v) in extra {
            req = req.header(*k, *v);
        }
        self.send(req.body(Body::from(body)).unwrap()).await
    }

    pub async fn get(&mut self, uri: &str) -> Response {
        self.request(Method::GET, uri, None, &[]).await
    }

    /// POST a form the way a page of ours would (same-origin browser headers).
    pub async fn post(&mut self, uri: &str, form: &[(&str, &str)]) -> Response {
        self.request(
            Method::POST,
            uri,
            Some(form),
            &[
                ("sec-fetch-site", "same-origin"),
                ("origin", "http://127.0.0.1:8080"),
            ],
        )
        .await
    }

    pub async fn login(&mut self, email: &str, password: &str) -> Response {
        let page = self.get("/login").await;
        let token = page.csrf();
        self.post(
            "/login",
            &[
                ("_csrf", &token),
                ("email", email),
                ("password", password),
                ("next", "/clients"),
            ],
        )
        .await
    }

    /// Log in and return the session's CSRF token (read from a console page).
    pub async fn logged_in(&mut self, email: &str) -> String {
        let r = self.login(email, PASSWORD).await;
        assert_eq!(r.status, StatusCode::SEE_OTHER, "login failed: {}", r.body);
        self.get("/clients").await.csrf()
    }
}
