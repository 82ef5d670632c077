//! The README's settings table says what `autosocial-worker run --help` says: every variable,
//! with clap's default (see `autosocial_core::settings_doc`).

use std::process::Command;

use autosocial_core::settings_doc::{readme_mismatches, readme_rows, repo_root, settings_in_help};

#[test]
fn the_readme_documents_the_worker_settings_as_they_are() {
    let out = Command::new(env!("CARGO_BIN_EXE_autosocial-worker"))
        .args(["run", "--help"])
        .env_clear()
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let help = String::from_utf8(out.stdout).unwrap();
    let settings = settings_in_help(&help);
    assert!(settings.len() > 30, "{settings:?}");
    // the default of the kinds is the list the process runs
    let kinds = settings
        .iter()
        .find(|s| s.variable == "AUTOSOCIAL_WORKER_KINDS")
        .and_then(|s| s.default.clone())
        .expect("AUTOSOCIAL_WORKER_KINDS has a default");
    assert!(
        kinds.contains("publish") && kinds.contains("generate"),
        "{kinds}"
    );
    let readme = std::fs::read_to_string(repo_root().join("README.md")).unwrap();
    let problems = readme_mismatches("worker", &settings, &readme_rows(&readme), &["RUST_LOG"]);
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}
