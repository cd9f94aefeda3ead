//! Progress on stderr while a diff runs: tables done, rows compared, rate.

use std::collections::HashMap;
use std::time::Duration;

use diff_core::Event;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

/// A progress bar on stderr, fed with the diff's events.
pub struct Progress {
    bar: Option<ProgressBar>,
    rows_in_flight: HashMap<usize, u64>,
    rows_done: u64,
    tables_done: u64,
}

impl Progress {
    pub fn new(enabled: bool) -> Progress {
        let bar = enabled.then(|| {
            let bar = ProgressBar::with_draw_target(Some(0), ProgressDrawTarget::stderr());
            bar.set_style(
                ProgressStyle::with_template("{spinner} tables {pos}/{len} {wide_msg} [{elapsed_precise}, ETA {eta}]")
                    .expect("valid template"),
            );
            bar.enable_steady_tick(Duration::from_millis(200));
            bar
        });
        Progress { bar, rows_in_flight: HashMap::new(), rows_done: 0, tables_done: 0 }
    }

    pub fn observe(&mut self, event: &Event) {
        let Some(bar) = &self.bar else { return };
        match event {
            Event::Started { tables, .. } => bar.set_length(tables.len() as u64),
            Event::Progress { table, rows } => {
                self.rows_in_flight.insert(*table, *rows);
            }
            Event::TableDone { table, summary } => {
                self.rows_in_flight.remove(table);
                self.rows_done += summary.parent.rows.max(summary.child.rows);
                self.tables_done += 1;
                bar.set_position(self.tables_done);
            }
            _ => return,
        }
        let rows = self.rows_done + self.rows_in_flight.values().sum::<u64>();
        let secs = bar.elapsed().as_secs_f64().max(0.001);
        let unit = if rows == 1 { "row" } else { "rows" };
        bar.set_message(format!("{rows} {unit} compared, {:.0} rows/s", rows as f64 / secs));
    }

    pub fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}
