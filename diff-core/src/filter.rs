//! Table and column selection by glob (`*`, `?`, `[abc]`), as users type them:
//! `orders`, `public.orders`, `billing.*`, `*.updated_at`.

/// Glob match over characters.
pub fn glob_match(pattern: &str, text: &str) -> bool {
    let p: Vec<char> = pattern.chars().collect();
    let t: Vec<char> = text.chars().collect();
    matches_from(&p, &t)
}

fn matches_from(p: &[char], t: &[char]) -> bool {
    let (mut pi, mut ti) = (0, 0);
    let (mut star, mut mark) = (None, 0);
    while ti < t.len() {
        if pi < p.len() {
            if p[pi] == '*' {
                star = Some(pi);
                mark = ti;
                pi += 1;
                continue;
            }
            if let Some(len) = single(&p[pi..], t[ti]) {
                pi += len;
                ti += 1;
                continue;
            }
        }
        match star {
            Some(s) => {
                pi = s + 1;
                mark += 1;
                ti = mark;
            }
            None => return false,
        }
    }
    p[pi..].iter().all(|&c| c == '*')
}

/// Matches one pattern element against `c`; returns its length in the pattern.
fn single(p: &[char], c: char) -> Option<usize> {
    match p[0] {
        '?' => Some(1),
        '[' => {
            let end = p.iter().position(|&x| x == ']').filter(|&e| e > 1)?;
            let set = &p[1..end];
            let (negate, set) = match set.first() {
                Some('!') | Some('^') => (true, &set[1..]),
                _ => (false, set),
            };
            let mut hit = false;
            let mut i = 0;
            while i < set.len() {
                if i + 2 < set.len() && set[i + 1] == '-' {
                    hit |= set[i] <= c && c <= set[i + 2];
                    i += 3;
                } else {
                    hit |= set[i] == c;
                    i += 1;
                }
            }
            (hit != negate).then_some(end + 1)
        }
        x => (x == c).then_some(1),
    }
}

/// Whether a `schema.table` pattern (or a bare `table` pattern) selects the table.
pub fn table_matches(pattern: &str, schema: &str, table: &str) -> bool {
    match pattern.split_once('.') {
        Some((s, t)) => glob_match(s, schema) && glob_match(t, table),
        None => glob_match(pattern, table),
    }
}

/// Whether a `table.column` / `schema.table.column` / `column` pattern selects the column.
pub fn column_matches(pattern: &str, schema: &str, table: &str, column: &str) -> bool {
    let parts: Vec<&str> = pattern.splitn(3, '.').collect();
    match parts.as_slice() {
        [c] => glob_match(c, column),
        [t, c] => glob_match(t, table) && glob_match(c, column),
        [s, t, c] => glob_match(s, schema) && glob_match(t, table) && glob_match(c, column),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globs() {
        assert!(glob_match("billing*", "billing_x"));
        assert!(glob_match("*", ""));
        assert!(glob_match("a?c", "abc"));
        assert!(!glob_match("a?c", "ac"));
        assert!(glob_match("[ab]x", "bx"));
        assert!(!glob_match("[!ab]x", "bx"));
        assert!(glob_match("*_[0-9]", "part_7"));
        assert!(!glob_match("orders", "orders2"));
    }

    #[test]
    fn tables_and_columns() {
        assert!(table_matches("billing.*", "billing", "invoices"));
        assert!(!table_matches("billing.*", "public", "invoices"));
        assert!(table_matches("orders", "any", "orders"));
        assert!(column_matches("*.updated_at", "s", "t", "updated_at"));
        assert!(column_matches("public.t.c", "public", "t", "c"));
        assert!(!column_matches("t.c", "s", "u", "c"));
    }
}
