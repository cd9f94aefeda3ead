//! What a failed statement and its error say to look for: the key of a
//! DETAIL, a foreign key's columns and referenced table, a CHECK's expression,
//! the columns and types of an ALTER … TYPE, a partial index's predicate.
//! Pure functions of the text.

use super::*;

/// `Key (a, lower(b))=(…)` of a DETAIL: the key's expressions.
pub(super) fn detail_key(detail: &str) -> Option<Vec<String>> {
    let start = detail.find("Key (")? + 5;
    let end = start + detail[start..].find(")=(")?;
    Some(split_top(&detail[start..end]))
}

/// Splits an expression list at its top-level commas.
pub(super) fn split_top(list: &str) -> Vec<String> {
    let mut out = Vec::new();
    let (mut depth, mut from) = (0usize, 0usize);
    for (t, r) in tokens(list) {
        match t {
            Tok::Punct(b'(') => depth += 1,
            Tok::Punct(b')') => depth = depth.saturating_sub(1),
            Tok::Punct(b',') if depth == 0 => {
                out.push(list[from..r.start].trim().to_string());
                from = r.end;
            }
            _ => {}
        }
    }
    out.push(list[from..].trim().to_string());
    out.retain(|s| !s.is_empty());
    out
}

/// The WHERE of a `CREATE UNIQUE INDEX … WHERE …`.
pub(super) fn index_predicate(sql: &str) -> Option<String> {
    let toks = tokens(sql);
    let words: Vec<&str> =
        toks.iter().filter_map(|(t, _)| if let Tok::Word(w) = t { Some(w.as_str()) } else { None }).collect();
    if words.first() != Some(&"create") || !words.contains(&"index") {
        return None;
    }
    let mut depth = 0usize;
    for (t, r) in &toks {
        match t {
            Tok::Punct(b'(') => depth += 1,
            Tok::Punct(b')') => depth = depth.saturating_sub(1),
            Tok::Word(w) if w == "where" && depth == 0 => return Some(sql[r.end..].trim().to_string()),
            _ => {}
        }
    }
    None
}

/// A foreign key: referencing columns, referenced table and its columns (all quoted).
pub(super) struct ForeignKey {
    pub(super) columns: Vec<String>,
    pub(super) parent: String,
    pub(super) parent_columns: Vec<String>,
}

/// Source text of the tokens in `toks`.
fn text_of(sql: &str, toks: &[(Tok, std::ops::Range<usize>)]) -> String {
    match (toks.first(), toks.last()) {
        (Some(a), Some(b)) => sql[a.1.start..b.1.end].to_string(),
        _ => String::new(),
    }
}

/// The index of the `)` closing the `(` at `open`.
fn closing(toks: &[(Tok, std::ops::Range<usize>)], open: usize) -> Option<usize> {
    if toks.get(open)?.0 != Tok::Punct(b'(') {
        return None;
    }
    let mut depth = 0usize;
    for (i, (t, _)) in toks.iter().enumerate().skip(open) {
        match t {
            Tok::Punct(b'(') => depth += 1,
            Tok::Punct(b')') => {
                depth -= 1;
                if depth == 0 {
                    return Some(i);
                }
            }
            _ => {}
        }
    }
    None
}

fn is_word(t: &Tok, w: &str) -> bool {
    matches!(t, Tok::Word(x) if x == w)
}

/// The name given by `CONSTRAINT name` right before token `at`, if any.
fn named_before(toks: &[(Tok, std::ops::Range<usize>)], at: usize) -> Option<String> {
    if at < 2 || !is_word(&toks[at - 2].0, "constraint") {
        return None;
    }
    match &toks[at - 1].0 {
        Tok::Word(w) => Some(w.clone()),
        Tok::Ident(i) => Some(i.clone()),
        _ => None,
    }
}

/// A parenthesised identifier list at `open`, quoted: the list and the index after it.
fn ident_list(sql: &str, toks: &[(Tok, std::ops::Range<usize>)], open: usize) -> Option<(Vec<String>, usize)> {
    let close = closing(toks, open)?;
    let inner = text_of(sql, &toks[open + 1..close]);
    let cols = split_top(&inner).iter().map(|c| quote_name(c)).collect();
    Some((cols, close + 1))
}

/// An identifier as written (`Email`, `"Email"`) in quoted form: unquoted names fold to lower case.
fn quote_name(s: &str) -> String {
    let s = s.trim();
    if s.starts_with('"') {
        s.to_string()
    } else {
        qi(&s.to_lowercase())
    }
}

/// `FOREIGN KEY (cols) REFERENCES parent [(cols)]` in the failed statement.
pub(super) fn statement_foreign_key(sql: &str, constraint: &str) -> Option<ForeignKey> {
    let toks = tokens(sql);
    let mut found = Vec::new();
    for i in 0..toks.len().saturating_sub(2) {
        if !(is_word(&toks[i].0, "foreign") && is_word(&toks[i + 1].0, "key")) {
            continue;
        }
        let (columns, next) = ident_list(sql, &toks, i + 2)?;
        if !toks.get(next).is_some_and(|t| is_word(&t.0, "references")) {
            continue;
        }
        let mut j = next + 1;
        while j < toks.len() && matches!(toks[j].0, Tok::Word(_) | Tok::Ident(_) | Tok::Punct(b'.')) {
            if let Tok::Word(w) = &toks[j].0 {
                if ["match", "on", "deferrable", "not", "initially"].contains(&w.as_str()) {
                    break;
                }
            }
            j += 1;
        }
        let parent = text_of(sql, &toks[next + 1..j]);
        let parent_columns = if toks.get(j).is_some_and(|t| t.0 == Tok::Punct(b'(')) {
            ident_list(sql, &toks, j)?.0
        } else {
            Vec::new()
        };
        let named = named_before(&toks, i).is_some_and(|n| n == constraint);
        found.push((named, ForeignKey { columns, parent, parent_columns }));
    }
    let pick = found.iter().position(|(named, _)| *named).unwrap_or(0);
    (!found.is_empty()).then(|| found.swap_remove(pick).1)
}

/// `CHECK (expr)` in the failed statement: the one named `constraint`, else the first.
pub(super) fn statement_check(sql: &str, constraint: &str) -> Option<String> {
    let toks = tokens(sql);
    let mut found = Vec::new();
    for i in 0..toks.len().saturating_sub(1) {
        if is_word(&toks[i].0, "check") && toks[i + 1].0 == Tok::Punct(b'(') {
            let close = closing(&toks, i + 1)?;
            let expr = text_of(sql, &toks[i + 2..close]);
            found.push((named_before(&toks, i).is_some_and(|n| n == constraint), expr));
        }
    }
    let pick = found.iter().position(|(named, _)| *named).unwrap_or(0);
    (!found.is_empty()).then(|| found.swap_remove(pick).1)
}

/// The table a statement works on: `ALTER TABLE [IF EXISTS] [ONLY] name …`
/// or `CREATE [UNIQUE] INDEX [CONCURRENTLY] [[IF NOT EXISTS] name] ON [ONLY] name …`, as written.
pub(super) fn statement_table(sql: &str) -> Option<String> {
    let toks = tokens(sql);
    let mut i = if toks.len() > 2 && is_word(&toks[0].0, "alter") && is_word(&toks[1].0, "table") {
        2
    } else if toks.first().is_some_and(|t| is_word(&t.0, "create")) {
        let on = toks.iter().position(|t| is_word(&t.0, "on"))?;
        if !toks[..on].iter().any(|t| is_word(&t.0, "index")) {
            return None;
        }
        on + 1
    } else {
        return None;
    };
    while toks.get(i).is_some_and(|t| is_word(&t.0, "if") || is_word(&t.0, "exists") || is_word(&t.0, "only")) {
        i += 1;
    }
    let start = i;
    toks.get(start)?;
    while toks.get(i + 1).is_some_and(|t| t.0 == Tok::Punct(b'.')) && toks.get(i + 2).is_some() {
        i += 2;
    }
    Some(text_of(sql, &toks[start..=i]))
}

/// One `ALTER [COLUMN] col [SET DATA] TYPE type [COLLATE …] [USING expr]` clause.
#[derive(Debug, PartialEq, Eq)]
pub(super) struct TypeChange {
    pub(super) column: String,
    pub(super) new_type: String,
    pub(super) using: Option<String>,
}

/// `ALTER TABLE [IF EXISTS] [ONLY] name` and its type-changing clauses.
pub(super) fn statement_type_changes(sql: &str) -> Option<(String, Vec<TypeChange>)> {
    let toks = tokens(sql);
    if !(toks.len() > 3 && is_word(&toks[0].0, "alter") && is_word(&toks[1].0, "table")) {
        return None;
    }
    let mut i = 2;
    while toks.get(i).is_some_and(|t| is_word(&t.0, "if") || is_word(&t.0, "exists") || is_word(&t.0, "only")) {
        i += 1;
    }
    let start = i;
    while toks.get(i + 1).is_some_and(|t| t.0 == Tok::Punct(b'.')) {
        i += 2;
    }
    let table = text_of(sql, &toks[start..=i.min(toks.len() - 1)]);
    let rest_start = toks.get(i + 1)?.1.start;
    let changes = split_top(&sql[rest_start..]).iter().filter_map(|c| type_change(c)).collect::<Vec<_>>();
    (!changes.is_empty()).then_some((table, changes))
}

fn type_change(clause: &str) -> Option<TypeChange> {
    let toks = tokens(clause);
    let mut i = 0;
    let next_is = |i: usize, w: &str| toks.get(i).is_some_and(|t| is_word(&t.0, w));
    if !next_is(i, "alter") {
        return None;
    }
    i += 1;
    if next_is(i, "column") {
        i += 1;
    }
    toks.get(i)?;
    let column = quote_name(&text_of(clause, &toks[i..=i]));
    i += 1;
    if next_is(i, "set") && next_is(i + 1, "data") {
        i += 2;
    }
    if !next_is(i, "type") {
        return None;
    }
    let type_start = i + 1;
    let mut j = type_start;
    let mut depth = 0usize;
    while j < toks.len() {
        match &toks[j].0 {
            Tok::Punct(b'(') => depth += 1,
            Tok::Punct(b')') => depth = depth.saturating_sub(1),
            Tok::Word(w) if depth == 0 && (w == "using" || w == "collate") => break,
            _ => {}
        }
        j += 1;
    }
    let new_type = text_of(clause, &toks[type_start..j]);
    let using =
        (j..toks.len()).find(|&k| is_word(&toks[k].0, "using")).map(|k| clause[toks[k].1.end..].trim().to_string());
    Some(TypeChange { column, new_type, using })
}

/// The length limit of a `varchar(n)` or `char(n)` type.
pub(super) fn char_length(new_type: &str) -> Option<u64> {
    let t = new_type.to_ascii_lowercase();
    let (name, rest) = t.split_once('(')?;
    let name = name.split_whitespace().collect::<Vec<_>>().join(" ");
    if !["varchar", "character varying", "char", "character", "bpchar"].contains(&name.as_str()) {
        return None;
    }
    rest.trim().strip_suffix(')')?.trim().parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Random statements made of the pieces the parsers look for never make them panic.
    #[test]
    fn parsers_never_panic() {
        const PIECES: &[&str] = &[
            "alter ",
            "table ",
            "column ",
            "type ",
            "using ",
            "set data ",
            "foreign key ",
            "references ",
            "check ",
            "constraint ",
            "(",
            ")",
            ",",
            "\"",
            "'",
            "é",
            "x ",
            ".",
            "where ",
            "create unique index ",
            "Key (",
            ")=(",
        ];
        let mut seed: u64 = 42;
        for _ in 0..20_000 {
            let mut sql = String::new();
            for _ in 0..(seed % 16) {
                seed = seed.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
                sql.push_str(PIECES[(seed >> 33) as usize % PIECES.len()]);
            }
            seed = seed.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
            let _ = (statement_type_changes(&sql), statement_foreign_key(&sql, "x"), statement_check(&sql, "x"));
            let _ = (index_predicate(&sql), detail_key(&sql), char_length(&sql));
        }
    }

    #[test]
    fn tables_of_statements() {
        assert_eq!(statement_table("ALTER TABLE IF EXISTS ONLY s.\"T\" ADD CHECK (a > 0)").as_deref(), Some("s.\"T\""));
        assert_eq!(statement_table("create unique index concurrently i on only t (a)").as_deref(), Some("t"));
        assert_eq!(statement_table("CREATE TABLE t (a int)"), None);
        assert_eq!(statement_table("ALTER TABLE"), None);
    }

    #[test]
    fn character_limits() {
        assert_eq!(char_length("varchar(5)"), Some(5));
        assert_eq!(char_length("character  varying ( 12 )"), Some(12));
        assert_eq!(char_length("char(3)"), Some(3));
        assert_eq!(char_length("numeric(10, 2)"), None);
        assert_eq!(char_length("text"), None);
    }

    #[test]
    fn key_of_a_detail() {
        assert_eq!(detail_key("Key (email)=(a@x) is duplicated."), Some(vec!["email".to_string()]));
        assert_eq!(
            detail_key("Key (lower(email), tenant)=(a, 1) is duplicated."),
            Some(vec!["lower(email)".to_string(), "tenant".to_string()])
        );
    }

    #[test]
    fn partial_index_predicates() {
        assert_eq!(index_predicate("CREATE UNIQUE INDEX i ON t (a) WHERE (b > 0)"), Some("(b > 0)".into()));
        assert_eq!(index_predicate("CREATE UNIQUE INDEX i ON t (a)"), None);
    }

    #[test]
    fn foreign_keys_in_statements() {
        let fk = statement_foreign_key(
            "ALTER TABLE orders ADD CONSTRAINT a CHECK (x > 0), ADD CONSTRAINT orders_user_fk FOREIGN KEY (user_id, \"Tenant\") REFERENCES app.users (id, tenant) ON DELETE CASCADE",
            "orders_user_fk",
        )
        .unwrap();
        assert_eq!(fk.columns, ["\"user_id\"", "\"Tenant\""]);
        assert_eq!(fk.parent, "app.users");
        assert_eq!(fk.parent_columns, ["\"id\"", "\"tenant\""]);
        let fk = statement_foreign_key("ALTER TABLE o ADD FOREIGN KEY (u) REFERENCES users", "o_u_fkey").unwrap();
        assert_eq!((fk.parent.as_str(), fk.parent_columns.len()), ("users", 0));
    }

    #[test]
    fn checks_in_statements() {
        let sql = "ALTER TABLE t ADD CONSTRAINT a CHECK (x > 0), ADD CONSTRAINT b CHECK (length(y) < 5)";
        assert_eq!(statement_check(sql, "b").as_deref(), Some("length(y) < 5"));
        assert_eq!(statement_check(sql, "zzz").as_deref(), Some("x > 0"));
    }

    #[test]
    fn type_changes_in_statements() {
        let (table, changes) = statement_type_changes(
            "ALTER TABLE ONLY public.t ALTER COLUMN a TYPE integer USING trim(a)::integer, ALTER b SET DATA TYPE numeric(10, 2), ADD c int",
        )
        .unwrap();
        assert_eq!(table, "public.t");
        assert_eq!(
            changes,
            vec![
                TypeChange {
                    column: "\"a\"".into(),
                    new_type: "integer".into(),
                    using: Some("trim(a)::integer".into())
                },
                TypeChange { column: "\"b\"".into(), new_type: "numeric(10, 2)".into(), using: None },
            ]
        );
        assert!(statement_type_changes("ALTER TABLE t ADD c int").is_none());
        assert!(statement_type_changes("ALTER TABLE t ALTER").is_none());
        assert!(statement_foreign_key("ALTER TABLE t ADD FOREIGN KEY ) REFERENCES", "x").is_none());
    }
}
