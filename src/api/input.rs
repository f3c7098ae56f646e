//! Typed request input: each operation's parameters are one type, deserialised from
//! the parameter tree that [`Params`] parses out of a JSON body, a form body or a query
//! string, and described by the same type in the OpenAPI document.
//!
//! The deserialiser here gives Stripe's errors, with the param's full name in bracket
//! notation (`evidence[due_date]`): a form sends every value as a string, so numbers
//! and booleans are read from strings too; `null` for a required param is a missing
//! param; an empty string unsets a field, so it is refused (`parameter_invalid_empty`,
//! as Stripe words it) except where the field's type gives it that meaning (an
//! update's `""` clears a field; `metadata=""` clears all); and the field types refuse
//! bad values themselves, through [`Rejection`]s.

use std::fmt;

use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use serde::de::{self, DeserializeOwned, DeserializeSeed, Visitor};
use serde_json::{Map, Value};

use super::extract::{content_type, parse_body, read_body};
use super::params::Params;
use crate::app::AppState;
use crate::domain::input::Rejection;
use crate::error::{ApiError, ApiResult, clip};

/// A request body (JSON or form), read into `T`.
pub struct Input<T>(pub T);

impl<T: DeserializeOwned> FromRequest<AppState> for Input<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &AppState) -> ApiResult<Self> {
        let media = content_type(req.headers());
        let bytes = read_body(req, state.config.max_body_bytes).await?;
        Ok(Input(from_params(parse_body(media.as_deref(), &bytes)?)?))
    }
}

/// A query string, in the same bracket notation as form bodies, read into `T`.
pub struct QueryInput<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequestParts<S> for QueryInput<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> ApiResult<Self> {
        let query = parts.uri.query().unwrap_or("");
        Ok(QueryInput(from_params(Params::from_form(query.as_bytes())?)?))
    }
}

/// Reads parameters into `T`, with Stripe's errors.
pub fn from_params<T: DeserializeOwned>(params: Params) -> ApiResult<T> {
    let tree = Value::Object(params.into_map());
    T::deserialize(Node { value: &tree, path: &Path::Root }).map_err(|e| e.at(&Path::Root).into_api())
}

/// Where a value sits in the parameters: the root, or a key under a parent.
enum Path<'a> {
    Root,
    Key(&'a Path<'a>, &'a str),
}

impl Path<'_> {
    /// The name as the caller writes it: `evidence[due_date]`.
    fn name(&self) -> String {
        match self {
            Path::Root => String::new(),
            Path::Key(Path::Root, key) => (*key).to_owned(),
            Path::Key(parent, key) => format!("{}[{key}]", parent.name()),
        }
    }

    /// `name[part]`, or `part` at the root.
    fn child(&self, part: &str) -> String {
        match self {
            Path::Root => part.to_owned(),
            _ => format!("{}[{part}]", self.name()),
        }
    }
}

/// The deserialiser's error: an API error once its param is known, or what serde or
/// a field type reported, still to be placed.
#[derive(Debug)]
pub struct InputError(Problem);

#[derive(Debug)]
enum Problem {
    Api(ApiError),
    Missing(&'static str),
    Unknown(String),
    Rejected(Rejection),
    Other(String),
}

impl InputError {
    fn api(e: ApiError) -> Self {
        InputError(Problem::Api(e))
    }

    /// Places the problem at `path`: a value's problem names the value, a struct's
    /// missing or unknown field names the field under it.
    fn at(self, path: &Path) -> Self {
        let name = path.name();
        InputError(match self.0 {
            Problem::Missing(field) => Problem::Api(ApiError::missing(&path.child(field))),
            Problem::Unknown(field) => Problem::Api(ApiError::unknown(&path.child(&clip(&field)))),
            Problem::Rejected(r) => {
                let param = match r.suffix() {
                    Some(part) => path.child(part),
                    None => name,
                };
                let message = r.message(&param);
                Problem::Api(match r.code() {
                    "resource_missing" => ApiError::Client {
                        status: axum::http::StatusCode::NOT_FOUND,
                        kind: crate::error::ErrorType::InvalidRequestError,
                        code: Some("resource_missing"),
                        message,
                        param: Some(param),
                    },
                    "parameter_missing" => ApiError::missing(&param),
                    code => ApiError::invalid(code, &param, message),
                })
            }
            Problem::Other(message) => {
                Problem::Api(ApiError::invalid("parameter_invalid", &name, format!("Invalid {name}: {message}")))
            }
            settled => settled,
        })
    }

    fn into_api(self) -> ApiError {
        match self.0 {
            Problem::Api(e) => e,
            _ => ApiError::bad_request("Invalid request: the parameters could not be read."),
        }
    }
}

impl fmt::Display for InputError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}", self.0)
    }
}

impl std::error::Error for InputError {}

impl de::Error for InputError {
    fn custom<T: fmt::Display>(msg: T) -> Self {
        let text = msg.to_string();
        InputError(match Rejection::decode(&text) {
            Some(r) => Problem::Rejected(r),
            None => Problem::Other(text),
        })
    }

    fn missing_field(field: &'static str) -> Self {
        InputError(Problem::Missing(field))
    }

    fn unknown_field(field: &str, _expected: &'static [&'static str]) -> Self {
        InputError(Problem::Unknown(field.to_owned()))
    }

    fn unknown_variant(variant: &str, expected: &'static [&'static str]) -> Self {
        InputError(Problem::Rejected(Rejection::new(
            "parameter_invalid_value",
            format!("Invalid {{param}}: must be one of {}, got '{}'.", expected.join(", "), clip(variant)),
        )))
    }
}

/// The name under which an update's field reads `""` and `null` as "clear it"
/// (see `domain::Patch`).
pub const PATCH: &str = crate::domain::PATCH_NAME;

/// One value of the parameter tree, at its path.
struct Node<'v, 'p> {
    value: &'v Value,
    path: &'p Path<'p>,
}

impl Node<'_, '_> {
    fn name(&self) -> String {
        self.path.name()
    }

    fn shown(&self) -> String {
        clip(&match self.value {
            Value::String(s) => s.clone(),
            other => other.to_string(),
        })
    }

    fn missing(&self) -> InputError {
        InputError::api(ApiError::missing(&self.name()))
    }

    /// An empty string where a value is asked: as Stripe says it, `""` unsets a
    /// field, and only an update's fields (and `metadata`) can be unset.
    fn empty(&self) -> InputError {
        let name = self.name();
        InputError::api(ApiError::invalid(
            "parameter_invalid_empty",
            &name,
            format!(
                "You passed an empty string for '{name}'. We assume empty values are an attempt to unset a \
                 parameter; however '{name}' cannot be unset. You should remove '{name}' from your request or \
                 supply a non-empty value."
            ),
        ))
    }

    fn integer(&self) -> Result<i64, InputError> {
        let invalid = |shown: String| {
            InputError::api(ApiError::invalid(
                "parameter_invalid_integer",
                self.name(),
                format!("Invalid integer: {}", clip(&shown)),
            ))
        };
        match self.value {
            Value::Null => Err(self.missing()),
            // JSON's 12.0 is the integer 12 (JSON Schema's reading too).
            Value::Number(n) => n
                .as_i64()
                .or_else(|| n.as_f64().filter(|f| f.fract() == 0.0 && f.abs() < 9.0e15).map(|f| f as i64))
                .ok_or_else(|| invalid(n.to_string())),
            Value::String(s) if s.is_empty() => Err(invalid("(empty)".into())),
            Value::String(s) => parse_decimal_i64(s).ok_or_else(|| invalid(s.clone())),
            other => Err(invalid(other.to_string())),
        }
    }
}

/// The values of a hash whose keys are "0" to "n-1", in that order.
fn indexed(map: &Map<String, Value>) -> Option<Vec<&Value>> {
    if map.is_empty() {
        return None;
    }
    (0..map.len()).map(|i| map.get(&i.to_string())).collect()
}

/// A decimal integer as forms send it: optional sign, digits only.
pub(crate) fn parse_decimal_i64(s: &str) -> Option<i64> {
    let digits = s.strip_prefix('-').unwrap_or(s);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

impl<'de, 'v: 'de, 'p> de::Deserializer<'de> for Node<'v, 'p> {
    type Error = InputError;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, InputError> {
        let path = self.path;
        let out = match self.value {
            Value::Null => visitor.visit_unit(),
            Value::Bool(b) => visitor.visit_bool(*b),
            Value::Number(n) => match (n.as_i64(), n.as_u64()) {
                (Some(i), _) => visitor.visit_i64(i),
                (None, Some(u)) => visitor.visit_u64(u),
                _ => visitor.visit_f64(n.as_f64().unwrap_or(f64::NAN)),
            },
            Value::String(s) => visitor.visit_borrowed_str(s),
            Value::Array(items) => visitor.visit_seq(Items::new(items, path)),
            Value::Object(map) => visitor.visit_map(Entries::new(map, path)),
        };
        out.map_err(|e: InputError| e.at(path))
    }

    fn deserialize_bool<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, InputError> {
        let b = match self.value {
            Value::Bool(b) => *b,
            Value::String(s) if s == "true" => true,
            Value::String(s) if s == "false" => false,
            Value::Null => return Err(self.missing()),
            _ => {
                return Err(InputError::api(ApiError::invalid(
                    "parameter_invalid_boolean",
                    self.name(),
                    format!("Invalid boolean: {}", self.shown()),
                )));
            }
        };
        visitor.visit_bool(b).map_err(|e: InputError| e.at(self.path))
    }

    fn deserialize_i64<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, InputError> {
        let i = self.integer()?;
        visitor.visit_i64(i).map_err(|e: InputError| e.at(self.path))
    }

    fn deserialize_i32<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, InputError> {
        self.deserialize_i64(visitor)
    }

    fn deserialize_u64<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, InputError> {
        self.deserialize_i64(visitor)
    }

    fn deserialize_u32<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, InputError> {
        self.deserialize_i64(visitor)
    }

    fn deserialize_str<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, InputError> {
        match self.value {
            Value::String(s) if s.is_empty() => Err(self.empty()),
            Value::String(s) => visitor.visit_borrowed_str(s).map_err(|e: InputError| e.at(self.path)),
            Value::Null => Err(self.missing()),
            other => Err(InputError::api(ApiError::invalid(
                "parameter_invalid_string",
                self.name(),
                format!("Invalid string: {}", clip(&other.to_string())),
            ))),
        }
    }

    fn deserialize_string<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, InputError> {
        self.deserialize_str(visitor)
    }

    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, InputError> {
        match self.value {
            Value::Null => visitor.visit_none(),
            _ => visitor.visit_some(self),
        }
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        name: &'static str,
        visitor: V,
    ) -> Result<V::Value, InputError> {
        if name == PATCH && (self.value.is_null() || self.value.as_str() == Some("")) {
            return visitor.visit_none();
        }
        visitor.visit_newtype_struct(self)
    }

    fn deserialize_seq<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, InputError> {
        let name = self.name();
        let bad = |shown: String| {
            InputError::api(ApiError::invalid(
                "parameter_invalid_array",
                &name,
                format!("Invalid array: {name} must be a list of strings, got {}", clip(&shown)),
            ))
        };
        match self.value {
            // A form sends a list of one as a plain value (`expand=policy`).
            Value::String(_) => {
                visitor.visit_seq(Items::one(self.value, self.path)).map_err(|e: InputError| e.at(self.path))
            }
            Value::Array(items) => {
                if let Some(item) = items.iter().find(|v| !v.is_string()) {
                    return Err(bad(item.to_string()));
                }
                visitor.visit_seq(Items::new(items, self.path)).map_err(|e: InputError| e.at(self.path))
            }
            // `expand[0]=a&expand[1]=b`: a hash of "0".."n-1" is the list in that order.
            Value::Object(map) => match indexed(map) {
                Some(items) => {
                    if let Some(item) = items.iter().find(|v| !v.is_string()) {
                        return Err(bad(item.to_string()));
                    }
                    let items = Items { items: items.into_iter(), path: self.path };
                    visitor.visit_seq(items).map_err(|e: InputError| e.at(self.path))
                }
                None => Err(bad(Value::Object(map.clone()).to_string())),
            },
            Value::Null => Err(self.missing()),
            other => Err(bad(other.to_string())),
        }
    }

    fn deserialize_map<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, InputError> {
        match self.value {
            Value::Object(map) => {
                visitor.visit_map(Entries::new(map, self.path)).map_err(|e: InputError| e.at(self.path))
            }
            Value::Null => Err(self.missing()),
            _ => {
                let name = self.name();
                Err(InputError::api(ApiError::invalid(
                    "parameter_invalid_object",
                    &name,
                    format!("Invalid hash: {name} must be an object, got {}", self.shown()),
                )))
            }
        }
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, InputError> {
        self.deserialize_map(visitor)
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        _name: &'static str,
        variants: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, InputError> {
        match self.value {
            Value::String(s) => visitor
                .visit_enum(de::value::BorrowedStrDeserializer::<InputError>::new(s))
                .map_err(|e: InputError| e.at(self.path)),
            Value::Null => Err(self.missing()),
            other => Err(InputError(Problem::Rejected(Rejection::new(
                "parameter_invalid_value",
                format!(
                    "Invalid {{param}}: must be one of {}, got '{}'.",
                    variants.join(", "),
                    clip(&other.to_string())
                ),
            )))
            .at(self.path)),
        }
    }

    fn deserialize_ignored_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, InputError> {
        visitor.visit_unit()
    }

    serde::forward_to_deserialize_any! {
        i8 i16 i128 u8 u16 u128 f32 f64 char bytes byte_buf unit unit_struct tuple tuple_struct identifier
    }
}

/// The entries of a hash, each value at its key's path.
struct Entries<'v, 'p> {
    iter: serde_json::map::Iter<'v>,
    path: &'p Path<'p>,
    value: Option<(&'v str, &'v Value)>,
}

impl<'v, 'p> Entries<'v, 'p> {
    fn new(map: &'v Map<String, Value>, path: &'p Path<'p>) -> Self {
        Entries { iter: map.iter(), path, value: None }
    }
}

impl<'de, 'v: 'de, 'p> de::MapAccess<'de> for Entries<'v, 'p> {
    type Error = InputError;

    fn next_key_seed<K: DeserializeSeed<'de>>(&mut self, seed: K) -> Result<Option<K::Value>, InputError> {
        let Some((key, value)) = self.iter.next() else { return Ok(None) };
        self.value = Some((key.as_str(), value));
        seed.deserialize(de::value::BorrowedStrDeserializer::new(key.as_str())).map(Some)
    }

    fn next_value_seed<V: DeserializeSeed<'de>>(&mut self, seed: V) -> Result<V::Value, InputError> {
        let (key, value) = self.value.take().ok_or_else(|| InputError(Problem::Other("no value".into())))?;
        let path = Path::Key(self.path, key);
        match seed.deserialize(Node { value, path: &path }) {
            Ok(v) => Ok(v),
            // Placed here, where the key's path still lives.
            Err(e) => Err(e.at(&path)),
        }
    }
}

/// The items of a list, each at the list's path (an item's error names the list, as
/// Stripe's do).
struct Items<'v, 'p> {
    items: std::vec::IntoIter<&'v Value>,
    path: &'p Path<'p>,
}

impl<'v, 'p> Items<'v, 'p> {
    fn new(items: &'v [Value], path: &'p Path<'p>) -> Self {
        Items { items: items.iter().collect::<Vec<_>>().into_iter(), path }
    }

    fn one(value: &'v Value, path: &'p Path<'p>) -> Self {
        Items { items: vec![value].into_iter(), path }
    }
}

impl<'de, 'v: 'de, 'p> de::SeqAccess<'de> for Items<'v, 'p> {
    type Error = InputError;

    fn next_element_seed<T: DeserializeSeed<'de>>(&mut self, seed: T) -> Result<Option<T::Value>, InputError> {
        let Some(value) = self.items.next() else { return Ok(None) };
        // An empty item is an empty string, not "no list": it is read as one.
        if value.as_str() == Some("") {
            return seed.deserialize(de::value::BorrowedStrDeserializer::<InputError>::new("")).map(Some);
        }
        seed.deserialize(Node { value, path: self.path }).map(Some)
    }
}

#[cfg(test)]
mod tests {
    use serde::Deserialize;

    use super::*;
    use crate::domain::Patch;
    use crate::domain::metadata::{self, MetadataUpdate};
    use crate::domain::money::Amount;

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Evidence {
        invoice_id: String,
        due_date: i64,
        #[allow(dead_code)] // read only to be refused
        description: Option<String>,
    }

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Sample {
        amount: Amount,
        active: Option<bool>,
        evidence: Evidence,
        #[serde(default)]
        score: Patch<i64>,
        #[serde(default, deserialize_with = "metadata::given")]
        metadata: Option<MetadataUpdate>,
        expand: Option<Vec<String>>,
    }

    fn json<T: DeserializeOwned>(body: &str) -> ApiResult<T> {
        from_params(Params::from_json(body.as_bytes()).unwrap())
    }

    fn form<T: DeserializeOwned>(body: &str) -> ApiResult<T> {
        from_params(Params::from_form(body.as_bytes()).unwrap())
    }

    fn param(e: &ApiError) -> &str {
        match e {
            ApiError::Client { param: Some(p), .. } => p,
            other => panic!("no param: {other:?}"),
        }
    }

    #[test]
    fn json_and_form_give_the_same_values() {
        let j: Sample = json(
            r#"{"amount": 120000, "active": true, "evidence": {"invoice_id": "i", "due_date": 5}, "expand": ["a"]}"#,
        )
        .unwrap();
        let f: Sample =
            form("amount=120000&active=true&evidence[invoice_id]=i&evidence[due_date]=5&expand[]=a").unwrap();
        for s in [j, f] {
            assert_eq!(s.amount.get(), 120000);
            assert_eq!(s.active, Some(true));
            assert_eq!((s.evidence.invoice_id.as_str(), s.evidence.due_date), ("i", 5));
            assert_eq!(s.expand, Some(vec!["a".to_owned()]));
            assert_eq!(s.score, Patch::Absent);
        }
    }

    #[test]
    fn indexed_form_keys_are_a_list_where_a_list_is_asked_and_keys_where_a_hash_is() {
        let s: Sample =
            form("amount=1&evidence[invoice_id]=i&evidence[due_date]=5&expand[0]=a&expand[1]=b&metadata[0]=x").unwrap();
        assert_eq!(s.expand, Some(vec!["a".to_owned(), "b".to_owned()]));
        assert_eq!(s.metadata, Some(MetadataUpdate::Merge([("0".into(), Some("x".into()))].into())));
        let err = form::<Sample>("amount=1&evidence[invoice_id]=i&evidence[due_date]=5&expand[1]=a").unwrap_err();
        assert_eq!((err.code(), param(&err)), (Some("parameter_invalid_array"), "expand"));
    }

    #[test]
    fn wrong_types_name_the_param_in_full() {
        let base = r#""amount": 1, "evidence": {"invoice_id": "i", "due_date": 5}"#;
        let cases = [
            (
                r#"{"amount": 1.5, "evidence": {"invoice_id": "i", "due_date": 5}}"#.to_owned(),
                "parameter_invalid_integer",
                "amount",
            ),
            (
                r#"{"amount": "12x", "evidence": {"invoice_id": "i", "due_date": 5}}"#.to_owned(),
                "parameter_invalid_integer",
                "amount",
            ),
            (format!(r#"{{{base}, "active": "yes"}}"#), "parameter_invalid_boolean", "active"),
            (
                r#"{"amount": 1, "evidence": {"invoice_id": {"x": 1}, "due_date": 5}}"#.to_owned(),
                "parameter_invalid_string",
                "evidence[invoice_id]",
            ),
            (
                r#"{"amount": 1, "evidence": {"invoice_id": "i", "due_date": 99999999999999999999}}"#.to_owned(),
                "parameter_invalid_integer",
                "evidence[due_date]",
            ),
            (r#"{"amount": 1, "evidence": {"invoice_id": "i"}}"#.to_owned(), "parameter_missing", "evidence[due_date]"),
            (
                r#"{"amount": 1, "evidence": {"invoice_id": "i", "due_date": 5, "foo": 1}}"#.to_owned(),
                "parameter_unknown",
                "evidence[foo]",
            ),
            (format!(r#"{{{base}, "foo": 1}}"#), "parameter_unknown", "foo"),
            (
                r#"{"amount": 0, "evidence": {"invoice_id": "i", "due_date": 5}}"#.to_owned(),
                "amount_too_small",
                "amount",
            ),
            (format!(r#"{{{base}, "metadata": {{"k": 5}}}}"#), "parameter_invalid_string", "metadata[k]"),
            (format!(r#"{{{base}, "metadata": "x"}}"#), "parameter_invalid_object", "metadata"),
            (format!(r#"{{{base}, "expand": [1]}}"#), "parameter_invalid_array", "expand"),
        ];
        for (body, code, name) in cases {
            let err = json::<Sample>(&body).unwrap_err();
            assert_eq!(err.code(), Some(code), "{body}: {err:?}");
            assert_eq!(param(&err), name, "{body}");
        }
        let err =
            json::<Sample>(r#"{"amount": 1, "evidence": {"invoice_id": "i", "due_date": 5, "foo": 1}}"#).unwrap_err();
        assert_eq!(err.to_string(), "Received unknown parameter: evidence[foo]");
        let err = json::<Sample>(r#"{"amount": 0, "evidence": {"invoice_id": "i", "due_date": 5}}"#).unwrap_err();
        assert_eq!(err.to_string(), "Invalid amount: must be at least 1.");
    }

    #[test]
    fn an_empty_string_unsets_only_what_can_be_unset() {
        // Text: refused, optional or not. A number: not a number.
        let err =
            form::<Sample>("amount=1&evidence[invoice_id]=i&evidence[due_date]=5&evidence[description]=").unwrap_err();
        assert_eq!((err.code(), param(&err)), (Some("parameter_invalid_empty"), "evidence[description]"));
        let err = form::<Sample>("amount=1&evidence[invoice_id]=&evidence[due_date]=5").unwrap_err();
        assert_eq!((err.code(), param(&err)), (Some("parameter_invalid_empty"), "evidence[invoice_id]"));
        assert!(err.to_string().starts_with("You passed an empty string for 'evidence[invoice_id]'."), "{err}");
        let err = form::<Sample>("amount=&evidence[invoice_id]=i&evidence[due_date]=5").unwrap_err();
        assert_eq!(err.to_string(), "Invalid integer: (empty)");
        // An update's field: "" and null clear it.
        let s: Sample = form("amount=1&evidence[invoice_id]=i&evidence[due_date]=5&score=").unwrap();
        assert_eq!(s.score, Patch::Clear);
        let s: Sample =
            json(r#"{"amount": 1, "evidence": {"invoice_id": "i", "due_date": 5}, "score": null}"#).unwrap();
        assert_eq!(s.score, Patch::Clear);
        let s: Sample = form("amount=1&evidence[invoice_id]=i&evidence[due_date]=5&score=7").unwrap();
        assert_eq!(s.score, Patch::Set(7));
        // Metadata: "" clears all, a key set to "" is removed.
        let s: Sample = form("amount=1&evidence[invoice_id]=i&evidence[due_date]=5&metadata=").unwrap();
        assert_eq!(s.metadata, Some(MetadataUpdate::Clear));
        let s: Sample =
            form("amount=1&evidence[invoice_id]=i&evidence[due_date]=5&metadata[a]=1&metadata[b]=").unwrap();
        assert_eq!(
            s.metadata,
            Some(MetadataUpdate::Merge([("a".into(), Some("1".into())), ("b".into(), None)].into()))
        );
        // `null` for a required param is a missing param.
        let err = json::<Sample>(r#"{"amount": null, "evidence": {"invoice_id": "i", "due_date": 5}}"#).unwrap_err();
        assert_eq!(err.to_string(), "Missing required param: amount.");
    }
}
