//! planrun's runner: walks a plan's step graph, renders templates, calls
//! executors, checks expectations and emits events.
pub mod events;
pub mod executor;
pub mod expect;
pub mod redact;
pub mod render;
pub mod run;
