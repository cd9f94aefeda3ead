//! Migration files read into the steps to run: directories expanded to their
//! `*.sql` files in name order, statements split, psql meta-commands handled
//! (`\i`, `\ir` included; `\echo` kept; settings that only change psql's own
//! output ignored) or refused with their file and line.

use std::path::{Path, PathBuf};

use anyhow::{anyhow, bail, Context, Result};

use super::split::{split, Piece};

/// One thing to do, with where it was written.
#[derive(Debug, Clone)]
pub(super) struct Step {
    /// `file:line`.
    pub location: String,
    pub kind: StepKind,
}

#[derive(Debug, Clone)]
pub(super) enum StepKind {
    Sql(String),
    /// `COPY … FROM STDIN` with its inline data.
    Copy {
        sql: String,
        data: String,
    },
    /// `\echo`: printed on stderr when reached.
    Echo(String),
}

/// Includes deeper than this are taken for a cycle.
const MAX_DEPTH: usize = 16;

/// Reads `paths` (files, or directories of `*.sql` files) into steps.
pub(super) fn load(paths: &[PathBuf]) -> Result<Vec<Step>> {
    if paths.is_empty() {
        bail!("no migration given");
    }
    let mut steps = Vec::new();
    for path in paths {
        for file in expand(path)? {
            if load_file(&file, 0, &mut steps)? == Flow::Quit {
                return Ok(steps);
            }
        }
    }
    Ok(steps)
}

/// Where statements of SQL text given directly are said to be: `sql:LINE`.
const TEXT_ORIGIN: &str = "sql";

/// Splits SQL text given directly into steps. Nothing is read from files:
/// `\i` and `\ir` are refused (the text may come from an agent).
pub(super) fn load_text(text: &str) -> Result<Vec<Step>> {
    let mut steps = Vec::new();
    load_pieces(Path::new(TEXT_ORIGIN), text, Includes::Refused, &mut steps)?;
    if steps.is_empty() {
        bail!("no SQL statement given");
    }
    Ok(steps)
}

/// Whether `\i` may read files.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Includes {
    /// At this depth of nesting.
    Allowed(usize),
    Refused,
}

/// A directory's `*.sql` files in name order, or the file itself.
fn expand(path: &Path) -> Result<Vec<PathBuf>> {
    let meta = std::fs::metadata(path).with_context(|| format!("cannot read migration {}", path.display()))?;
    if !meta.is_dir() {
        return Ok(vec![path.to_path_buf()]);
    }
    let mut files: Vec<PathBuf> = std::fs::read_dir(path)
        .with_context(|| format!("cannot read migration directory {}", path.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "sql") && p.is_file())
        .collect();
    files.sort_by(|a, b| a.file_name().cmp(&b.file_name()));
    if files.is_empty() {
        bail!("migration directory {} has no .sql files", path.display());
    }
    Ok(files)
}

#[derive(PartialEq, Eq)]
enum Flow {
    Continue,
    Quit,
}

fn load_file(file: &Path, depth: usize, steps: &mut Vec<Step>) -> Result<Flow> {
    let text = std::fs::read_to_string(file).with_context(|| format!("cannot read migration {}", file.display()))?;
    load_pieces(file, &text, Includes::Allowed(depth), steps)
}

fn load_pieces(file: &Path, text: &str, includes: Includes, steps: &mut Vec<Step>) -> Result<Flow> {
    // A byte-order mark some editors write is not part of the first statement.
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let pieces = split(text).map_err(|e| anyhow!("{}:{}: {}", file.display(), e.line, e.message))?;
    for piece in pieces {
        match piece {
            Piece::Sql { text, line, copy_data } => {
                let location = format!("{}:{line}", file.display());
                let kind = match copy_data {
                    Some(data) => StepKind::Copy { sql: text, data },
                    None => StepKind::Sql(text),
                };
                steps.push(Step { location, kind });
            }
            Piece::Meta { name, args, line, copy_data } => {
                let at = format!("{}:{line}", file.display());
                if meta(file, &at, &name, &args, copy_data, includes, steps)? == Flow::Quit {
                    return Ok(Flow::Quit);
                }
            }
        }
    }
    Ok(Flow::Continue)
}

/// psql variables that only change what psql prints, or that we do anyway.
const HARMLESS_VARIABLES: &[&str] = &["on_error_stop", "echo", "echo_hidden", "quiet", "verbosity", "show_context"];

/// Meta-commands that only change how psql formats its output.
const OUTPUT_ONLY: &[&str] = &["timing", "pset", "x", "t", "a", "f", "H", "C", "o", "out"];

fn meta(
    file: &Path,
    at: &str,
    name: &str,
    args: &str,
    copy_data: Option<String>,
    includes: Includes,
    steps: &mut Vec<Step>,
) -> Result<Flow> {
    let location = at.to_string();
    match name {
        "set" | "unset" => {
            let var = args.split_whitespace().next().unwrap_or("").to_ascii_lowercase();
            if !HARMLESS_VARIABLES.contains(&var.as_str()) {
                bail!("{at}: \\{name} {var} is not supported: psql variables are not interpolated here (use --run 'psql …' for scripts that need them)");
            }
        }
        "echo" | "qecho" | "warn" => steps.push(Step { location, kind: StepKind::Echo(unquote(args)) }),
        "i" | "include" | "ir" | "include_relative" => {
            let Includes::Allowed(depth) = includes else {
                bail!("{at}: \\{name} reads a file: not allowed in SQL given as text")
            };
            if depth >= MAX_DEPTH {
                bail!("{at}: \\{name} nested more than {MAX_DEPTH} deep (an include cycle?)");
            }
            let target = PathBuf::from(unquote(args));
            if target.as_os_str().is_empty() {
                bail!("{at}: \\{name} needs a file name");
            }
            // Like psql: \i is relative to the working directory, \ir to the including file.
            let target = if name.starts_with("ir") || name == "include_relative" {
                file.parent().unwrap_or(Path::new(".")).join(target)
            } else {
                target
            };
            if !target.is_file() {
                bail!("{at}: \\{name} {}: no such file", target.display());
            }
            return load_file(&target, depth + 1, steps);
        }
        "c" | "connect" => bail!(
            "{at}: \\{name} switches to another database: a migration is checked on one branch, so it cannot connect elsewhere"
        ),
        "copy" => {
            let Some(data) = copy_data else {
                bail!("{at}: \\copy is supported only FROM stdin with the data inline (this reads or writes a client file)")
            };
            steps.push(Step { location, kind: StepKind::Copy { sql: format!("COPY {args}"), data } });
        }
        "o" | "out" if includes == Includes::Refused && !args.trim().is_empty() => {
            bail!("{at}: \\{name} writes a file: not allowed in SQL given as text")
        }
        "q" | "quit" => return Ok(Flow::Quit),
        // Files are read as UTF-8 and sent as UTF-8: only that encoding can be honoured.
        "encoding" if matches!(args.to_ascii_uppercase().replace('-', "").as_str(), "UTF8" | "UNICODE") => {}
        _ if OUTPUT_ONLY.contains(&name) => {}
        _ => bail!("{at}: psql meta-command \\{name} is not supported (run the script with --run 'psql …' instead)"),
    }
    Ok(Flow::Continue)
}

/// psql's quoting of a meta-command argument: `'…'` with `''` inside.
fn unquote(s: &str) -> String {
    let s = s.trim();
    match s.strip_prefix('\'').and_then(|r| r.strip_suffix('\'')) {
        Some(inner) => inner.replace("''", "'"),
        None => s.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
        let p = dir.join(name);
        std::fs::write(&p, text).unwrap();
        p
    }

    fn sqls(steps: &[Step]) -> Vec<String> {
        steps
            .iter()
            .map(|s| match &s.kind {
                StepKind::Sql(t) => t.clone(),
                StepKind::Copy { sql, .. } => sql.clone(),
                StepKind::Echo(t) => format!("echo {t}"),
            })
            .collect()
    }

    #[test]
    fn a_directory_is_its_sql_files_in_name_order() {
        let dir = tempfile::tempdir().unwrap();
        write(dir.path(), "0002_b.sql", "SELECT 2;");
        write(dir.path(), "0001_a.sql", "SELECT 1;");
        write(dir.path(), "notes.txt", "not sql");
        let steps = load(&[dir.path().to_path_buf()]).unwrap();
        assert_eq!(sqls(&steps), ["SELECT 1", "SELECT 2"]);
        assert!(steps[1].location.ends_with("0002_b.sql:1"), "{}", steps[1].location);
    }

    #[test]
    fn includes_echo_and_ignored_settings() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("sub")).unwrap();
        write(&dir.path().join("sub"), "part.sql", "SELECT 'part';\n");
        let main = write(
            dir.path(),
            "main.sql",
            "\\set ON_ERROR_STOP on\n\\timing on\n\\C 'title'\n\\o /dev/null\n\\encoding UTF8\n\\echo 'step one'\n\\ir sub/part.sql\nSELECT 3;\n\\q\nSELECT 4;\n",
        );
        assert_eq!(sqls(&load(&[main]).unwrap()), ["echo step one", "SELECT 'part'", "SELECT 3"]);
    }

    #[test]
    fn refused_meta_commands_name_file_and_line() {
        let dir = tempfile::tempdir().unwrap();
        for (text, needle) in [
            ("SELECT 1;\n\\connect other\n", ":2: \\connect switches"),
            ("\\set x 1\n", ":1: \\set x is not supported"),
            ("\\encoding LATIN1\n", ":1: psql meta-command \\encoding is not supported"),
            ("\n\n\\gexec\n", ":3: psql meta-command \\gexec is not supported"),
            ("\\copy t from 'data.csv'\n", ":1: \\copy is supported only FROM stdin"),
            ("\\ir missing.sql\n", "missing.sql: no such file"),
            ("SELECT 'x\n", ":1: unterminated quoted string"),
        ] {
            let f = write(dir.path(), "m.sql", text);
            let e = load(&[f]).unwrap_err().to_string();
            assert!(e.contains(needle), "{text:?}: {e}");
            assert!(e.contains("m.sql"), "{e}");
        }
    }

    #[test]
    fn byte_order_mark_and_crlf() {
        let dir = tempfile::tempdir().unwrap();
        let f = write(
            dir.path(),
            "w.sql",
            "\u{feff}CREATE TABLE t (a int);\r\n\\echo done\r\nCOPY t FROM stdin;\r\n1\r\n\\.\r\n",
        );
        let steps = load(&[f]).unwrap();
        assert_eq!(sqls(&steps), ["CREATE TABLE t (a int)", "echo done", "COPY t FROM stdin"]);
    }

    #[test]
    fn text_is_split_and_may_not_include_files() {
        let steps = load_text("CREATE TABLE t (a int);\nINSERT INTO t VALUES (1);\n").unwrap();
        assert_eq!(sqls(&steps), ["CREATE TABLE t (a int)", "INSERT INTO t VALUES (1)"]);
        assert_eq!(steps[1].location, "sql:2");
        let e = load_text("SELECT 1;\n\\i /etc/passwd\n").unwrap_err().to_string();
        assert!(e.contains("sql:2: \\i reads a file"), "{e}");
        let e = load_text("SELECT 1;\n\\o /tmp/out.txt\nSELECT 2;\n").unwrap_err().to_string();
        assert!(e.contains("sql:2: \\o writes a file"), "{e}");
        assert_eq!(sqls(&load_text("\\o\nSELECT 1;\n").unwrap()), ["SELECT 1"]);
        assert!(load_text("  \n").unwrap_err().to_string().contains("no SQL statement"));
    }

    #[test]
    fn include_cycles_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let f = write(dir.path(), "loop.sql", "\\ir loop.sql\n");
        assert!(load(&[f]).unwrap_err().to_string().contains("include cycle"));
    }

    #[test]
    fn copy_steps_carry_their_data() {
        let dir = tempfile::tempdir().unwrap();
        let f = write(dir.path(), "c.sql", "\\copy t (a) from stdin\n1\n2\n\\.\n");
        let steps = load(&[f]).unwrap();
        match &steps[0].kind {
            StepKind::Copy { sql, data } => {
                assert_eq!((sql.as_str(), data.as_str()), ("COPY t (a) from stdin", "1\n2\n"))
            }
            other => panic!("{other:?}"),
        }
    }
}
