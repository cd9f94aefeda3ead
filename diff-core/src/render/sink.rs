//! One seam for every output format: the diff's events are pushed, in stream
//! order, into a [`Sink`]; each format is one implementation. Transforms that
//! no format may skip (redaction, the gate's acceptances) are applied to the
//! events before they reach the sink.

use std::io::{self, Write};

use crate::gate::Verdict;
use crate::report::{Event, ReportBuilder};

/// Receives a diff's events and writes one output format.
///
/// The contract, as [`crate::ChangeStream`] produces events:
/// - [`Event::Started`] comes first, once, and announces every table.
/// - Every [`Event::Schema`] comes before any [`Event::Row`], and data-loss
///   entries for dropped objects come right after the schema changes.
/// - A table's rows arrive in key order; tables are interleaved when several
///   are compared at once, each row naming its table.
/// - A table's value-level [`Event::DataLoss`] entries come before its
///   [`Event::TableDone`], which comes after its last row.
/// - [`Sink::finish`] is called once, after the last event, only when the diff
///   completed. A sink that streams must make an unfinished output
///   recognisable (no final summary), never look complete.
pub trait Sink {
    /// Takes one event.
    fn event(&mut self, event: &Event) -> io::Result<()>;
    /// The diff is complete: write whatever is left.
    fn finish(self: Box<Self>, end: &End) -> io::Result<()>;
}

/// How the run ended, for the closing part of an output.
#[derive(Debug, Clone, Default)]
pub struct End {
    /// Wall time of the whole diff.
    pub millis: u64,
    /// The `--fail-on` gate's verdict, when a gate was asked for.
    pub verdict: Option<Verdict>,
    /// Bytes received from each side ([`crate::ChangeStream::received`]), when known.
    pub received: Option<crate::report::BytesReceived>,
}

/// Which document a [`Collect`] sink renders.
#[derive(Debug, Clone)]
pub enum Document {
    /// The text report, for people.
    Text(super::TextOptions),
    /// Markdown, for pull requests.
    Markdown,
}

/// Folds the events into a [`crate::Report`] and renders it at the end: for
/// formats laid out as a whole (text, Markdown). Rows beyond the report's
/// per-table limit are counted, not kept.
pub struct Collect<W: Write> {
    builder: ReportBuilder,
    document: Document,
    out: W,
}

impl<W: Write> Collect<W> {
    /// Keeps at most `max_rows` changed rows per table for the document.
    pub fn new(document: Document, max_rows: Option<usize>, out: W) -> Collect<W> {
        Collect { builder: ReportBuilder::new(max_rows), document, out }
    }
}

impl<W: Write> Sink for Collect<W> {
    fn event(&mut self, event: &Event) -> io::Result<()> {
        self.builder.push(event.clone());
        Ok(())
    }

    fn finish(mut self: Box<Self>, end: &End) -> io::Result<()> {
        let builder = std::mem::replace(&mut self.builder, ReportBuilder::new(None));
        let mut report = builder.finish().ok_or_else(|| io::Error::other("the diff ended without a report"))?;
        report.millis = end.millis;
        report.received = end.received;
        let text = match &self.document {
            Document::Markdown => super::markdown(&report, end.verdict.as_ref()),
            Document::Text(opts) => {
                let mut text = super::text(&report, opts);
                if let Some(v) = &end.verdict {
                    text.push_str(&super::escape(&v.line()));
                    text.push('\n');
                }
                text
            }
        };
        self.out.write_all(text.as_bytes())?;
        self.out.flush()
    }
}

/// The JSON document as a sink: rows spill as they arrive (see
/// [`super::JsonWriter`]), the document is written at the end.
pub struct JsonSink<W: Write> {
    writer: super::JsonWriter,
    out: W,
}

impl<W: Write> JsonSink<W> {
    /// Keeps at most `max_rows` rows per table (counts stay exact).
    pub fn new(max_rows: Option<usize>, out: W) -> JsonSink<W> {
        JsonSink { writer: super::JsonWriter::new(max_rows), out }
    }
}

impl<W: Write> Sink for JsonSink<W> {
    fn event(&mut self, event: &Event) -> io::Result<()> {
        self.writer.push(event)
    }

    fn finish(self: Box<Self>, end: &End) -> io::Result<()> {
        let JsonSink { mut writer, mut out } = *self;
        if let Some(v) = &end.verdict {
            writer.set_gate(super::GateJson::from(v));
        }
        writer.finish(&mut out, end.millis, end.received)?;
        out.flush()
    }
}
