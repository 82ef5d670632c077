//! The README's settings table says what `autosocial-sandbox --help` says (the checker is
//! core's `settings_doc`, included by path: the sandbox does not depend on core).

#[path = "../../core/src/settings_doc.rs"]
#[allow(dead_code)]
mod settings_doc;

use std::process::Command;

#[test]
fn the_readme_documents_the_sandbox_settings_as_they_are() {
    let out = Command::new(env!("CARGO_BIN_EXE_autosocial-sandbox"))
        .arg("--help")
        .env_clear()
        .output()
        .unwrap();
    assert!(out.status.success());
    let settings = settings_doc::settings_in_help(&String::from_utf8(out.stdout).unwrap());
    assert!(settings.len() >= 4, "{settings:?}");
    let readme = std::fs::read_to_string(settings_doc::repo_root().join("README.md")).unwrap();
    let problems = settings_doc::readme_mismatches(
        "sandbox",
        &settings,
        &settings_doc::readme_rows(&readme),
        &["RUST_LOG"],
    );
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}
