//! Parsing and summaries, without a database. SQL is exercised against PostgreSQL by the
//! HTTP tests (`tests/api/dynamic.rs`).

use serde_json::{json, Value};

use super::parse::{parse, Context, SegmentInfo};
use super::size::check_size;
use super::summary::summarize;
use super::Node;
use crate::core::attributes::Definition;
use crate::core::error::FieldError;
use crate::core::types::AttributeType;

fn attributes() -> Vec<Definition> {
    [
        ("city", "City", AttributeType::Text),
        ("score", "Score", AttributeType::Number),
        ("premium", "Premium customer", AttributeType::Boolean),
        ("birthdate", "Birth date", AttributeType::Date),
    ]
    .into_iter()
    .map(|(key, label, value_type)| Definition {
        key: key.into(),
        label: label.into(),
        value_type,
    })
    .collect()
}

/// Segments 1 ("VIP") and 4 ("Milan") exist; no other does.
fn segment(id: i64) -> Option<SegmentInfo> {
    let name = match id {
        1 => "VIP",
        4 => "Milan",
        _ => return None,
    };
    Some(SegmentInfo {
        id,
        name: name.into(),
    })
}

fn read(filter: Value, own_id: Option<i64>) -> Result<Node, Vec<FieldError>> {
    let attributes = attributes();
    let mut lookup = segment;
    let mut context = Context {
        attributes: &attributes,
        segment: &mut lookup,
        own_id,
    };
    parse(&filter, "filter", &mut context)
}

fn refused(filter: Value) -> Vec<(String, String)> {
    read(filter, None)
        .expect_err("refused")
        .into_iter()
        .map(|e| (e.field, e.code))
        .collect()
}

fn error(field: &str, code: &str) -> Vec<(String, String)> {
    vec![(field.to_owned(), code.to_owned())]
}

#[test]
fn every_operator_of_every_type_parses() {
    let cases = [
        ("name", "eq", json!("Anna")),
        ("email", "neq", json!("a@example.com")),
        ("phone", "starts_with", json!("+39")),
        ("phone_country", "in", json!(["IT", "GB"])),
        ("attributes.city", "not_in", json!(["Rome"])),
        ("attributes.city", "contains", json!("mil")),
        ("attributes.city", "not_contains", json!("x")),
        ("attributes.city", "exists", Value::Null),
        ("attributes.city", "not_exists", Value::Null),
        ("attributes.score", "eq", json!(3)),
        ("attributes.score", "neq", json!(3.5)),
        ("attributes.score", "gt", json!(1)),
        ("attributes.score", "gte", json!(1)),
        ("attributes.score", "lt", json!(1)),
        ("attributes.score", "lte", json!(1)),
        ("attributes.score", "between", json!([1, 2])),
        ("attributes.score", "in", json!([1, 2, 3])),
        ("attributes.premium", "eq", json!(true)),
        ("opted_out", "eq", json!(false)),
        ("privacy_consent", "exists", Value::Null),
        ("attributes.birthdate", "eq", json!("2000-02-29")),
        ("attributes.birthdate", "before", json!("2000-01-01")),
        ("created_at", "after", json!("2020-01-01")),
        ("created_at", "between", json!(["2020-01-01", "2020-12-31"])),
        ("created_at", "in_last_days", json!(30)),
        ("created_at", "not_in_last_days", json!(30)),
        ("attributes.birthdate", "in_next_days", json!(7)),
        (
            "attributes.birthdate",
            "anniversary_this_month",
            Value::Null,
        ),
        ("attributes.birthdate", "anniversary_today", Value::Null),
        ("tags", "contains", json!("vip")),
        ("tags", "not_contains", json!("vip")),
        ("tags", "contains_any", json!(["a", "b"])),
        ("tags", "contains_all", json!(["a", "b"])),
        ("tags", "is_empty", Value::Null),
        ("segment", "in", json!(1)),
        ("segment", "not_in", json!(4)),
    ];
    for (field, op, value) in cases {
        let mut condition = json!({"field": field, "op": op});
        if !value.is_null() {
            condition["value"] = value;
        }
        assert!(
            read(condition.clone(), None).is_ok(),
            "{condition} should parse: {:?}",
            read(condition.clone(), None)
        );
    }
}

#[test]
fn refusals_name_the_json_path_and_the_reason() {
    assert_eq!(
        refused(json!({"all": [{"field": "shoe", "op": "eq", "value": 1}]})),
        error("filter.all[0].field", "unknown_field")
    );
    assert_eq!(
        refused(
            json!({"any": [{"field": "name", "op": "eq", "value": "x"}, {"field": "attributes.size", "op": "eq", "value": 1}]})
        ),
        error("filter.any[1].field", "undefined_attribute")
    );
    assert_eq!(
        refused(json!({"field": "tags", "op": "gt", "value": 1})),
        error("filter.op", "invalid_operator")
    );
    assert_eq!(
        refused(json!({"field": "attributes.score", "op": "gt", "value": "high"})),
        error("filter.value", "invalid_value")
    );
    assert_eq!(
        refused(json!({"field": "attributes.score", "op": "between", "value": [3, 1]})),
        error("filter.value", "invalid_value")
    );
    assert_eq!(
        refused(json!({"field": "attributes.birthdate", "op": "eq", "value": "2023-02-29"})),
        error("filter.value", "invalid_value")
    );
    assert_eq!(
        refused(json!({"field": "created_at", "op": "in_last_days", "value": 0})),
        error("filter.value", "invalid_value")
    );
    assert_eq!(
        refused(json!({"field": "tags", "op": "is_empty", "value": "x"})),
        error("filter.value", "unexpected_value")
    );
    assert_eq!(
        refused(json!({"field": "name", "op": "eq"})),
        error("filter.value", "required")
    );
    assert_eq!(
        refused(json!({"not": {"field": "name", "op": "in", "value": []}})),
        error("filter.not.value", "invalid_value")
    );
    assert_eq!(
        refused(json!({"all": {"field": "name"}})),
        error("filter.all", "invalid_node")
    );
    assert_eq!(
        refused(json!({"all": [], "any": []})),
        error("filter", "invalid_node")
    );
    assert_eq!(refused(json!([1])), error("filter", "invalid_node"));
    assert_eq!(
        refused(json!({"field": "name", "op": "eq", "value": "x", "extra": 1})),
        error("filter.extra", "unknown_key")
    );
    assert_eq!(
        refused(json!({"field": "segment", "op": "in", "value": 99})),
        error("filter.value", "segment_not_found")
    );
}

#[test]
fn depth_and_size_are_limited() {
    let condition = json!({"field": "name", "op": "exists"});
    let nest =
        |levels: usize| (0..levels).fold(condition.clone(), |inner, _| json!({"all": [inner]}));
    assert!(
        read(nest(4), None).is_ok(),
        "five levels: four groups and a condition"
    );
    let errors = refused(nest(5));
    assert_eq!(errors[0].1, "too_deep");
    assert_eq!(errors[0].0, "filter.all[0].all[0].all[0].all[0].all[0]");
    let many: Vec<Value> = (0..51).map(|_| condition.clone()).collect();
    assert_eq!(
        refused(json!({"all": many})),
        error("filter", "too_many_conditions")
    );
    let fifty: Vec<Value> = (0..50).map(|_| condition.clone()).collect();
    assert!(read(json!({"all": fifty}), None).is_ok());
}

#[test]
fn a_segment_named_is_looked_up_never_expanded() {
    let own = read(json!({"field": "segment", "op": "in", "value": 4}), Some(4))
        .expect_err("a segment naming itself");
    assert_eq!(own[0].code, "segment_cycle");
    assert_eq!(
        refused(json!({"field": "segment", "op": "in", "value": 9})),
        error("filter.value", "segment_not_found")
    );
    let node = read(json!({"field": "segment", "op": "in", "value": 4}), None).unwrap();
    assert_eq!(node.references().into_iter().collect::<Vec<_>>(), [4]);
    assert_eq!(node.conditions().len(), 1);
}

#[test]
fn a_filter_past_its_limits_is_refused_before_it_costs_more_lookups() {
    let lookups = std::cell::Cell::new(0);
    let attributes = attributes();
    let mut lookup = |id: i64| {
        lookups.set(lookups.get() + 1);
        segment(id)
    };
    let mut context = Context {
        attributes: &attributes,
        segment: &mut lookup,
        own_id: None,
    };
    let named: Vec<Value> = (0..1000)
        .map(|_| json!({"field": "segment", "op": "in", "value": 1}))
        .collect();
    let errors = parse(&json!({"any": named}), "filter", &mut context).unwrap_err();
    assert_eq!(errors[0].code, "too_many_conditions");
    assert!(lookups.get() <= 51, "{} lookups", lookups.get());
    let empty_groups: Vec<Value> = (0..1000).map(|_| json!({"all": []})).collect();
    let errors = parse(&json!({"any": empty_groups}), "filter", &mut context).unwrap_err();
    assert_eq!(errors[0].code, "too_many_nodes");
}

#[test]
fn the_size_check_before_any_lookup_agrees_with_the_parser() {
    let condition = json!({"field": "name", "op": "exists"});
    let conditions = |n: usize| (0..n).map(|_| condition.clone()).collect::<Vec<_>>();
    let groups = |n: usize| (0..n).map(|_| json!({"all": []})).collect::<Vec<_>>();
    let nested = json!({"any": [{"all": conditions(25)}, {"not": {"all": conditions(25)}}]});
    let cases = [
        (json!({"all": conditions(50)}), None),
        (json!({"all": conditions(51)}), Some("too_many_conditions")),
        (json!({"any": groups(199)}), None),
        (json!({"any": groups(200)}), Some("too_many_nodes")),
        (json!({"any": groups(20_000)}), Some("too_many_nodes")),
        (nested.clone(), None),
        (
            json!({"all": [nested, condition]}),
            Some("too_many_conditions"),
        ),
    ];
    for (filter, refused) in cases {
        let early = check_size(&filter, "filter").err().map(|e| e.code);
        let parsed = read(filter, None)
            .err()
            .map(|errors| errors[0].code.clone());
        assert_eq!(early.as_deref(), refused);
        assert_eq!(parsed.as_deref(), refused, "the parser agrees");
    }
}

#[test]
fn summaries_read_like_a_person_wrote_them() {
    let summary = |filter: Value| summarize(&read(filter, None).unwrap());
    assert_eq!(
        summary(json!({"all": [
            {"field": "attributes.city", "op": "eq", "value": "Milan"},
            {"any": [{"field": "tags", "op": "contains", "value": "vip"}, {"field": "attributes.premium", "op": "eq", "value": true}]}
        ]})),
        "City equals Milan AND (Tags contains vip OR Premium customer is true)"
    );
    assert_eq!(summary(json!({"all": []})), "No filters");
    assert_eq!(
        summary(json!({"not": {"field": "attributes.birthdate", "op": "anniversary_this_month"}})),
        "NOT Birth date has its anniversary this month"
    );
    assert_eq!(
        summary(
            json!({"any": [{"field": "segment", "op": "in", "value": 1}, {"field": "attributes.score", "op": "between", "value": [1, 5]}]})
        ),
        "In segment \"VIP\" OR Score is between 1 and 5"
    );
    assert_eq!(
        summary(json!({"field": "created_at", "op": "in_last_days", "value": 30})),
        "Created is within the last 30 days"
    );
    assert_eq!(
        summary(json!({"field": "phone_country", "op": "in", "value": ["IT", "GB"]})),
        "Phone country is one of IT, GB"
    );
}

#[test]
fn every_field_and_operator_described_parses_with_a_value_of_its_shape() {
    use super::operators::{describe_fields, Kind, ValueShape};
    let described = describe_fields(&attributes());
    assert_eq!(described.len(), 10 + attributes().len());
    let one = |kind: Kind| match kind {
        Kind::Text | Kind::Tags => json!("x"),
        Kind::Number => json!(3),
        Kind::Boolean => json!(true),
        Kind::Date => json!("2024-02-29"),
        Kind::Segment => json!(1),
    };
    let mut checked = 0;
    for field in &described {
        assert!(!field.label.is_empty(), "{}", field.field);
        for operator in &field.operators {
            assert!(
                !operator.label.is_empty(),
                "{} {}",
                field.field,
                operator.op
            );
            let value = match operator.value {
                ValueShape::None => Value::Null,
                ValueShape::One | ValueShape::Segment => one(field.kind),
                ValueShape::Two => json!([one(field.kind), one(field.kind)]),
                ValueShape::List => json!([one(field.kind)]),
                ValueShape::Days => json!(7),
            };
            let mut condition = json!({"field": field.field, "op": operator.op});
            if !value.is_null() {
                condition["value"] = value.clone();
            }
            read(condition.clone(), None)
                .unwrap_or_else(|e| panic!("{condition} as described does not parse: {e:?}"));
            // And a value of another shape is refused.
            let wrong = if value.is_null() {
                json!(1)
            } else {
                Value::Null
            };
            condition["value"] = wrong;
            assert!(read(condition.clone(), None).is_err(), "{condition}");
            checked += 1;
        }
    }
    assert!(checked > 60, "{checked} operators checked");
}
