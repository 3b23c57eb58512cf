//! planrun's spec language: TOML or YAML text in, a validated plan out.
pub mod de;
pub mod duration;
pub mod error;
pub mod parse;
pub mod source;
pub mod value;
pub mod model;
pub mod template;
pub mod kinds;
pub mod lower;
pub mod plan;
pub mod schema;
