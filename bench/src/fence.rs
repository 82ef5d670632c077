//! `autosocial-bench fence`: the window a fence leaves open. A publish request goes through the
//! sandbox connector exactly as a worker sends it; the fence notes the instant its check passed,
//! and a bare local HTTP server notes the instant the request's first bytes reached it (both on
//! this process's monotonic clock). A freeze that starts inside that window and outlasts the
//! fence margin is the one case the fence cannot stop.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

use autosocial_core::platforms::{
    self, AccountRef, Connector, Fence, PlatformError, PostRequest, sandbox::SandboxConnector,
};

use crate::harness::percentile;
use crate::seeding;

pub struct Args {
    pub requests: usize,
    pub concurrency: usize,
    pub cpu_hog: bool,
}

/// Notes when its check passed, by the marker of the post it guards.
struct Stamp {
    marker: String,
    passed: Arc<Mutex<HashMap<String, Instant>>>,
}

impl Fence for Stamp {
    fn check(
        &self,
    ) -> std::pin::Pin<Box<dyn std::future::Future<Output = Result<(), PlatformError>> + Send + '_>>
    {
        Box::pin(async move {
            self.passed
                .lock()
                .expect("stamps")
                .insert(self.marker.clone(), Instant::now());
            Ok(())
        })
    }
}

/// A minimal HTTP/1.1 server: notes when each request's first bytes arrive (by the marker in
/// its JSON body) and answers like the sandbox's post endpoint.
async fn serve(listener: TcpListener, arrived: Arc<Mutex<HashMap<String, Instant>>>) {
    loop {
        let Ok((mut sock, _)) = listener.accept().await else {
            return;
        };
        let arrived = arrived.clone();
        tokio::spawn(async move {
            let _ = sock.set_nodelay(true);
            let mut buf = Vec::with_capacity(4096);
            let mut chunk = [0u8; 4096];
            loop {
                buf.clear();
                let n = match sock.read(&mut chunk).await {
                    Ok(0) | Err(_) => return,
                    Ok(n) => n,
                };
                let first = Instant::now();
                buf.extend_from_slice(&chunk[..n]);
                // the head, then as much body as it announces
                let head_end = loop {
                    if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                        break i + 4;
                    }
                    match sock.read(&mut chunk).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => buf.extend_from_slice(&chunk[..n]),
                    }
                };
                let head = String::from_utf8_lossy(&buf[..head_end]).to_ascii_lowercase();
                let length: usize = head
                    .lines()
                    .find_map(|l| l.strip_prefix("content-length:"))
                    .and_then(|v| v.trim().parse().ok())
                    .unwrap_or(0);
                while buf.len() < head_end + length {
                    match sock.read(&mut chunk).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => buf.extend_from_slice(&chunk[..n]),
                    }
                }
                let body: serde_json::Value =
                    serde_json::from_slice(&buf[head_end..head_end + length]).unwrap_or_default();
                if let Some(marker) = body["marker"].as_str() {
                    arrived
                        .lock()
                        .expect("stamps")
                        .insert(marker.to_owned(), first);
                }
                let answer = json!({ "id": "p1", "url": null }).to_string();
                let response = format!(
                    "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{answer}",
                    answer.len()
                );
                if sock.write_all(response.as_bytes()).await.is_err() {
                    return;
                }
            }
        });
    }
}

pub async fn run(a: Args) -> anyhow::Result<()> {
    anyhow::ensure!(
        a.requests > 0 && a.concurrency > 0,
        "--requests and --concurrency must be positive"
    );
    // the server on a thread and runtime of its own, so the clients' tasks do not delay its reads
    let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
    listener.set_nonblocking(true)?;
    let base = url::Url::parse(&format!("http://{}/", listener.local_addr()?))?;
    let arrived: Arc<Mutex<HashMap<String, Instant>>> = Arc::default();
    {
        let arrived = arrived.clone();
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        std::thread::spawn(move || {
            rt.block_on(async move {
                match TcpListener::from_std(listener) {
                    Ok(l) => serve(l, arrived).await,
                    Err(e) => eprintln!("fence bench server: {e}"),
                }
            })
        });
    }
    let connector = Arc::new(SandboxConnector::new(base, platforms::http_client()));
    let passed: Arc<Mutex<HashMap<String, Instant>>> = Arc::default();
    let _hog = if a.cpu_hog {
        Some(seeding::CpuHog::start()?)
    } else {
        None
    };
    let next = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let mut tasks = Vec::new();
    for _ in 0..a.concurrency {
        let (connector, passed, next, n) =
            (connector.clone(), passed.clone(), next.clone(), a.requests);
        tasks.push(tokio::spawn(async move {
            loop {
                let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                if i >= n {
                    return anyhow::Ok(());
                }
                let marker = format!("mk{i:08}");
                let post = PostRequest {
                    account: AccountRef {
                        platform_account_id: "acct".into(),
                        kind: "user".into(),
                    },
                    text: format!("fence window {i}"),
                    link_url: None,
                    media: vec![],
                    marker: marker.clone(),
                };
                let fence = Stamp {
                    marker,
                    passed: passed.clone(),
                };
                connector.publish("token", &post, &fence).await?;
            }
        }));
    }
    let started = Instant::now();
    for t in tasks {
        t.await??;
    }
    let elapsed = started.elapsed();
    let passed = passed.lock().expect("stamps");
    let arrived = arrived.lock().expect("stamps");
    let mut windows: Vec<f64> = passed
        .iter()
        .filter_map(|(m, p)| {
            arrived
                .get(m)
                .map(|a| a.saturating_duration_since(*p).as_secs_f64() * 1000.0)
        })
        .collect();
    anyhow::ensure!(
        windows.len() == a.requests,
        "{} of {} requests were seen by the server",
        windows.len(),
        a.requests
    );
    windows.sort_by(f64::total_cmp);
    let p = |q: f64| percentile(&windows, q);
    let max = windows.last().copied().unwrap_or(0.0);
    println!(
        "{} requests ({} at a time{}) in {:.1} s: fence passed → first byte at the server, ms: p50 {:.3}, p99 {:.3}, p99.9 {:.3}, max {:.3}",
        a.requests,
        a.concurrency,
        if a.cpu_hog { ", CPU hog" } else { "" },
        elapsed.as_secs_f64(),
        p(0.5),
        p(0.99),
        p(0.999),
        max
    );
    let r3 = |x: f64| (x * 1000.0).round() / 1000.0;
    println!(
        "{}",
        json!({
            "bench": "fence", "requests": a.requests, "concurrency": a.concurrency, "cpu_hog": a.cpu_hog,
            "window_p50_ms": r3(p(0.5)), "window_p99_ms": r3(p(0.99)), "window_p999_ms": r3(p(0.999)),
            "window_max_ms": r3(max),
        })
    );
    Ok(())
}
