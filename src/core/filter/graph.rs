//! The bounds over segments that name segments. Each filter is small on its own (at most
//! [`MAX_CONDITIONS`](super::MAX_CONDITIONS)); this keeps chains of them small too: no
//! cycles, chains at most [`MAX_CHAIN`] segments deep, and at most
//! [`MAX_TOTAL_CONDITIONS`] conditions in a filter with every segment it reaches, each
//! counted once. A change is checked for the segment changed and for every segment that
//! reaches it, so editing a named segment cannot push another past the bounds.

use std::collections::{BTreeMap, BTreeSet};

use super::{MAX_CHAIN, MAX_TOTAL_CONDITIONS};
use crate::core::error::FieldError;

/// A segment as the bounds see it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Vertex {
    pub id: i64,
    pub name: String,
    /// Its filter's own conditions (0 for a static segment).
    pub conditions: usize,
    /// The segments its filter names.
    pub references: BTreeSet<i64>,
    /// Whether its own conditions depend on the date.
    pub date_relative: bool,
}

/// What the bounds derive for a segment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Derived {
    pub id: i64,
    /// The longest chain of references from it, itself included.
    pub depth: usize,
    /// Its conditions with those of every segment it reaches.
    pub total_conditions: usize,
    /// Whether it, or a segment it reaches, depends on the date.
    pub date_relative: bool,
}

/// A tenant's segments and the references between them.
#[derive(Debug, Default)]
pub struct Graph {
    vertices: BTreeMap<i64, Vertex>,
}

impl Graph {
    pub fn new(vertices: impl IntoIterator<Item = Vertex>) -> Self {
        Self {
            vertices: vertices.into_iter().map(|v| (v.id, v)).collect(),
        }
    }

    /// Adds a segment, or replaces what is known of it (a filter about to be saved).
    pub fn set(&mut self, vertex: Vertex) {
        self.vertices.insert(vertex.id, vertex);
    }

    /// The segments that reach `id` through references, nearest first.
    pub fn dependents(&self, id: i64) -> Vec<i64> {
        let mut found: Vec<i64> = Vec::new();
        let mut frontier = vec![id];
        while let Some(current) = frontier.pop() {
            for vertex in self.vertices.values() {
                if vertex.references.contains(&current)
                    && vertex.id != id
                    && !found.contains(&vertex.id)
                {
                    found.push(vertex.id);
                    frontier.push(vertex.id);
                }
            }
        }
        found
    }

    /// Derives `changed` and every segment that reaches it, or says which bound one of
    /// them would break (naming that segment when it is not `changed` itself).
    pub fn check(&self, changed: i64) -> Result<Vec<Derived>, FieldError> {
        let mut derived = Vec::new();
        for id in std::iter::once(changed).chain(self.dependents(changed)) {
            let facts = self.derive(id).map_err(|cycle| {
                FieldError::new(
                    "filter",
                    "segment_cycle",
                    format!("segment {cycle} leads back to this filter: segments cannot include themselves"),
                )
            })?;
            let whose = if id == changed {
                "this filter".to_owned()
            } else {
                let name = self.vertices.get(&id).map_or("", |v| v.name.as_str());
                format!("segment {id} (\"{name}\"), which names this segment,")
            };
            if facts.depth > MAX_CHAIN {
                return Err(FieldError::new(
                    "filter",
                    "references_too_deep",
                    format!(
                        "segments may name segments at most {MAX_CHAIN} deep; with this change {whose} would start a chain of {}",
                        facts.depth
                    ),
                ));
            }
            if facts.total_conditions > MAX_TOTAL_CONDITIONS {
                return Err(FieldError::new(
                    "filter",
                    "filter_too_large",
                    format!(
                        "a filter with the segments it names may have at most {MAX_TOTAL_CONDITIONS} conditions; with this change {whose} would have {}",
                        facts.total_conditions
                    ),
                ));
            }
            derived.push(facts);
        }
        Ok(derived)
    }

    /// The facts of one segment, or the id at which a cycle closes.
    fn derive(&self, id: i64) -> Result<Derived, i64> {
        let mut reached = BTreeSet::new();
        let depth = self.walk(id, &mut Vec::new(), &mut reached)?;
        reached.remove(&id);
        let own = self.vertices.get(&id);
        let total_conditions = own.map_or(0, |v| v.conditions)
            + reached
                .iter()
                .filter_map(|r| self.vertices.get(r))
                .map(|v| v.conditions)
                .sum::<usize>();
        let date_relative = own.is_some_and(|v| v.date_relative)
            || reached
                .iter()
                .filter_map(|r| self.vertices.get(r))
                .any(|v| v.date_relative);
        Ok(Derived {
            id,
            depth,
            total_conditions,
            date_relative,
        })
    }

    /// The depth of `id`, collecting what it reaches; `Err` with the segment that closes
    /// a cycle. Each segment is entered at most once per path, and paths are bounded by
    /// the number of segments.
    fn walk(
        &self,
        id: i64,
        path: &mut Vec<i64>,
        reached: &mut BTreeSet<i64>,
    ) -> Result<usize, i64> {
        if path.contains(&id) {
            return Err(id);
        }
        reached.insert(id);
        let Some(vertex) = self.vertices.get(&id) else {
            return Ok(1);
        };
        path.push(id);
        let mut deepest = 0;
        for reference in &vertex.references {
            deepest = deepest.max(self.walk(*reference, path, reached)?);
            // Far past the bound: no need to walk on (keeps a hostile graph cheap).
            if deepest > MAX_CHAIN {
                break;
            }
        }
        path.pop();
        Ok(1 + deepest)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vertex(id: i64, conditions: usize, references: &[i64]) -> Vertex {
        Vertex {
            id,
            name: format!("S{id}"),
            conditions,
            references: references.iter().copied().collect(),
            date_relative: false,
        }
    }

    #[test]
    fn a_chain_of_three_is_allowed_and_a_fourth_link_is_not() {
        let mut graph = Graph::new([vertex(1, 0, &[]), vertex(2, 5, &[1]), vertex(3, 5, &[2])]);
        let derived = graph.check(3).unwrap();
        assert_eq!(derived[0].depth, 3);
        assert_eq!(derived[0].total_conditions, 10);
        graph.set(vertex(4, 1, &[3]));
        let error = graph.check(4).unwrap_err();
        assert_eq!(error.code, "references_too_deep");
    }

    #[test]
    fn each_segment_reached_counts_once_however_often_it_is_named() {
        // S0 has 50 conditions; S1 names it 50 times (one reference), S2 names S1.
        let graph = Graph::new([
            vertex(10, 50, &[]),
            vertex(11, 50, &[10]),
            vertex(12, 50, &[11]),
        ]);
        let derived = graph.check(12).unwrap();
        assert_eq!(derived[0].total_conditions, 150);
        let mut bigger = graph;
        bigger.set(vertex(13, 60, &[12]));
        // 60 + 150 = 210, and a chain of 4.
        let error = bigger.check(13).unwrap_err();
        assert!(["references_too_deep", "filter_too_large"].contains(&error.code.as_str()));
    }

    #[test]
    fn a_change_to_a_named_segment_is_checked_for_those_naming_it() {
        let mut graph = Graph::new([vertex(1, 1, &[]), vertex(2, 50, &[1]), vertex(3, 50, &[2])]);
        assert!(graph.check(1).is_ok());
        // T0 grows: T2 reaches it through T1 and would pass 200 conditions.
        graph.set(vertex(1, 150, &[]));
        let error = graph.check(1).unwrap_err();
        assert_eq!(error.code, "filter_too_large");
        assert!(error.message.contains("segment 3"), "{}", error.message);
        // T0 starts naming another dynamic segment: T2's chain would be 4 deep.
        let mut graph = Graph::new([
            vertex(1, 1, &[]),
            vertex(2, 1, &[1]),
            vertex(3, 1, &[2]),
            vertex(9, 1, &[]),
        ]);
        graph.set(vertex(1, 1, &[9]));
        let error = graph.check(1).unwrap_err();
        assert_eq!(error.code, "references_too_deep");
        assert!(error.message.contains("segment 3"), "{}", error.message);
    }

    #[test]
    fn cycles_are_refused_wherever_they_close() {
        let mut graph = Graph::new([vertex(1, 1, &[2]), vertex(2, 1, &[])]);
        graph.set(vertex(2, 1, &[1]));
        assert_eq!(graph.check(2).unwrap_err().code, "segment_cycle");
    }

    #[test]
    fn date_relativity_passes_to_those_naming_a_segment() {
        let mut dated = vertex(1, 1, &[]);
        dated.date_relative = true;
        let graph = Graph::new([dated, vertex(2, 1, &[1]), vertex(3, 1, &[])]);
        let derived = graph.check(1).unwrap();
        assert!(derived.iter().all(|d| d.date_relative));
        assert!(!graph.check(3).unwrap()[0].date_relative);
        assert_eq!(graph.dependents(1), [2]);
    }
}
