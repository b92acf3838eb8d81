//! A filter as a person would write it: `City equals Milan AND (Tags contains vip OR
//! Premium customer is true)`.

use super::{Condition, Node, Test};
use crate::core::segment::NO_FILTERS;

pub fn summarize(node: &Node) -> String {
    if node.is_empty() {
        return NO_FILTERS.to_owned();
    }
    render(node, false)
}

fn render(node: &Node, nested: bool) -> String {
    match node {
        Node::All(nodes) if nodes.is_empty() => "Everyone".to_owned(),
        Node::Any(nodes) if nodes.is_empty() => "Nobody".to_owned(),
        Node::All(nodes) | Node::Any(nodes) if nodes.len() == 1 => render(&nodes[0], nested),
        Node::All(nodes) => group(nodes, " AND ", nested),
        Node::Any(nodes) => group(nodes, " OR ", nested),
        Node::Not(inner) => format!("NOT {}", render(inner, true)),
        Node::Condition(condition) => sentence(condition),
    }
}

fn group(nodes: &[Node], joiner: &str, nested: bool) -> String {
    let text = nodes
        .iter()
        .map(|n| render(n, true))
        .collect::<Vec<_>>()
        .join(joiner);
    if nested {
        format!("({text})")
    } else {
        text
    }
}

fn list<T: ToString>(values: &[T]) -> String {
    values
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}

fn sentence(condition: &Condition) -> String {
    let label = condition.field.label();
    let phrase = match &condition.test {
        Test::TextEq(v) => format!("equals {v}"),
        Test::TextNeq(v) => format!("does not equal {v}"),
        Test::TextIn(v) => format!("is one of {}", list(v)),
        Test::TextNotIn(v) => format!("is not one of {}", list(v)),
        Test::Contains(v) => format!("contains {v}"),
        Test::NotContains(v) => format!("does not contain {v}"),
        Test::StartsWith(v) => format!("starts with {v}"),
        Test::NumberEq(v) => format!("equals {v}"),
        Test::NumberNeq(v) => format!("does not equal {v}"),
        Test::Gt(v) => format!("is greater than {v}"),
        Test::Gte(v) => format!("is at least {v}"),
        Test::Lt(v) => format!("is less than {v}"),
        Test::Lte(v) => format!("is at most {v}"),
        Test::NumberBetween(a, b) => format!("is between {a} and {b}"),
        Test::NumberIn(v) => format!("is one of {}", list(v)),
        Test::BoolEq(v) => format!("is {v}"),
        Test::DateEq(d) => format!("is on {d}"),
        Test::Before(d) => format!("is before {d}"),
        Test::After(d) => format!("is after {d}"),
        Test::DateBetween(a, b) => format!("is between {a} and {b}"),
        Test::InLastDays(n) => format!("is within the last {n} days"),
        Test::NotInLastDays(n) => format!("is not within the last {n} days"),
        Test::InNextDays(n) => format!("is within the next {n} days"),
        Test::AnniversaryThisMonth => "has its anniversary this month".to_owned(),
        Test::AnniversaryToday => "has its anniversary today".to_owned(),
        Test::TagContains(v) => format!("contains {v}"),
        Test::TagNotContains(v) => format!("do not contain {v}"),
        Test::TagsContainAny(v) => format!("contain any of {}", list(v)),
        Test::TagsContainAll(v) => format!("contain all of {}", list(v)),
        Test::TagsEmpty => "are empty".to_owned(),
        Test::InSegment(s) => return format!("In segment \"{}\"", s.name),
        Test::NotInSegment(s) => return format!("Not in segment \"{}\"", s.name),
        Test::Exists => "is set".to_owned(),
        Test::NotExists => "is not set".to_owned(),
    };
    format!("{label} {phrase}")
}
