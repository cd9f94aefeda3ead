//! Failures explained with the rows that cause them.

use diff_core::ConnConfig;

use super::report::{Explanation, StatementReport};

pub(super) async fn explain(
    _branch: &ConnConfig,
    _sql: &str,
    _err: &tokio_postgres::error::DbError,
    _statement: Option<&StatementReport>,
) -> Option<Explanation> {
    None
}
