//! What the MCP tools return, bounded to fit a model's context: counts and
//! verdicts first, then rows in pages, long values cut, and every result says
//! what it cut (`cut`). Built from the same report the CLI renders
//! ([`diff_core::render::json_value`]), never a second diff.

use schemars::JsonSchema;
use serde::Serialize;
use serde_json::{json, Value as J};

/// Characters of rows on one page of `diff`.
pub const PAGE_CHARS: usize = 16_000;
/// Characters a string value keeps inside a row, an SQL text or a message.
pub const VALUE_CHARS: usize = 300;
/// Entries a list keeps (data-loss entries, schema changes, statements, reasons).
pub const LIST_ITEMS: usize = 50;

/// `create_branch` and `reset_branch`.
#[derive(Debug, Serialize, JsonSchema)]
pub struct BranchInfo {
    /// The branch's name: what the other tools take.
    pub name: String,
    /// A postgresql:// URL for your own SQL tools (no password: libpq finds it as usual).
    pub url: String,
}

/// `list_branches`.
#[derive(Debug, Serialize, JsonSchema)]
pub struct BranchList {
    /// The branches this server made and has not deleted.
    pub branches: Vec<BranchListItem>,
}

/// One branch in `list_branches`.
#[derive(Debug, Serialize, JsonSchema)]
pub struct BranchListItem {
    pub name: String,
    pub url: String,
    /// `template`, `snapshot` or `command`.
    pub method: String,
    /// When it was made or last reset (UTC).
    pub created: String,
}

/// `delete_branch`.
#[derive(Debug, Serialize, JsonSchema)]
pub struct Deleted {
    pub deleted: String,
}

/// `run_sql`.
#[derive(Debug, Serialize, JsonSchema)]
pub struct SqlResult {
    /// Every statement ran and committed without error.
    pub applied: bool,
    /// The report for reading: each statement's time and locks; for a failure, why and the offending rows.
    pub text: String,
    /// The same as data (the `migration` object of `pgbranchdiff check --format json`).
    pub report: J,
    /// What was left out to keep this result short (empty: nothing).
    pub cut: Vec<String>,
}

/// `diff`.
#[derive(Debug, Serialize, JsonSchema)]
pub struct DiffResult {
    /// Nothing differs in what was compared.
    pub identical: bool,
    /// Counts over every compared table: tables_compared, tables_changed, inserted, updated, deleted, schema_changes.
    pub summary: J,
    /// What the branch destroyed, with exact counts (kind, object, count).
    pub data_loss: Vec<J>,
    /// Schema changes (root changes), dangerous ones first, with danger labels.
    pub schema_changes: Vec<J>,
    /// Per changed table: its counts and how many of its rows are not listed at all.
    pub tables: Vec<J>,
    /// This page of changed rows (table, op, key, changed columns, before, after).
    pub rows: Vec<J>,
    /// This page's number, from 1.
    pub page: usize,
    /// Pages of rows in all.
    pub pages: usize,
    /// What was left out to keep this result short (empty: nothing).
    pub cut: Vec<String>,
}

/// `verdict`.
#[derive(Debug, Serialize, JsonSchema)]
pub struct VerdictResult {
    /// No unaccepted change of the classes asked for.
    pub passed: bool,
    /// One line: passed or FAILED, with the classes.
    pub headline: String,
    /// One line per failing class and object.
    pub reasons: Vec<String>,
    /// Data-loss entries accepted by the patterns.
    pub accepted: usize,
    /// Patterns that matched nothing (a typo accepts nothing).
    pub unused_accepts: Vec<String>,
    /// What was left out to keep this result short (empty: nothing).
    pub cut: Vec<String>,
}

/// Keeps the first `max` items of `list`, noting in `cut` how many were left out.
pub fn first<T>(mut list: Vec<T>, max: usize, what: &str, cut: &mut Vec<String>) -> Vec<T> {
    if list.len() > max {
        cut.push(format!("{what}: {} of {} shown", max, list.len()));
        list.truncate(max);
    }
    list
}

/// Cuts strings longer than `max` characters anywhere in `v`; returns how many were cut.
pub fn shorten(v: &mut J, max: usize) -> usize {
    match v {
        J::String(s) if s.chars().count() > max => {
            let n = s.chars().count();
            *s = format!("{}… ({n} characters, cut)", s.chars().take(max).collect::<String>());
            1
        }
        J::Array(a) => a.iter_mut().map(|x| shorten(x, max)).sum(),
        J::Object(o) => o.values_mut().map(|x| shorten(x, max)).sum(),
        _ => 0,
    }
}

/// Cuts `s` to `max` characters, noting it in `cut`.
pub fn shorten_text(s: String, max: usize, what: &str, cut: &mut Vec<String>) -> String {
    let n = s.chars().count();
    if n <= max {
        return s;
    }
    cut.push(format!("{what}: first {max} of {n} characters"));
    format!("{}…", s.chars().take(max).collect::<String>())
}

/// Schema changes with each consequence (a view dropped with the column it read) under its
/// cause's `consequences`, as the text report indents them; a consequence whose cause is not
/// listed stays at the top.
fn nest_consequences(changes: Vec<J>, cut: &mut Vec<String>) -> Vec<J> {
    let (mut roots, consequences): (Vec<J>, Vec<J>) = changes.into_iter().partition(|c| c.get("cause").is_none());
    let mut under: std::collections::BTreeMap<usize, Vec<J>> = std::collections::BTreeMap::new();
    for c in consequences {
        let cause = c["cause"].as_str().unwrap_or("");
        match roots.iter().position(|r| r["object"].as_str() == Some(cause)) {
            Some(i) => under.entry(i).or_default().push(c),
            None => roots.push(c),
        }
    }
    for (i, list) in under {
        let list = first(list, LIST_ITEMS, &format!("consequences of {}", roots[i]["object"]), cut);
        roots[i]["consequences"] = J::Array(list);
    }
    roots
}

/// The `diff` result from the JSON document of a report: summary, loss and
/// schema first, then page `page` (from 1) of the rows.
pub fn diff(doc: &J, page: usize) -> Result<DiffResult, String> {
    let mut cut = Vec::new();
    let list = |key: &str| doc[key].as_array().cloned().unwrap_or_default();
    let mut data_loss = first(list("data_loss"), LIST_ITEMS, "data_loss", &mut cut);
    let schema_changes = nest_consequences(list("schema_changes"), &mut cut);
    let mut schema_changes = first(schema_changes, LIST_ITEMS, "schema_changes", &mut cut);
    let mut long = 0;
    for v in data_loss.iter_mut().chain(schema_changes.iter_mut()) {
        long += shorten(v, VALUE_CHARS);
    }
    let mut tables = Vec::new();
    let mut all_rows = Vec::new();
    for t in list("tables") {
        let counts = &t["counts"];
        let changed = ["inserted", "updated", "deleted"].iter().any(|k| counts[k].as_u64().unwrap_or(0) > 0);
        if !changed {
            continue;
        }
        let name = format!("{}.{}", t["schema"].as_str().unwrap_or(""), t["name"].as_str().unwrap_or(""));
        tables.push(json!({ "table": name, "counts": counts, "rows_not_listed": t["rows_omitted"] }));
        for mut r in t["rows"].as_array().cloned().unwrap_or_default() {
            long += shorten(&mut r, VALUE_CHARS);
            if let Some(o) = r.as_object_mut() {
                o.insert("table".into(), J::String(name.clone()));
            }
            all_rows.push(r);
        }
    }
    let tables = first(tables, LIST_ITEMS * 4, "tables", &mut cut);
    if long > 0 {
        cut.push(format!("{long} long values cut to {VALUE_CHARS} characters"));
    }
    let pages = paginate(&all_rows, PAGE_CHARS);
    let page_count = pages.len().max(1);
    if page == 0 || page > page_count {
        return Err(format!("page {page}: the diff has {page_count} page(s) of rows, numbered from 1"));
    }
    let range = pages.get(page - 1).cloned().unwrap_or(0..0);
    if page_count > 1 {
        let next = if page < page_count { format!("; call diff with page {}", page + 1) } else { String::new() };
        cut.push(format!("rows: page {page} of {page_count} ({} of {} rows){next}", range.len(), all_rows.len()));
    }
    let not_listed: u64 = tables.iter().map(|t| t["rows_not_listed"].as_u64().unwrap_or(0)).sum();
    if not_listed > 0 {
        cut.push(format!("{not_listed} changed rows not listed at all (counted in tables[].counts)"));
    }
    Ok(DiffResult {
        identical: doc["identical"].as_bool().unwrap_or(false),
        summary: doc["summary"].clone(),
        data_loss,
        schema_changes,
        tables,
        rows: all_rows[range].to_vec(),
        page,
        pages: page_count,
        cut,
    })
}

/// Splits rows into pages of about `chars` characters of JSON (at least one row a page).
fn paginate(rows: &[J], chars: usize) -> Vec<std::ops::Range<usize>> {
    let mut pages = Vec::new();
    let (mut start, mut size) = (0, 0);
    for (i, r) in rows.iter().enumerate() {
        let len = r.to_string().len();
        if i > start && size + len > chars {
            pages.push(start..i);
            (start, size) = (i, 0);
        }
        size += len;
    }
    if start < rows.len() {
        pages.push(start..rows.len());
    }
    pages
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_are_paged_by_size_and_pages_are_checked() {
        let rows: Vec<J> =
            (0..100).map(|i| json!({"op": "insert", "key": {"id": i}, "after": {"s": "x".repeat(500)}})).collect();
        let doc = json!({
            "identical": false, "summary": {"inserted": 100},
            "tables": [{"schema": "public", "name": "t", "counts": {"inserted": 100, "updated": 0, "deleted": 0},
                        "rows_omitted": 0, "rows": rows}],
            "data_loss": [], "schema_changes": []
        });
        let first_page = diff(&doc, 1).unwrap();
        assert!(first_page.pages > 1 && first_page.rows.len() < 100, "{}", first_page.pages);
        assert_eq!(first_page.rows[0]["table"], "public.t");
        assert!(first_page.cut.iter().any(|c| c.contains("call diff with page 2")), "{:?}", first_page.cut);
        assert!(first_page.cut.iter().any(|c| c.contains("long values cut")), "{:?}", first_page.cut);
        let total: usize = (1..=first_page.pages).map(|p| diff(&doc, p).unwrap().rows.len()).sum();
        assert_eq!(total, 100);
        assert!(diff(&doc, first_page.pages + 1).unwrap_err().contains("numbered from 1"));
        assert!(serde_json::to_string(&first_page).unwrap().len() < PAGE_CHARS * 2);
    }

    #[test]
    fn consequences_are_listed_under_their_cause() {
        let change = |object: &str, cause: Option<&str>| {
            let mut c = json!({"kind": "view", "op": "dropped", "object": object, "danger": ["breaks_clients"]});
            if let Some(cause) = cause {
                c["cause"] = json!(cause);
            }
            c
        };
        let doc = json!({
            "identical": false, "summary": {}, "tables": [], "data_loss": [],
            "schema_changes": [change("public.t.c", None), change("public.v", Some("public.t.c")),
                               change("public.w", None), change("public.x", Some("public.gone"))]
        });
        let result = diff(&doc, 1).unwrap();
        let objects: Vec<&str> = result.schema_changes.iter().map(|c| c["object"].as_str().unwrap()).collect();
        assert_eq!(objects, ["public.t.c", "public.w", "public.x"]);
        assert_eq!(result.schema_changes[0]["consequences"][0]["object"], "public.v");
        assert!(result.schema_changes[1].get("consequences").is_none());
    }
}
