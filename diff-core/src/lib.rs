//! # diff-core
//!
//! What changed between a PostgreSQL database and a branch of it: rows
//! inserted, updated and deleted in every table, and catalog changes, read
//! from one consistent snapshot per side without writing anything.
//!
//! ```no_run
//! # async fn demo() -> diff_core::Result<()> {
//! use diff_core::{ConnConfig, Options, SideName};
//! let parent = ConnConfig::parse(SideName::Parent, "postgresql://app@prod/shop")?;
//! let child = ConnConfig::parse(SideName::Child, "postgresql://app@branch/shop")?;
//! let report = diff_core::run(&parent, &child, &Options::default()).await?;
//! println!("{}", diff_core::render::json(&report));
//! # Ok(()) }
//! ```
//!
//! Data flows `conn` → `snapshot` → `catalog` → `plan` → (`copy` → `merge`,
//! per table, in parallel) → `report` events → `render`. See
//! `docs/architecture.md`.

#![warn(missing_docs)]

#[cfg(feature = "arrow")]
pub mod arrow;
pub mod block_hash;
pub mod catalog;
pub mod confirm;
pub mod conn;
pub mod convert;
pub mod copy;
mod dropped;
pub mod engine;
pub mod error;
pub mod filter;
pub mod gate;
pub mod identity;
pub mod key_range;
pub mod loss;
pub mod merge;
pub mod options;
pub mod plan;
pub mod reading;
pub mod redact;
pub mod render;
pub mod report;
pub mod schema;
pub mod snapshot;
pub mod socket;
pub mod value;

pub use conn::{ConnConfig, SslMode};
pub use engine::{run, start, ChangeStream};
pub use error::{Error, Result, SideName};
pub use options::{KeyOverride, Options};
pub use report::{Counts, Event, Op, Report, ReportBuilder, RowChange, Summary, TableInfo, TableReport};
pub use value::Value;

/// The README's code blocks, compiled by `cargo test` so that the first
/// program a user copies from it builds.
#[doc = include_str!("../../README.md")]
#[cfg(doctest)]
pub struct ReadmeDoctests;
