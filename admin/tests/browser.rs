//! The console in a real browser (headless Chromium over WebDriver), end to end: an owner logs
//! in, creates a client and an onboarding link; the client opens the link in their own browser
//! and connects a sandbox account on the sandbox's consent page; content is planned and
//! generated; the owner approves an item from the review queue with the keyboard and watches it
//! publish live, then finds it in the calendar and its post log. Every page of ours that the
//! scenario visits is screenshotted, validated by the Nu Html Checker and checked by axe-core
//! (every finding fails the test), and what the browser logged as an error on it (a resource
//! that did not load) fails it too. The calendars are seen holding posts in every state, at
//! instants with microseconds, in detail and as a busy week's per-day counts. Artifacts:
//! `target/browser-artifacts/`.
//!
//! Processes: the sandbox and the console run in this process on 127.0.0.1 ports, the browser
//! and chromedriver as child processes. The worker is core's queue `Runner` with the `plan`,
//! `generate` and `publish` handlers, built the way `autosocial-worker run` builds them, also in
//! this process: the worker binary is not a build dependency of this crate's tests, and an old
//! binary from an earlier build would test yesterday's code.
//!
//! Tools come from `deploy/lib/browser.sh` (run by `deploy/dev test`). With
//! `AUTOSOCIAL_UPDATE_SCREENSHOTS=1` the dashboard, review queue and calendar screenshots are
//! copied (scaled) into `docs/screenshots/` for the README.

mod common;
#[path = "browser/harness.rs"]
mod harness;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use autosocial_admin::app::AppState;
use autosocial_admin::config::WebArgs;
use autosocial_core::content::generate::{self, ContentArgs};
use autosocial_core::domain::Role;
use autosocial_core::jobs::{GenerateItem, PlanWeek, PublishPost};
use autosocial_core::killswitch::Gate;
use autosocial_core::queue::runner::{KindSpec, Metrics, Runner, RunnerConfig};
use chrono::{Datelike, Timelike, Utc};
use fantoccini::actions::{InputSource, KeyAction, KeyActions};
use fantoccini::{Client, Locator};
use harness::{Artifacts, Driver, Tools};
use serde_json::json;
use sqlx::PgPool;
use sqlx::postgres::PgPoolOptions;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

const OWNER: &str = "owner@acme.test";
const TZ: chrono_tz::Tz = chrono_tz::Europe::Berlin;

fn step(name: &str) {
    eprintln!("[browser] step: {name}");
}

/// A pool of its own for each part, like separate processes would have.
async fn own_pool(pool: &PgPool, n: u32) -> PgPool {
    PgPoolOptions::new()
        .max_connections(n)
        .connect_with(pool.connect_options().as_ref().clone())
        .await
        .expect("a pool on the test database")
}

/// The worker's content, publish handler and queue runner, as `autosocial-worker run` builds them.
async fn start_worker(
    pool: PgPool,
    state: &AppState,
    media_dir: PathBuf,
    public_url: url::Url,
    stop: CancellationToken,
) {
    let smoother = autosocial_core::limits::Smoother::new(pool.clone(), Some(state.redis.clone()));
    tokio::spawn(smoother.clone().probe(stop.clone()));
    let templates = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../templates");
    let content = Arc::new(
        ContentArgs::with_dirs(media_dir, templates)
            .build(pool.clone(), smoother.clone(), true)
            .expect("the shipped templates and fonts"),
    );
    let publisher = autosocial_core::publishing::Publisher::new(
        pool.clone(),
        state.vault.clone(),
        state.platforms.clone(),
        Arc::new(smoother),
        Some(public_url),
        Duration::from_secs(3600),
    );
    let gate = Gate::new(pool.clone(), Duration::from_millis(1500));
    gate.refresh().await.expect("kill switches readable");
    tokio::spawn(gate.clone().keep_fresh(stop.clone()));
    let specs = vec![
        KindSpec::of::<PublishPost, _, _>(4, move |_, job| {
            let publisher = publisher.clone();
            async move { publisher.run(&job).await }
        }),
        KindSpec::of::<PlanWeek, _, _>(1, |_, job| async move { generate::run_plan(&job).await }),
        KindSpec::of::<GenerateItem, _, _>(2, move |_, job| {
            let content = content.clone();
            async move { generate::run_generate(&job, &content).await }
        }),
    ];
    let mut cfg = RunnerConfig::new("browser-test-worker");
    cfg.concurrency = 6;
    cfg.poll_interval = Duration::from_millis(500);
    let runner = Runner::new(cfg, pool, specs, gate, Arc::new(Metrics::new()));
    tokio::spawn(async move {
        if let Err(e) = runner.run(stop).await {
            panic!("the in-process worker stopped: {e:#}");
        }
    });
}

/// Wait until `script` (a function body returning a boolean) is true in the page.
async fn wait_js(c: &Client, script: &str, within: Duration, what: &str) {
    let deadline = Instant::now() + within;
    loop {
        let ok = c
            .execute(script, vec![])
            .await
            .unwrap_or_else(|e| panic!("{what}: {e}"));
        if ok == json!(true) {
            return;
        }
        if Instant::now() >= deadline {
            let url = c
                .current_url()
                .await
                .map(|u| u.to_string())
                .unwrap_or_default();
            panic!("timed out after {within:?} waiting for: {what} (on {url})");
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// The report with repeated HTML errors folded: one line per distinct message, with a count.
fn summarize(report: &str) -> String {
    let mut seen: Vec<(String, usize)> = Vec::new();
    let mut out = Vec::new();
    for line in report.lines() {
        // "NN-page.html:LINE: message — extract": fold on the message
        let message = line
            .split_once(".html:")
            .and_then(|(_, rest)| rest.split_once(": "))
            .map(|(_, m)| m.split(" — ").next().unwrap_or(m).to_owned());
        match message {
            Some(m) => match seen.iter_mut().find(|(s, _)| *s == m) {
                Some((_, n)) => *n += 1,
                None => {
                    out.push(line.to_owned());
                    seen.push((m, 1));
                }
            },
            None => out.push(line.to_owned()),
        }
    }
    let folded: Vec<String> = seen
        .iter()
        .filter(|(_, n)| *n > 1)
        .map(|(m, n)| format!("  {n}× {m}"))
        .collect();
    if !folded.is_empty() {
        out.push("HTML errors by message (first occurrence listed above):".into());
        out.extend(folded);
    }
    out.join("\n")
}

/// Like [`wait_js`], but answers whether it became true instead of failing.
async fn wait_until_js(c: &Client, script: &str, within: Duration) -> bool {
    let deadline = Instant::now() + within;
    loop {
        if c.execute(script, vec![]).await.ok() == Some(json!(true)) {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

async fn wait_db(pool: &PgPool, sql: &str, bind: Uuid, within: Duration, what: &str) {
    let deadline = Instant::now() + within;
    loop {
        let ok: bool = sqlx::query_scalar(sql)
            .bind(bind)
            .fetch_one(pool)
            .await
            .expect(what);
        if ok {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "timed out after {within:?} waiting for: {what}"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

async fn goto(c: &Client, base: &url::Url, path: &str) {
    let url = base.join(path).expect("a URL");
    c.goto(url.as_str())
        .await
        .unwrap_or_else(|e| panic!("GET {url}: {e}"));
}

async fn click(c: &Client, xpath: &str, what: &str) {
    c.wait()
        .at_most(Duration::from_secs(10))
        .for_element(Locator::XPath(xpath))
        .await
        .unwrap_or_else(|e| panic!("{what}: no element {xpath}: {e}"))
        .click()
        .await
        .unwrap_or_else(|e| panic!("{what}: clicking {xpath}: {e}"));
}

async fn fill(c: &Client, css: &str, value: &str) {
    let el = c
        .find(Locator::Css(css))
        .await
        .unwrap_or_else(|e| panic!("no field {css}: {e}"));
    el.clear().await.expect("clear the field");
    el.send_keys(value).await.expect("type into the field");
}

async fn path_of(c: &Client) -> String {
    c.current_url().await.expect("the URL").path().to_owned()
}

/// Press a key on whatever has focus (as a person would: no element is clicked first).
async fn press(c: &Client, key: char) {
    let keys = KeyActions::new("keyboard".into())
        .then(KeyAction::Down { value: key })
        .then(KeyAction::Up { value: key });
    c.perform_actions(keys).await.expect("key press");
}

/// A rule on the client's sandbox account: `local` wall-clock time in `TZ`.
async fn rule(
    pool: &PgPool,
    (agency, client, account): (Uuid, Uuid, Uuid),
    name: &str,
    per_day: bool,
    days: &[i16],
    local: chrono::NaiveTime,
    types: &[&str],
) {
    let id = Uuid::now_v7();
    sqlx::query(
        "INSERT INTO content_rules (id, agency_id, client_id, name, frequency, posts_per_period, days_of_week, local_times, content_types, min_gap_minutes)
         VALUES ($1, $2, $3, $4, $5, 1, $6, ARRAY[$7]::time[], $8, 30)",
    )
    .bind(id)
    .bind(agency)
    .bind(client)
    .bind(name)
    .bind(if per_day { "per_day" } else { "per_week" })
    .bind(days)
    .bind(local)
    .bind(types)
    .execute(pool)
    .await
    .unwrap();
    sqlx::query(
        "INSERT INTO content_rule_accounts (rule_id, account_id, agency_id) VALUES ($1, $2, $3)",
    )
    .bind(id)
    .bind(account)
    .bind(agency)
    .execute(pool)
    .await
    .unwrap();
}

/// Posts in every state the calendar shows (scheduled, held, published, failed, needs
/// attention), `n` of them `step_secs` apart from `from`, at instants with microseconds the way
/// Postgres keeps a real post's times (HTML allows at most three digits of a second's fraction,
/// so every `<time datetime>` must be written through the pages' one formatter).
async fn posts_in_every_state(
    pool: &PgPool,
    (agency, client, account): (Uuid, Uuid, Uuid),
    from: chrono::DateTime<Utc>,
    step_secs: f64,
    n: i64,
) {
    sqlx::query(
        "WITH i AS (
             INSERT INTO content_items (id, agency_id, client_id, source, state, slot_at, content_type, caption, approved_at)
             SELECT gen_random_uuid(), $1, $2, 'manual', 'approved',
                    $3::timestamptz + g * make_interval(secs => $4) + interval '93655 microseconds',
                    'text', 'Seeded post ' || g, now()
             FROM generate_series(1, $5) g
             RETURNING id, slot_at, split_part(caption, ' ', 3)::int AS g),
         s AS (SELECT i.*, (ARRAY['scheduled', 'held', 'published', 'failed', 'needs_attention'])[1 + g % 5] AS state FROM i)
         INSERT INTO publications (id, agency_id, client_id, item_id, account_id, platform, state, scheduled_at, snapshot,
                                   platform_post_id, published_at, held_reason, last_error)
         SELECT gen_random_uuid(), $1, $2, s.id, $6, 'sandbox', s.state, s.slot_at, '{}',
                CASE WHEN s.state = 'published' THEN 'seeded-' || s.id END,
                CASE WHEN s.state = 'published' THEN s.slot_at + interval '0.654321 s' END,
                CASE WHEN s.state = 'held' THEN 'Publishing is stopped for this client' END,
                CASE WHEN s.state IN ('failed', 'needs_attention') THEN 'The platform refused the post' END
         FROM s",
    )
    .bind(agency)
    .bind(client)
    .bind(from)
    .bind(step_secs)
    .bind(n)
    .bind(account)
    .execute(pool)
    .await
    .expect("seeding posts in every state");
}

#[sqlx::test(migrator = "autosocial_core::db::MIGRATOR")]
async fn an_item_goes_from_onboarding_to_published_in_the_browser(pool: PgPool) {
    let tools = Tools::find();
    let mut art = Artifacts::new(&tools);
    let stop = CancellationToken::new();
    // failures that do not stop the scenario, reported together at the end
    let mut findings: Vec<String> = Vec::new();
    let _stop_on_exit = stop.clone().drop_guard();

    // ---- the world: sandbox, console, worker ------------------------------------------------
    common::user(&pool, "Acme", OWNER, Role::Owner).await;
    let agency = common::agency_id(&pool, "Acme").await;
    sqlx::query(
        "UPDATE agency_settings SET platforms_enabled = ARRAY['sandbox'] WHERE agency_id = $1",
    )
    .bind(agency)
    .execute(&pool)
    .await
    .unwrap();
    // the consent page is shown: the client clicks Approve
    let sandbox = autosocial_sandbox::spawn(autosocial_sandbox::Knobs::default())
        .await
        .unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = url::Url::parse(&format!("http://{}/", listener.local_addr().unwrap())).unwrap();
    let media_dir = std::env::temp_dir().join(format!("autosocial-browser-{}", Uuid::now_v7()));
    let mut web = WebArgs::for_tests();
    web.public_url = base.clone();
    web.platforms.sandbox_url = Some(sandbox);
    web.media_dir = media_dir.clone();
    // the login throttle must not count this test's few logins against a shared address
    web.login_per_ip_per_minute = 1000;
    let state = common::state_with(own_pool(&pool, 10).await, web).await;
    {
        let state = state.clone();
        let stop = stop.clone();
        tokio::spawn(async move {
            autosocial_admin::app::serve(listener, state, stop.cancelled_owned())
                .await
                .expect("the console serves");
        });
    }
    start_worker(
        own_pool(&pool, 8).await,
        &state,
        media_dir.clone(),
        base.clone(),
        stop.clone(),
    )
    .await;

    let log = art.dir.join("chromedriver.log");
    let driver = Driver::start(&tools, &log).await;
    art.driver_url = Some(driver.url.clone());
    let console = driver.session(&tools).await;

    // ---- the owner logs in ------------------------------------------------------------------
    step("log in");
    goto(&console, &base, "/").await;
    assert_eq!(
        path_of(&console).await,
        "/login",
        "the console asks for a login first"
    );
    art.page(&console, "login").await;
    fill(&console, "#email", OWNER).await;
    fill(&console, "#password", common::PASSWORD).await;
    click(&console, "//button[@type='submit']", "log in").await;
    wait_js(
        &console,
        "return location.pathname === '/';",
        Duration::from_secs(10),
        "back where the owner started, logged in",
    )
    .await;
    art.page(&console, "dashboard-empty").await;

    // ---- a client and its onboarding link ---------------------------------------------------
    step("create a client");
    goto(&console, &base, "/clients/new").await;
    art.page(&console, "client-new").await;
    fill(&console, "#name", "Backstube Berlin").await;
    fill(&console, "#timezone", TZ.name()).await;
    click(
        &console,
        "//button[normalize-space()='Create client']",
        "create the client",
    )
    .await;
    // the click returns before the POST's redirect lands
    wait_js(
        &console,
        "return /^\\/clients\\/[0-9a-f-]{36}$/.test(location.pathname);",
        Duration::from_secs(10),
        "the new client's page after creating it",
    )
    .await;
    let client_path = path_of(&console).await;
    let client_id: Uuid = client_path
        .strip_prefix("/clients/")
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("after creating a client the browser is on {client_path}"));
    art.page(&console, "client").await;

    step("create an onboarding link");
    goto(&console, &base, &format!("/clients/{client_id}/onboarding")).await;
    click(
        &console,
        "//button[normalize-space()='Create a new link']",
        "create a link",
    )
    .await;
    let link = console
        .wait()
        .at_most(Duration::from_secs(10))
        .for_element(Locator::Css("#new-link"))
        .await
        .expect("the new link is shown")
        .prop("value")
        .await
        .unwrap()
        .expect("the link's text");
    assert!(
        link.starts_with(base.as_str()),
        "{link} is on the console's public URL"
    );
    // the link is shown once, in the answer to the POST: a screenshot, no second fetch
    art.foreign(&console, "onboarding-link-created").await;
    goto(&console, &base, &format!("/clients/{client_id}/onboarding")).await;
    art.page(&console, "onboarding-links").await;

    // ---- the client, in a browser of their own ----------------------------------------------
    step("the client opens the link and connects a sandbox account");
    let visitor = driver.session(&tools).await;
    visitor.goto(&link).await.expect("open the onboarding link");
    art.page(&visitor, "onboard").await;
    // a blocked navigation leaves the page in place: collect what the CSP blocked
    let watch_csp = "window.__csp = []; document.addEventListener('securitypolicyviolation', \
                     e => window.__csp.push(e.violatedDirective + ' blocked ' + e.blockedURI)); return true;";
    let consent = Locator::XPath("//button[normalize-space()='Approve']");
    visitor.execute(watch_csp, vec![]).await.unwrap();
    click(
        &visitor,
        "//button[normalize-space()='Connect Sandbox']",
        "connect",
    )
    .await;
    if visitor
        .wait()
        .at_most(Duration::from_secs(10))
        .for_element(consent)
        .await
        .is_err()
    {
        art.foreign(&visitor, "no-consent-page").await;
        let blocked = visitor
            .execute(
                "return window.__csp === undefined ? [] : window.__csp;",
                vec![],
            )
            .await
            .unwrap();
        let url = visitor.current_url().await.unwrap();
        assert!(
            blocked.as_array().is_some_and(|b| !b.is_empty()),
            "Connect Sandbox did not lead to the sandbox's consent page; the browser is on {url}"
        );
        // Report it, then let this session ignore the CSP so the rest of the scenario runs.
        findings.push(format!(
            "onboarding {url}: the page's CSP blocks the redirect of the Connect form to the platform's \
             authorize URL ({blocked}); form-action 'self' applies to the redirect after a form POST, so \
             no client can connect an account in a real browser"
        ));
        let id = visitor.session_id().await.unwrap().expect("a session id");
        reqwest::Client::new()
            .post(format!("{}/session/{id}/goog/cdp/execute", driver.url))
            .json(&json!({"cmd": "Page.setBypassCSP", "params": {"enabled": true}}))
            .send()
            .await
            .and_then(|r| r.error_for_status())
            .expect("chromedriver turns the CSP off for this session");
        visitor.refresh().await.unwrap();
        click(
            &visitor,
            "//button[normalize-space()='Connect Sandbox']",
            "connect",
        )
        .await;
        visitor
            .wait()
            .at_most(Duration::from_secs(10))
            .for_element(consent)
            .await
            .expect("the sandbox's consent page (with the CSP off)");
    }
    art.foreign(&visitor, "sandbox-consent").await;
    click(
        &visitor,
        "//button[normalize-space()='Approve']",
        "approve on the sandbox",
    )
    .await;
    wait_js(
        &visitor,
        "return document.body.innerText.includes('Sandbox account');",
        Duration::from_secs(15),
        "the onboarding page lists the connected account",
    )
    .await;
    assert!(
        link.ends_with(&path_of(&visitor).await),
        "back on the onboarding page"
    );
    art.page(&visitor, "onboard-connected").await;
    click(&visitor, "//button[normalize-space()='Finish']", "finish").await;
    wait_js(
        &visitor,
        "return document.body.innerText.includes('All set');",
        Duration::from_secs(10),
        "the onboarding is finished",
    )
    .await;
    art.foreign(&visitor, "onboard-finished").await;
    visitor.close().await.expect("close the client's browser");
    let account: Uuid = sqlx::query_scalar(
        "SELECT id FROM social_accounts WHERE client_id = $1 AND platform = 'sandbox' AND status = 'active'",
    )
    .bind(client_id)
    .fetch_one(&pool)
    .await
    .expect("the connected account is stored");

    // ---- content: two rules, a plan job, the generate jobs ----------------------------------
    step("plan and generate content");
    sqlx::query(
        r##"INSERT INTO brand_settings (client_id, agency_id, voice, tone, pillars, ctas, hashtag_sets, handle)
           VALUES ($1, $2, 'Warm, local, a little floury', 'friendly',
                   ARRAY['Fresh bread every morning', 'Seasonal cakes', 'Behind the oven'],
                   ARRAY['Drop by today.', 'Order for the weekend.'],
                   '{"bakery": ["#Berlin", "#Bakery", "#Sourdough"]}'::jsonb, '@backstube')
           ON CONFLICT (client_id) DO UPDATE SET voice = EXCLUDED.voice, tone = EXCLUDED.tone,
               pillars = EXCLUDED.pillars, ctas = EXCLUDED.ctas, hashtag_sets = EXCLUDED.hashtag_sets,
               handle = EXCLUDED.handle"##,
    )
    .bind(client_id)
    .bind(agency)
    .execute(&pool)
    .await
    .unwrap();
    // one post a minute and a half from now (the one approved below) and a daily one later
    let soon = (Utc::now() + chrono::TimeDelta::seconds(90)).with_timezone(&TZ);
    let later = (Utc::now() + chrono::TimeDelta::hours(3)).with_timezone(&TZ);
    let soon_time = soon.time().with_nanosecond(0).unwrap();
    let ids = (agency, client_id, account);
    rule(
        &pool,
        ids,
        "Today's special",
        false,
        &[soon.weekday().number_from_monday() as i16],
        soon_time,
        &["text"],
    )
    .await;
    rule(
        &pool,
        ids,
        "Daily bake",
        true,
        &[1, 2, 3, 4, 5, 6, 7],
        later.time().with_nanosecond(0).unwrap(),
        &["image", "text"],
    )
    .await;
    {
        let mut conn = pool.acquire().await.unwrap();
        autosocial_core::queue::enqueue(
            &mut conn,
            &generate::plan_job(agency, client_id, TZ, Utc::now()),
        )
        .await
        .unwrap();
    }
    wait_db(
        &pool,
        "SELECT count(*) >= 2 AND count(*) FILTER (WHERE state IN ('planned', 'generating')) = 0
         FROM content_items WHERE client_id = $1 AND slot_at > now()",
        client_id,
        Duration::from_secs(120),
        "the planned items are generated",
    )
    .await;
    let first: Uuid = sqlx::query_scalar(
        "SELECT id FROM content_items WHERE client_id = $1 AND state = 'pending_review' ORDER BY slot_at LIMIT 1",
    )
    .bind(client_id)
    .fetch_one(&pool)
    .await
    .expect("an item waits for review");

    // ---- review with the keyboard -----------------------------------------------------------
    step("approve the soonest item in the review queue with j, a");
    goto(&console, &base, "/review").await;
    wait_js(
        &console,
        &format!("return document.querySelector('a[href=\"/items/{first}\"]') !== null;"),
        Duration::from_secs(10),
        "the review queue lists the soonest item",
    )
    .await;
    art.page(&console, "review").await;
    press(&console, 'j').await;
    wait_js(
        &console,
        &format!(
            "const a = document.activeElement; return a !== null && a !== document.body && \
             (a.querySelector('a[href=\"/items/{first}\"]') !== null || \
              (a.closest('[data-item]') !== null && a.closest('[data-item]').dataset.item === '{first}'));"
        ),
        Duration::from_secs(5),
        "j focuses the first item of the queue (the soonest)",
    )
    .await;
    art.screenshot(&console, "review-focused").await;
    press(&console, 'a').await;
    wait_db(
        &pool,
        "SELECT state = 'approved' FROM content_items WHERE id = $1",
        first,
        Duration::from_secs(10),
        "a approves the focused item",
    )
    .await;
    wait_js(
        &console,
        &format!(
            "const card = document.getElementById('item-{first}'); \
             return card !== null && card.classList.contains('done') && /approved/i.test(card.innerText);"
        ),
        Duration::from_secs(10),
        "the queue shows the card as approved",
    )
    .await;
    art.page(&console, "review-after-approve").await;

    // ---- watch it publish -------------------------------------------------------------------
    step("watch the item publish live");
    goto(&console, &base, &format!("/items/{first}")).await;
    art.page(&console, "item-scheduled").await;
    let published_on_page = "return document.querySelector('[data-publication-state=\"published\"]') !== null \
         || [...document.querySelectorAll('.state, .badge, [data-state]')].some(e => /^\\s*published\\s*$/i.test(e.textContent));";
    let before: bool = console
        .execute(published_on_page, vec![])
        .await
        .unwrap()
        .as_bool()
        .unwrap();
    assert!(!before, "the item is not published before its time");
    wait_db(
        &pool,
        "SELECT bool_and(state = 'published') FROM publications WHERE item_id = $1",
        first,
        Duration::from_secs(150),
        "the publication is published (its slot is ~90 s after planning)",
    )
    .await;
    // no reload: the open page follows the publication. When it does not, the rest of the
    // scenario still runs (after a reload) and the failure is reported at the end.
    let live = wait_until_js(&console, published_on_page, Duration::from_secs(20)).await;
    if !live {
        console.refresh().await.unwrap();
        let after_reload = wait_until_js(&console, published_on_page, Duration::from_secs(5)).await;
        findings.push(format!(
            "item page /items/{first}: the publication was published but the open page did not show it \
             within 20 s without a reload ({})",
            if after_reload { "a reload shows it: the page is not live" } else { "a reload does not show it either" }
        ));
    }
    art.page(&console, "item-published").await;
    let post_id: String =
        sqlx::query_scalar("SELECT platform_post_id FROM publications WHERE item_id = $1")
            .bind(first)
            .fetch_one(&pool)
            .await
            .unwrap();

    step("the post log shows the attempt");
    wait_js(
        &console,
        "return [...document.querySelectorAll('table')].some(t => /post log|outcome/i.test(t.innerText) && /published/i.test(t.innerText));",
        Duration::from_secs(10),
        "the item page's post log lists the publish attempt and its outcome",
    )
    .await;
    let source = console.source().await.unwrap();
    assert!(
        source.contains(&post_id),
        "the item page names the platform's post id {post_id}"
    );

    step("the calendar shows it, with posts in every state around it");
    // around now: sub-second times in every state next to the real published post
    posts_in_every_state(
        &pool,
        ids,
        Utc::now() - chrono::TimeDelta::minutes(20),
        240.7,
        10,
    )
    .await;
    goto(&console, &base, "/calendar").await;
    wait_js(
        &console,
        &format!("return document.querySelector('a[href=\"/items/{first}\"]') !== null;"),
        Duration::from_secs(10),
        "the calendar links the published item",
    )
    .await;
    art.page(&console, "calendar").await;
    let today = Utc::now().date_naive();
    let berlin_today = Utc::now().with_timezone(&TZ).date_naive();
    for (name, path) in [
        ("calendar-week", format!("/calendar?view=week&date={today}")),
        ("calendar-day", format!("/calendar?view=day&date={today}")),
        (
            "calendar-client-filter",
            format!("/calendar?client={client_id}&date={today}"),
        ),
        (
            "client-calendar",
            format!("/clients/{client_id}/calendar?date={berlin_today}"),
        ),
        (
            "client-calendar-week",
            format!("/clients/{client_id}/calendar?view=week&date={berlin_today}"),
        ),
    ] {
        goto(&console, &base, &path).await;
        wait_js(
            &console,
            "return document.querySelector('time[datetime*=\".\"]') !== null;",
            Duration::from_secs(10),
            &format!("{name} shows posts with sub-second times"),
        )
        .await;
        art.page(&console, name).await;
    }
    // a busy week six weeks ahead (more than the agency-wide views list: per-day counts, and a
    // day list longer than a page)
    let monday = today + chrono::Days::new(42)
        - chrono::Days::new(u64::from(today.weekday().num_days_from_monday()));
    let busy_from = monday.and_hms_opt(8, 0, 0).unwrap().and_utc();
    posts_in_every_state(&pool, ids, busy_from, 300.0, 450).await;
    for (name, path, marker) in [
        (
            "calendar-busy-month",
            format!("/calendar?date={monday}"),
            ".day-count",
        ),
        (
            "calendar-busy-week",
            format!("/calendar?view=week&date={monday}"),
            ".day-count",
        ),
        (
            "calendar-busy-day",
            format!("/calendar?view=day&date={monday}"),
            "nav.pager",
        ),
        (
            "client-calendar-busy-week",
            format!("/clients/{client_id}/calendar?view=week&date={monday}"),
            "li.entry",
        ),
    ] {
        goto(&console, &base, &path).await;
        wait_js(
            &console,
            &format!("return document.querySelector('{marker}') !== null;"),
            Duration::from_secs(10),
            &format!("{name} shows the busy week ({marker})"),
        )
        .await;
        art.page(&console, name).await;
    }

    // ---- every other page, for validation and accessibility ---------------------------------
    step("visit the remaining pages");
    goto(&console, &base, "/").await;
    art.page(&console, "dashboard").await;
    for (name, path) in [
        ("clients", "/clients".to_owned()),
        ("client-edit", format!("/clients/{client_id}/edit")),
        ("client-after", format!("/clients/{client_id}")),
        ("compose", format!("/clients/{client_id}/compose")),
        ("brand", format!("/clients/{client_id}/brand")),
        ("rules", format!("/clients/{client_id}/rules")),
        ("settings", "/settings".to_owned()),
        ("api-keys", "/settings/api-keys".to_owned()),
        ("switches", "/switches".to_owned()),
        ("fleet", "/fleet".to_owned()),
        ("audit", "/audit".to_owned()),
    ] {
        goto(&console, &base, &path).await;
        assert_eq!(path_of(&console).await, path, "{name}: not redirected");
        art.page(&console, name).await;
    }

    // ---- an API key: created in Settings, shown once, then listed with its revoke button -----
    step("create an API key");
    goto(&console, &base, "/settings/api-keys").await;
    fill(&console, "#key-name", "CRM sync").await;
    click(
        &console,
        "//button[normalize-space()='Create key']",
        "create key",
    )
    .await;
    wait_js(
        &console,
        "return document.querySelector('#new-key') !== null \
         && document.querySelector('#new-key').value.startsWith('as_live_');",
        Duration::from_secs(10),
        "the new key is shown once",
    )
    .await;
    art.foreign(&console, "api-key-created").await;
    goto(&console, &base, "/settings/api-keys").await;
    art.page(&console, "api-keys-listed").await;

    // ---- a webhook endpoint: added in Settings, its secret shown once, a test event queued,
    // its delivery log with a failed and a delivered attempt; one endpoint disabled by the system
    step("add a webhook endpoint");
    goto(&console, &base, "/settings/webhooks").await;
    art.page(&console, "webhooks-empty").await;
    fill(
        &console,
        "#wh-url",
        "http://127.0.0.1:9/receivers/autosocial/a-rather-long-path-that-a-crm-integration-would-give-out?token=abc",
    )
    .await;
    fill(&console, "#wh-description", "CRM sync").await;
    click(
        &console,
        "//input[@id='wh-event-item-created']",
        "item.created",
    )
    .await;
    click(
        &console,
        "//input[@id='wh-event-publication-failed']",
        "publication.failed",
    )
    .await;
    click(
        &console,
        "//button[normalize-space()='Add endpoint']",
        "add endpoint",
    )
    .await;
    wait_js(
        &console,
        "return document.querySelector('#new-secret') !== null \
         && document.querySelector('#new-secret').value.startsWith('whsec_');",
        Duration::from_secs(10),
        "the signing secret is shown once",
    )
    .await;
    art.foreign(&console, "webhook-created").await;
    goto(&console, &base, "/settings/webhooks").await;
    click(
        &console,
        "//button[starts-with(normalize-space(), 'Send test event')]",
        "send test event",
    )
    .await;
    let endpoint: Uuid =
        sqlx::query_scalar("SELECT id FROM webhook_endpoints WHERE description = 'CRM sync'")
            .fetch_one(&pool)
            .await
            .unwrap();
    wait_db(
        &pool,
        "SELECT EXISTS (SELECT 1 FROM webhook_deliveries WHERE endpoint_id = $1)",
        endpoint,
        Duration::from_secs(10),
        "the test event's delivery is queued",
    )
    .await;
    // what the worker's attempts would have left: a refused attempt, then a delivered one
    sqlx::query(
        "UPDATE webhook_deliveries SET state = 'delivered', attempts = 2, last_status = 204,
             last_attempt_at = now(), delivered_at = now()
         WHERE endpoint_id = $1",
    )
    .bind(endpoint)
    .execute(&pool)
    .await
    .unwrap();
    sqlx::query(
        "INSERT INTO webhook_attempts (delivery_id, agency_id, attempt, status_code, duration_ms, error, response_excerpt)
         SELECT d.id, d.agency_id, n, CASE n WHEN 1 THEN 503 ELSE 204 END, 40 * n,
                CASE n WHEN 1 THEN 'the receiver answered 503 Service Unavailable' END,
                CASE n WHEN 1 THEN '<html><body>upstream unavailable</body></html>' END
         FROM webhook_deliveries d, generate_series(1, 2) n WHERE d.endpoint_id = $1",
    )
    .bind(endpoint)
    .execute(&pool)
    .await
    .unwrap();
    goto(&console, &base, &format!("/settings/webhooks/{endpoint}")).await;
    art.page(&console, "webhook-log").await;
    sqlx::query(
        "UPDATE webhook_endpoints SET disabled_at = now(),
             disabled_reason = 'Disabled automatically: every delivery attempt failed for 24 hours.'
         WHERE id = $1",
    )
    .bind(endpoint)
    .execute(&pool)
    .await
    .unwrap();
    goto(&console, &base, "/settings/webhooks").await;
    art.page(&console, "webhooks-disabled").await;

    // ---- an invitation: the owner invites, the invited person opens the link ----------------
    step("invite a member and open the invitation");
    goto(&console, &base, "/settings").await;
    fill(&console, "#invite-email", "newcomer@example.test").await;
    click(&console, "//button[normalize-space()='Invite']", "invite").await;
    wait_js(
        &console,
        "return document.querySelector('#invite-link') !== null;",
        Duration::from_secs(10),
        "the invitation link is shown once",
    )
    .await;
    let invite_link = console
        .execute(
            "return document.querySelector('#invite-link').value;",
            vec![],
        )
        .await
        .expect("the invitation link")
        .as_str()
        .expect("a link")
        .to_owned();
    art.foreign(&console, "settings-invited").await;
    goto(&console, &base, "/settings").await;
    art.page(&console, "settings-invitations").await;
    let invitee = driver.session(&tools).await;
    invitee
        .goto(&invite_link)
        .await
        .expect("open the invitation");
    art.page(&invitee, "invite").await;
    invitee
        .close()
        .await
        .expect("close the invited person's browser");

    // ---- the operator's view of the same pages: deployment-wide switches, system jobs -------
    step("the operator's switches and fleet");
    sqlx::query("INSERT INTO operators (user_id) SELECT id FROM users WHERE email = $1")
        .bind(OWNER)
        .execute(&pool)
        .await
        .unwrap();
    sqlx::query(
        "INSERT INTO jobs (kind, state, attempts, max_attempts, last_error, finished_at)
         VALUES ('refresh_sweep', 'failed', 3, 3, 'a system job that failed', now())",
    )
    .execute(&pool)
    .await
    .unwrap();
    for (name, path) in [
        ("switches-operator", "/switches"),
        ("fleet-operator", "/fleet"),
    ] {
        goto(&console, &base, path).await;
        art.page(&console, name).await;
    }
    console.close().await.expect("close the console's browser");

    // ---- the checks over everything seen ----------------------------------------------------
    step("validate the HTML of every page (Nu Html Checker)");
    let errors = art.validate_html(&tools);
    step("accessibility (axe-core)");
    let axe = std::mem::take(&mut art.axe_failures);
    let console_errors = std::mem::take(&mut art.console_errors);
    if std::env::var_os("AUTOSOCIAL_UPDATE_SCREENSHOTS").is_some() {
        art.publish_screenshots(
            &[
                ("dashboard", "dashboard.png"),
                ("review", "review-queue.png"),
                ("calendar", "calendar.png"),
            ],
            960,
        );
    }
    let _ = std::fs::remove_dir_all(&media_dir);
    let report = format!(
        "Scenario failures ({}):\n{}\n\nHTML errors ({}):\n{}\n\naxe-core violations ({}):\n{}\n\nBrowser console errors ({}):\n{}\n",
        findings.len(),
        findings.join("\n"),
        errors.len(),
        errors.join("\n"),
        axe.len(),
        axe.join("\n"),
        console_errors.len(),
        console_errors.join("\n"),
    );
    std::fs::write(art.dir.join("report.txt"), &report).expect("write the report");
    assert!(
        findings.is_empty() && errors.is_empty() && axe.is_empty() && console_errors.is_empty(),
        "{}\n(full report and artifacts in {})",
        summarize(&report),
        art.dir.display()
    );
}
