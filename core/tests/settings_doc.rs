//! `deploy/env.example` says what the README's settings table says (each binary's own tests
//! compare the table with the binary's settings; see `autosocial_core::settings_doc`).

use autosocial_core::settings_doc::{self, env_example_mismatches, readme_rows, repo_root};

#[test]
fn env_example_shows_the_documented_defaults_and_only_documented_variables() {
    let root = repo_root();
    let readme = std::fs::read_to_string(root.join("README.md")).unwrap();
    let example = std::fs::read_to_string(root.join("deploy/env.example")).unwrap();
    let rows = readme_rows(&readme);
    assert!(rows.len() > 30, "the settings table was read: {rows:?}");
    let problems = env_example_mismatches(&example, &rows);
    assert!(problems.is_empty(), "{}", problems.join("\n"));

    // everything a production process reads is in the example, but what only development,
    // tests and the demo use (and what systemd hands over otherwise)
    let not_for_production = [
        "AUTOSOCIAL_KEYS",     // development only; production uses the key file
        "AUTOSOCIAL_KEY_FILE", // the systemd credential instead
        "AUTOSOCIAL_WORKER_METRICS_LISTEN", // from the unit's instance name
        "AUTOSOCIAL_SANDBOX_URL",
        "AUTOSOCIAL_SANDBOX_CLIENT_ID",
        "AUTOSOCIAL_SANDBOX_CLIENT_SECRET",
        "AUTOSOCIAL_PLATFORMS_IN_SANDBOX",
    ];
    let listed = settings_doc::env_example(&example);
    let missing: Vec<&str> = rows
        .iter()
        .filter(|r| r.names("admin") || r.names("worker"))
        .map(|r| r.variable.as_str())
        .filter(|v| !listed.contains_key(*v) && !not_for_production.contains(v) && *v != "RUST_LOG")
        .collect();
    assert!(
        missing.is_empty(),
        "deploy/env.example does not mention {missing:?}"
    );
}
