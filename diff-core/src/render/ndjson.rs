//! NDJSON (`--format ndjson`): one JSON object a line, written as the diff
//! finds things, in ripgrep's envelope `{"type": …, "data": …}`. A consumer
//! can act on each line and stop reading at any point; memory stays flat
//! because nothing is kept but the running totals.
//!
//! Line types, in order: `begin` (once), `schema_change`…, `data_loss` for
//! dropped objects, then interleaved per table `row`… `data_loss`… `table`,
//! and `summary` (once, last). A stream without a `summary` line is
//! incomplete: the run failed (exit status 2) or was interrupted. Each line
//! type has its schema in `docs/output-schema.json` (`$defs/line_<type>`).

use std::io::{self, Write};

use serde::Serialize;

use super::json::{self, Compared, Stats, TableStats, Tally};
use super::sink::{End, Sink};
use super::GateJson;
use crate::report::{Counts, Endpoint, Event, TableInfo};

#[derive(Serialize)]
struct Line<'a, T: Serialize> {
    #[serde(rename = "type")]
    kind: &'a str,
    data: T,
}

#[derive(Serialize)]
struct Begin<'a> {
    format_version: u32,
    parent: &'a Endpoint,
    child: &'a Endpoint,
    compared: Compared,
    tables: Vec<Table<'a>>,
}

#[derive(Serialize)]
struct Table<'a> {
    id: usize,
    schema: &'a str,
    name: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    renamed_from: Option<&'a str>,
    key: &'a [String],
    key_source: &'a crate::plan::KeySource,
    columns: Vec<Column<'a>>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    converted: Vec<super::json::Converted<'a>>,
}

#[derive(Serialize)]
struct Column<'a> {
    name: &'a str,
    #[serde(rename = "type")]
    type_name: &'a str,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    redacted: bool,
}

#[derive(Serialize)]
struct Row {
    table: String,
    table_id: usize,
    #[serde(flatten)]
    row: json::Row,
}

#[derive(Serialize)]
struct TableLine<'a> {
    table: String,
    table_id: usize,
    counts: Counts,
    stats: TableStats<'a>,
}

#[derive(Serialize)]
struct SummaryLine {
    identical: bool,
    summary: json::Summary,
    #[serde(skip_serializing_if = "Option::is_none")]
    gate: Option<GateJson>,
    stats: Stats,
}

/// Writes NDJSON lines as events arrive.
pub struct NdjsonSink<W: Write> {
    out: W,
    tables: Vec<TableInfo>,
    tally: Tally,
}

impl<W: Write> NdjsonSink<W> {
    /// Lines go to `out` as they are found.
    pub fn new(out: W) -> NdjsonSink<W> {
        NdjsonSink { out, tables: vec![], tally: Tally::default() }
    }

    fn line<T: Serialize>(&mut self, kind: &str, data: T) -> io::Result<()> {
        // Keep the I/O error's kind: a closed pipe is how a reader says it has read enough.
        serde_json::to_writer(&mut self.out, &Line { kind, data })
            .map_err(|e| io::Error::new(e.io_error_kind().unwrap_or(io::ErrorKind::Other), e))?;
        self.out.write_all(b"\n")
    }

    fn key_names(&self, l: &crate::report::DataLoss) -> Vec<String> {
        let t = self.tables.iter().find(|t| t.schema == l.schema && Some(&t.name) == l.table.as_ref());
        t.map(|t| t.key.clone()).unwrap_or_default()
    }
}

impl<W: Write> Sink for NdjsonSink<W> {
    fn event(&mut self, event: &Event) -> io::Result<()> {
        match event {
            Event::Started { parent, child, tables, rows, schema, filtered } => {
                let begin = Begin {
                    format_version: json::FORMAT_VERSION,
                    parent,
                    child,
                    compared: Compared { rows: *rows, schema: *schema, filtered: *filtered },
                    tables: tables.iter().map(table).collect(),
                };
                self.line("begin", begin)?;
                self.tables = tables.clone();
                // A consumer learns what is compared before the first comparison ends.
                self.out.flush()?;
            }
            Event::Schema(c) => {
                self.tally.schema(c);
                self.line("schema_change", json::schema(c))?;
            }
            Event::DataLoss(l) => {
                let names = self.key_names(l);
                self.line("data_loss", json::loss(l, &names))?;
            }
            Event::Row { table, change } => {
                let Some(info) = self.tables.get(*table) else { return Ok(()) };
                let row = Row { table: info.qualified(), table_id: *table, row: json::row(info, change) };
                self.line("row", row)?;
            }
            Event::TableDone { table, summary } => {
                let Some(info) = self.tables.get(*table) else { return Ok(()) };
                self.tally.table(&summary.counts);
                let line = TableLine {
                    table: info.qualified(),
                    table_id: *table,
                    counts: summary.counts,
                    stats: json::table_stats(summary),
                };
                self.line("table", line)?;
                self.out.flush()?;
            }
            _ => {}
        }
        Ok(())
    }

    fn finish(mut self: Box<Self>, end: &End) -> io::Result<()> {
        let gate = end.verdict.as_ref().map(GateJson::from);
        let line = SummaryLine {
            identical: self.tally.identical(),
            summary: self.tally.summary(self.tables.len()),
            gate,
            stats: Stats { millis: end.millis, received: end.received },
        };
        self.line("summary", line)?;
        self.out.flush()
    }
}

fn table(t: &TableInfo) -> Table<'_> {
    Table {
        id: t.id,
        schema: &t.schema,
        name: &t.name,
        renamed_from: t.parent_name.as_deref(),
        key: &t.key,
        key_source: &t.key_source,
        columns: t
            .column_info
            .iter()
            .map(|c| Column { name: &c.name, type_name: &c.type_name, redacted: c.redacted })
            .collect(),
        converted: super::json::converted(t),
    }
}
