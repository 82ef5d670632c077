//! The README's settings table says what `autosocial-admin`'s commands say in their `--help`:
//! every variable, with clap's default (see `autosocial_core::settings_doc`).

use std::process::Command;

use autosocial_core::settings_doc::{
    Setting, readme_mismatches, readme_rows, repo_root, settings_in_help, subcommands_in_help,
};

fn help(args: &[String]) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_autosocial-admin"))
        .args(args)
        .arg("--help")
        .env_clear()
        .output()
        .unwrap();
    assert!(out.status.success(), "{args:?}: {out:?}");
    String::from_utf8(out.stdout).unwrap()
}

/// Every command and subcommand's settings.
fn all_settings(path: Vec<String>, out: &mut Vec<Setting>) {
    let text = help(&path);
    for s in settings_in_help(&text) {
        if !out.iter().any(|o| o.variable == s.variable) {
            out.push(s);
        }
    }
    for sub in subcommands_in_help(&text) {
        let mut next = path.clone();
        next.push(sub);
        all_settings(next, out);
    }
}

#[test]
fn the_readme_documents_the_admin_settings_as_they_are() {
    let mut settings = Vec::new();
    all_settings(Vec::new(), &mut settings);
    assert!(
        settings
            .iter()
            .any(|s| s.variable == "AUTOSOCIAL_SESSION_IDLE_MINUTES"),
        "serve's settings were read: {settings:?}"
    );
    let readme = std::fs::read_to_string(repo_root().join("README.md")).unwrap();
    let problems = readme_mismatches("admin", &settings, &readme_rows(&readme), &["RUST_LOG"]);
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}
