//! The `previous_attributes` of an update event without turning both views into
//! `serde_json::Value` trees: each top-level field of `before` and `after` is written
//! as a compact fingerprint (the serde data model, tagged and length-prefixed, with no
//! JSON escaping and no allocation per node), and only the fields whose fingerprints
//! differ are turned into values and compared as before. A claim's view, with its
//! review checks, cost three full serialisations per update event the other way.
//!
//! The result is the same as `previous_attributes(&to_value(before), &to_value(after))`:
//! equal fingerprints mean equal serde events, hence equal values; a difference in
//! fingerprints that values do not see (a float's sign of zero, a map's order) is
//! settled by comparing the values of that field.

use std::fmt;
use std::ops::Range;

use serde::Serialize;
use serde::ser::{self, Impossible};
use serde_json::{Map, Value};

use crate::domain::event::{previous_attribute, previous_attributes};

/// The fields of `before` that changed in `after`, with their old values (metadata:
/// the keys that changed, removed keys' old values, added keys as "").
pub fn previous_attributes_of<T: Serialize>(before: &T, after: &T) -> serde_json::Result<Map<String, Value>> {
    let (Ok(old), Ok(new)) = (Fields::of(before), Fields::of(after)) else {
        // Not a struct at the top: compare whole values.
        return Ok(previous_attributes(&serde_json::to_value(before)?, &serde_json::to_value(after)?));
    };
    // The fields whose fingerprints differ, and whether the difference alone settles
    // that their values differ (no float or map inside, not metadata's key by key).
    let mut changed: Vec<&'static str> = Vec::new();
    let mut to_compare: Vec<&'static str> = Vec::new();
    for (i, field) in old.fields.iter().enumerate() {
        let (differs, settled) = match new.find(i, field.name) {
            Some(other) => {
                (old.bytes[field.range.clone()] != new.bytes[other.range.clone()], field.plain && other.plain)
            }
            // Absent after (skipped): the old value is compared with null.
            None => (true, false),
        };
        if differs {
            changed.push(field.name);
            if !settled || field.name == "metadata" {
                to_compare.push(field.name);
            }
        }
    }
    if changed.is_empty() {
        return Ok(Map::new());
    }
    let old_values = pick(before, &changed)?;
    let new_values = pick(after, &to_compare)?;
    let mut out = Map::new();
    for (name, old) in old_values {
        if !to_compare.contains(&name.as_str()) {
            out.insert(name, old);
        } else if let Some(previous) = previous_attribute(&name, &old, new_values.get(&name).unwrap_or(&Value::Null)) {
            out.insert(name, previous);
        }
    }
    Ok(out)
}

/// A struct's top-level fields: each one's fingerprint, as a range of `bytes`.
struct Fields {
    bytes: Vec<u8>,
    fields: Vec<Field>,
}

struct Field {
    name: &'static str,
    range: Range<usize>,
    /// No float and no map inside: values differ exactly when fingerprints do.
    plain: bool,
}

impl Fields {
    fn of<T: Serialize>(value: &T) -> Result<Fields, Error> {
        let mut out = Fields { bytes: Vec::with_capacity(1024), fields: Vec::with_capacity(32) };
        value.serialize(TopLevel(&mut out))?;
        Ok(out)
    }

    /// The field named `name`, expected at `index` (the same type lists its fields in
    /// the same order).
    fn find(&self, index: usize, name: &str) -> Option<&Field> {
        match self.fields.get(index) {
            Some(field) if field.name == name => Some(field),
            _ => self.fields.iter().find(|field| field.name == name),
        }
    }
}

/// The named top-level fields of `value`, as JSON values.
fn pick<T: Serialize>(value: &T, names: &[&'static str]) -> serde_json::Result<Map<String, Value>> {
    let mut out = Map::new();
    value.serialize(TopLevel(&mut Pick { names, out: &mut out })).map_err(ser::Error::custom)?;
    Ok(out)
}

#[derive(Debug)]
struct Error(String);

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Error {}

impl ser::Error for Error {
    fn custom<M: fmt::Display>(msg: M) -> Self {
        Error(msg.to_string())
    }
}

fn not_a_struct<T>() -> Result<T, Error> {
    Err(Error("not a struct".to_owned()))
}

/// What is done with each top-level field of a struct (`TopLevel`).
trait FieldVisitor {
    fn field<T: ?Sized + Serialize>(&mut self, key: &'static str, value: &T) -> Result<(), Error>;
}

/// A serializer that takes a struct only, and hands each of its fields to `V`.
struct TopLevel<'a, V>(&'a mut V);

impl<'a, V: FieldVisitor> ser::Serializer for TopLevel<'a, V> {
    type Ok = ();
    type Error = Error;
    type SerializeSeq = Impossible<(), Error>;
    type SerializeTuple = Impossible<(), Error>;
    type SerializeTupleStruct = Impossible<(), Error>;
    type SerializeTupleVariant = Impossible<(), Error>;
    type SerializeMap = Impossible<(), Error>;
    type SerializeStruct = Self;
    type SerializeStructVariant = Impossible<(), Error>;

    // Anything but a struct at the top: the caller compares whole values instead.
    fn serialize_bool(self, _: bool) -> Result<(), Error> {
        not_a_struct()
    }
    fn serialize_i8(self, _: i8) -> Result<(), Error> {
        not_a_struct()
    }
    fn serialize_i16(self, _: i16) -> Result<(), Error> {
        not_a_struct()
    }
    fn serialize_i32(self, _: i32) -> Result<(), Error> {
        not_a_struct()
    }
    fn serialize_i64(self, _: i64) -> Result<(), Error> {
        not_a_struct()
    }
    fn serialize_u8(self, _: u8) -> Result<(), Error> {
        not_a_struct()
    }
    fn serialize_u16(self, _: u16) -> Result<(), Error> {
        not_a_struct()
    }
    fn serialize_u32(self, _: u32) -> Result<(), Error> {
        not_a_struct()
    }
    fn serialize_u64(self, _: u64) -> Result<(), Error> {
        not_a_struct()
    }
    fn serialize_f32(self, _: f32) -> Result<(), Error> {
        not_a_struct()
    }
    fn serialize_f64(self, _: f64) -> Result<(), Error> {
        not_a_struct()
    }
    fn serialize_char(self, _: char) -> Result<(), Error> {
        not_a_struct()
    }
    fn serialize_str(self, _: &str) -> Result<(), Error> {
        not_a_struct()
    }
    fn serialize_bytes(self, _: &[u8]) -> Result<(), Error> {
        not_a_struct()
    }
    fn serialize_none(self) -> Result<(), Error> {
        not_a_struct()
    }
    fn serialize_some<T: ?Sized + Serialize>(self, _: &T) -> Result<(), Error> {
        not_a_struct()
    }
    fn serialize_unit(self) -> Result<(), Error> {
        not_a_struct()
    }
    fn serialize_unit_struct(self, _: &'static str) -> Result<(), Error> {
        not_a_struct()
    }
    fn serialize_unit_variant(self, _: &'static str, _: u32, _: &'static str) -> Result<(), Error> {
        not_a_struct()
    }
    fn serialize_newtype_struct<T: ?Sized + Serialize>(self, _: &'static str, _: &T) -> Result<(), Error> {
        not_a_struct()
    }
    fn serialize_newtype_variant<T: ?Sized + Serialize>(
        self,
        _: &'static str,
        _: u32,
        _: &'static str,
        _: &T,
    ) -> Result<(), Error> {
        not_a_struct()
    }
    fn serialize_seq(self, _: Option<usize>) -> Result<Self::SerializeSeq, Error> {
        not_a_struct()
    }
    fn serialize_tuple(self, _: usize) -> Result<Self::SerializeTuple, Error> {
        not_a_struct()
    }
    fn serialize_tuple_struct(self, _: &'static str, _: usize) -> Result<Self::SerializeTupleStruct, Error> {
        not_a_struct()
    }
    fn serialize_tuple_variant(
        self,
        _: &'static str,
        _: u32,
        _: &'static str,
        _: usize,
    ) -> Result<Self::SerializeTupleVariant, Error> {
        not_a_struct()
    }
    fn serialize_map(self, _: Option<usize>) -> Result<Self::SerializeMap, Error> {
        not_a_struct()
    }
    fn serialize_struct_variant(
        self,
        _: &'static str,
        _: u32,
        _: &'static str,
        _: usize,
    ) -> Result<Self::SerializeStructVariant, Error> {
        not_a_struct()
    }

    fn serialize_struct(self, _: &'static str, _: usize) -> Result<Self, Error> {
        Ok(self)
    }
}

impl<V: FieldVisitor> ser::SerializeStruct for TopLevel<'_, V> {
    type Ok = ();
    type Error = Error;

    fn serialize_field<T: ?Sized + Serialize>(&mut self, key: &'static str, value: &T) -> Result<(), Error> {
        self.0.field(key, value)
    }

    fn end(self) -> Result<(), Error> {
        Ok(())
    }
}

/// Each field's fingerprint.
impl FieldVisitor for Fields {
    fn field<T: ?Sized + Serialize>(&mut self, key: &'static str, value: &T) -> Result<(), Error> {
        let start = self.bytes.len();
        let mut fingerprint = Fingerprint { bytes: &mut self.bytes, plain: true };
        value.serialize(&mut fingerprint)?;
        let plain = fingerprint.plain;
        let end = self.bytes.len();
        self.fields.push(Field { name: key, range: start..end, plain });
        Ok(())
    }
}

/// The named fields, as JSON values.
struct Pick<'a> {
    names: &'a [&'static str],
    out: &'a mut Map<String, Value>,
}

impl FieldVisitor for Pick<'_> {
    fn field<T: ?Sized + Serialize>(&mut self, key: &'static str, value: &T) -> Result<(), Error> {
        if self.names.contains(&key) {
            let value = serde_json::to_value(value).map_err(|e| Error(e.to_string()))?;
            self.out.insert(key.to_owned(), value);
        }
        Ok(())
    }
}

/// The serde data model written as tagged bytes: every value begins with its tag,
/// strings and bytes carry their length, compounds end with `END`, so one sequence of
/// bytes is one sequence of serde events.
struct Fingerprint<'a> {
    bytes: &'a mut Vec<u8>,
    /// No float or map written: two values whose serde events differ differ as JSON
    /// values too. (Floats: -0.0 equals 0.0; maps: a hash map's order.)
    plain: bool,
}

mod tag {
    pub const BOOL: u8 = 1;
    pub const INT: u8 = 2;
    pub const UINT: u8 = 3;
    pub const INT128: u8 = 4;
    pub const UINT128: u8 = 5;
    pub const FLOAT: u8 = 6;
    pub const CHAR: u8 = 7;
    pub const STR: u8 = 8;
    pub const BYTES: u8 = 9;
    pub const NONE: u8 = 10;
    pub const SOME: u8 = 11;
    pub const UNIT: u8 = 12;
    pub const UNIT_VARIANT: u8 = 13;
    pub const NEWTYPE_VARIANT: u8 = 14;
    pub const SEQ: u8 = 15;
    pub const TUPLE_VARIANT: u8 = 16;
    pub const MAP: u8 = 17;
    pub const STRUCT: u8 = 18;
    pub const STRUCT_VARIANT: u8 = 19;
    pub const END: u8 = 20;
}

impl Fingerprint<'_> {
    fn tagged(&mut self, tag: u8, bytes: &[u8]) {
        self.bytes.push(tag);
        self.bytes.extend_from_slice(bytes);
    }

    fn text(&mut self, tag: u8, bytes: &[u8]) {
        self.tagged(tag, &(bytes.len() as u64).to_le_bytes());
        self.bytes.extend_from_slice(bytes);
    }
}

impl<'a, 'b> ser::Serializer for &'a mut Fingerprint<'b> {
    type Ok = ();
    type Error = Error;
    type SerializeSeq = Self;
    type SerializeTuple = Self;
    type SerializeTupleStruct = Self;
    type SerializeTupleVariant = Self;
    type SerializeMap = Self;
    type SerializeStruct = Self;
    type SerializeStructVariant = Self;

    fn serialize_bool(self, v: bool) -> Result<(), Error> {
        self.tagged(tag::BOOL, &[v as u8]);
        Ok(())
    }
    fn serialize_i8(self, v: i8) -> Result<(), Error> {
        self.serialize_i64(v.into())
    }
    fn serialize_i16(self, v: i16) -> Result<(), Error> {
        self.serialize_i64(v.into())
    }
    fn serialize_i32(self, v: i32) -> Result<(), Error> {
        self.serialize_i64(v.into())
    }
    fn serialize_i64(self, v: i64) -> Result<(), Error> {
        self.tagged(tag::INT, &v.to_le_bytes());
        Ok(())
    }
    fn serialize_i128(self, v: i128) -> Result<(), Error> {
        self.tagged(tag::INT128, &v.to_le_bytes());
        Ok(())
    }
    fn serialize_u8(self, v: u8) -> Result<(), Error> {
        self.serialize_u64(v.into())
    }
    fn serialize_u16(self, v: u16) -> Result<(), Error> {
        self.serialize_u64(v.into())
    }
    fn serialize_u32(self, v: u32) -> Result<(), Error> {
        self.serialize_u64(v.into())
    }
    fn serialize_u64(self, v: u64) -> Result<(), Error> {
        self.tagged(tag::UINT, &v.to_le_bytes());
        Ok(())
    }
    fn serialize_u128(self, v: u128) -> Result<(), Error> {
        self.tagged(tag::UINT128, &v.to_le_bytes());
        Ok(())
    }
    fn serialize_f32(self, v: f32) -> Result<(), Error> {
        self.serialize_f64(v.into())
    }
    fn serialize_f64(self, v: f64) -> Result<(), Error> {
        self.plain = false;
        self.tagged(tag::FLOAT, &v.to_bits().to_le_bytes());
        Ok(())
    }
    fn serialize_char(self, v: char) -> Result<(), Error> {
        self.tagged(tag::CHAR, &u32::from(v).to_le_bytes());
        Ok(())
    }
    fn serialize_str(self, v: &str) -> Result<(), Error> {
        self.text(tag::STR, v.as_bytes());
        Ok(())
    }
    fn serialize_bytes(self, v: &[u8]) -> Result<(), Error> {
        self.text(tag::BYTES, v);
        Ok(())
    }
    fn serialize_none(self) -> Result<(), Error> {
        self.tagged(tag::NONE, &[]);
        Ok(())
    }
    fn serialize_some<T: ?Sized + Serialize>(self, value: &T) -> Result<(), Error> {
        self.tagged(tag::SOME, &[]);
        value.serialize(self)
    }
    fn serialize_unit(self) -> Result<(), Error> {
        self.tagged(tag::UNIT, &[]);
        Ok(())
    }
    fn serialize_unit_struct(self, _: &'static str) -> Result<(), Error> {
        self.serialize_unit()
    }
    fn serialize_unit_variant(self, _: &'static str, _: u32, variant: &'static str) -> Result<(), Error> {
        self.text(tag::UNIT_VARIANT, variant.as_bytes());
        Ok(())
    }
    fn serialize_newtype_struct<T: ?Sized + Serialize>(self, _: &'static str, value: &T) -> Result<(), Error> {
        value.serialize(self)
    }
    fn serialize_newtype_variant<T: ?Sized + Serialize>(
        self,
        _: &'static str,
        _: u32,
        variant: &'static str,
        value: &T,
    ) -> Result<(), Error> {
        self.text(tag::NEWTYPE_VARIANT, variant.as_bytes());
        value.serialize(self)
    }
    fn serialize_seq(self, _: Option<usize>) -> Result<Self, Error> {
        self.tagged(tag::SEQ, &[]);
        Ok(self)
    }
    fn serialize_tuple(self, len: usize) -> Result<Self, Error> {
        self.serialize_seq(Some(len))
    }
    fn serialize_tuple_struct(self, _: &'static str, len: usize) -> Result<Self, Error> {
        self.serialize_seq(Some(len))
    }
    fn serialize_tuple_variant(self, _: &'static str, _: u32, variant: &'static str, _: usize) -> Result<Self, Error> {
        self.text(tag::TUPLE_VARIANT, variant.as_bytes());
        Ok(self)
    }
    fn serialize_map(self, _: Option<usize>) -> Result<Self, Error> {
        self.plain = false;
        self.tagged(tag::MAP, &[]);
        Ok(self)
    }
    fn serialize_struct(self, _: &'static str, _: usize) -> Result<Self, Error> {
        self.tagged(tag::STRUCT, &[]);
        Ok(self)
    }
    fn serialize_struct_variant(self, _: &'static str, _: u32, variant: &'static str, _: usize) -> Result<Self, Error> {
        self.text(tag::STRUCT_VARIANT, variant.as_bytes());
        Ok(self)
    }
}

/// The end of a compound; its elements delimit themselves.
fn end(fp: &mut Fingerprint<'_>) -> Result<(), Error> {
    fp.tagged(tag::END, &[]);
    Ok(())
}

macro_rules! elements {
    ($($trait:ident :: $method:ident),+ $(,)?) => {
        $(impl ser::$trait for &mut Fingerprint<'_> {
            type Ok = ();
            type Error = Error;

            fn $method<T: ?Sized + Serialize>(&mut self, value: &T) -> Result<(), Error> {
                value.serialize(&mut **self)
            }

            fn end(self) -> Result<(), Error> {
                end(self)
            }
        })+
    };
}

elements!(
    SerializeSeq::serialize_element,
    SerializeTuple::serialize_element,
    SerializeTupleStruct::serialize_field,
    SerializeTupleVariant::serialize_field,
);

impl ser::SerializeMap for &mut Fingerprint<'_> {
    type Ok = ();
    type Error = Error;

    fn serialize_key<T: ?Sized + Serialize>(&mut self, key: &T) -> Result<(), Error> {
        key.serialize(&mut **self)
    }

    fn serialize_value<T: ?Sized + Serialize>(&mut self, value: &T) -> Result<(), Error> {
        value.serialize(&mut **self)
    }

    fn end(self) -> Result<(), Error> {
        end(self)
    }
}

macro_rules! fields {
    ($($trait:ident),+ $(,)?) => {
        $(impl ser::$trait for &mut Fingerprint<'_> {
            type Ok = ();
            type Error = Error;

            fn serialize_field<T: ?Sized + Serialize>(&mut self, key: &'static str, value: &T) -> Result<(), Error> {
                self.text(tag::STR, key.as_bytes());
                value.serialize(&mut **self)
            }

            fn end(self) -> Result<(), Error> {
                end(self)
            }
        })+
    };
}

fields!(SerializeStruct, SerializeStructVariant);

#[cfg(test)]
mod tests {
    use std::collections::{BTreeMap, HashMap};

    use serde::Serialize;
    use serde_json::json;

    use super::*;

    #[derive(Serialize, Clone)]
    struct Nested {
        label: String,
        amounts: Vec<i64>,
        flag: Option<bool>,
    }

    #[derive(Serialize, Clone, Copy)]
    #[serde(rename_all = "snake_case")]
    enum Status {
        Open,
        Closed,
    }

    #[derive(Serialize, Clone)]
    struct View {
        id: String,
        status: Status,
        amount: i64,
        ratio: f64,
        note: Option<String>,
        nested: Nested,
        items: Vec<Nested>,
        metadata: BTreeMap<String, String>,
        counts: HashMap<String, i64>,
        #[serde(skip_serializing_if = "Option::is_none")]
        secret: Option<String>,
    }

    fn view() -> View {
        let nested = Nested { label: "a".into(), amounts: vec![1, 2], flag: None };
        View {
            id: "x_1".into(),
            status: Status::Open,
            amount: 100,
            ratio: 0.0,
            note: None,
            nested: nested.clone(),
            items: vec![nested.clone(), nested],
            metadata: BTreeMap::from([("a".into(), "1".into()), ("b".into(), "2".into())]),
            counts: (0..20).map(|i| (format!("k{i}"), i)).collect(),
            secret: Some("s".into()),
        }
    }

    /// What the events wrote before: both views as values, compared whole.
    fn by_values(before: &View, after: &View) -> Map<String, Value> {
        previous_attributes(&serde_json::to_value(before).unwrap(), &serde_json::to_value(after).unwrap())
    }

    fn agree(before: &View, after: &View) -> Map<String, Value> {
        let fast = previous_attributes_of(before, after).unwrap();
        assert_eq!(fast, by_values(before, after));
        fast
    }

    #[test]
    fn an_unchanged_view_has_no_previous_attributes() {
        assert!(agree(&view(), &view()).is_empty());
    }

    #[test]
    fn changed_fields_carry_their_old_values_as_the_values_diff_did() {
        let before = view();
        let mut after = view();
        after.status = Status::Closed;
        after.amount = 250;
        after.note = Some("late".into());
        after.nested.flag = Some(true);
        after.items[1].amounts.push(3);
        after.metadata.remove("b");
        after.metadata.insert("c".into(), "3".into());
        assert_eq!(
            Value::Object(agree(&before, &after)),
            json!({
                "status": "open",
                "amount": 100,
                "note": null,
                "nested": {"label": "a", "amounts": [1, 2], "flag": null},
                "items": [{"label": "a", "amounts": [1, 2], "flag": null}, {"label": "a", "amounts": [1, 2], "flag": null}],
                "metadata": {"b": "2", "c": ""},
            })
        );
    }

    #[test]
    fn differences_only_the_bytes_show_are_not_changes() {
        let before = view();
        let mut after = view();
        // Equal as values: a zero's sign, and a hash map built in another order.
        after.ratio = -0.0;
        after.counts = (0..20).rev().map(|i| (format!("k{i}"), i)).collect();
        assert!(agree(&before, &after).is_empty());
    }

    #[test]
    fn a_field_skipped_after_is_compared_with_null() {
        let before = view();
        let mut after = view();
        after.secret = None;
        assert_eq!(Value::Object(agree(&before, &after)), json!({"secret": "s"}));
        // Skipped before and present after: not an attribute of `before`, as with values.
        assert!(agree(&after, &before).is_empty());
    }

    #[test]
    fn a_value_that_is_not_a_struct_is_compared_whole() {
        let before = json!({"a": 1, "b": 2});
        let after = json!({"a": 1, "b": 3});
        assert_eq!(Value::Object(previous_attributes_of(&before, &after).unwrap()), json!({"b": 2}));
    }

    #[test]
    fn strings_that_run_together_differently_differ() {
        // Length prefixes keep ["ab", "c"] apart from ["a", "bc"].
        #[derive(Serialize)]
        struct Pair {
            parts: Vec<&'static str>,
        }
        let fast = previous_attributes_of(&Pair { parts: vec!["ab", "c"] }, &Pair { parts: vec!["a", "bc"] }).unwrap();
        assert_eq!(Value::Object(fast), json!({"parts": ["ab", "c"]}));
    }
}
