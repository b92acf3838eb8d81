//! JSON to a typed [`Node`] tree, checked against the tenant's attributes and segments.
//! Every problem is reported with the JSON path of the node it is in. Limits are
//! checked as the tree is read, so a filter too large is refused before it costs a
//! lookup more than the limits allow. A segment the filter names is looked up, never
//! expanded: its members are read, not its filter (see [`super::graph`] for the bounds
//! over chains of references).

use serde_json::{Map, Value};

use super::operators::{built_in, value_shape, Kind, ValueShape, BUILT_IN};
use super::size::size_error;
use super::{
    Condition, Field, Node, SegmentRef, Test, MAX_CONDITIONS, MAX_DAYS, MAX_DEPTH, MAX_LIST_VALUES,
    MAX_NODES,
};
use crate::core::attributes::{parse_date, Definition};
use crate::core::error::FieldError;

/// A segment of the tenant a filter may name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SegmentInfo {
    pub id: i64,
    pub name: String,
}

/// What parsing needs to know about the tenant.
pub struct Context<'a> {
    pub attributes: &'a [Definition],
    /// Looks a segment up by id within the tenant (`None`: no such segment here).
    pub segment: &'a mut dyn FnMut(i64) -> Option<SegmentInfo>,
    /// The segment whose filter this is, if it is saved already: naming it is a cycle.
    pub own_id: Option<i64>,
}

struct Parser<'a, 'b> {
    context: &'b mut Context<'a>,
    errors: Vec<FieldError>,
    conditions: usize,
    nodes: usize,
}

/// Parses `value`, found at JSON path `path` (e.g. `filter`).
pub fn parse(
    value: &Value,
    path: &str,
    context: &mut Context<'_>,
) -> Result<Node, Vec<FieldError>> {
    let mut parser = Parser {
        context,
        errors: Vec::new(),
        conditions: 0,
        nodes: 0,
    };
    let node = parser.node(value, path, 1);
    if let Some(error) = size_error(parser.conditions, parser.nodes, path) {
        parser.errors.push(error);
    }
    match node {
        Some(node) if parser.errors.is_empty() => Ok(node),
        _ => Err(parser.errors),
    }
}

const NODE_SHAPE: &str = "a node is a group ({\"all\": [...]}, {\"any\": [...]}, {\"not\": {...}}) or a condition ({\"field\", \"op\", \"value\"})";

impl Parser<'_, '_> {
    fn fail<T>(&mut self, path: &str, code: &str, message: impl Into<String>) -> Option<T> {
        self.errors.push(FieldError::new(path, code, message));
        None
    }

    fn node(&mut self, value: &Value, path: &str, depth: usize) -> Option<Node> {
        self.nodes += 1;
        // Past a limit, nothing more is read (nor looked up): the whole filter is refused.
        if self.nodes > MAX_NODES || self.conditions > MAX_CONDITIONS {
            return None;
        }
        if depth > MAX_DEPTH {
            return self.fail(
                path,
                "too_deep",
                format!("filters nest at most {MAX_DEPTH} levels deep"),
            );
        }
        let Some(object) = value.as_object() else {
            return self.fail(path, "invalid_node", NODE_SHAPE);
        };
        let group_keys: Vec<&str> = ["all", "any", "not"]
            .into_iter()
            .filter(|k| object.contains_key(*k))
            .collect();
        match (group_keys.as_slice(), object.contains_key("field")) {
            ([key], false) if object.len() == 1 => {
                self.group(key, &object[*key], &format!("{path}.{key}"), depth)
            }
            ([], true) => self.condition(object, path),
            _ => self.fail(path, "invalid_node", NODE_SHAPE),
        }
    }

    fn group(&mut self, key: &str, value: &Value, path: &str, depth: usize) -> Option<Node> {
        if key == "not" {
            return self
                .node(value, path, depth + 1)
                .map(|node| Node::Not(Box::new(node)));
        }
        let Some(items) = value.as_array() else {
            return self.fail(
                path,
                "invalid_node",
                format!("`{key}` takes a list of nodes"),
            );
        };
        let nodes: Vec<Option<Node>> = items
            .iter()
            .enumerate()
            .map(|(i, item)| self.node(item, &format!("{path}[{i}]"), depth + 1))
            .collect();
        let nodes: Option<Vec<Node>> = nodes.into_iter().collect();
        nodes.map(|nodes| {
            if key == "all" {
                Node::All(nodes)
            } else {
                Node::Any(nodes)
            }
        })
    }

    fn condition(&mut self, object: &Map<String, Value>, path: &str) -> Option<Node> {
        self.conditions += 1;
        if let Some(extra) = object
            .keys()
            .find(|k| !matches!(k.as_str(), "field" | "op" | "value"))
        {
            return self.fail(
                &format!("{path}.{extra}"),
                "unknown_key",
                "a condition has only `field`, `op` and `value`",
            );
        }
        let Some(field_name) = object["field"].as_str() else {
            return self.fail(
                &format!("{path}.field"),
                "invalid_field",
                "`field` must be a string",
            );
        };
        let Some(op) = object.get("op").and_then(Value::as_str) else {
            return self.fail(
                &format!("{path}.op"),
                "required",
                "`op` is required and must be a string",
            );
        };
        let field = self.field(field_name, &format!("{path}.field"))?;
        let value = object.get("value").unwrap_or(&Value::Null);
        let test = self.test(&field, op, value, path)?;
        Some(Node::Condition(Condition { field, test }))
    }

    fn field(&mut self, name: &str, path: &str) -> Option<Field> {
        if let Some(field) = built_in(name) {
            return Some(field);
        }
        let Some(key) = name.strip_prefix("attributes.") else {
            let known: Vec<&str> = BUILT_IN.iter().map(|(known, _)| *known).collect();
            return self.fail(
                path,
                "unknown_field",
                format!(
                    "unknown field `{name}`; fields are {} and attributes.<key>",
                    known.join(", ")
                ),
            );
        };
        match self.context.attributes.iter().find(|a| a.key == key) {
            Some(a) => Some(Field::Attribute {
                key: a.key.clone(),
                label: a.label.clone(),
                value_type: a.value_type,
            }),
            None => self.fail(
                path,
                "undefined_attribute",
                format!("`{key}` is not a defined attribute"),
            ),
        }
    }

    fn test(&mut self, field: &Field, op: &str, value: &Value, path: &str) -> Option<Test> {
        let kind = Kind::of(field);
        if !kind.operators().contains(&op) {
            return self.fail(
                &format!("{path}.op"),
                "invalid_operator",
                format!(
                    "`{op}` does not apply to {}; use one of: {}",
                    kind.describe(),
                    kind.operators().join(", ")
                ),
            );
        }
        let value_path = format!("{path}.value");
        let no_value = value_shape(kind, op) == ValueShape::None;
        if no_value {
            if !value.is_null() {
                return self.fail(
                    &value_path,
                    "unexpected_value",
                    format!("`{op}` takes no value"),
                );
            }
        } else if value.is_null() {
            return self.fail(&value_path, "required", format!("`{op}` needs a value"));
        }
        let test = match (kind, op) {
            (_, "exists") => Some(Test::Exists),
            (_, "not_exists") => Some(Test::NotExists),
            (Kind::Text, "eq") => self.text(value, &value_path).map(Test::TextEq),
            (Kind::Text, "neq") => self.text(value, &value_path).map(Test::TextNeq),
            (Kind::Text, "in") => self.list(value, &value_path, Self::text).map(Test::TextIn),
            (Kind::Text, "not_in") => self
                .list(value, &value_path, Self::text)
                .map(Test::TextNotIn),
            (Kind::Text, "contains") => self.text(value, &value_path).map(Test::Contains),
            (Kind::Text, "not_contains") => self.text(value, &value_path).map(Test::NotContains),
            (Kind::Text, "starts_with") => self.text(value, &value_path).map(Test::StartsWith),
            (Kind::Number, "eq") => self.number(value, &value_path).map(Test::NumberEq),
            (Kind::Number, "neq") => self.number(value, &value_path).map(Test::NumberNeq),
            (Kind::Number, "gt") => self.number(value, &value_path).map(Test::Gt),
            (Kind::Number, "gte") => self.number(value, &value_path).map(Test::Gte),
            (Kind::Number, "lt") => self.number(value, &value_path).map(Test::Lt),
            (Kind::Number, "lte") => self.number(value, &value_path).map(Test::Lte),
            (Kind::Number, "between") => self
                .pair(value, &value_path, Self::number)
                .map(|(a, b)| Test::NumberBetween(a, b)),
            (Kind::Number, "in") => self
                .list(value, &value_path, Self::number)
                .map(Test::NumberIn),
            (Kind::Boolean, "eq") => match value.as_bool() {
                Some(flag) => Some(Test::BoolEq(flag)),
                None => self.wrong(&value_path, "true or false"),
            },
            (Kind::Date, "eq") => self.date(value, &value_path).map(Test::DateEq),
            (Kind::Date, "before") => self.date(value, &value_path).map(Test::Before),
            (Kind::Date, "after") => self.date(value, &value_path).map(Test::After),
            (Kind::Date, "between") => self
                .pair(value, &value_path, Self::date)
                .map(|(a, b)| Test::DateBetween(a, b)),
            (Kind::Date, "in_last_days") => self.days(value, &value_path).map(Test::InLastDays),
            (Kind::Date, "not_in_last_days") => {
                self.days(value, &value_path).map(Test::NotInLastDays)
            }
            (Kind::Date, "in_next_days") => self.days(value, &value_path).map(Test::InNextDays),
            (Kind::Date, "anniversary_this_month") => Some(Test::AnniversaryThisMonth),
            (Kind::Date, "anniversary_today") => Some(Test::AnniversaryToday),
            (Kind::Tags, "contains") => self.text(value, &value_path).map(Test::TagContains),
            (Kind::Tags, "not_contains") => self.text(value, &value_path).map(Test::TagNotContains),
            (Kind::Tags, "contains_any") => self
                .list(value, &value_path, Self::text)
                .map(Test::TagsContainAny),
            (Kind::Tags, "contains_all") => self
                .list(value, &value_path, Self::text)
                .map(Test::TagsContainAll),
            (Kind::Tags, "is_empty") => Some(Test::TagsEmpty),
            (Kind::Segment, "in") => self.segment(value, &value_path).map(Test::InSegment),
            (Kind::Segment, "not_in") => self.segment(value, &value_path).map(Test::NotInSegment),
            _ => unreachable!("operators() lists only handled pairs"),
        };
        test
    }

    fn wrong<T>(&mut self, path: &str, expected: &str) -> Option<T> {
        self.errors.push(FieldError::new(
            path,
            "invalid_value",
            format!("must be {expected}"),
        ));
        None
    }

    fn text(&mut self, value: &Value, path: &str) -> Option<String> {
        match value.as_str() {
            Some(text) if !text.is_empty() && text.chars().count() <= 1000 => Some(text.to_owned()),
            _ => self.wrong(path, "a string of 1 to 1000 characters"),
        }
    }

    fn number(&mut self, value: &Value, path: &str) -> Option<f64> {
        match value.as_f64() {
            Some(number) if number.is_finite() => Some(number),
            _ => self.wrong(path, "a number"),
        }
    }

    fn date(&mut self, value: &Value, path: &str) -> Option<chrono::NaiveDate> {
        match value.as_str().and_then(parse_date) {
            Some(date) => Some(date),
            None => self.wrong(path, "a date written YYYY-MM-DD"),
        }
    }

    fn days(&mut self, value: &Value, path: &str) -> Option<i64> {
        match value.as_i64() {
            Some(days) if (1..=MAX_DAYS).contains(&days) => Some(days),
            _ => self.wrong(
                path,
                &format!("a whole number of days from 1 to {MAX_DAYS}"),
            ),
        }
    }

    fn list<T>(
        &mut self,
        value: &Value,
        path: &str,
        item: fn(&mut Self, &Value, &str) -> Option<T>,
    ) -> Option<Vec<T>> {
        match value.as_array() {
            Some(items) if !items.is_empty() && items.len() <= MAX_LIST_VALUES => {
                let parsed: Vec<Option<T>> = items
                    .iter()
                    .enumerate()
                    .map(|(i, v)| item(self, v, &format!("{path}[{i}]")))
                    .collect();
                parsed.into_iter().collect()
            }
            _ => self.wrong(path, &format!("a list of 1 to {MAX_LIST_VALUES} values")),
        }
    }

    fn pair<T: PartialOrd + Copy>(
        &mut self,
        value: &Value,
        path: &str,
        item: fn(&mut Self, &Value, &str) -> Option<T>,
    ) -> Option<(T, T)> {
        match value.as_array().map(Vec::as_slice) {
            Some([low, high]) => {
                let (low, high) = (
                    item(self, low, &format!("{path}[0]"))?,
                    item(self, high, &format!("{path}[1]"))?,
                );
                if low <= high {
                    Some((low, high))
                } else {
                    self.wrong(path, "[low, high] with low <= high")
                }
            }
            _ => self.wrong(path, "a list of two values, [low, high]"),
        }
    }

    fn segment(&mut self, value: &Value, path: &str) -> Option<SegmentRef> {
        let Some(id) = value.as_i64().filter(|id| *id > 0) else {
            return self.wrong(path, "a segment id");
        };
        if self.context.own_id == Some(id) {
            return self.fail(
                path,
                "segment_cycle",
                format!("segment {id} is this segment: a segment cannot include itself"),
            );
        }
        let Some(info) = (self.context.segment)(id) else {
            return self.fail(path, "segment_not_found", format!("no segment {id} exists"));
        };
        Some(SegmentRef {
            id,
            name: info.name,
        })
    }
}
