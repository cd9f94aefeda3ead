//! SQL text split into statements the way psql does it: a `;` outside quotes,
//! comments and parentheses ends a statement; `'…'` (with `''`), `E'…'` (with
//! backslash escapes), `"…"`, `$tag$…$tag$` and nested `/* */` comments are
//! skipped as wholes; a `BEGIN ATOMIC … END` body of CREATE FUNCTION or
//! PROCEDURE holds its own semicolons; a backslash starts a meta-command that
//! runs to the end of the line (`\;` adds a semicolon without ending the
//! statement, `\g` ends it). The data of `COPY … FROM STDIN` and
//! `\copy … from stdin` is the lines that follow, up to `\.`.

/// One piece of a script, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Piece {
    /// A statement to send, without its terminating `;`.
    Sql {
        text: String,
        /// 1-based line of the statement's first token.
        line: usize,
        /// For `COPY … FROM STDIN`: the inline data lines (each ending in `\n`).
        copy_data: Option<String>,
    },
    /// A psql meta-command: `name` without the backslash, `args` the rest of its line.
    Meta {
        name: String,
        args: String,
        line: usize,
        /// For `\copy … from stdin`: the inline data lines.
        copy_data: Option<String>,
    },
}

/// Text that cannot be split: an unterminated quote or comment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SplitError {
    pub line: usize,
    pub message: String,
}

fn ident_start(c: u8) -> bool {
    c.is_ascii_alphabetic() || c == b'_' || c >= 0x80
}

fn ident_cont(c: u8) -> bool {
    ident_start(c) || c.is_ascii_digit() || c == b'$'
}

/// End (exclusive) of a `'…'` literal starting at `i`; `escapes` for `E'…'`.
fn scan_single(b: &[u8], mut i: usize, escapes: bool) -> Option<usize> {
    i += 1;
    while i < b.len() {
        match b[i] {
            b'\\' if escapes => i += 2,
            b'\'' if b.get(i + 1) == Some(&b'\'') => i += 2,
            b'\'' => return Some(i + 1),
            _ => i += 1,
        }
    }
    None
}

/// End (exclusive) of a `"…"` identifier starting at `i`.
fn scan_double(b: &[u8], mut i: usize) -> Option<usize> {
    i += 1;
    while i < b.len() {
        if b[i] == b'"' {
            if b.get(i + 1) == Some(&b'"') {
                i += 2;
                continue;
            }
            return Some(i + 1);
        }
        i += 1;
    }
    None
}

/// The opening `$tag$` at `i` (exclusive end), when it is a dollar-quote
/// delimiter and not a parameter like `$1`.
fn dollar_tag(b: &[u8], i: usize) -> Option<usize> {
    let mut j = i + 1;
    if j < b.len() && b[j] != b'$' {
        if !ident_start(b[j]) {
            return None;
        }
        while j < b.len() && ident_cont(b[j]) && b[j] != b'$' {
            j += 1;
        }
    }
    (b.get(j) == Some(&b'$')).then_some(j + 1)
}

/// End (exclusive) of a block comment starting at `i`; they nest.
fn scan_block_comment(b: &[u8], mut i: usize) -> Option<usize> {
    let mut depth = 0usize;
    while i + 1 < b.len() {
        if b[i] == b'/' && b[i + 1] == b'*' {
            depth += 1;
            i += 2;
        } else if b[i] == b'*' && b[i + 1] == b'/' {
            depth -= 1;
            i += 2;
            if depth == 0 {
                return Some(i);
            }
        } else {
            i += 1;
        }
    }
    None
}

fn line_end(b: &[u8], i: usize) -> usize {
    b[i..].iter().position(|&c| c == b'\n').map_or(b.len(), |p| i + p)
}

/// One lexical unit outside statements' structure, for callers that parse a
/// statement: words (lowercased keywords or identifiers), quoted identifiers
/// (unquoted), literals and single punctuation characters, with byte ranges.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Tok {
    Word(String),
    Ident(String),
    Literal,
    Punct(u8),
}

/// The tokens of one statement, comments skipped.
pub(crate) fn tokens(sql: &str) -> Vec<(Tok, std::ops::Range<usize>)> {
    let b = sql.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        let start = i;
        let tok = if c.is_ascii_whitespace() {
            i += 1;
            continue;
        } else if c == b'-' && b.get(i + 1) == Some(&b'-') {
            i = line_end(b, i);
            continue;
        } else if c == b'/' && b.get(i + 1) == Some(&b'*') {
            i = scan_block_comment(b, i).unwrap_or(b.len());
            continue;
        } else if c == b'\'' {
            i = scan_single(b, i, false).unwrap_or(b.len());
            Tok::Literal
        } else if c == b'"' {
            let end = scan_double(b, i);
            i = end.unwrap_or(b.len());
            // Without its closing quote, the identifier runs to the end.
            let inner_end = if end.is_some() { i - 1 } else { i };
            Tok::Ident(sql[start + 1..inner_end.max(start + 1)].replace("\"\"", "\""))
        } else if c == b'$' && (i == 0 || !ident_cont(b[i - 1])) && dollar_tag(b, i).is_some() {
            let open = dollar_tag(b, i).unwrap_or(b.len());
            let tag = &b[i..open];
            i = find(b, open, tag).map_or(b.len(), |p| p + tag.len());
            Tok::Literal
        } else if ident_start(c) {
            while i < b.len() && ident_cont(b[i]) {
                i += 1;
            }
            let word = &sql[start..i];
            if b.get(i) == Some(&b'\'') {
                let escapes = word.eq_ignore_ascii_case("e");
                i = scan_single(b, i, escapes).unwrap_or(b.len());
                Tok::Literal
            } else {
                Tok::Word(word.to_ascii_lowercase())
            }
        } else if c.is_ascii_digit() {
            while i < b.len() && (b[i].is_ascii_alphanumeric() || b[i] == b'.') {
                i += 1;
            }
            Tok::Literal
        } else {
            i += 1;
            Tok::Punct(c)
        };
        out.push((tok, start..i));
    }
    out
}

fn find(b: &[u8], from: usize, needle: &[u8]) -> Option<usize> {
    b.get(from..)?.windows(needle.len()).position(|w| w == needle).map(|p| from + p)
}

/// The lowercased words of a statement or meta-command outside quotes and comments.
pub(crate) fn words(sql: &str) -> Vec<String> {
    tokens(sql).into_iter().filter_map(|(t, _)| if let Tok::Word(w) = t { Some(w) } else { None }).collect()
}

/// Whether a statement (or `\copy` arguments) reads its data `FROM STDIN`.
fn reads_stdin(words: &[String]) -> bool {
    words.windows(2).any(|w| w[0] == "from" && w[1] == "stdin")
}

/// Splits a script into statements and meta-commands, in order.
pub fn split(text: &str) -> Result<Vec<Piece>, SplitError> {
    Splitter::new(text).run()
}

struct Splitter<'a> {
    text: &'a str,
    b: &'a [u8],
    i: usize,
    newlines: Vec<usize>,
    out: Vec<Piece>,
    buf: String,
    seg: usize,
    first: Option<usize>,
    parens: usize,
    begin_depth: usize,
    words: Vec<String>,
}

impl<'a> Splitter<'a> {
    fn new(text: &'a str) -> Self {
        let b = text.as_bytes();
        let newlines = b.iter().enumerate().filter(|(_, &c)| c == b'\n').map(|(i, _)| i).collect();
        Splitter {
            text,
            b,
            i: 0,
            newlines,
            out: Vec::new(),
            buf: String::new(),
            seg: 0,
            first: None,
            parens: 0,
            begin_depth: 0,
            words: Vec::new(),
        }
    }

    fn line(&self, at: usize) -> usize {
        self.newlines.partition_point(|&n| n < at) + 1
    }

    fn fail<T>(&self, at: usize, what: &str) -> Result<T, SplitError> {
        Err(SplitError { line: self.line(at), message: format!("unterminated {what}") })
    }

    /// Notes a token; the first one starts the statement's text (comments
    /// before it are dropped, as psql does).
    fn mark(&mut self, at: usize) {
        if self.first.is_none() {
            self.first = Some(at);
            self.buf.clear();
            self.seg = at;
        }
    }

    /// CREATE [OR REPLACE] FUNCTION|PROCEDURE: its BEGIN ATOMIC body holds semicolons.
    fn in_routine(&self) -> bool {
        let w: Vec<&str> = self.words.iter().take(4).map(String::as_str).collect();
        matches!(
            w.as_slice(),
            ["create", "function" | "procedure", ..] | ["create", "or", "replace", "function" | "procedure", ..]
        )
    }

    fn run(mut self) -> Result<Vec<Piece>, SplitError> {
        while self.i < self.b.len() {
            let (i, c) = (self.i, self.b[self.i]);
            match c {
                _ if c.is_ascii_whitespace() => self.i += 1,
                b'-' if self.b.get(i + 1) == Some(&b'-') => self.i = line_end(self.b, i),
                b'/' if self.b.get(i + 1) == Some(&b'*') => {
                    self.i = scan_block_comment(self.b, i).map_or_else(|| self.fail(i, "/* comment"), Ok)?
                }
                b'\'' => {
                    self.mark(i);
                    self.i = scan_single(self.b, i, false).map_or_else(|| self.fail(i, "quoted string"), Ok)?;
                }
                b'"' => {
                    self.mark(i);
                    self.i = scan_double(self.b, i).map_or_else(|| self.fail(i, "quoted identifier"), Ok)?;
                }
                b'$' if (i == 0 || !ident_cont(self.b[i - 1])) && dollar_tag(self.b, i).is_some() => {
                    self.mark(i);
                    let open = dollar_tag(self.b, i).unwrap_or(i + 1);
                    let tag = &self.b[i..open];
                    let close = find(self.b, open, tag).map_or_else(|| self.fail(i, "dollar-quoted string"), Ok)?;
                    self.i = close + tag.len();
                }
                b'(' | b')' => {
                    self.mark(i);
                    self.parens = if c == b'(' { self.parens + 1 } else { self.parens.saturating_sub(1) };
                    self.i += 1;
                }
                b';' if self.parens == 0 && self.begin_depth == 0 => {
                    self.end_statement(i)?;
                    self.i = i + 1;
                    self.seg = self.i;
                    self.read_copy_data()?;
                }
                b'\\' => self.meta(i)?,
                _ if ident_start(c) => self.word(i)?,
                _ => {
                    self.mark(i);
                    self.i += 1;
                }
            }
        }
        self.end_statement(self.b.len())?;
        Ok(self.out)
    }

    fn word(&mut self, i: usize) -> Result<(), SplitError> {
        self.mark(i);
        let mut j = i;
        while j < self.b.len() && ident_cont(self.b[j]) {
            j += 1;
        }
        let word = self.text[i..j].to_ascii_lowercase();
        self.i = j;
        if self.b.get(j) == Some(&b'\'') {
            // E'…' takes backslash escapes; U&'…', B'…', X'…', N'…' do not.
            let escapes = word == "e";
            self.i = scan_single(self.b, j, escapes).map_or_else(|| self.fail(j, "quoted string"), Ok)?;
            return Ok(());
        }
        if self.in_routine() {
            match word.as_str() {
                "begin" | "case" => self.begin_depth += 1,
                "end" => self.begin_depth = self.begin_depth.saturating_sub(1),
                _ => {}
            }
        }
        self.words.push(word);
        Ok(())
    }

    /// Ends the statement whose text runs up to `end` (exclusive), if it has any tokens.
    fn end_statement(&mut self, end: usize) -> Result<(), SplitError> {
        self.buf.push_str(&self.text[self.seg..end]);
        let text = std::mem::take(&mut self.buf).trim().to_string();
        if let Some(first) = self.first.take() {
            self.out.push(Piece::Sql { text, line: self.line(first), copy_data: None });
        }
        self.parens = 0;
        self.begin_depth = 0;
        self.words.clear();
        Ok(())
    }

    /// After a `COPY … FROM STDIN;`, its data: the following lines up to `\.`.
    fn read_copy_data(&mut self) -> Result<(), SplitError> {
        let Some(Piece::Sql { text, copy_data, .. }) = self.out.last_mut() else { return Ok(()) };
        let w = words(text);
        if w.first().map(String::as_str) != Some("copy") || !reads_stdin(&w) || copy_data.is_some() {
            return Ok(());
        }
        let start = line_end(self.b, self.i) + 1;
        let (data, next) = copy_lines(self.text, start.min(self.b.len()));
        if let Some(Piece::Sql { copy_data, .. }) = self.out.last_mut() {
            *copy_data = Some(data);
        }
        self.i = next;
        self.seg = next;
        Ok(())
    }

    fn meta(&mut self, i: usize) -> Result<(), SplitError> {
        let line = self.line(i);
        let name_end = (i + 1..self.b.len())
            .find(|&j| self.b[j].is_ascii_whitespace() || self.b[j] == b'\\' || (j > i + 1 && self.b[j] == b';'))
            .unwrap_or(self.b.len())
            .max((i + 2).min(self.b.len()));
        let name = self.text[i + 1..name_end].to_string();
        self.buf.push_str(&self.text[self.seg..i]);
        if name == ";" {
            self.buf.push(';');
            self.i = name_end;
            self.seg = self.i;
            return Ok(());
        }
        let eol = line_end(self.b, name_end);
        // `\\` ends a meta-command's arguments; what follows is SQL again.
        let args_end = find(&self.b[..eol], name_end, b"\\\\").unwrap_or(eol);
        let args = self.text[name_end..args_end].trim().to_string();
        self.i = if args_end < eol { args_end + 2 } else { eol };
        self.seg = self.i;
        if name == "g" && args.is_empty() {
            self.end_statement(self.seg)?;
            return self.read_copy_data();
        }
        let mut copy_data = None;
        if name == "copy" && reads_stdin(&words(&args)) {
            let (data, next) = copy_lines(self.text, (eol + 1).min(self.b.len()));
            copy_data = Some(data);
            self.i = next;
            self.seg = next;
        }
        self.out.push(Piece::Meta { name, args, line, copy_data });
        Ok(())
    }
}

/// The COPY data lines from `start` up to a line `\.` (or the end): the data
/// and where the script continues.
fn copy_lines(text: &str, start: usize) -> (String, usize) {
    let mut pos = start;
    let mut data = String::new();
    while pos < text.len() {
        let end = text[pos..].find('\n').map_or(text.len(), |p| pos + p);
        let line = &text[pos..end];
        let next = (end + 1).min(text.len());
        if line.trim_end_matches('\r') == "\\." {
            return (data, next);
        }
        data.push_str(line);
        data.push('\n');
        pos = next;
    }
    (data, text.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sql(text: &str) -> Vec<(String, usize)> {
        split(text)
            .unwrap()
            .into_iter()
            .filter_map(|p| match p {
                Piece::Sql { text, line, .. } => Some((text, line)),
                Piece::Meta { .. } => None,
            })
            .collect()
    }

    fn texts(text: &str) -> Vec<String> {
        sql(text).into_iter().map(|(t, _)| t).collect()
    }

    #[test]
    fn semicolons_end_statements_with_their_lines() {
        let got = sql("SELECT 1;\n\nSELECT 2; SELECT\n 3;\n");
        assert_eq!(got, vec![("SELECT 1".into(), 1), ("SELECT 2".into(), 3), ("SELECT\n 3".into(), 3)]);
    }

    #[test]
    fn last_statement_needs_no_semicolon_and_empty_ones_vanish() {
        assert_eq!(texts(";;SELECT 1;  ; -- only a comment\nSELECT 2"), vec!["SELECT 1", "SELECT 2"]);
        assert!(texts("-- nothing\n/* here */\n").is_empty());
    }

    #[test]
    fn single_quotes_with_doubled_quotes() {
        assert_eq!(texts("SELECT 'a;b''c;'; SELECT 2"), vec!["SELECT 'a;b''c;'", "SELECT 2"]);
    }

    #[test]
    fn e_strings_take_backslash_escapes_and_plain_strings_do_not() {
        assert_eq!(texts(r"SELECT E'it\'s;'; SELECT 2"), vec![r"SELECT E'it\'s;'", "SELECT 2"]);
        assert_eq!(texts(r"SELECT e'\\'; SELECT 2"), vec![r"SELECT e'\\'", "SELECT 2"]);
        // Standard strings: a backslash is an ordinary character, the quote ends the literal.
        assert_eq!(texts(r"SELECT 'a\'; SELECT 2"), vec![r"SELECT 'a\'", "SELECT 2"]);
        // A word ending in e before a quote is not an E string... `name'x'` is a typed literal.
        assert_eq!(texts(r"SELECT date'2020-01-01'; SELECT 'x\'"), vec![r"SELECT date'2020-01-01'", r"SELECT 'x\'"]);
    }

    #[test]
    fn u_b_x_strings() {
        assert_eq!(texts(r"SELECT U&'d\0061t;', B'101', X'1F;'; SELECT 2").len(), 2);
    }

    #[test]
    fn double_quoted_identifiers() {
        assert_eq!(
            texts(r#"CREATE TABLE "a;""b" (x int); SELECT 1"#),
            vec![r#"CREATE TABLE "a;""b" (x int)"#, "SELECT 1"]
        );
    }

    #[test]
    fn dollar_quotes_with_and_without_tags() {
        let f = "CREATE FUNCTION f() RETURNS int AS $$ BEGIN RETURN 1; END $$ LANGUAGE plpgsql;\n\
                 DO $body$ BEGIN PERFORM 'x;$$'; END $body$;\nSELECT $1, a$b$c FROM t";
        let got = texts(f);
        assert_eq!(got.len(), 3, "{got:?}");
        assert!(got[1].ends_with("END $body$"));
        assert_eq!(got[2], "SELECT $1, a$b$c FROM t");
    }

    #[test]
    fn comments_including_nested_blocks() {
        let got = sql("/* a; /* nested; */ still; */ SELECT 1; -- x;\nSELECT '--' || 2 -- y;\n;");
        assert_eq!(got.len(), 2);
        assert_eq!(got[0].0, "SELECT 1");
        assert_eq!(got[0].1, 1);
        assert_eq!(got[1].0, "SELECT '--' || 2 -- y;");
        assert_eq!(got[1].1, 2, "the line of the first token, not of the comment before it");
    }

    #[test]
    fn parentheses_hold_semicolons() {
        assert_eq!(texts("CREATE RULE r AS ON INSERT TO t DO (SELECT 1; SELECT 2); SELECT 3").len(), 2);
    }

    #[test]
    fn begin_atomic_bodies() {
        let f = "CREATE OR REPLACE FUNCTION f(x int) RETURNS int LANGUAGE sql BEGIN ATOMIC\n\
                 SELECT CASE WHEN x > 0 THEN 1 ELSE 0 END; SELECT 2;\nEND;\nBEGIN; SELECT 1; COMMIT;";
        let got = texts(f);
        assert_eq!(got.len(), 4, "{got:?}");
        assert!(got[0].ends_with("END"));
        assert_eq!(&got[1..], ["BEGIN", "SELECT 1", "COMMIT"]);
    }

    #[test]
    fn backslash_semicolon_joins_statements() {
        assert_eq!(texts("SELECT 1 \\; SELECT 2;\nSELECT 3;"), vec!["SELECT 1 ; SELECT 2", "SELECT 3"]);
    }

    #[test]
    fn meta_commands_run_to_the_end_of_their_line() {
        let got =
            split("\\set ON_ERROR_STOP on\nSELECT 1;\n\\echo hello; world\n\\i other.sql\nSELECT 2\n\\g\n").unwrap();
        let want = vec![
            Piece::Meta { name: "set".into(), args: "ON_ERROR_STOP on".into(), line: 1, copy_data: None },
            Piece::Sql { text: "SELECT 1".into(), line: 2, copy_data: None },
            Piece::Meta { name: "echo".into(), args: "hello; world".into(), line: 3, copy_data: None },
            Piece::Meta { name: "i".into(), args: "other.sql".into(), line: 4, copy_data: None },
            Piece::Sql { text: "SELECT 2".into(), line: 5, copy_data: None },
        ];
        assert_eq!(got, want);
    }

    #[test]
    fn backslashes_inside_quotes_are_not_meta_commands() {
        assert_eq!(texts("SELECT '\\i x', $$\\c$$, \"\\q\";"), vec!["SELECT '\\i x', $$\\c$$, \"\\q\""]);
    }

    #[test]
    fn copy_from_stdin_takes_the_following_lines() {
        let f = "COPY t (a, b) FROM stdin;\n1\tx;y\n2\t\\N\n\\.\nSELECT 1;\n\\copy t from stdin with csv\n3,z\n\\.\n";
        let got = split(f).unwrap();
        assert_eq!(
            got,
            vec![
                Piece::Sql {
                    text: "COPY t (a, b) FROM stdin".into(),
                    line: 1,
                    copy_data: Some("1\tx;y\n2\t\\N\n".into())
                },
                Piece::Sql { text: "SELECT 1".into(), line: 5, copy_data: None },
                Piece::Meta {
                    name: "copy".into(),
                    args: "t from stdin with csv".into(),
                    line: 6,
                    copy_data: Some("3,z\n".into())
                },
            ]
        );
    }

    #[test]
    fn unterminated_quotes_are_errors_with_their_line() {
        assert_eq!(split("SELECT 1;\nSELECT 'abc;\n").unwrap_err().line, 2);
        assert_eq!(split("SELECT $x$ abc $y$;").unwrap_err().message, "unterminated dollar-quoted string");
        assert!(split("/* /* */").is_err());
        assert!(split("SELECT \"abc").is_err());
    }

    /// Random scripts made of the pieces that matter never make the splitter panic.
    #[test]
    fn never_panics_on_arbitrary_scripts() {
        const PIECES: &[&str] = &[
            "'",
            "\"",
            "$",
            "$a$",
            "--",
            "/*",
            "*/",
            "\\",
            ";",
            "(",
            ")",
            "é",
            "\n",
            "E'",
            "e",
            "begin",
            "atomic",
            "create function f() ",
            "copy t from stdin",
            "\\.",
            " ",
            "x",
            "\\\\",
            "\\copy t from stdin",
            "\\g",
            "\\;",
            "end",
            "ü'",
        ];
        let mut seed: u64 = 0x9e37_79b9_7f4a_7c15;
        for _ in 0..20_000 {
            let mut script = String::new();
            for _ in 0..(seed % 24) {
                seed = seed.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
                script.push_str(PIECES[(seed >> 33) as usize % PIECES.len()]);
            }
            seed = seed.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
            let _ = split(&script);
            let _ = tokens(&script);
        }
    }

    #[test]
    fn tokens_of_a_statement() {
        let t: Vec<Tok> = tokens("ALTER TABLE \"My\"\"T\" ALTER c TYPE int USING c::int -- x\n")
            .into_iter()
            .map(|(t, _)| t)
            .collect();
        assert_eq!(t[2], Tok::Ident("My\"T".into()));
        assert_eq!(t[3], Tok::Word("alter".into()));
        assert_eq!(words("copy x FROM Stdin"), vec!["copy", "x", "from", "stdin"]);
    }
}
