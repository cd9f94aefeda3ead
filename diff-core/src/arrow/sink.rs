//! [`ArrowSink`]: a diff as a directory of Arrow IPC files, one per changed
//! table plus `tables.arrow`, `schema_changes.arrow` and `data_loss.arrow`.
//! Each table's file is written as its rows arrive and closed at its
//! `TableDone`; the three summary files are written at the end, so a directory
//! without `tables.arrow` is an unfinished report.

use std::collections::HashMap;
use std::fs::File;
use std::io::{self, BufWriter};
use std::path::{Path, PathBuf};

use arrow::ipc::writer::FileWriter;
use arrow::record_batch::RecordBatch;

use super::{summary, ArrowTables, BatchLimits};
use crate::render::{End, Sink};
use crate::report::{DataLoss, Event, SchemaChange, TableInfo, TableSummary};

/// The file of the report's per-table summary; its presence marks a finished report.
pub const TABLES_FILE: &str = "tables.arrow";

/// File names stay below the usual 255-byte limit.
const MAX_NAME: usize = 240;

/// Escapes a schema or table name for a file name: bytes other than ASCII
/// letters, digits, `_` and `-` become `%XX` (so `.` separates schema and
/// table unambiguously and `/` never appears). Non-ASCII letters are escaped
/// too, byte by byte, so names mean the same on every file system.
fn escape(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    for b in name.bytes() {
        if b.is_ascii_alphanumeric() || b == b'_' || b == b'-' {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// The file a table's rows are written to: `<schema>.<table>.arrow`, each part
/// escaped (see `docs/output-format.md`); a name that would be too long is cut
/// and made unique with a hash of the full name.
pub fn file_name(info: &TableInfo) -> String {
    let name = format!("{}.{}", escape(&info.schema), escape(&info.name));
    if name.len() + 6 <= MAX_NAME {
        return format!("{name}.arrow");
    }
    let hash = blake3::hash(name.as_bytes()).to_hex();
    format!("{}~{}.arrow", &name[..MAX_NAME - 6 - 17], &hash[..16])
}

/// `pgbranchdiff check` puts what it checked (source, branch, migration
/// report: the JSON document's `check` member) beside the Arrow files.
pub const CHECK_FILE: &str = "check.json";

/// Whether `dir` holds a previous Arrow report (or nothing): only `.arrow`
/// files (and a check's `check.json`), `tables.arrow` among them. Anything else is not ours to replace.
pub fn is_report_dir(dir: &Path) -> io::Result<bool> {
    let mut has_tables = false;
    let mut empty = true;
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        empty = false;
        let name = entry.file_name();
        let Some(name) = name.to_str() else { return Ok(false) };
        if !entry.file_type()?.is_file() || !(name.ends_with(".arrow") || name == CHECK_FILE) {
            return Ok(false);
        }
        has_tables |= name == TABLES_FILE;
    }
    Ok(empty || has_tables)
}

/// Writes a diff as Arrow IPC files into a directory (which should be empty:
/// the CLI stages it and renames it into place once the report is complete).
pub struct ArrowSink {
    dir: PathBuf,
    tables: ArrowTables,
    writers: HashMap<usize, FileWriter<BufWriter<File>>>,
    summaries: Vec<Option<TableSummary>>,
    files: Vec<Option<String>>,
    schema_changes: Vec<SchemaChange>,
    losses: Vec<DataLoss>,
    endpoints: Option<(String, String)>,
}

fn to_io(e: arrow::error::ArrowError) -> io::Error {
    io::Error::other(e)
}

impl ArrowSink {
    /// Writes into `dir`, which must exist.
    pub fn new(dir: &Path) -> ArrowSink {
        ArrowSink::with_limits(dir, BatchLimits::default())
    }

    /// With other batch limits.
    pub fn with_limits(dir: &Path, limits: BatchLimits) -> ArrowSink {
        ArrowSink {
            dir: dir.to_path_buf(),
            tables: ArrowTables::with_limits(limits),
            writers: HashMap::new(),
            summaries: vec![],
            files: vec![],
            schema_changes: vec![],
            losses: vec![],
            endpoints: None,
        }
    }

    fn write(&mut self, table: usize, batch: &RecordBatch) -> io::Result<()> {
        if !self.writers.contains_key(&table) {
            let info = self.tables.info(table).ok_or_else(|| io::Error::other("a row of an unknown table"))?;
            let name = file_name(info);
            let file = File::create(self.dir.join(&name))?;
            let writer = FileWriter::try_new(BufWriter::new(file), &batch.schema()).map_err(to_io)?;
            self.writers.insert(table, writer);
            if let Some(f) = self.files.get_mut(table) {
                *f = Some(name);
            }
        }
        match self.writers.get_mut(&table) {
            Some(w) => w.write(batch).map_err(to_io),
            None => Ok(()),
        }
    }

    fn close(&mut self, table: usize) -> io::Result<()> {
        if let Some(mut w) = self.writers.remove(&table) {
            w.finish().map_err(to_io)?;
            let mut out = w.into_inner().map_err(to_io)?;
            io::Write::flush(&mut out)?;
        }
        Ok(())
    }

    fn write_file(&self, name: &str, batch: &RecordBatch) -> io::Result<()> {
        let file = File::create(self.dir.join(name))?;
        let mut w = FileWriter::try_new(BufWriter::new(file), &batch.schema()).map_err(to_io)?;
        w.write(batch).map_err(to_io)?;
        w.finish().map_err(to_io)?;
        let mut out = w.into_inner().map_err(to_io)?;
        io::Write::flush(&mut out)
    }
}

impl Sink for ArrowSink {
    fn event(&mut self, event: &Event) -> io::Result<()> {
        match event {
            Event::Started { parent, child, tables, .. } => {
                self.summaries = vec![None; tables.len()];
                self.files = vec![None; tables.len()];
                self.endpoints = Some((parent.endpoint.clone(), child.endpoint.clone()));
            }
            Event::Schema(c) => self.schema_changes.push(c.clone()),
            Event::DataLoss(l) => self.losses.push(l.clone()),
            Event::TableDone { table, summary } => {
                if let Some(s) = self.summaries.get_mut(*table) {
                    *s = Some(summary.clone());
                }
            }
            _ => {}
        }
        for (table, batch) in self.tables.push(event).map_err(to_io)? {
            self.write(table, &batch)?;
        }
        if let Event::TableDone { table, .. } = event {
            self.close(*table)?;
        }
        Ok(())
    }

    fn finish(mut self: Box<Self>, end: &End) -> io::Result<()> {
        let open: Vec<usize> = self.writers.keys().copied().collect();
        for table in open {
            self.close(table)?;
        }
        let infos: Vec<TableInfo> = (0..self.files.len()).filter_map(|i| self.tables.info(i).cloned()).collect();
        crate::report::sort_losses(&mut self.losses, &infos);
        let mut metadata = HashMap::from([
            ("pgbranchdiff:format_version".to_string(), "1".to_string()),
            ("pgbranchdiff:millis".to_string(), end.millis.to_string()),
        ]);
        if let Some((parent, child)) = &self.endpoints {
            metadata.insert("pgbranchdiff:parent".into(), parent.clone());
            metadata.insert("pgbranchdiff:child".into(), child.clone());
        }
        if let Some(v) = &end.verdict {
            let gate = serde_json::json!({ "fail_on": v.fail_on, "passed": v.passed, "reasons": v.reasons });
            metadata.insert("pgbranchdiff:gate".into(), gate.to_string());
        }
        self.write_file("schema_changes.arrow", &summary::schema_changes(&self.schema_changes).map_err(to_io)?)?;
        self.write_file("data_loss.arrow", &summary::data_loss(&self.losses, &infos).map_err(to_io)?)?;
        // Last: its presence marks the report complete.
        let tables = summary::tables(&infos, &self.summaries, &self.files, metadata).map_err(to_io)?;
        self.write_file(TABLES_FILE, &tables)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn info(schema: &str, name: &str) -> TableInfo {
        TableInfo {
            id: 0,
            schema: schema.into(),
            name: name.into(),
            parent_name: None,
            key: vec![],
            key_source: crate::plan::KeySource::WholeRow,
            columns: vec![],
            column_info: vec![],
            parent_side: Default::default(),
            child_side: Default::default(),
        }
    }

    #[test]
    fn file_names_are_escaped() {
        assert_eq!(file_name(&info("public", "orders")), "public.orders.arrow");
        assert_eq!(file_name(&info("my schema", "a.b/c%")), "my%20schema.a%2Eb%2Fc%25.arrow");
        assert_eq!(file_name(&info("s", "Zürich")), "s.Z%C3%BCrich.arrow");
        let long = file_name(&info(&"ä".repeat(31), &"ö".repeat(31)));
        assert!(long.len() <= MAX_NAME, "{long}");
        assert!(long.ends_with(".arrow"));
        assert_ne!(long, file_name(&info(&"ä".repeat(31), &"ö".repeat(30))));
    }
}
