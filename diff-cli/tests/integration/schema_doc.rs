//! The JSON output validates against the published schema (docs/output-schema.json),
//! checked by a small validator for the keywords that schema uses.

use serde_json::Value;

use crate::harness::{branch, diff_json};

fn resolve<'a>(root: &'a Value, s: &'a Value) -> &'a Value {
    match s.get("$ref").and_then(Value::as_str) {
        Some(r) => {
            let name = r.strip_prefix("#/$defs/").expect("local ref");
            &root["$defs"][name]
        }
        None => s,
    }
}

fn type_ok(t: &str, v: &Value) -> bool {
    match t {
        "object" => v.is_object(),
        "array" => v.is_array(),
        "string" => v.is_string(),
        "integer" => v.is_i64() || v.is_u64(),
        "number" => v.is_number(),
        "boolean" => v.is_boolean(),
        "null" => v.is_null(),
        _ => false,
    }
}

pub fn validate(root: &Value, schema: &Value, v: &Value, path: &str, errors: &mut Vec<String>) {
    let s = resolve(root, schema);
    if let Some(t) = s.get("type") {
        let ok = match t {
            Value::String(t) => type_ok(t, v),
            Value::Array(ts) => ts.iter().any(|t| type_ok(t.as_str().unwrap(), v)),
            _ => true,
        };
        if !ok {
            errors.push(format!("{path}: expected {t}, got {v}"));
            return;
        }
    }
    if let Some(e) = s.get("enum").and_then(Value::as_array) {
        if !e.contains(v) {
            errors.push(format!("{path}: {v} not in {e:?}"));
        }
    }
    if let Some(c) = s.get("const") {
        if c != v {
            errors.push(format!("{path}: {v} is not {c}"));
        }
    }
    if let Some(obj) = v.as_object() {
        for r in s.get("required").and_then(Value::as_array).into_iter().flatten() {
            if !obj.contains_key(r.as_str().unwrap()) {
                errors.push(format!("{path}: missing {r}"));
            }
        }
        for (k, val) in obj {
            if let Some(ps) = s.get("properties").and_then(|p| p.get(k)) {
                validate(root, ps, val, &format!("{path}.{k}"), errors);
            } else if let Some(ap) = s.get("additionalProperties") {
                validate(root, ap, val, &format!("{path}.{k}"), errors);
            }
        }
    }
    if let (Some(items), Some(arr)) = (s.get("items"), v.as_array()) {
        for (i, x) in arr.iter().enumerate() {
            validate(root, items, x, &format!("{path}[{i}]"), errors);
        }
    }
}

#[test]
fn json_output_matches_published_schema() {
    let schema: Value = serde_json::from_str(include_str!("../../../docs/output-schema.json")).expect("schema is JSON");
    let pair = branch(
        "jsonschema",
        "CREATE TABLE a (id int PRIMARY KEY, v text, gone int); INSERT INTO a SELECT i, 'x', i FROM generate_series(1, 5) i;
         CREATE TABLE k (v int); INSERT INTO k VALUES (1), (1);
         CREATE TABLE u (code text NOT NULL UNIQUE, v int); INSERT INTO u VALUES ('a', 1);",
        "UPDATE a SET v = 'y' WHERE id = 1; DELETE FROM a WHERE id = 2; INSERT INTO a VALUES (6, NULL, 0);
         ALTER TABLE a DROP COLUMN gone; DELETE FROM k WHERE ctid = (SELECT min(ctid) FROM k); UPDATE u SET v = 2;",
    );
    let (_, doc) = diff_json(&pair, &[]);
    let mut errors = vec![];
    validate(&schema, &schema, &doc, "$", &mut errors);
    assert!(errors.is_empty(), "{errors:#?}");
    // The validator itself rejects a broken document.
    let mut broken = doc.clone();
    broken["tables"][0]["rows"][0]["op"] = Value::String("upsert".into());
    broken.as_object_mut().unwrap().remove("summary");
    let mut errors = vec![];
    validate(&schema, &schema, &broken, "$", &mut errors);
    assert_eq!(errors.len(), 2, "{errors:#?}");
}
