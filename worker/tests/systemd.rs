//! The shipped unit files pass `systemd-analyze verify` with no warning.

use std::path::Path;
use std::process::Command;

#[test]
fn unit_files_verify_cleanly() {
    let units = Path::new(env!("CARGO_MANIFEST_DIR")).join("../systemd");
    let dir = tempfile::tempdir().unwrap();
    let worker = env!("CARGO_BIN_EXE_autosocial-worker");
    for entry in std::fs::read_dir(&units).unwrap() {
        let path = entry.unwrap().path();
        let text = std::fs::read_to_string(&path).unwrap();
        // point ExecStart at binaries that exist here (verify checks they are executable)
        let text = text
            .replace("/usr/local/bin/autosocial-worker", worker)
            .replace("/usr/local/bin/autosocial-admin", "/bin/true");
        std::fs::write(dir.path().join(path.file_name().unwrap()), text).unwrap();
    }
    std::fs::copy(
        dir.path().join("autosocial-worker@.service"),
        dir.path().join("autosocial-worker@01.service"),
    )
    .unwrap();
    let out = Command::new("systemd-analyze")
        .current_dir(dir.path())
        .args(["verify", "--man=no"])
        .args([
            "./autosocial-worker@01.service",
            "./autosocial-admin.service",
            "./autosocial-migrate.service",
            "./autosocial.target",
        ])
        .env("SYSTEMD_LOG_LEVEL", "notice")
        .output()
        .expect("systemd-analyze (Debian package `systemd`; deploy/dev test installs it)");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "verify failed: {stderr}");
    assert!(stderr.trim().is_empty(), "verify warned: {stderr}");
}
