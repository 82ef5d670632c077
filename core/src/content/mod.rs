//! Content: a client's brand and rules, the rules' slots, planning and generating items (captions
//! from templates or an AI provider), moderation of post text, and image cards in each platform's
//! sizes.

pub mod brand;
pub mod cards;
pub mod generate;
pub mod moderation;
pub mod openai;
pub mod provider;
pub mod replicate;
pub mod schedule;
pub mod slots;
pub mod templates;
