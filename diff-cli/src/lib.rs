//! The `pgbranchdiff` command's parts, as a library so that its commands are
//! tested directly as well as through the binary: argument groups, the diff's
//! event loop, staged output, signals.

pub mod args;
pub mod branches;
pub mod check;
pub mod diff;
pub mod mcp;
pub mod migrate;
pub mod output;
pub mod preamble;
pub mod progress;
pub mod signal;
