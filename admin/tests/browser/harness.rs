//! Headless Chromium over WebDriver for the browser tests: finding the tools, running
//! chromedriver, opening sessions, and recording every page visited (screenshot, the HTML the
//! server sent, axe-core's findings) under `target/browser-artifacts/`.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use fantoccini::{Client, ClientBuilder};
use serde_json::{Value, json};

/// Where the tools are. `deploy/dev test` installs them (deploy/lib/browser.sh) and exports the
/// variables; without them the usual places are tried.
pub struct Tools {
    pub chromium: PathBuf,
    pub chromedriver: PathBuf,
    pub java: PathBuf,
    pub vnu_jar: PathBuf,
    pub axe_js: PathBuf,
}

const INSTALL_HINT: &str = "run the tests through `deploy/dev test`, which installs Chromium, chromedriver, Java, vnu-jar and axe-core \
     (deploy/lib/browser.sh), or set AUTOSOCIAL_TEST_CHROMIUM, AUTOSOCIAL_TEST_CHROMEDRIVER, AUTOSOCIAL_TEST_JAVA, \
     AUTOSOCIAL_TEST_VNU_JAR and AUTOSOCIAL_TEST_AXE_JS";

fn on_path(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|d| d.join(name))
        .find(|p| p.is_file())
}

fn tool(var: &str, candidates: &[PathBuf]) -> PathBuf {
    if let Some(v) = std::env::var_os(var) {
        let p = PathBuf::from(v);
        assert!(
            p.is_file(),
            "{var}={} does not exist; {INSTALL_HINT}",
            p.display()
        );
        return p;
    }
    candidates
        .iter()
        .find(|p| p.is_file())
        .cloned()
        .unwrap_or_else(|| panic!("{var} is not set and no default was found; {INSTALL_HINT}"))
}

impl Tools {
    pub fn find() -> Tools {
        let npm_dir = std::env::var_os("AUTOSOCIAL_BROWSER_TOOLS_DIR")
            .map(PathBuf::from)
            .or_else(|| {
                let cache = std::env::var_os("XDG_CACHE_HOME")
                    .map(PathBuf::from)
                    .or_else(|| {
                        std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache"))
                    })?;
                Some(cache.join("autosocial/browser-tools"))
            })
            .unwrap_or_default()
            .join("node_modules");
        let found =
            |names: &[&str]| -> Vec<PathBuf> { names.iter().filter_map(|n| on_path(n)).collect() };
        let mut drivers = found(&["chromedriver"]);
        drivers.push("/usr/lib/chromium/chromedriver".into());
        Tools {
            chromium: tool(
                "AUTOSOCIAL_TEST_CHROMIUM",
                &found(&["chromium", "chromium-browser"]),
            ),
            chromedriver: tool("AUTOSOCIAL_TEST_CHROMEDRIVER", &drivers),
            java: tool("AUTOSOCIAL_TEST_JAVA", &found(&["java"])),
            vnu_jar: tool(
                "AUTOSOCIAL_TEST_VNU_JAR",
                &[npm_dir.join("vnu-jar/build/dist/vnu.jar")],
            ),
            axe_js: tool(
                "AUTOSOCIAL_TEST_AXE_JS",
                &[npm_dir.join("axe-core/axe.min.js")],
            ),
        }
    }
}

/// A chromedriver process on a free port, stopped on drop.
pub struct Driver {
    child: Child,
    pub url: String,
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

impl Driver {
    pub async fn start(tools: &Tools, log: &Path) -> Driver {
        let port = free_port();
        let child = Command::new(&tools.chromedriver)
            .arg(format!("--port={port}"))
            .arg(format!("--log-path={}", log.display()))
            // INFO would log every script, axe-core's 500 kB included
            .arg("--log-level=WARNING")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("starting {}: {e}", tools.chromedriver.display()));
        let driver = Driver {
            child,
            url: format!("http://127.0.0.1:{port}"),
        };
        let http = reqwest::Client::new();
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let ready = match http.get(format!("{}/status", driver.url)).send().await {
                Ok(r) => r
                    .json::<Value>()
                    .await
                    .is_ok_and(|v| v["value"]["ready"] == json!(true)),
                Err(_) => false,
            };
            if ready {
                return driver;
            }
            assert!(
                Instant::now() < deadline,
                "chromedriver did not become ready within 20 s (log: {})",
                log.display()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// A new browser session: its own profile, so no cookies shared with other sessions.
    pub async fn session(&self, tools: &Tools) -> Client {
        let mut caps = serde_json::Map::new();
        caps.insert("browserName".into(), json!("chrome"));
        // the browser's console (a failed resource load, a script error) for Artifacts::page
        caps.insert("goog:loggingPrefs".into(), json!({ "browser": "ALL" }));
        caps.insert(
            "goog:chromeOptions".into(),
            json!({
                "binary": tools.chromium,
                "args": [
                    "--headless=new",
                    // Chromium's sandbox cannot run as root (CI runs as root)
                    "--no-sandbox",
                    "--disable-dev-shm-usage",
                    "--disable-gpu",
                    "--window-size=1280,860",
                    "--lang=en-US",
                    "--no-first-run",
                    "--disable-extensions",
                ],
            }),
        );
        ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
            .capabilities(caps)
            .connect(&self.url)
            .await
            .unwrap_or_else(|e| panic!("opening a Chromium session: {e}"))
    }
}

/// The workspace's target directory: the test binary lives in `<target>/<profile>/deps/`.
pub fn target_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("the test binary's path");
    exe.ancestors()
        .nth(3)
        .map(Path::to_path_buf)
        .expect("the test binary lives in <target>/<profile>/deps")
}

/// One page recorded: its name, screenshot and (for our pages) the HTML we served.
pub struct Visit {
    pub name: String,
    pub png: PathBuf,
    pub html: Option<PathBuf>,
}

/// Everything the scenario saw, and what axe-core found wrong with it.
pub struct Artifacts {
    pub dir: PathBuf,
    pub visits: Vec<Visit>,
    pub axe_failures: Vec<String>,
    /// Errors in the browser's console on our pages (a resource that did not load, a script
    /// that failed), one line each; read through chromedriver at `driver_url`.
    pub console_errors: Vec<String>,
    pub driver_url: Option<String>,
    axe_source: String,
    http: reqwest::Client,
    files: usize,
}

impl Artifacts {
    pub fn new(tools: &Tools) -> Artifacts {
        let dir = target_dir().join("browser-artifacts");
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("create target/browser-artifacts");
        Artifacts {
            dir,
            visits: Vec::new(),
            axe_failures: Vec::new(),
            console_errors: Vec::new(),
            driver_url: None,
            axe_source: std::fs::read_to_string(&tools.axe_js)
                .unwrap_or_else(|e| panic!("reading {}: {e}", tools.axe_js.display())),
            http: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .expect("an HTTP client"),
            files: 0,
        }
    }

    /// `NN-name.ext`, numbered in the order pages were seen (a page's PNG and HTML share one).
    fn file(&self, name: &str, ext: &str) -> PathBuf {
        self.dir.join(format!("{:02}-{name}.{ext}", self.files))
    }

    /// Screenshot the page the session shows now.
    pub async fn screenshot(&mut self, c: &Client, name: &str) -> PathBuf {
        self.files += 1;
        let png = self.file(name, "png");
        let bytes = c.screenshot().await.expect("a screenshot");
        std::fs::write(&png, bytes).expect("write the screenshot");
        png
    }

    /// The browser console's entries since the last read (chromedriver hands each out once),
    /// as (level, message).
    async fn console(&self, c: &Client) -> Vec<(String, String)> {
        let Some(driver) = &self.driver_url else {
            return Vec::new();
        };
        let id = c.session_id().await.ok().flatten().expect("a session id");
        let answer: Value = self
            .http
            .post(format!("{driver}/session/{id}/se/log"))
            .json(&json!({ "type": "browser" }))
            .send()
            .await
            .and_then(|r| r.error_for_status())
            .expect("chromedriver hands out the browser's console log")
            .json()
            .await
            .expect("the console log as JSON");
        answer["value"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|e| {
                (
                    e["level"].as_str().unwrap_or("").to_owned(),
                    e["message"].as_str().unwrap_or("").to_owned(),
                )
            })
            .collect()
    }

    /// Record a page of someone else (the sandbox's consent page): screenshot only.
    pub async fn foreign(&mut self, c: &Client, name: &str) {
        // what the browser logged meanwhile is not about our pages
        let _ = self.console(c).await;
        let png = self.screenshot(c, name).await;
        self.visits.push(Visit {
            name: name.to_owned(),
            png,
            html: None,
        });
    }

    /// Record one of our pages: screenshot, the HTML the server sends for its URL (fetched again
    /// with the session's cookies: the DOM Chromium serializes has been repaired by its parser,
    /// so it would hide markup errors), axe-core's findings of every impact, and the errors the
    /// browser logged.
    pub async fn page(&mut self, c: &Client, name: &str) {
        let png = self.screenshot(c, name).await;
        let url = c.current_url().await.expect("the current URL");
        let cookies = c
            .get_all_cookies()
            .await
            .expect("the session's cookies")
            .iter()
            .map(|k| format!("{}={}", k.name(), k.value()))
            .collect::<Vec<_>>()
            .join("; ");
        let mut req = self.http.get(url.as_str());
        if !cookies.is_empty() {
            req = req.header("cookie", cookies);
        }
        let res = req.send().await.expect("fetching the page's HTML");
        assert_eq!(
            res.status(),
            200,
            "{name}: GET {url} answered {} when fetched for validation",
            res.status()
        );
        let body = res.text().await.expect("the page's HTML");
        let html = self.file(name, "html");
        std::fs::write(&html, body).expect("write the HTML");
        self.axe(c, name, url.path()).await;
        for (level, message) in self.console(c).await {
            if level == "SEVERE" {
                self.console_errors
                    .push(format!("{name} ({}): {message}", url.path()));
            }
        }
        self.visits.push(Visit {
            name: name.to_owned(),
            png,
            html: Some(html),
        });
    }

    /// Run axe-core in the page. WebDriver's scripts are not subject to the page's CSP, so the
    /// library is injected as the script body.
    async fn axe(&mut self, c: &Client, name: &str, path: &str) {
        let inject = format!("{}\n;return typeof window.axe;", self.axe_source);
        let kind = c
            .execute(&inject, vec![])
            .await
            .unwrap_or_else(|e| panic!("{name}: injecting axe-core: {e}"));
        assert_eq!(kind, json!("object"), "{name}: axe-core did not load");
        let result = c
            .execute_async(
                r#"const done = arguments[arguments.length - 1];
                   axe.run(document, { resultTypes: ['violations'] })
                      .then(r => done(JSON.stringify(r.violations)))
                      .catch(e => done(JSON.stringify({ error: String(e) })));"#,
                vec![],
            )
            .await
            .unwrap_or_else(|e| panic!("{name}: running axe-core: {e}"));
        let text = result.as_str().expect("axe's result as JSON text");
        let parsed: Value = serde_json::from_str(text).expect("axe's JSON");
        if let Some(e) = parsed.get("error") {
            panic!("{name}: axe-core failed: {e}");
        }
        for v in parsed.as_array().into_iter().flatten() {
            let impact = v["impact"].as_str().unwrap_or("");
            let targets: Vec<String> = v["nodes"]
                .as_array()
                .into_iter()
                .flatten()
                .take(5)
                .map(|n| n["target"].to_string())
                .collect();
            self.axe_failures.push(format!(
                "{name} ({path}): [{impact}] {}: {} — {}",
                v["id"].as_str().unwrap_or("?"),
                v["help"].as_str().unwrap_or(""),
                targets.join(", ")
            ));
        }
    }

    /// Validate every recorded page's HTML with the Nu Html Checker in one run; returns the
    /// errors, one line each.
    pub fn validate_html(&self, tools: &Tools) -> Vec<String> {
        let files: Vec<&PathBuf> = self.visits.iter().filter_map(|v| v.html.as_ref()).collect();
        assert!(!files.is_empty(), "no page was recorded");
        let out = Command::new(&tools.java)
            .arg("-jar")
            .arg(&tools.vnu_jar)
            .args(["--errors-only", "--format", "json"])
            .args(&files)
            .output()
            .unwrap_or_else(|e| panic!("running {}: {e}", tools.java.display()));
        // vnu writes its report to stderr; exit 1 means "errors found"
        let report: Value = serde_json::from_slice(&out.stderr).unwrap_or_else(|e| {
            panic!(
                "the Nu Html Checker's report is not JSON ({e}; exit {:?}): {}",
                out.status.code(),
                String::from_utf8_lossy(&out.stderr)
            )
        });
        let errors: Vec<String> = report["messages"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|m| m["type"] == "error" || m["subType"] == "fatal")
            .map(|m| {
                let file = m["url"].as_str().unwrap_or("?");
                let file = file.rsplit('/').next().unwrap_or(file);
                format!(
                    "{file}:{}: {} — {}",
                    m["lastLine"],
                    m["message"].as_str().unwrap_or(""),
                    m["extract"].as_str().unwrap_or("").trim()
                )
            })
            .collect();
        assert!(
            out.status.success() || !errors.is_empty(),
            "the Nu Html Checker failed (exit {:?}): {}",
            out.status.code(),
            String::from_utf8_lossy(&out.stderr)
        );
        errors
    }

    /// Copy screenshots into `docs/screenshots/` (for the README), scaled to `width` pixels.
    pub fn publish_screenshots(&self, names: &[(&str, &str)], width: u32) {
        let docs = Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/screenshots");
        std::fs::create_dir_all(&docs).expect("create docs/screenshots");
        for (visit, file) in names {
            let v = self
                .visits
                .iter()
                .rev()
                .find(|v| v.name == *visit)
                .unwrap_or_else(|| panic!("no page named {visit} was recorded"));
            let img = image::open(&v.png).expect("read the screenshot");
            let h = img.height() * width / img.width();
            img.resize(width, h, image::imageops::FilterType::Lanczos3)
                .save(docs.join(file))
                .expect("write the docs screenshot");
        }
    }
}
