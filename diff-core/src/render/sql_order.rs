//! Statement order for the SQL patch: tables by their foreign keys (parents
//! before the tables that reference them), and the rows of a table that
//! references itself, so that every statement leaves each non-deferrable
//! foreign key satisfied.

use std::collections::HashMap;

use crate::catalog::ForeignKey;

/// Tables as strongly connected components of the "references" graph, parents
/// first: a component comes after every component it references. Edges are
/// `(from, to)`: table `from` has a foreign key to table `to` (self-references
/// left out). Tables inside a component keep their index order.
pub(crate) fn components(n: usize, edges: &[(usize, usize)]) -> Vec<Vec<usize>> {
    let mut next = vec![vec![]; n];
    for &(a, b) in edges {
        if a != b {
            next[a].push(b);
        }
    }
    let mut t = Tarjan { next, index: vec![None; n], low: vec![0; n], on_stack: vec![false; n], ..Tarjan::default() };
    for v in 0..n {
        if t.index[v].is_none() {
            t.visit(v);
        }
    }
    // Tarjan emits a component once everything it reaches is emitted: parents first.
    t.out
}

#[derive(Default)]
struct Tarjan {
    next: Vec<Vec<usize>>,
    index: Vec<Option<usize>>,
    low: Vec<usize>,
    on_stack: Vec<bool>,
    stack: Vec<usize>,
    counter: usize,
    out: Vec<Vec<usize>>,
}

impl Tarjan {
    fn visit(&mut self, v: usize) {
        self.index[v] = Some(self.counter);
        self.low[v] = self.counter;
        self.counter += 1;
        self.stack.push(v);
        self.on_stack[v] = true;
        for i in 0..self.next[v].len() {
            let w = self.next[v][i];
            match self.index[w] {
                None => {
                    self.visit(w);
                    self.low[v] = self.low[v].min(self.low[w]);
                }
                Some(iw) if self.on_stack[w] => self.low[v] = self.low[v].min(iw),
                Some(_) => {}
            }
        }
        if Some(self.low[v]) == self.index[v] {
            let mut component = vec![];
            while let Some(w) = self.stack.pop() {
                self.on_stack[w] = false;
                component.push(w);
                if w == v {
                    break;
                }
            }
            component.sort_unstable();
            self.out.push(component);
        }
    }
}

/// A self-referencing foreign key resolved to column positions in the row.
#[derive(Debug, Clone)]
pub(crate) struct SelfKey {
    /// Positions of the referencing columns.
    pub columns: Vec<usize>,
    /// Positions of the referenced columns.
    pub ref_columns: Vec<usize>,
}

impl SelfKey {
    /// Resolves `fk` through the column names of the side written to; `None`
    /// when a column is not part of the diff (excluded), so rows cannot be ordered.
    pub fn resolve(fk: &ForeignKey, names: &[&str]) -> Option<SelfKey> {
        let pos = |cols: &[String]| cols.iter().map(|c| names.iter().position(|n| n == c)).collect::<Option<Vec<_>>>();
        Some(SelfKey { columns: pos(&fk.columns)?, ref_columns: pos(&fk.ref_columns)? })
    }
}

/// What a row of a self-referencing table is and points at, per self key:
/// values in PostgreSQL's text form.
#[derive(Debug, Clone, Default)]
pub(crate) struct RowLinks {
    /// The row's referenced-column values, per self key.
    pub own: Vec<Vec<Option<String>>>,
    /// The values it references, per self key (`None`: a NULL column, no reference).
    pub refs: Vec<Option<Vec<Option<String>>>>,
}

/// Rows ordered so that a row comes after the rows (of this set) it
/// references: the insert order. `None` when the rows reference each other in
/// a loop, which no order can satisfy. Iterative: chains can be long.
pub(crate) fn parents_first(rows: &[&RowLinks]) -> Option<Vec<usize>> {
    let keys = rows.first().map_or(0, |r| r.own.len());
    let by_own: Vec<HashMap<&Vec<Option<String>>, usize>> =
        (0..keys).map(|k| rows.iter().enumerate().map(|(i, r)| (&r.own[k], i)).collect()).collect();
    let parents = |i: usize| -> Vec<usize> {
        (0..keys)
            .filter_map(|k| rows[i].refs[k].as_ref().and_then(|v| by_own[k].get(v).copied()))
            .filter(|&j| j != i)
            .collect()
    };
    // 0 unvisited, 1 in progress, 2 done.
    let mut state = vec![0u8; rows.len()];
    let mut order = Vec::with_capacity(rows.len());
    for start in 0..rows.len() {
        if state[start] != 0 {
            continue;
        }
        let mut stack = vec![(start, parents(start), 0usize)];
        state[start] = 1;
        while let Some((v, ps, at)) = stack.last_mut() {
            if let Some(&p) = ps.get(*at) {
                *at += 1;
                match state[p] {
                    0 => {
                        state[p] = 1;
                        let pp = parents(p);
                        stack.push((p, pp, 0));
                    }
                    1 => return None,
                    _ => {}
                }
            } else {
                state[*v] = 2;
                order.push(*v);
                stack.pop();
            }
        }
    }
    Some(order)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn link(own: &str, parent: Option<&str>) -> RowLinks {
        RowLinks { own: vec![vec![Some(own.to_string())]], refs: vec![parent.map(|p| vec![Some(p.to_string())])] }
    }

    #[test]
    fn parents_come_first() {
        // 1 → 3 → 2 (child → parent); 4 references a row outside the set.
        let rows = [link("1", Some("3")), link("2", None), link("3", Some("2")), link("4", Some("9"))];
        assert_eq!(parents_first(&rows.iter().collect::<Vec<_>>()), Some(vec![1, 2, 0, 3]));
        // A row referencing itself is fine; a loop of two is not.
        assert_eq!(parents_first(&[&link("1", Some("1"))]), Some(vec![0]));
        assert_eq!(parents_first(&[&link("1", Some("2")), &link("2", Some("1"))]), None);
    }

    #[test]
    fn components_parents_first() {
        // 0 references 1, 1 references 2, 2 references 1 (a cycle), 3 alone.
        let c = components(4, &[(0, 1), (1, 2), (2, 1), (0, 0)]);
        assert_eq!(c, vec![vec![1, 2], vec![0], vec![3]]);
    }
}
