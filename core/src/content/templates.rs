//! Caption templates: plain text files under `templates/captions/`, one per content type
//! (`text.txt`, `image.txt`, `link.txt`) and optionally per platform (`text.x.txt`), each holding
//! several templates separated by a line `---`. A template may start with a line
//! `@variant conservative|balanced|bold` to say which variant it writes; untagged ones serve any.
//!
//! Placeholders are `{brand}`, `{pillar}`, `{topic}`, `{cta}`, `{tone}`, `{handle}` and
//! `{weekday}`; `{{` and `}}` write literal braces. A malformed file (unknown placeholder,
//! unclosed or stray brace, unknown variant) is refused with its name, line and column, so a bad
//! edit is found at once instead of shipping a caption with `{pilar}` in it.
//!
//! A client's row in `template_overrides` with the same name (`captions/text.txt`) replaces the
//! shipped file for that client.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use sqlx::PgExecutor;
use uuid::Uuid;

use super::provider::VariantKind;

/// The placeholders a template may use.
pub const PLACEHOLDERS: &[&str] = &[
    "brand", "pillar", "topic", "cta", "tone", "handle", "weekday",
];

/// A template that cannot be used, located exactly.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{file}:{line}:{column}: {message}")]
pub struct TemplateError {
    pub file: String,
    pub line: usize,
    pub column: usize,
    pub message: String,
}

/// Why a template file could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error("{file}: cannot read: {source}")]
    Io {
        file: String,
        #[source]
        source: std::io::Error,
    },
    #[error(transparent)]
    Parse(#[from] TemplateError),
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Piece {
    Text(String),
    Var(&'static str),
}

/// One template of a file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Template {
    /// The variant it is written for; `None` serves any.
    pub variant: Option<VariantKind>,
    /// Line of the file where it starts (for messages).
    pub line: usize,
    pieces: Vec<Piece>,
}

/// What the placeholders stand for.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Values {
    pub brand: String,
    pub pillar: String,
    pub topic: String,
    pub cta: String,
    pub tone: String,
    pub handle: String,
    pub weekday: String,
}

impl Values {
    fn get(&self, name: &str) -> &str {
        match name {
            "brand" => &self.brand,
            "pillar" => &self.pillar,
            "topic" => &self.topic,
            "cta" => &self.cta,
            "tone" => &self.tone,
            "handle" => &self.handle,
            "weekday" => &self.weekday,
            _ => "",
        }
    }
}

impl Template {
    /// Fill the placeholders. Empty values leave no stray spaces or blank-line runs behind.
    pub fn render(&self, values: &Values) -> String {
        let mut raw = String::new();
        for p in &self.pieces {
            match p {
                Piece::Text(t) => raw.push_str(t),
                Piece::Var(v) => raw.push_str(values.get(v)),
            }
        }
        let mut out = String::with_capacity(raw.len());
        let mut blank_run = 0;
        for line in raw.lines() {
            let line = line.split_whitespace().collect::<Vec<_>>().join(" ");
            if line.is_empty() {
                blank_run += 1;
                if blank_run > 1 || out.is_empty() {
                    continue;
                }
            } else {
                blank_run = 0;
            }
            if !out.is_empty() {
                out.push('\n');
            }
            out.push_str(&line);
        }
        out.trim_end().to_owned()
    }

    /// The placeholders this template uses, in order.
    pub fn placeholders(&self) -> Vec<&'static str> {
        self.pieces
            .iter()
            .filter_map(|p| match p {
                Piece::Var(v) => Some(*v),
                Piece::Text(_) => None,
            })
            .collect()
    }
}

/// A parsed template file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TemplateFile {
    pub name: String,
    pub templates: Vec<Template>,
}

impl TemplateFile {
    /// The templates usable for `kind`: those tagged with it, else the untagged ones, else all.
    pub fn for_variant(&self, kind: VariantKind) -> Vec<&Template> {
        let tagged: Vec<&Template> = self
            .templates
            .iter()
            .filter(|t| t.variant == Some(kind))
            .collect();
        if !tagged.is_empty() {
            return tagged;
        }
        let untagged: Vec<&Template> = self
            .templates
            .iter()
            .filter(|t| t.variant.is_none())
            .collect();
        if !untagged.is_empty() {
            return untagged;
        }
        self.templates.iter().collect()
    }
}

fn parse_line(
    file: &str,
    line_no: usize,
    line: &str,
    pieces: &mut Vec<Piece>,
) -> Result<(), TemplateError> {
    let err = |column: usize, message: String| TemplateError {
        file: file.to_owned(),
        line: line_no,
        column,
        message,
    };
    let mut text = String::new();
    let chars: Vec<(usize, char)> = line.char_indices().collect();
    let mut i = 0;
    while i < chars.len() {
        let (byte, c) = chars[i];
        let column = line[..byte].chars().count() + 1;
        match c {
            '{' if chars.get(i + 1).map(|x| x.1) == Some('{') => {
                text.push('{');
                i += 2;
            }
            '}' if chars.get(i + 1).map(|x| x.1) == Some('}') => {
                text.push('}');
                i += 2;
            }
            '{' => {
                let Some(close) = chars[i + 1..].iter().position(|x| x.1 == '}') else {
                    return Err(err(column, "unclosed `{`: placeholders look like {pillar}; write `{{` for a literal brace".into()));
                };
                let name: String = chars[i + 1..i + 1 + close].iter().map(|x| x.1).collect();
                let Some(known) = PLACEHOLDERS.iter().find(|p| **p == name) else {
                    return Err(err(
                        column,
                        format!(
                            "unknown placeholder `{{{name}}}`; known: {}",
                            PLACEHOLDERS.join(", ")
                        ),
                    ));
                };
                if !text.is_empty() {
                    pieces.push(Piece::Text(std::mem::take(&mut text)));
                }
                pieces.push(Piece::Var(known));
                i += close + 2;
            }
            '}' => {
                return Err(err(
                    column,
                    "stray `}`; write `}}` for a literal brace".into(),
                ));
            }
            c => {
                text.push(c);
                i += 1;
            }
        }
    }
    text.push('\n');
    pieces.push(Piece::Text(text));
    Ok(())
}

/// Parse a template file's text. `file` names it in error messages.
pub fn parse(file: &str, body: &str) -> Result<TemplateFile, TemplateError> {
    let mut templates = Vec::new();
    let mut current: Option<Template> = None;
    let finish = |t: Option<Template>, templates: &mut Vec<Template>| {
        if let Some(t) = t
            && t.pieces.iter().any(|p| match p {
                Piece::Text(s) => !s.trim().is_empty(),
                Piece::Var(_) => true,
            })
        {
            templates.push(t);
        }
    };
    for (idx, line) in body.lines().enumerate() {
        let line_no = idx + 1;
        if line.trim() == "---" {
            finish(current.take(), &mut templates);
            continue;
        }
        let t = current.get_or_insert_with(|| Template {
            variant: None,
            line: line_no,
            pieces: Vec::new(),
        });
        if let Some(kind) = line.trim().strip_prefix("@variant") {
            if !t.pieces.is_empty() {
                return Err(TemplateError {
                    file: file.to_owned(),
                    line: line_no,
                    column: 1,
                    message: "`@variant` must be the first line of a template".into(),
                });
            }
            let kind = kind.trim();
            t.variant = Some(kind.parse().map_err(|_| TemplateError {
                file: file.to_owned(),
                line: line_no,
                column: 1,
                message: format!(
                    "unknown variant `{kind}`; expected conservative, balanced or bold"
                ),
            })?);
            continue;
        }
        if t.pieces.is_empty() && line.trim().is_empty() {
            // leading blank lines of a template
            t.line = line_no + 1;
            continue;
        }
        parse_line(file, line_no, line, &mut t.pieces)?;
    }
    finish(current.take(), &mut templates);
    if templates.is_empty() {
        return Err(TemplateError {
            file: file.to_owned(),
            line: 1,
            column: 1,
            message: "no templates in the file".into(),
        });
    }
    Ok(TemplateFile {
        name: file.to_owned(),
        templates,
    })
}

/// The shipped templates directory (`templates/` of the deployment).
#[derive(Debug, Clone)]
pub struct Library {
    dir: PathBuf,
}

impl Library {
    pub fn new(dir: impl Into<PathBuf>) -> Library {
        Library { dir: dir.into() }
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The first of `names` that the client overrides or that ships, parsed. `Ok(None)` when
    /// none exists. A client's override wins over the shipped file of the same name.
    pub fn load_first(
        &self,
        names: &[String],
        overrides: &BTreeMap<String, String>,
    ) -> Result<Option<TemplateFile>, LoadError> {
        for name in names {
            if let Some(body) = overrides.get(name) {
                return Ok(Some(parse(&format!("{name} (client override)"), body)?));
            }
            let path = self.dir.join(name);
            match std::fs::read_to_string(&path) {
                Ok(body) => return Ok(Some(parse(&path.display().to_string(), &body)?)),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                Err(source) => {
                    return Err(LoadError::Io {
                        file: path.display().to_string(),
                        source,
                    });
                }
            }
        }
        Ok(None)
    }
}

/// A client's template overrides, by name.
pub async fn overrides(
    db: impl PgExecutor<'_>,
    agency: Uuid,
    client: Uuid,
) -> sqlx::Result<BTreeMap<String, String>> {
    let rows = sqlx::query!(
        "SELECT name, body FROM template_overrides WHERE agency_id = $1 AND client_id = $2",
        agency,
        client
    )
    .fetch_all(db)
    .await?;
    Ok(rows.into_iter().map(|r| (r.name, r.body)).collect())
}
