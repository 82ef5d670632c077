//! Rules: the form: parsing and validating a posting rule.

use super::*;

// ---------------------------------------------------------------------------------------------
// The form
// ---------------------------------------------------------------------------------------------

/// The rule form as typed. Checkbox groups repeat their name, so the body is read as pairs.
#[derive(Debug, Clone, Default)]
pub struct RuleForm {
    pub name: String,
    pub enabled: bool,
    pub accounts: Vec<String>,
    pub frequency: String,
    pub posts: String,
    pub days: Vec<String>,
    pub times: String,
    pub content_types: Vec<String>,
    pub min_gap: String,
    /// The local date the preview starts on (not saved).
    pub from: String,
}

impl RuleForm {
    pub fn from_pairs(pairs: &[(String, String)]) -> RuleForm {
        let mut f = RuleForm::default();
        for (k, v) in pairs {
            match k.as_str() {
                "name" => f.name = v.clone(),
                "enabled" => f.enabled = true,
                "accounts" => f.accounts.push(v.clone()),
                "frequency" => f.frequency = v.clone(),
                "posts" => f.posts = v.clone(),
                "days" => f.days.push(v.clone()),
                "times" => f.times = v.clone(),
                "content_types" => f.content_types.push(v.clone()),
                "min_gap" => f.min_gap = v.clone(),
                "from" => f.from = v.clone(),
                _ => {}
            }
        }
        f
    }

    pub(crate) fn from_rule(r: &RuleRow) -> RuleForm {
        RuleForm {
            name: r.name.clone(),
            enabled: r.enabled,
            accounts: r.account_ids.iter().map(Uuid::to_string).collect(),
            frequency: r.frequency.clone(),
            posts: r.posts_per_period.to_string(),
            days: r.days_of_week.iter().map(i16::to_string).collect(),
            times: r
                .local_times
                .iter()
                .map(|t| t.format("%H:%M").to_string())
                .collect::<Vec<_>>()
                .join(", "),
            content_types: r.content_types.clone(),
            min_gap: r.min_gap_minutes.to_string(),
            from: String::new(),
        }
    }

    pub(super) fn blank() -> RuleForm {
        RuleForm {
            enabled: true,
            frequency: "per_day".into(),
            posts: "1".into(),
            days: (1..=5).map(|d: u8| d.to_string()).collect(),
            times: "09:00".into(),
            content_types: vec!["text".into(), "image".into()],
            min_gap: "60".into(),
            ..RuleForm::default()
        }
    }

    /// Check every field; `accounts` are the client's accounts (a checked id that is not one of
    /// them is refused).
    pub fn validate(&self, accounts: &[Uuid]) -> Result<ValidRule, FieldErrors> {
        let mut errors = FieldErrors::new();
        let name = self.name.trim().to_owned();
        if name.is_empty() {
            errors.insert(
                "name",
                "Give the rule a name, like “Weekday mornings”.".into(),
            );
        } else if name.chars().count() > 200 {
            errors.insert("name", "Use at most 200 characters.".into());
        } else if name.chars().any(char::is_control) {
            errors.insert("name", "Keep the name on one line.".into());
        }
        let frequency = match self.frequency.parse::<Frequency>() {
            Ok(f) => Some(f),
            Err(_) => {
                errors.insert("frequency", "Choose per day or per week.".into());
                None
            }
        };
        let posts = match self.posts.trim().parse::<u32>() {
            Ok(n) if (1..=50).contains(&n) => Some(n),
            Ok(0) => {
                errors.insert("posts", "Post at least once per period.".into());
                None
            }
            _ => {
                errors.insert("posts", "Enter a whole number from 1 to 50.".into());
                None
            }
        };
        let mut days: Vec<u8> = Vec::new();
        for d in &self.days {
            match d.parse::<u8>() {
                Ok(d) if (1..=7).contains(&d) => {
                    if !days.contains(&d) {
                        days.push(d);
                    }
                }
                _ => {
                    errors.insert("days", "Choose days from the list.".into());
                }
            }
        }
        days.sort_unstable();
        if days.is_empty() && !errors.contains_key("days") {
            errors.insert("days", "Choose at least one day of the week.".into());
        }
        let times = match parse_times(&self.times) {
            Ok(t) => t,
            Err(e) => {
                errors.insert("times", e);
                Vec::new()
            }
        };
        let mut content_types: Vec<String> = Vec::new();
        for c in &self.content_types {
            if CONTENT_TYPES.iter().any(|(k, _)| k == c) {
                if !content_types.contains(c) {
                    content_types.push(c.clone());
                }
            } else {
                errors.insert(
                    "content_types",
                    "Choose content types from the list.".into(),
                );
            }
        }
        if content_types.is_empty() && !errors.contains_key("content_types") {
            errors.insert("content_types", "Choose at least one content type.".into());
        }
        let min_gap = match self.min_gap.trim().parse::<u32>() {
            Ok(n) if n <= 10_080 => Some(n),
            _ => {
                errors.insert(
                    "min_gap",
                    "Enter minutes from 0 to 10080 (one week).".into(),
                );
                None
            }
        };
        let mut chosen: Vec<Uuid> = Vec::new();
        for a in &self.accounts {
            match a.parse::<Uuid>() {
                Ok(id) if accounts.contains(&id) => {
                    if !chosen.contains(&id) {
                        chosen.push(id);
                    }
                }
                _ => {
                    errors.insert(
                        "accounts",
                        "Choose accounts of this client from the list.".into(),
                    );
                }
            }
        }
        // asking for more posts than there are times to put them at would silently post less
        if let (Some(f), Some(n)) = (frequency, posts)
            && !times.is_empty()
            && !days.is_empty()
        {
            let capacity = match f {
                Frequency::PerDay => times.len(),
                Frequency::PerWeek => times.len() * days.len(),
            };
            if n as usize > capacity {
                errors.insert(
                    "posts",
                    match f {
                        Frequency::PerDay => format!(
                            "{n} posts a day need at least {n} times; {} given.",
                            times.len()
                        ),
                        Frequency::PerWeek => format!(
                            "{n} posts a week need {n} day-and-time pairs; these days and times give {capacity}."
                        ),
                    },
                );
            }
        }
        match (frequency, posts, min_gap) {
            (Some(frequency), Some(posts_per_period), Some(min_gap_minutes))
                if errors.is_empty() =>
            {
                Ok(ValidRule {
                    name,
                    enabled: self.enabled,
                    accounts: chosen,
                    spec: RuleSpec {
                        frequency,
                        posts_per_period,
                        days_of_week: days,
                        local_times: times,
                        min_gap_minutes,
                    },
                    content_types,
                })
            }
            _ => Err(errors),
        }
    }
}

/// One or more `HH:MM` times (24-hour), separated by commas or spaces; sorted, duplicates
/// dropped.
pub fn parse_times(text: &str) -> Result<Vec<NaiveTime>, String> {
    let mut out = Vec::new();
    for part in text.split(|c: char| c == ',' || c.is_whitespace()) {
        if part.is_empty() {
            continue;
        }
        let t = NaiveTime::parse_from_str(part, "%H:%M").map_err(|_| {
            format!("“{part}” is not a time: write 24-hour HH:MM, like 09:00 or 17:30.")
        })?;
        if !out.contains(&t) {
            out.push(t);
        }
    }
    if out.is_empty() {
        return Err("Give at least one time, like 09:00.".into());
    }
    if out.len() > MAX_TIMES {
        return Err(format!("At most {MAX_TIMES} times a day."));
    }
    out.sort();
    Ok(out)
}

/// A rule form that passed validation.
#[derive(Debug, Clone)]
pub struct ValidRule {
    pub name: String,
    pub enabled: bool,
    pub accounts: Vec<Uuid>,
    pub spec: RuleSpec,
    pub content_types: Vec<String>,
}
