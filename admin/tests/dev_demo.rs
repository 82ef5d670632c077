//! `deploy/dev demo` keeps everything it printed, wherever its output goes: the owner's
//! one-time password is printed before the live watch starts, and the watch once reopened
//! `/dev/stderr`, which truncates a file that stderr was redirected to.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the workspace root")
        .to_owned()
}

/// Runs the demo's sequence with deploy/dev's own helpers: the password on stdout, the banner on
/// stderr, then the watch started as `deploy/dev demo` starts it (`log` as given), which writes
/// to both of its streams; `redirect` is the shell redirection of the whole sequence.
fn demo_sequence(log: &str, redirect: &str, dir: &Path) {
    let script = format!(
        r#"set -euo pipefail
source "$1/deploy/lib/services.sh"
{{
    echo "Owner login: owner@demo.example / one-time password hunter2-correct-horse"
    echo "AutoSocial demo is running." >&2
    start_child watch {log} bash -c 'echo "watch: published post 1"; echo "watch: published post 2" >&2'
    wait "${{CHILD_PIDS[0]}}"
}} {redirect}
"#
    );
    let status = Command::new("bash")
        .arg("-c")
        .arg(script)
        .arg("demo-test")
        .arg(repo())
        .current_dir(dir)
        .stdin(Stdio::null())
        .status()
        .expect("bash runs");
    assert!(status.success(), "the sequence ran ({log}, {redirect})");
}

/// A directory removed at the end of the test.
struct TempDir(PathBuf);

impl TempDir {
    fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

#[test]
fn the_demo_password_survives_any_redirection_of_its_output() {
    let dir = std::env::temp_dir().join(format!("autosocial-demo-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let dir = TempDir(dir);
    // `deploy/dev demo` itself starts the watch with "-"; /dev/stderr is what it used to pass
    for log in ["-", "/dev/stderr"] {
        // both streams into one file
        demo_sequence(log, "> demo.log 2>&1", dir.path());
        let all = read(&dir.path().join("demo.log"));
        for line in [
            "one-time password hunter2-correct-horse",
            "AutoSocial demo is running.",
            "watch: published post 1",
            "watch: published post 2",
        ] {
            assert!(all.contains(line), "{log}: demo.log lost “{line}”:\n{all}");
        }
        let password_at = all.find("one-time password").unwrap();
        assert!(
            password_at < all.find("watch: published post 1").unwrap(),
            "{log}: the password comes first:\n{all}"
        );

        // each stream into its own file: the watch goes to stderr, after the banner
        demo_sequence(log, "> out.log 2> err.log", dir.path());
        let out = read(&dir.path().join("out.log"));
        let err = read(&dir.path().join("err.log"));
        assert!(out.contains("hunter2-correct-horse"), "{log}: {out}");
        assert!(
            err.contains("AutoSocial demo is running.")
                && err.contains("watch: published post 1")
                && err.contains("watch: published post 2"),
            "{log}: {err}"
        );
    }
}

#[test]
fn the_demo_starts_its_watch_on_the_shared_stderr() {
    let dev = read(&repo().join("deploy/dev"));
    let watch = dev
        .lines()
        .find(|l| l.contains("start_child watch"))
        .expect("deploy/dev starts the demo's watch");
    assert!(
        watch.contains("start_child watch - "),
        "the watch shares deploy/dev's stderr instead of opening a file: {watch}"
    );
}
