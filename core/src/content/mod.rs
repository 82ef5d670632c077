//! Content: moderation of post text and image cards in each platform's sizes.

pub mod brand;
pub mod cards;
pub mod generate;
pub mod moderation;
pub mod openai;
pub mod provider;
pub mod replicate;
pub mod schedule;
pub mod templates;
