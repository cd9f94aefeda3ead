//! Comparing what two servers print, when they may run different major versions.
//!
//! A schema restored on another major version means the same, but the server
//! prints some of it differently, and newer versions know privileges older ones
//! do not. The rules, applied per attribute ([`same_attr`]):
//!
//! - **View and materialized view definitions** are compared as printed when
//!   both sides run the same major version. Across major versions they are
//!   compared in a normalised form ([`normalize_view`]), together with what the
//!   view references (its tables and columns, from `pg_depend`):
//!   - whitespace and line breaks do not count (tokens are compared);
//!   - column references are compared without their range-variable qualifier:
//!     PostgreSQL 15 and older print `customers.id` in a one-table view where 16
//!     and newer print `id` (a qualifier is kept only where it is a schema that
//!     holds an object of that name: `shop.customers`, `pg_catalog.…`);
//!   - PostgreSQL 14 and newer print the SQL-standard forms `SUBSTRING(a FROM b
//!     FOR c)`, `POSITION((a) IN (b))`, `TRIM(BOTH a FROM b)`, `OVERLAY(a
//!     PLACING b FROM c FOR d)` and `(a AT TIME ZONE b)` where 13 prints the
//!     function calls `"substring"(a, b, c)`, `"position"(b, a)`, `btrim(b, a)`,
//!     `"overlay"(a, b, c, d)` and `timezone(b, a)`: both read as the call;
//!   - parentheses around a whole function argument do not count.
//!
//!   `EXTRACT(…)` (numeric, 14+) and `date_part(…)` (double precision) are
//!   different functions and stay different.
//! - **Privileges** of tables, views and materialized views: MAINTAIN (`m`,
//!   PostgreSQL 17+) is left out of both sides when either runs an older
//!   version, which has no such privilege.
//! - **NOT NULL constraint names** (`not_null_name`, catalogued from
//!   PostgreSQL 18 on) are compared only when both sides are 18 or newer.
//! - **Sequence state** (`last_value`, `is_called`) is compared only when both
//!   sides could read it (SELECT on the sequence).
//!
//! Everything else, such as an extension's version, is compared as it is.

use std::collections::{BTreeSet, HashSet};

use super::read::{ObjKind, Object};

/// Attributes that only some readers can see: compared when both sides have them.
const READABLE_STATE: &[&str] = &["last_value", "is_called"];

/// The names one side holds, to tell a schema qualifier from a range variable.
#[derive(Debug, Default)]
pub struct Names {
    schemas: HashSet<String>,
    objects: HashSet<(String, String)>,
}

impl Names {
    /// Collects schema names and (schema, object name) pairs of one side.
    pub fn of(objects: &[Object]) -> Names {
        let mut n = Names::default();
        for o in objects {
            match o.kind {
                ObjKind::Schema => {
                    n.schemas.insert(o.name.clone());
                }
                ObjKind::Table
                | ObjKind::View
                | ObjKind::MaterializedView
                | ObjKind::Sequence
                | ObjKind::Enum
                | ObjKind::Domain
                | ObjKind::CompositeType
                | ObjKind::Function
                | ObjKind::Procedure => {
                    if let Some(schema) = &o.parent {
                        let bare = o.leaf.split('(').next().unwrap_or(&o.leaf);
                        n.objects.insert((schema.clone(), bare.to_string()));
                    }
                }
                _ => {}
            }
        }
        n
    }

    fn is_schema_qualifier(&self, qualifier: &str, name: &str, call: bool) -> bool {
        if matches!(qualifier, "pg_catalog" | "information_schema") {
            return true;
        }
        self.schemas.contains(qualifier) && (call || self.objects.contains(&(qualifier.to_string(), name.to_string())))
    }
}

/// The major version of a `server_version_num` (13 for 130012).
pub fn major(version_num: i32) -> i32 {
    version_num / 10000
}

/// Whether attribute `key` means the same on both paired objects (`p` parent,
/// `c` child); `names` are each side's [`Names`].
pub fn same_attr(key: &str, p: &Object, c: &Object, names: (&Names, &Names)) -> bool {
    let (a, b) = (p.attrs.get(key), c.attrs.get(key));
    if a == b {
        return true;
    }
    let (pv, cv) = (major(p.server_version), major(c.server_version));
    if READABLE_STATE.contains(&key) {
        return a.is_none() || b.is_none();
    }
    match key {
        "not_null_name" => pv.min(cv) < 18,
        "privileges"
            if pv.min(cv) < 17 && matches!(p.kind, ObjKind::Table | ObjKind::View | ObjKind::MaterializedView) =>
        {
            let strip = |v: Option<&String>| v.map(|v| without_privilege(v, 'm')).filter(|v| v != "{}");
            strip(a) == strip(b)
        }
        "definition" if pv != cv && matches!(p.kind, ObjKind::View | ObjKind::MaterializedView) => {
            let (Some(a), Some(b)) = (a, b) else { return false };
            let refs = |o: &Object| o.depends_on.iter().cloned().collect::<BTreeSet<String>>();
            normalize_view(a, names.0) == normalize_view(b, names.1) && refs(p) == refs(c)
        }
        _ => false,
    }
}

/// An ACL (`{role=arwdDxtm/grantor,…}`) without privilege `letter` (and its
/// grant option); entries left with no privilege are dropped.
pub fn without_privilege(acl: &str, letter: char) -> String {
    let inner = acl.trim().trim_start_matches('{').trim_end_matches('}');
    let mut items = vec![];
    for item in split_outside_quotes(inner, ',') {
        let Some(eq) = find_outside_quotes(&item, '=') else {
            items.push(item);
            continue;
        };
        let (grantee, rest) = (&item[..eq], &item[eq + 1..]);
        let (privs, grantor) = match find_outside_quotes(rest, '/') {
            Some(slash) => (&rest[..slash], &rest[slash..]),
            None => (rest, ""),
        };
        let mut kept = String::new();
        let mut chars = privs.chars().peekable();
        while let Some(ch) = chars.next() {
            let option = chars.next_if_eq(&'*').is_some();
            if ch != letter {
                kept.push(ch);
                if option {
                    kept.push('*');
                }
            }
        }
        if !kept.is_empty() {
            items.push(format!("{grantee}={kept}{grantor}"));
        }
    }
    format!("{{{}}}", items.join(","))
}

fn split_outside_quotes(s: &str, sep: char) -> Vec<String> {
    let (mut out, mut cur, mut quoted) = (vec![], String::new(), false);
    for ch in s.chars() {
        if ch == '"' {
            quoted = !quoted;
        }
        if ch == sep && !quoted {
            out.push(std::mem::take(&mut cur));
        } else {
            cur.push(ch);
        }
    }
    if !cur.is_empty() || !out.is_empty() {
        out.push(cur);
    }
    out
}

fn find_outside_quotes(s: &str, target: char) -> Option<usize> {
    let mut quoted = false;
    for (i, ch) in s.char_indices() {
        if ch == '"' {
            quoted = !quoted;
        } else if ch == target && !quoted {
            return Some(i);
        }
    }
    None
}

/// One lexical token of SQL text as PostgreSQL prints it.
#[derive(Debug, Clone)]
pub enum Tok {
    /// An identifier or keyword: unquoted ones lower-cased; `quoted` only
    /// records how it was written (`"id"` and `id` are the same name).
    Name(String, bool),
    /// A string literal, as written.
    Str(String),
    /// A number, as written.
    Num(String),
    /// An operator (`::`, `+`, `>=`, `*`, …).
    Op(String),
    /// Punctuation: `( ) [ ] , ; .`
    Punct(char),
}

impl PartialEq for Tok {
    fn eq(&self, other: &Tok) -> bool {
        match (self, other) {
            (Tok::Name(a, _), Tok::Name(b, _)) => a == b,
            (Tok::Str(a), Tok::Str(b)) | (Tok::Num(a), Tok::Num(b)) | (Tok::Op(a), Tok::Op(b)) => a == b,
            (Tok::Punct(a), Tok::Punct(b)) => a == b,
            _ => false,
        }
    }
}

impl Tok {
    fn is_keyword(&self, word: &str) -> bool {
        matches!(self, Tok::Name(n, false) if n == word)
    }
}

const OP_CHARS: &str = "+-*/<>=~!@#%^&|`?:";

/// Splits SQL text into tokens; whitespace separates tokens and is dropped.
pub fn tokenize(sql: &str) -> Vec<Tok> {
    let chars: Vec<char> = sql.chars().collect();
    let mut out = vec![];
    let mut i = 0;
    while i < chars.len() {
        let ch = chars[i];
        if ch.is_whitespace() {
            i += 1;
        } else if ch == '\'' || ch == '"' {
            let mut text = String::new();
            i += 1;
            while i < chars.len() {
                if chars[i] == ch {
                    if chars.get(i + 1) == Some(&ch) {
                        text.push(ch);
                        i += 2;
                        continue;
                    }
                    i += 1;
                    break;
                }
                text.push(chars[i]);
                i += 1;
            }
            out.push(if ch == '"' { Tok::Name(text, true) } else { Tok::Str(text) });
        } else if ch.is_alphabetic() || ch == '_' {
            let start = i;
            while i < chars.len() && (chars[i].is_alphanumeric() || chars[i] == '_' || chars[i] == '$') {
                i += 1;
            }
            out.push(Tok::Name(chars[start..i].iter().collect::<String>().to_lowercase(), false));
        } else if ch.is_ascii_digit() {
            let start = i;
            while i < chars.len() && (chars[i].is_ascii_alphanumeric() || chars[i] == '.') {
                i += 1;
            }
            out.push(Tok::Num(chars[start..i].iter().collect()));
        } else if "()[],;.".contains(ch) {
            out.push(Tok::Punct(ch));
            i += 1;
        } else if OP_CHARS.contains(ch) {
            let start = i;
            while i < chars.len() && OP_CHARS.contains(chars[i]) {
                i += 1;
            }
            out.push(Tok::Op(chars[start..i].iter().collect()));
        } else {
            out.push(Tok::Op(ch.to_string()));
            i += 1;
        }
    }
    out
}

/// A token, or a parenthesised (`(`) or bracketed (`[`) group of them.
#[derive(Debug, Clone, PartialEq)]
enum Node {
    Tok(Tok),
    Group(char, Vec<Node>),
}

fn tree(toks: &[Tok]) -> Vec<Node> {
    fn build(toks: &[Tok], i: &mut usize, close: Option<char>) -> Vec<Node> {
        let mut out = vec![];
        while *i < toks.len() {
            let t = &toks[*i];
            *i += 1;
            match t {
                Tok::Punct(open @ ('(' | '[')) => {
                    let closing = if *open == '(' { ')' } else { ']' };
                    let inner = build(toks, i, Some(closing));
                    out.push(Node::Group(*open, inner));
                }
                Tok::Punct(c) if Some(*c) == close => return out,
                t => out.push(Node::Tok(t.clone())),
            }
        }
        out
    }
    let mut i = 0;
    build(toks, &mut i, None)
}

fn flatten(nodes: &[Node], out: &mut Vec<Tok>) {
    for n in nodes {
        match n {
            Node::Tok(t) => out.push(t.clone()),
            Node::Group(open, inner) => {
                out.push(Tok::Punct(*open));
                flatten(inner, out);
                out.push(Tok::Punct(if *open == '(' { ')' } else { ']' }));
            }
        }
    }
}

/// A view definition in the form compared across major versions (see the module docs).
pub fn normalize_view(definition: &str, names: &Names) -> Vec<Tok> {
    let toks = strip_range_qualifiers(tokenize(definition), names);
    let mut nodes = tree(&toks);
    rewrite(&mut nodes);
    let mut out = vec![];
    flatten(&nodes, &mut out);
    out
}

/// `alias.column` → `column`, keeping `schema.object` qualifiers.
fn strip_range_qualifiers(toks: Vec<Tok>, names: &Names) -> Vec<Tok> {
    let mut out: Vec<Tok> = Vec::with_capacity(toks.len());
    let mut i = 0;
    while i < toks.len() {
        let qualified = matches!(&toks[i], Tok::Name(..))
            && toks.get(i + 1) == Some(&Tok::Punct('.'))
            && matches!(toks.get(i + 2), Some(Tok::Name(..)) | Some(Tok::Op(_)))
            && out.last() != Some(&Tok::Punct('.'));
        if qualified {
            let Tok::Name(q, _) = &toks[i] else { unreachable!() };
            let (name, call) = match &toks[i + 2] {
                Tok::Name(n, _) => (n.as_str(), toks.get(i + 3) == Some(&Tok::Punct('('))),
                _ => ("", false),
            };
            let star = matches!(&toks[i + 2], Tok::Op(o) if o == "*");
            let column = matches!(&toks[i + 2], Tok::Name(..)) && !names.is_schema_qualifier(q, name, call);
            if star || column {
                i += 2;
                continue;
            }
        }
        out.push(toks[i].clone());
        i += 1;
    }
    out
}

/// Splits a group's nodes at top-level keywords (`from`, `for`, …) it holds.
fn split_at_keywords<'a>(nodes: &'a [Node], words: &[&str]) -> Vec<(Option<String>, &'a [Node])> {
    let mut parts = vec![];
    let (mut start, mut word) = (0, None);
    for (i, n) in nodes.iter().enumerate() {
        if let Node::Tok(t @ Tok::Name(w, false)) = n {
            if words.iter().any(|k| t.is_keyword(k)) {
                parts.push((word.take(), &nodes[start..i]));
                word = Some(w.clone());
                start = i + 1;
            }
        }
    }
    parts.push((word, &nodes[start..]));
    parts
}

fn join_args(args: &[&[Node]]) -> Vec<Node> {
    let mut out = vec![];
    for (i, a) in args.iter().enumerate() {
        if i > 0 {
            out.push(Node::Tok(Tok::Punct(',')));
        }
        out.extend(a.iter().cloned());
    }
    out
}

fn name(n: &str) -> Node {
    Node::Tok(Tok::Name(n.to_string(), false))
}

/// Rewrites SQL-standard syntax into the function calls it stands for, and
/// drops parentheses around whole function arguments; innermost first.
fn rewrite(nodes: &mut Vec<Node>) {
    for n in nodes.iter_mut() {
        if let Node::Group(_, inner) = n {
            rewrite(inner);
        }
    }
    // (a AT TIME ZONE b) → timezone(b, a); (a AT LOCAL) → timezone(a).
    let mut i = 0;
    while i < nodes.len() {
        if let Node::Group('(', inner) = &nodes[i] {
            let word = |k: usize, w: &str| matches!(inner.get(k), Some(Node::Tok(t)) if t.is_keyword(w));
            let args = (1..inner.len()).find_map(|at| {
                if !word(at, "at") {
                    None
                } else if word(at + 1, "time") && word(at + 2, "zone") && at + 3 < inner.len() {
                    Some(join_args(&[&inner[at + 3..], &inner[..at]]))
                } else if word(at + 1, "local") && at + 2 == inner.len() {
                    Some(inner[..at].to_vec())
                } else {
                    None
                }
            });
            if let Some(args) = args {
                nodes.splice(i..=i, [name("timezone"), Node::Group('(', args)]);
                i += 2;
                continue;
            }
        }
        i += 1;
    }
    for i in 0..nodes.len() {
        let Some(Node::Tok(Tok::Name(f, _))) = nodes.get(i) else { continue };
        let f = f.clone();
        let Some(Node::Group('(', inner)) = nodes.get_mut(i + 1) else { continue };
        let mut renamed: Option<&str> = None;
        match f.as_str() {
            "substring" => {
                let parts = split_at_keywords(inner, &["from", "for", "similar", "escape"]);
                if parts.len() > 1 {
                    *inner = join_args(&parts.iter().map(|p| p.1).collect::<Vec<_>>());
                }
            }
            "overlay" => {
                let parts = split_at_keywords(inner, &["placing", "from", "for"]);
                if parts.len() > 1 {
                    *inner = join_args(&parts.iter().map(|p| p.1).collect::<Vec<_>>());
                }
            }
            "position" => {
                let parts = split_at_keywords(inner, &["in"]);
                if let [(_, a), (_, b)] = parts[..] {
                    *inner = join_args(&[b, a]);
                }
            }
            "trim" => {
                let parts = split_at_keywords(inner, &["from"]);
                if let [(_, head), (_, source)] = parts[..] {
                    let (func, chars) = match head.first() {
                        Some(Node::Tok(t)) if t.is_keyword("leading") => ("ltrim", &head[1..]),
                        Some(Node::Tok(t)) if t.is_keyword("trailing") => ("rtrim", &head[1..]),
                        Some(Node::Tok(t)) if t.is_keyword("both") => ("btrim", &head[1..]),
                        _ => ("btrim", head),
                    };
                    *inner = if chars.is_empty() { source.to_vec() } else { join_args(&[source, chars]) };
                    renamed = Some(func);
                }
            }
            _ => {}
        }
        unwrap_args(inner);
        if let Some(func) = renamed {
            nodes[i] = name(func);
        }
    }
}

/// `f((a), (b + 1))` → `f(a, b + 1)`: parentheses around a whole argument.
fn unwrap_args(args: &mut Vec<Node>) {
    let mut out = vec![];
    for (i, arg) in args.split(|n| *n == Node::Tok(Tok::Punct(','))).enumerate() {
        if i > 0 {
            out.push(Node::Tok(Tok::Punct(',')));
        }
        let mut arg: &[Node] = arg;
        while let [Node::Group('(', inner)] = arg {
            if inner.is_empty() || inner.contains(&Node::Tok(Tok::Punct(','))) {
                break;
            }
            arg = inner;
        }
        out.extend(arg.iter().cloned());
    }
    *args = out;
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names() -> Names {
        let mut n = Names::default();
        n.schemas.insert("shop".into());
        n.objects.insert(("shop".into(), "customers".into()));
        n.objects.insert(("shop".into(), "mood".into()));
        n
    }

    #[test]
    fn qualifiers_of_one_table_views() {
        // As PostgreSQL 15 and 18 print the same view.
        let pg15 = " SELECT customers.id,\n    customers.email\n   FROM shop.customers\n  WHERE (customers.mood = 'happy'::shop.mood);";
        let pg18 = " SELECT id,\n    email\n   FROM shop.customers\n  WHERE (mood = 'happy'::shop.mood);";
        assert_eq!(normalize_view(pg15, &names()), normalize_view(pg18, &names()));
        let other = " SELECT id,\n    email\n   FROM shop.customers\n  WHERE (mood = 'sad'::shop.mood);";
        assert_ne!(normalize_view(pg15, &names()), normalize_view(other, &names()));
        // A schema qualifier stays: another schema's table is another view.
        assert_ne!(
            normalize_view("SELECT id FROM shop.customers", &names()),
            normalize_view("SELECT id FROM customers", &names())
        );
    }

    #[test]
    fn sql_standard_syntax_reads_as_the_call() {
        // PostgreSQL 13 and 14 printing the same expressions.
        let pg13 = r#"SELECT "substring"(o.tags[1], 2, 3) AS t, btrim(o.tags[2], 'x'::text) AS tr,
            "position"(COALESCE(o.tags[1], ''::text), 'a'::text) AS p, timezone('UTC'::text, c.created) AS utc,
            ltrim(x) AS l, "overlay"(a, 'b'::text, 1, 2) AS ov"#;
        let pg14 = r#"SELECT SUBSTRING(o.tags[1] FROM 2 FOR 3) AS t, TRIM(BOTH 'x'::text FROM o.tags[2]) AS tr,
            POSITION(('a'::text) IN (COALESCE(o.tags[1], ''::text))) AS p, (c.created AT TIME ZONE 'UTC'::text) AS utc,
            TRIM(LEADING FROM x) AS l, OVERLAY(a PLACING 'b'::text FROM 1 FOR 2) AS ov"#;
        assert_eq!(normalize_view(pg13, &names()), normalize_view(pg14, &names()));
        assert_ne!(
            normalize_view("SELECT date_part('year'::text, at) AS y", &names()),
            normalize_view("SELECT EXTRACT(year FROM at) AS y", &names())
        );
    }

    #[test]
    fn maintain_is_left_out() {
        assert_eq!(
            without_privilege("{postgres=arwdDxtm/postgres,\"a=b\"=m*/postgres,r=rm/postgres}", 'm'),
            "{postgres=arwdDxt/postgres,r=r/postgres}"
        );
        assert_eq!(without_privilege("{postgres=arwdDxt/postgres}", 'm'), "{postgres=arwdDxt/postgres}");
    }
}
