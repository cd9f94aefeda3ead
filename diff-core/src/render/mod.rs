//! Renderers: turn a [`crate::Report`] into text for people, Markdown for
//! pull requests, or JSON for programs. They read the model; the model knows
//! nothing of them.

mod json;
pub mod markdown;
mod ndjson;
mod sink;
mod sql;
mod sql_order;
mod text;

pub use json::{json, json_value, value_to_json, GateJson, JsonWriter};
pub use markdown::markdown;
pub use ndjson::NdjsonSink;
pub use sink::{Collect, Document, End, JsonSink, Sink};
pub use sql::{quote_literal, value_literal, SqlSink};
pub use text::{escape, text, TextOptions};
