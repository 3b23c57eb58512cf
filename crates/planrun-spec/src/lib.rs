//! planrun's spec language: TOML or YAML text in, a validated plan out.
pub mod de;
pub mod duration;
pub mod error;
pub mod kinds;
pub mod lower;
pub mod model;
pub mod parse;
pub mod plan;
pub mod schema;
pub mod source;
pub mod template;
pub mod value;
