//! The documented settings checked against the binaries' own definitions (tests only).
//!
//! Every setting is a clap argument with an `env` name, and clap's definition is the one place
//! its default lives. The README's settings table and `deploy/env.example` restate them for
//! people; the tests of each binary read its `--help` (which clap builds from the definitions)
//! and compare, so a changed default or a new setting fails a test until the documents say the
//! same:
//!
//! * every variable a binary reads is a row of the README's table naming that binary, and a
//!   row naming a binary is a variable that binary reads;
//! * the default column's first `code` span is clap's default, and a setting without a default
//!   has no code span there;
//! * in `deploy/env.example` a commented-out `#VARIABLE=value` shows the default (or nothing
//!   when there is none), and every variable is a README row.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// One setting as a binary's help shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Setting {
    pub variable: String,
    /// `None` when there is no default or it is hidden (a secret's).
    pub default: Option<String>,
}

/// The settings in one `--help` text: each argument's `[env: NAME=…]` and `[default: …]`.
pub fn settings_in_help(help: &str) -> Vec<Setting> {
    let mut out: Vec<Setting> = Vec::new();
    // One block per argument: it starts at a line whose first non-blank character is '-'.
    let mut blocks: Vec<String> = Vec::new();
    for line in help.lines() {
        if line.trim_start().starts_with('-') || blocks.is_empty() {
            blocks.push(String::new());
        }
        let block = blocks.last_mut().expect("a block");
        block.push_str(line);
        block.push('\n');
    }
    for block in blocks {
        let Some(variable) = bracketed(&block, "[env: ").map(|v| {
            v.split_once('=')
                .map_or(v.as_str(), |(name, _)| name)
                .to_owned()
        }) else {
            continue;
        };
        let default = bracketed(&block, "[default: ");
        if !out.iter().any(|s| s.variable == variable) {
            out.push(Setting { variable, default });
        }
    }
    out
}

/// The text after `open` up to its closing `]` (brackets inside are balanced).
fn bracketed(text: &str, open: &str) -> Option<String> {
    let start = text.find(open)? + open.len();
    let mut depth = 0usize;
    for (i, c) in text[start..].char_indices() {
        match c {
            '[' => depth += 1,
            ']' if depth == 0 => {
                return Some(
                    text[start..start + i]
                        .split_whitespace()
                        .collect::<Vec<_>>()
                        .join(" "),
                );
            }
            ']' => depth -= 1,
            _ => {}
        }
    }
    None
}

/// The subcommands a help text lists (`Commands:` section), without `help`.
pub fn subcommands_in_help(help: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut inside = false;
    for line in help.lines() {
        if line.trim_end() == "Commands:" {
            inside = true;
            continue;
        }
        if inside {
            if !line.starts_with("  ") {
                break;
            }
            if let Some(name) = line.split_whitespace().next()
                && name != "help"
            {
                out.push(name.to_owned());
            }
        }
    }
    out
}

/// A row of the README's settings table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Row {
    pub variable: String,
    pub used_by: String,
    pub default_cell: String,
}

impl Row {
    /// The default the row states: its default column's first code span.
    pub fn default(&self) -> Option<String> {
        first_code_span(&self.default_cell)
    }

    /// The default for one binary: where the binaries differ the cell says
    /// "admin: `…`; worker: —", and the binary's own part counts.
    pub fn default_for(&self, binary: &str) -> Option<String> {
        let own = self
            .default_cell
            .split(';')
            .map(str::trim)
            .find_map(|part| part.strip_prefix(binary)?.strip_prefix(':'));
        match own {
            Some(part) => first_code_span(part),
            None => self.default(),
        }
    }

    /// Whether the "used by" column names `binary` (`admin`, `worker`, `sandbox`) or `all`.
    pub fn names(&self, binary: &str) -> bool {
        self.used_by
            .split(|c: char| !c.is_ascii_alphanumeric() && c != '_')
            .any(|w| w == binary || w == "all")
    }
}

fn first_code_span(text: &str) -> Option<String> {
    let start = text.find('`')? + 1;
    let len = text[start..].find('`')?;
    Some(text[start..start + len].to_owned())
}

pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the workspace root")
        .to_owned()
}

/// The rows of the table under `## Settings` in the README.
pub fn readme_rows(readme: &str) -> Vec<Row> {
    let section = readme
        .split_once("\n## Settings\n")
        .map(|(_, rest)| rest.split("\n## ").next().unwrap_or(rest))
        .expect("the README has a ## Settings section");
    let mut rows = Vec::new();
    for line in section.lines().filter(|l| l.starts_with("| `")) {
        let cells: Vec<&str> = line.trim_matches('|').split(" | ").collect();
        assert!(cells.len() >= 4, "settings row with too few cells: {line}");
        let variable = cells[0].trim().trim_matches('`').to_owned();
        assert!(
            !variable.contains('`'),
            "one variable per settings row: {line}"
        );
        rows.push(Row {
            variable,
            used_by: cells[1].trim().to_owned(),
            default_cell: cells[2].trim().to_owned(),
        });
    }
    rows
}

/// `deploy/env.example`'s variables: name → (value, commented out).
pub fn env_example(text: &str) -> BTreeMap<String, (String, bool)> {
    let mut out = BTreeMap::new();
    for line in text.lines() {
        let (commented, rest) = match line.strip_prefix('#') {
            Some(r) => (true, r),
            None => (false, line),
        };
        let Some((name, value)) = rest.split_once('=') else {
            continue;
        };
        if name.is_empty()
            || !name
                .bytes()
                .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'_')
        {
            continue;
        }
        out.insert(name.to_owned(), (value.to_owned(), commented));
    }
    out
}

/// What disagrees between `binary`'s settings (from the help texts of all its subcommands) and
/// the README's table. `not_clap` are variables a binary reads without clap (`RUST_LOG`).
pub fn readme_mismatches(
    binary: &str,
    settings: &[Setting],
    rows: &[Row],
    not_clap: &[&str],
) -> Vec<String> {
    let mut problems = Vec::new();
    for s in settings {
        let Some(row) = rows.iter().find(|r| r.variable == s.variable) else {
            problems.push(format!(
                "{binary} reads {} but the README's settings table has no row for it",
                s.variable
            ));
            continue;
        };
        if !row.names(binary) {
            problems.push(format!(
                "{binary} reads {} but its README row says it is used by “{}”",
                s.variable, row.used_by
            ));
        }
        if row.default_for(binary) != s.default {
            problems.push(format!(
                "{}: the README's default for {binary} is {:?} (from “{}”), {binary}'s own is {:?}",
                s.variable,
                row.default_for(binary),
                row.default_cell,
                s.default
            ));
        }
    }
    for row in rows.iter().filter(|r| r.names(binary)) {
        if !not_clap.contains(&row.variable.as_str())
            && !settings.iter().any(|s| s.variable == row.variable)
        {
            problems.push(format!(
                "the README says {} is used by {binary}, which has no such setting",
                row.variable
            ));
        }
    }
    problems
}

/// What disagrees between `deploy/env.example` and the README's table.
pub fn env_example_mismatches(example: &str, rows: &[Row]) -> Vec<String> {
    let mut problems = Vec::new();
    for (name, (value, commented)) in env_example(example) {
        let Some(row) = rows.iter().find(|r| r.variable == name) else {
            problems.push(format!(
                "deploy/env.example sets {name}, which the README's settings table does not list"
            ));
            continue;
        };
        if commented {
            let shown = (!value.is_empty()).then(|| value.clone());
            if shown != row.default() {
                problems.push(format!(
                    "deploy/env.example shows #{name}={value}, but its default is {:?} (a commented-out \
                     line shows the default, or nothing when there is none)",
                    row.default()
                ));
            }
        }
    }
    problems
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn help_texts_are_read_per_argument() {
        let help = "Usage: x run [OPTIONS]\n\nOptions:\n      --concurrency <N>\n          Jobs in flight\n\n          \
                    [env: AUTOSOCIAL_WORKER_CONCURRENCY=]\n          [default: 64]\n\n      --kinds <K>\n          \
                    Kinds\n\n          [env: AUTOSOCIAL_WORKER_KINDS=]\n\n      --secret <S>\n          [env: \
                    X_SECRET]\n  -h, --help\n          Print help\n";
        assert_eq!(
            settings_in_help(help),
            vec![
                Setting {
                    variable: "AUTOSOCIAL_WORKER_CONCURRENCY".into(),
                    default: Some("64".into())
                },
                Setting {
                    variable: "AUTOSOCIAL_WORKER_KINDS".into(),
                    default: None
                },
                Setting {
                    variable: "X_SECRET".into(),
                    default: None
                },
            ]
        );
        let short = "  --a <A>  A thing [env: A=] [default: 1]\n  --b <B>  B [env: B=]\n";
        assert_eq!(settings_in_help(short)[0].default.as_deref(), Some("1"));
        assert_eq!(settings_in_help(short)[1].default, None);
    }

    #[test]
    fn rows_state_their_default_in_the_first_code_span() {
        let row = |cell: &str| Row {
            variable: "V".into(),
            used_by: "admin `serve`, worker".into(),
            default_cell: cell.into(),
        };
        assert_eq!(row("`16`").default().as_deref(), Some("16"));
        assert_eq!(row("— (required)").default(), None);
        let split = row("admin: `http://127.0.0.1:8080`; worker: — (no media links)");
        assert_eq!(
            split.default_for("admin").as_deref(),
            Some("http://127.0.0.1:8080")
        );
        assert_eq!(split.default_for("worker"), None);
        assert_eq!(row("`16`").default_for("worker").as_deref(), Some("16"));
        assert!(row("").names("worker") && row("").names("admin") && !row("").names("sandbox"));
    }
}
