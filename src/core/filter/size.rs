//! A filter's size: at most [`MAX_CONDITIONS`] conditions and [`MAX_NODES`] nodes,
//! checked from the JSON alone before anything is looked up.

use serde_json::Value;

use super::{MAX_CONDITIONS, MAX_NODES};
use crate::core::error::FieldError;

/// The filter's size checked from its JSON alone, before the tenant's attributes and
/// segments are looked up, so a filter past the bounds is refused without costing a
/// database connection. The walk stops at the first bound passed; [`parse`] checks the
/// same bounds again as it reads.
pub fn check_size(value: &Value, path: &str) -> Result<(), FieldError> {
    fn walk(value: &Value, conditions: &mut usize, nodes: &mut usize) {
        *nodes += 1;
        if *nodes > MAX_NODES || *conditions > MAX_CONDITIONS {
            return;
        }
        let Some(object) = value.as_object() else {
            return;
        };
        if object.contains_key("field") {
            *conditions += 1;
        }
        for (key, child) in object {
            match (key.as_str(), child) {
                ("all" | "any", Value::Array(items)) => {
                    for item in items {
                        walk(item, conditions, nodes);
                        if *nodes > MAX_NODES || *conditions > MAX_CONDITIONS {
                            return;
                        }
                    }
                }
                ("not", child) => walk(child, conditions, nodes),
                _ => {}
            }
        }
    }
    let (mut conditions, mut nodes) = (0, 0);
    walk(value, &mut conditions, &mut nodes);
    size_error(conditions, nodes, path).map_or(Ok(()), Err)
}

/// The error for a filter of `conditions` conditions and `nodes` nodes, if past a bound.
pub(super) fn size_error(conditions: usize, nodes: usize, path: &str) -> Option<FieldError> {
    if conditions > MAX_CONDITIONS {
        Some(FieldError::new(
            path,
            "too_many_conditions",
            format!("a filter may have at most {MAX_CONDITIONS} conditions; this one has more"),
        ))
    } else if nodes > MAX_NODES {
        Some(FieldError::new(
            path,
            "too_many_nodes",
            format!("a filter may have at most {MAX_NODES} groups and conditions in all"),
        ))
    } else {
        None
    }
}
