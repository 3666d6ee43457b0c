//! Properties of the message parser: it never panics, whatever JSON it is given, and whatever
//! it accepts serialises to a stored request that parses back to the same message
//! (`parse(serialise(parse(x))) == parse(x)`). Random JSON rarely gets past the first rule, so
//! most inputs are the contract's fixtures with random mutations deep inside them.

use std::path::PathBuf;

use premise_wire::Message;
use proptest::prelude::*;
use serde_json::{Map, Value, json};

fn fixtures() -> Vec<Value> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
    let mut all: Vec<(PathBuf, Value)> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .map(|p| {
            let v = serde_json::from_str(&std::fs::read_to_string(&p).unwrap()).unwrap();
            (p, v)
        })
        .collect();
    all.sort_by(|a, b| a.0.cmp(&b.0));
    all.into_iter().map(|(_, v)| v).collect()
}

/// Words the parser looks for, so random objects reach its deeper rules.
const WORDS: &[&str] = &[
    "to",
    "type",
    "text",
    "body",
    "image",
    "id",
    "link",
    "caption",
    "filename",
    "provider",
    "name",
    "template",
    "language",
    "code",
    "policy",
    "components",
    "parameters",
    "sub_type",
    "index",
    "interactive",
    "action",
    "sections",
    "rows",
    "title",
    "buttons",
    "reply",
    "header",
    "footer",
    "contacts",
    "location",
    "latitude",
    "longitude",
    "address",
    "hsm",
    "element_name",
    "namespace",
    "localizable_params",
    "default",
    "currency",
    "date_time",
    "amount_1000",
    "fallback_value",
    "list",
    "button",
    "product",
    "product_list",
    "flow",
    "catalog_message",
    "payload",
    "coupon_code",
    "quick_reply",
    "url",
    "copy_code",
    "16315551234",
    "https://example.com/a",
    "deterministic",
    "en_US",
    "USD",
    "3",
    "0",
    "9",
    "10",
    "-1",
    "1.5",
    "",
    " x ",
    "whatsapp",
];

fn leaf() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(|n| json!(n)),
        (-200i64..200).prop_map(|n| json!(n)),
        any::<f64>()
            .prop_map(|x| serde_json::Number::from_f64(x).map_or(Value::Null, Value::Number)),
        prop::sample::select(WORDS).prop_map(|w| json!(w)),
        ".{0,30}".prop_map(Value::String),
        (0usize..5000).prop_map(|n| json!("y".repeat(n))),
    ]
}

fn any_json() -> impl Strategy<Value = Value> {
    leaf().prop_recursive(5, 64, 8, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..8).prop_map(Value::Array),
            prop::collection::vec((prop::sample::select(WORDS), inner), 0..8).prop_map(|kv| {
                Value::Object(kv.into_iter().map(|(k, v)| (k.to_owned(), v)).collect::<Map<_, _>>())
            }),
        ]
    })
}

/// Every place in `value` (as JSON pointers), the root included.
fn places(value: &Value, at: &str, out: &mut Vec<String>) {
    out.push(at.to_owned());
    match value {
        Value::Object(map) => map.iter().for_each(|(k, v)| places(v, &format!("{at}/{k}"), out)),
        Value::Array(items) => {
            items.iter().enumerate().for_each(|(i, v)| places(v, &format!("{at}/{i}"), out));
        }
        _ => {}
    }
}

#[derive(Debug, Clone)]
enum Mutation {
    Replace(usize, Value),
    Remove(usize),
    Insert(usize, &'static str, Value),
    Duplicate(usize),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        (any::<usize>(), any_json()).prop_map(|(i, v)| Mutation::Replace(i, v)),
        any::<usize>().prop_map(Mutation::Remove),
        (any::<usize>(), prop::sample::select(WORDS), leaf())
            .prop_map(|(i, k, v)| Mutation::Insert(i, k, v)),
        any::<usize>().prop_map(Mutation::Duplicate),
    ]
}

fn apply(mut value: Value, m: &Mutation) -> Value {
    let mut all = Vec::new();
    places(&value, "", &mut all);
    let pick = |i: usize| all[i % all.len()].clone();
    match m {
        Mutation::Replace(i, v) => {
            if let Some(slot) = value.pointer_mut(&pick(*i)) {
                *slot = v.clone();
            }
        }
        Mutation::Remove(i) => {
            let at = pick(*i);
            if let Some((parent, key)) = at.rsplit_once('/') {
                match value.pointer_mut(parent) {
                    Some(Value::Object(map)) => {
                        map.remove(key);
                    }
                    Some(Value::Array(items)) => {
                        let k: usize = key.parse().unwrap();
                        items.remove(k);
                    }
                    _ => {}
                }
            }
        }
        Mutation::Insert(i, k, v) => {
            if let Some(Value::Object(map)) = value.pointer_mut(&pick(*i)) {
                map.insert((*k).to_owned(), v.clone());
            }
        }
        Mutation::Duplicate(i) => {
            if let Some(Value::Array(items)) = value.pointer_mut(&pick(*i))
                && let Some(first) = items.first().cloned()
            {
                items.push(first);
            }
        }
    }
    value
}

/// The round-trip property for one input.
fn round_trips(request: &Value) -> Result<(), TestCaseError> {
    if let Ok(message) = Message::parse(request) {
        let stored = serde_json::to_value(&message).unwrap();
        let again = Message::parse(&stored);
        prop_assert!(again.is_ok(), "stored form {stored} of {request} refused: {:?}", again.err());
        prop_assert_eq!(again.unwrap(), message);
        // And through the text the store keeps.
        let text = serde_json::to_string(&stored).unwrap();
        let reread: Value = serde_json::from_str(&text).unwrap();
        prop_assert!(Message::parse(&reread).is_ok(), "stored text {text} refused");
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2_000, ..ProptestConfig::default() })]

    #[test]
    fn never_panics_on_arbitrary_json(request in any_json()) {
        let _ = Message::parse(&request);
        round_trips(&request)?;
    }

    #[test]
    fn never_panics_on_arbitrary_bytes(bytes in prop::collection::vec(any::<u8>(), 0..256)) {
        if let Ok(request) = serde_json::from_slice::<Value>(&bytes) {
            round_trips(&request)?;
        }
    }

    #[test]
    fn mutated_examples_round_trip(
        base in prop::sample::select(fixtures()),
        mutations in prop::collection::vec(mutation(), 0..4),
    ) {
        let request = mutations.iter().fold(base, apply);
        round_trips(&request)?;
    }
}
