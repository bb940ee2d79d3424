use super::*;
use serde::Serialize;
use std::collections::BTreeMap;

/// Both write the same bytes, or both refuse; true when both wrote.
fn same_as_serde_json<T: Serialize + ?Sized>(value: &T) -> bool {
    let ours = to_string(value).map_err(|e| e.to_string());
    let theirs = serde_json::to_string(value).map_err(|e| e.to_string());
    match (&ours, &theirs) {
        (Ok(a), Ok(b)) => {
            assert_eq!(a, b);
            true
        }
        (Err(_), Err(_)) => false,
        _ => panic!("ours {ours:?}, serde_json {theirs:?}"),
    }
}

#[derive(Serialize)]
enum Shape {
    Unit,
    Newtype(u8),
    Tuple(i32, String),
    Struct { a: Option<f64>, b: Vec<()> },
}

#[derive(Serialize)]
struct Record<'a> {
    name: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    skipped: Option<u8>,
    shapes: Vec<Shape>,
    #[serde(flatten)]
    extra: BTreeMap<String, i64>,
    bytes: &'a serde_bytes_like::Bytes,
    raw: Box<serde_json::value::RawValue>,
    tuple: (u128, i128, char, bool),
    unit: (),
}

mod serde_bytes_like {
    /// Serializes through `serialize_bytes`, which serde_json writes as an array.
    pub struct Bytes(pub Vec<u8>);
    impl serde::Serialize for Bytes {
        fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
            s.serialize_bytes(&self.0)
        }
    }
}

#[test]
fn every_string_escapes_as_serde_json_escapes_it() {
    // Every byte that needs an escape, at every offset of an eight-byte word and across
    // word boundaries, between plain ASCII and multi-byte UTF-8.
    let specials: Vec<char> = (0u8..0x20)
        .map(char::from)
        .chain(['"', '\\', '\u{7f}', 'é', '€', '😀', '/'])
        .collect();
    for &special in &specials {
        for before in 0..18 {
            for after in [0, 1, 7, 8, 9] {
                let text: String = "a".repeat(before)
                    + &special.to_string()
                    + &"ü".repeat(after)
                    + &special.to_string();
                assert!(same_as_serde_json(&text));
            }
        }
    }
    assert!(same_as_serde_json(""));
    assert!(same_as_serde_json(
        "plain ascii text that is longer than a word"
    ));
    assert!(same_as_serde_json("\"\"\"\"\"\"\"\"\"\\\\\\"));
}

#[test]
fn every_kind_of_value_is_written_as_serde_json_writes_it() {
    let record = Record {
        name: "x\ny",
        skipped: None,
        shapes: vec![
            Shape::Unit,
            Shape::Newtype(7),
            Shape::Tuple(-3, "t".into()),
            Shape::Struct {
                a: Some(f64::NAN),
                b: vec![(), ()],
            },
            Shape::Struct { a: None, b: vec![] },
        ],
        extra: [("k\"ey".to_string(), -1), ("z".to_string(), i64::MIN)].into(),
        bytes: &serde_bytes_like::Bytes(vec![0, 255, 10]),
        raw: serde_json::value::RawValue::from_string("{\"a\": [1, 2]}".into()).unwrap(),
        tuple: (u128::MAX, i128::MIN, '\u{1}', false),
        unit: (),
    };
    assert!(same_as_serde_json(&record));
    for f in [
        0.0,
        -0.0,
        1.0,
        0.1,
        1e16,
        1e-7,
        1700067829.817564,
        f64::MAX,
        f64::MIN_POSITIVE,
        f64::INFINITY,
    ] {
        same_as_serde_json(&f);
        same_as_serde_json(&(f as f32));
    }
    let numeric_keys: BTreeMap<u16, &str> = [(1000, "a"), (4000, "b")].into();
    assert!(same_as_serde_json(&numeric_keys));
    let bool_keys: BTreeMap<bool, u8> = [(true, 1)].into();
    same_as_serde_json(&bool_keys);
    let optional_keys: BTreeMap<Option<&str>, u8> = [(Some("k"), 1)].into();
    assert!(same_as_serde_json(&optional_keys));
    let missing_keys: BTreeMap<Option<&str>, u8> = [(None, 1)].into();
    assert!(!same_as_serde_json(&missing_keys));
    let char_keys: BTreeMap<char, u8> = [('"', 1)].into();
    same_as_serde_json(&char_keys);
    let bad_keys: BTreeMap<Vec<u8>, u8> = [(vec![1], 1)].into();
    assert!(!same_as_serde_json(&bad_keys));
    same_as_serde_json(&serde_json::json!({"a": [1, 2.5, null, "s", {"b": true}]}));
}

/// Characters weighted towards the ones that need escaping and the multi-byte ones next to them.
fn tricky_char() -> impl proptest::strategy::Strategy<Value = char> {
    use proptest::prelude::*;
    prop_oneof![
        3 => proptest::char::range('\u{0}', '\u{1f}'),
        3 => proptest::sample::select(vec!['"', '\\', '/', '\u{7f}']),
        4 => proptest::char::range('a', 'z'),
        2 => any::<char>(),
    ]
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig { cases: 2000, ..Default::default() })]

    /// Any string, whatever its length and where its escapes fall, as serde_json writes it;
    /// also as a map key and inside a record.
    #[test]
    fn prop_any_string_is_written_as_serde_json_writes_it(
        chars in proptest::collection::vec(tricky_char(), 0..70),
    ) {
        let text: String = chars.into_iter().collect();
        proptest::prop_assert!(same_as_serde_json(&text));
        let keyed: BTreeMap<&str, &str> = [(text.as_str(), text.as_str())].into();
        proptest::prop_assert!(same_as_serde_json(&keyed));
    }
}
