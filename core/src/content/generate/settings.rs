//! The deployment's content settings: which caption provider and which image source, their
//! credentials and limits, and the [`Content`] a worker builds from them.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use clap::Args;
use secrecy::SecretString;
use sqlx::PgPool;

use crate::content::cards::Fonts;
use crate::content::openai::{OpenAiConfig, OpenAiProvider};
use crate::content::provider::{Provider, TemplateProvider};
use crate::content::replicate::{ReplicateConfig, ReplicateProvider};
use crate::content::templates::Library;
use crate::limits::{Rate, Smoother};

/// Which caption provider the deployment uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ProviderKind {
    Template,
    Openai,
}

/// Where the images of image items come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ImageProviderKind {
    /// Brand cards rendered here (offline, deterministic).
    Card,
    /// Replicate's predictions API, cropped to each size; the card when it refuses.
    Replicate,
}

/// Settings of planning and generation (the worker flattens these into its arguments).
#[derive(Debug, Clone, Args)]
pub struct ContentArgs {
    /// Where rendered image cards are stored (content-addressed; the admin serves them).
    #[arg(
        long = "media-dir",
        env = "AUTOSOCIAL_MEDIA_DIR",
        value_name = "AUTOSOCIAL_MEDIA_DIR",
        default_value = "var/media"
    )]
    pub media_dir: PathBuf,
    /// The shipped templates: `captions/` and `fonts/`.
    #[arg(
        long = "templates-dir",
        env = "AUTOSOCIAL_TEMPLATES_DIR",
        value_name = "AUTOSOCIAL_TEMPLATES_DIR",
        default_value = "templates"
    )]
    pub templates_dir: PathBuf,
    /// Caption provider: `template` (offline, deterministic) or `openai` (any OpenAI-compatible
    /// endpoint).
    #[arg(
        long = "ai-provider",
        env = "AUTOSOCIAL_AI_PROVIDER",
        value_name = "AUTOSOCIAL_AI_PROVIDER",
        value_enum,
        default_value = "template"
    )]
    pub ai_provider: ProviderKind,
    /// OpenAI-compatible API base, up to the version: `https://api.openai.com/v1`,
    /// `https://api.groq.com/openai/v1`, `http://127.0.0.1:11434/v1`.
    #[arg(
        long = "ai-base-url",
        env = "AUTOSOCIAL_AI_BASE_URL",
        value_name = "AUTOSOCIAL_AI_BASE_URL"
    )]
    pub ai_base_url: Option<url::Url>,
    #[arg(
        long = "ai-model",
        env = "AUTOSOCIAL_AI_MODEL",
        value_name = "AUTOSOCIAL_AI_MODEL"
    )]
    pub ai_model: Option<String>,
    /// The endpoint's API key (local servers may need none).
    #[arg(
        long = "ai-key",
        env = "AUTOSOCIAL_AI_KEY",
        value_name = "AUTOSOCIAL_AI_KEY",
        hide_env_values = true
    )]
    pub ai_key: Option<SecretString>,
    #[arg(long = "ai-timeout-secs", env = "AUTOSOCIAL_AI_TIMEOUT_SECS", value_name = "AUTOSOCIAL_AI_TIMEOUT_SECS",
          default_value_t = 60, value_parser = clap::value_parser!(u64).range(1..=600))]
    pub ai_timeout_secs: u64,
    /// AI requests per agency per minute across the fleet (0: no limit).
    #[arg(long = "ai-requests-per-minute", env = "AUTOSOCIAL_AI_REQUESTS_PER_MINUTE", value_name = "AUTOSOCIAL_AI_REQUESTS_PER_MINUTE",
          default_value_t = 30, value_parser = clap::value_parser!(u32).range(0..=100_000))]
    pub ai_requests_per_minute: u32,
    /// Tokens per agency per month unless the agency sets its own.
    #[arg(long = "ai-monthly-token-budget", env = "AUTOSOCIAL_AI_MONTHLY_TOKEN_BUDGET", value_name = "AUTOSOCIAL_AI_MONTHLY_TOKEN_BUDGET",
          value_parser = clap::value_parser!(i64).range(0..))]
    pub ai_monthly_token_budget: Option<i64>,
    /// Tokens per agency per UTC day unless the agency sets its own.
    #[arg(long = "ai-daily-token-budget", env = "AUTOSOCIAL_AI_DAILY_TOKEN_BUDGET", value_name = "AUTOSOCIAL_AI_DAILY_TOKEN_BUDGET",
          value_parser = clap::value_parser!(i64).range(0..))]
    pub ai_daily_token_budget: Option<i64>,
    /// Image source of image items: `card` (brand card renderer) or `replicate`.
    #[arg(
        long = "image-provider",
        env = "AUTOSOCIAL_IMAGE_PROVIDER",
        value_name = "AUTOSOCIAL_IMAGE_PROVIDER",
        value_enum,
        default_value = "card"
    )]
    pub image_provider: ImageProviderKind,
    #[arg(
        long = "replicate-base-url",
        env = "AUTOSOCIAL_REPLICATE_BASE_URL",
        value_name = "AUTOSOCIAL_REPLICATE_BASE_URL",
        default_value = "https://api.replicate.com"
    )]
    pub replicate_base_url: url::Url,
    #[arg(
        long = "replicate-token",
        env = "AUTOSOCIAL_REPLICATE_TOKEN",
        value_name = "AUTOSOCIAL_REPLICATE_TOKEN",
        hide_env_values = true
    )]
    pub replicate_token: Option<SecretString>,
    /// `owner/name` (an official model) or `owner/name:version`.
    #[arg(
        long = "replicate-model",
        env = "AUTOSOCIAL_REPLICATE_MODEL",
        value_name = "AUTOSOCIAL_REPLICATE_MODEL",
        default_value = "black-forest-labs/flux-schnell"
    )]
    pub replicate_model: String,
}

/// A setting that cannot work: the variable and what is wrong.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{variable}: {message}")]
pub struct ConfigError {
    pub variable: &'static str,
    pub message: String,
}

impl ContentArgs {
    /// Defaults with the given directories (tests, tools).
    pub fn with_dirs(media_dir: PathBuf, templates_dir: PathBuf) -> ContentArgs {
        ContentArgs {
            media_dir,
            templates_dir,
            ai_provider: ProviderKind::Template,
            ai_base_url: None,
            ai_model: None,
            ai_key: None,
            ai_timeout_secs: 60,
            ai_requests_per_minute: 30,
            ai_monthly_token_budget: None,
            ai_daily_token_budget: None,
            image_provider: ImageProviderKind::Card,
            replicate_base_url: url::Url::parse("https://api.replicate.com").expect("a valid URL"),
            replicate_token: None,
            replicate_model: "black-forest-labs/flux-schnell".into(),
        }
    }

    /// Check the settings and build what the jobs use. With `generates` (this process runs
    /// `generate`) the templates directory must hold `captions/` and usable `fonts/`.
    pub fn build(
        &self,
        pool: PgPool,
        smoother: Smoother,
        generates: bool,
    ) -> Result<Content, ConfigError> {
        let fonts = if generates {
            let fonts =
                Fonts::load(&self.templates_dir.join("fonts")).map_err(|e| ConfigError {
                    variable: "AUTOSOCIAL_TEMPLATES_DIR",
                    message: format!("{e:#}"),
                })?;
            if !self.templates_dir.join("captions").is_dir() {
                return Err(ConfigError {
                    variable: "AUTOSOCIAL_TEMPLATES_DIR",
                    message: format!(
                        "{} has no captions/ directory",
                        self.templates_dir.display()
                    ),
                });
            }
            Some(Arc::new(fonts))
        } else {
            None
        };
        let library = Library::new(&self.templates_dir);
        let provider: Arc<dyn Provider> = match self.ai_provider {
            ProviderKind::Template => Arc::new(TemplateProvider::new(library.clone())),
            ProviderKind::Openai => {
                let base_url = self.ai_base_url.clone().ok_or(ConfigError {
                    variable: "AUTOSOCIAL_AI_BASE_URL",
                    message: "required with AUTOSOCIAL_AI_PROVIDER=openai (like https://api.openai.com/v1)".into(),
                })?;
                if !matches!(base_url.scheme(), "http" | "https") {
                    return Err(ConfigError {
                        variable: "AUTOSOCIAL_AI_BASE_URL",
                        message: "expected an http:// or https:// URL".into(),
                    });
                }
                let model = self
                    .ai_model
                    .clone()
                    .filter(|m| !m.trim().is_empty())
                    .ok_or(ConfigError {
                        variable: "AUTOSOCIAL_AI_MODEL",
                        message: "required with AUTOSOCIAL_AI_PROVIDER=openai (like gpt-4o-mini)"
                            .into(),
                    })?;
                Arc::new(OpenAiProvider::new(
                    OpenAiConfig {
                        base_url,
                        model,
                        key: self.ai_key.clone(),
                        timeout: Duration::from_secs(self.ai_timeout_secs),
                        retries: 2,
                        retry_base: Duration::from_millis(500),
                        rate: (self.ai_requests_per_minute > 0).then(|| {
                            Rate::per(self.ai_requests_per_minute, Duration::from_secs(60))
                        }),
                        monthly_token_budget: self.ai_monthly_token_budget,
                        daily_token_budget: self.ai_daily_token_budget,
                    },
                    pool,
                    smoother,
                ))
            }
        };
        let images = match self.image_provider {
            ImageProviderKind::Card => None,
            ImageProviderKind::Replicate => Some(Arc::new(self.replicate()?)),
        };
        Ok(Content {
            provider,
            images,
            library,
            fonts,
            media_dir: self.media_dir.clone(),
        })
    }
}

impl ContentArgs {
    /// The Replicate image provider these settings describe.
    fn replicate(&self) -> Result<ReplicateProvider, ConfigError> {
        let token = self.replicate_token.clone().ok_or(ConfigError {
            variable: "AUTOSOCIAL_REPLICATE_TOKEN",
            message: "required with AUTOSOCIAL_IMAGE_PROVIDER=replicate (an API token from replicate.com)".into(),
        })?;
        if !matches!(self.replicate_base_url.scheme(), "http" | "https") {
            return Err(ConfigError {
                variable: "AUTOSOCIAL_REPLICATE_BASE_URL",
                message: "expected an http:// or https:// URL".into(),
            });
        }
        let model = self.replicate_model.trim();
        if model
            .split(':')
            .next()
            .and_then(|m| m.split_once('/'))
            .is_none()
        {
            return Err(ConfigError {
                variable: "AUTOSOCIAL_REPLICATE_MODEL",
                message: "expected owner/name or owner/name:version (like black-forest-labs/flux-schnell)".into(),
            });
        }
        Ok(ReplicateProvider::new(ReplicateConfig {
            base_url: self.replicate_base_url.clone(),
            token,
            model: model.to_owned(),
            timeout: Duration::from_secs(60),
            deadline: Duration::from_secs(120),
            poll_every: Duration::from_secs(1),
        }))
    }
}

/// What the content jobs share in a worker.
#[derive(Clone)]
pub struct Content {
    pub provider: Arc<dyn Provider>,
    /// The image generator when not the card renderer.
    pub images: Option<Arc<ReplicateProvider>>,
    pub library: Library,
    /// Loaded where this process generates.
    pub fonts: Option<Arc<Fonts>>,
    pub media_dir: PathBuf,
}
