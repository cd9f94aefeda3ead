//! All integration tests, in one test binary (one cluster for all of them).

mod harness;

mod arrow_output;
mod branch_cli;
mod check;
mod cli;
mod correctness;
mod data_loss;
mod differential;
mod dropped_values;
mod far;
mod first_hour;
mod keys;
mod library;
mod mcp;
mod migrate;
mod ndjson;
mod redaction;
mod schema_coverage;
mod schema_doc;
mod schema_kinds;
mod schema_noise;
mod shapes;
mod sql_patch;
mod types;
mod value_loss;
