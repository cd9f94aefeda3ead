//! Renderers: turn a [`crate::Report`] into text for people or JSON for
//! programs. They read the model; the model knows nothing of them.

mod json;
mod text;

pub use json::{json, json_value, value_to_json, GateJson, JsonWriter};
pub use text::{escape, text, TextOptions};
