//! Request parameters: one parser for JSON bodies, form bodies and query strings.
//!
//! Every source becomes a JSON-like tree; handlers then take typed values out of it
//! by name, and whatever is left over is an unknown parameter. Form values are all
//! strings, so the typed getters accept `"42"` and `"true"` as well as JSON's own
//! numbers and booleans: a request means the same, and fails the same, either way.

use serde_json::{Map, Value};

pub use crate::domain::Patch;
use crate::domain::metadata::MetadataUpdate;
use crate::domain::money::{Amount, AmountError, Currency};
use crate::error::{ApiError, ApiResult, clip};
use crate::ids::Kind;

/// The parameters of one request, or of one nested hash within it (`evidence`).
#[derive(Debug, Default)]
pub struct Params {
    map: Map<String, Value>,
    /// `evidence` for the hash under `evidence`: nested names read `evidence[due_date]`.
    parent: Option<String>,
}

impl Params {
    pub fn empty() -> Self {
        Params::default()
    }

    /// A JSON body: must be an object.
    pub fn from_json(bytes: &[u8]) -> ApiResult<Self> {
        // No body at all (JSON's own whitespace only) is no parameters.
        if bytes.iter().all(|b| matches!(b, b' ' | b'\t' | b'\n' | b'\r')) {
            return Ok(Params::empty());
        }
        match serde_json::from_slice::<Value>(bytes) {
            Ok(Value::Object(map)) => {
                refuse_nul(&map, None)?;
                Ok(Params { map, parent: None })
            }
            Ok(_) => Err(ApiError::bad_request("Invalid request body: the JSON body must be an object.")),
            Err(e) => Err(ApiError::bad_request(format!(
                "Invalid request body: the body is not valid JSON ({}).",
                json_error_summary(&e)
            ))),
        }
    }

    /// A form body or query string in Stripe's bracket notation.
    pub fn from_form(bytes: &[u8]) -> ApiResult<Self> {
        let pairs: Vec<(String, String)> = serde_urlencoded::from_bytes(bytes).map_err(|_| {
            ApiError::bad_request("Invalid request: the form body or query string could not be decoded.")
        })?;
        let mut root = Map::new();
        for (key, value) in pairs {
            insert_bracketed(&mut root, &key, value)?;
        }
        refuse_nul(&root, None)?;
        Ok(Params { map: root, parent: None })
    }

    /// The full name of a param, as the caller would write it.
    pub fn name(&self, key: &str) -> String {
        match &self.parent {
            Some(p) => format!("{p}[{key}]"),
            None => key.to_owned(),
        }
    }

    /// Fails on the first parameter not in `known`. (`expand` is taken out first, by
    /// the routes whose objects can expand it.)
    pub fn allow(&self, known: &[&str]) -> ApiResult<()> {
        match self.map.keys().find(|k| !known.contains(&k.as_str())) {
            Some(k) => Err(ApiError::unknown(&self.name(k))),
            None => Ok(()),
        }
    }

    /// The parameters in a canonical form (keys sorted), to compare two requests.
    pub fn canonical(&self) -> String {
        serde_json::Value::Object(self.map.clone()).to_string()
    }

    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }

    pub fn contains(&self, key: &str) -> bool {
        self.map.contains_key(key)
    }

    fn take(&mut self, key: &str) -> Option<Value> {
        self.map.remove(key)
    }

    /// An optional string; `""` and `null` count as absent.
    pub fn string(&mut self, key: &str) -> ApiResult<Option<String>> {
        match self.patch_string(key)? {
            Patch::Set(s) => Ok(Some(s)),
            Patch::Absent | Patch::Clear => Ok(None),
        }
    }

    pub fn req_string(&mut self, key: &str) -> ApiResult<String> {
        self.string(key)?.ok_or_else(|| ApiError::missing(&self.name(key)))
    }

    /// A string of at most `max` characters.
    pub fn bounded_string(&mut self, key: &str, max: usize) -> ApiResult<Option<String>> {
        let s = self.string(key)?;
        self.check_len(key, s.as_deref(), max)?;
        Ok(s)
    }

    fn check_len(&self, key: &str, s: Option<&str>, max: usize) -> ApiResult<()> {
        if s.is_some_and(|s| s.chars().count() > max) {
            return Err(ApiError::invalid(
                "invalid_string_length",
                self.name(key),
                format!("Invalid {}: must be at most {max} characters.", self.name(key)),
            ));
        }
        Ok(())
    }

    /// A string field of an update, where `""` or `null` clears it.
    pub fn patch_string(&mut self, key: &str) -> ApiResult<Patch<String>> {
        match self.take(key) {
            None => Ok(Patch::Absent),
            Some(Value::Null) => Ok(Patch::Clear),
            Some(Value::String(s)) if s.is_empty() => Ok(Patch::Clear),
            Some(Value::String(s)) => Ok(Patch::Set(s)),
            Some(other) => Err(ApiError::invalid(
                "parameter_invalid_string",
                self.name(key),
                format!("Invalid string: {}", clip(&other.to_string())),
            )),
        }
    }

    pub fn patch_bounded_string(&mut self, key: &str, max: usize) -> ApiResult<Patch<String>> {
        let p = self.patch_string(key)?;
        if let Patch::Set(s) = &p {
            self.check_len(key, Some(s), max)?;
        }
        Ok(p)
    }

    /// An integer field of an update, where `""` or `null` clears it.
    pub fn patch_int(&mut self, key: &str) -> ApiResult<Patch<i64>> {
        let invalid = |name: String, shown: String| {
            ApiError::invalid("parameter_invalid_integer", name, format!("Invalid integer: {}", clip(&shown)))
        };
        match self.take(key) {
            None => Ok(Patch::Absent),
            Some(Value::Null) => Ok(Patch::Clear),
            Some(Value::String(s)) if s.is_empty() => Ok(Patch::Clear),
            Some(Value::Number(n)) => n.as_i64().map(Patch::Set).ok_or_else(|| invalid(self.name(key), n.to_string())),
            Some(Value::String(s)) => match parse_decimal_i64(&s) {
                Some(i) => Ok(Patch::Set(i)),
                None => Err(invalid(self.name(key), s)),
            },
            Some(other) => Err(invalid(self.name(key), other.to_string())),
        }
    }

    /// An optional integer. `null` is absent; `""` is not an integer (only updates
    /// use it, to clear a field: see `patch_int`).
    pub fn int(&mut self, key: &str) -> ApiResult<Option<i64>> {
        if self.map.get(key).is_some_and(|v| v.as_str() == Some("")) {
            return Err(ApiError::invalid("parameter_invalid_integer", self.name(key), "Invalid integer: (empty)"));
        }
        match self.patch_int(key)? {
            Patch::Set(i) => Ok(Some(i)),
            Patch::Absent | Patch::Clear => Ok(None),
        }
    }

    pub fn req_int(&mut self, key: &str) -> ApiResult<i64> {
        self.int(key)?.ok_or_else(|| ApiError::missing(&self.name(key)))
    }

    /// An integer within `lo..=hi`.
    pub fn int_in(&mut self, key: &str, (lo, hi): (i64, i64)) -> ApiResult<Option<i64>> {
        let v = self.int(key)?;
        if let Some(i) = v
            && (i < lo || i > hi)
        {
            return Err(ApiError::invalid(
                "parameter_out_of_range",
                self.name(key),
                format!("Invalid {}: must be between {lo} and {hi}, got {i}.", self.name(key)),
            ));
        }
        Ok(v)
    }

    pub fn req_int_in(&mut self, key: &str, range: (i64, i64)) -> ApiResult<i64> {
        self.int_in(key, range)?.ok_or_else(|| ApiError::missing(&self.name(key)))
    }

    pub fn bool(&mut self, key: &str) -> ApiResult<Option<bool>> {
        match self.take(key) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::Bool(b)) => Ok(Some(b)),
            Some(Value::String(s)) if s == "true" => Ok(Some(true)),
            Some(Value::String(s)) if s == "false" => Ok(Some(false)),
            Some(other) => Err(ApiError::invalid(
                "parameter_invalid_boolean",
                self.name(key),
                format!("Invalid boolean: {}", clip(&display(&other))),
            )),
        }
    }

    /// A nested hash, such as `evidence`.
    pub fn object(&mut self, key: &str) -> ApiResult<Option<Params>> {
        let name = self.name(key);
        match self.take(key) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::Object(map)) => Ok(Some(Params { map, parent: Some(name) })),
            Some(other) => Err(ApiError::invalid(
                "parameter_invalid_object",
                &name,
                format!("Invalid hash: {} must be an object, got {}", name, clip(&display(&other))),
            )),
        }
    }

    pub fn req_object(&mut self, key: &str) -> ApiResult<Params> {
        self.object(key)?.ok_or_else(|| ApiError::missing(&self.name(key)))
    }

    /// A param that is either an integer or a hash (`created=5` or `created[gt]=5`).
    pub fn int_or_object(&mut self, key: &str) -> ApiResult<Option<Result<i64, Params>>> {
        if matches!(self.map.get(key), Some(Value::Object(_))) {
            return Ok(self.object(key)?.map(Err));
        }
        Ok(self.int(key)?.map(Ok))
    }

    /// An amount in minor units within the API's bounds.
    pub fn req_amount(&mut self, key: &str) -> ApiResult<Amount> {
        let v = self.req_int(key)?;
        Amount::new(v).map_err(|e| match e {
            AmountError::TooSmall => ApiError::invalid(
                "amount_too_small",
                self.name(key),
                format!("Invalid {}: must be at least {}.", self.name(key), Amount::MIN),
            ),
            AmountError::TooLarge => ApiError::invalid(
                "amount_too_large",
                self.name(key),
                format!("Invalid {}: must be at most {}.", self.name(key), Amount::MAX),
            ),
        })
    }

    pub fn req_currency(&mut self, key: &str) -> ApiResult<Currency> {
        let code = self.req_string(key)?;
        Currency::parse(&code).ok_or_else(|| {
            ApiError::invalid(
                "invalid_currency",
                self.name(key),
                format!("Invalid currency: {}. Use a three-letter ISO 4217 code, such as eur.", clip(&code)),
            )
        })
    }

    /// The id of an object of `kind`. A malformed id names no object: 404.
    pub fn req_id(&mut self, key: &str, kind: Kind) -> ApiResult<String> {
        let id = self.req_string(key)?;
        if !kind.matches(&id) {
            return Err(ApiError::no_such(kind.object(), &id, Some(&self.name(key))));
        }
        Ok(id)
    }

    pub fn id(&mut self, key: &str, kind: Kind) -> ApiResult<Option<String>> {
        match self.string(key)? {
            None => Ok(None),
            Some(id) if kind.matches(&id) => Ok(Some(id)),
            Some(id) => Err(ApiError::no_such(kind.object(), &id, Some(&self.name(key)))),
        }
    }

    /// A `wire_enum` value, such as `reason` or `status`.
    pub fn choice<T>(
        &mut self,
        key: &str,
        parse: fn(&str) -> Option<T>,
        names: fn() -> String,
    ) -> ApiResult<Option<T>> {
        // `""` is the value of no choice; only JSON's `null` leaves the field out.
        let value = match self.map.get(key) {
            Some(Value::String(s)) if s.is_empty() => {
                self.map.remove(key);
                Some(String::new())
            }
            _ => self.string(key)?,
        };
        match value {
            None => Ok(None),
            Some(s) => parse(&s).map(Some).ok_or_else(|| {
                ApiError::invalid(
                    "parameter_invalid_value",
                    self.name(key),
                    format!("Invalid {}: must be one of {}, got '{}'.", self.name(key), names(), clip(&s)),
                )
            }),
        }
    }

    /// `metadata`: a hash of strings, or `""` to clear it.
    pub fn metadata(&mut self) -> ApiResult<Option<MetadataUpdate>> {
        let name = self.name("metadata");
        let map = match self.take("metadata") {
            None => return Ok(None),
            Some(Value::Null) => return Ok(Some(MetadataUpdate::Clear)),
            Some(Value::String(s)) if s.is_empty() => return Ok(Some(MetadataUpdate::Clear)),
            Some(Value::Object(map)) => map,
            Some(other) => {
                return Err(ApiError::invalid(
                    "parameter_invalid_object",
                    &name,
                    format!("Invalid hash: metadata must be an object of strings, got {}", clip(&display(&other))),
                ));
            }
        };
        let mut changes = std::collections::BTreeMap::new();
        for (key, value) in map {
            let value = match value {
                Value::String(s) if s.is_empty() => None,
                Value::Null => None,
                Value::String(s) => Some(s),
                other => {
                    return Err(ApiError::invalid(
                        "parameter_invalid_string",
                        format!("{name}[{}]", clip(&key)),
                        format!(
                            "Invalid metadata value for key '{}': values must be strings, got {}",
                            clip(&key),
                            clip(&other.to_string())
                        ),
                    ));
                }
            };
            MetadataUpdate::check_pair(&key, value.as_deref())
                .map_err(|e| ApiError::invalid("metadata_invalid", format!("{name}[{}]", clip(&key)), e.to_string()))?;
            changes.insert(key, value);
        }
        if changes.len() > crate::domain::metadata::MAX_KEYS {
            return Err(ApiError::invalid(
                "metadata_invalid",
                name,
                crate::domain::metadata::MetadataError::TooManyKeys.to_string(),
            ));
        }
        Ok(Some(MetadataUpdate::Merge(changes)))
    }

    /// A list of strings: `expand[]=a` in forms, `["a"]` in JSON.
    pub fn string_list(&mut self, key: &str) -> ApiResult<Vec<String>> {
        let name = self.name(key);
        let bad = |v: &Value| {
            ApiError::invalid(
                "parameter_invalid_array",
                &name,
                format!("Invalid array: {name} must be a list of strings, got {}", clip(&display(v))),
            )
        };
        match self.take(key) {
            None | Some(Value::Null) => Ok(Vec::new()),
            Some(Value::String(s)) => Ok(vec![s]),
            Some(Value::Array(items)) => items
                .into_iter()
                .map(|v| match v {
                    Value::String(s) => Ok(s),
                    other => Err(bad(&other)),
                })
                .collect(),
            Some(other) => Err(bad(&other)),
        }
    }
}

/// Refuses a NUL character (U+0000) anywhere in the parameters, in a name or a value:
/// PostgreSQL's `text` cannot hold one and SQLite would store it, so both stores
/// answer alike only if it never reaches them. `param` names the value in bracket
/// notation (`metadata[k]`, `expand[0]`), with the NUL shown as `\u0000`.
fn refuse_nul(map: &Map<String, Value>, parent: Option<&str>) -> ApiResult<()> {
    for (key, value) in map {
        let name = match parent {
            Some(p) => format!("{p}[{key}]"),
            None => key.clone(),
        };
        refuse_nul_in(value, &name, key.contains('\0'))?;
    }
    Ok(())
}

fn refuse_nul_in(value: &Value, name: &str, name_has_nul: bool) -> ApiResult<()> {
    let refuse = || {
        let shown = clip(&name.replace('\0', "\\u0000"));
        ApiError::invalid(
            "parameter_invalid_string",
            &shown,
            format!("Invalid string: {shown} contains a NUL character (\\u0000), which is not allowed."),
        )
    };
    if name_has_nul {
        return Err(refuse());
    }
    match value {
        Value::String(s) if s.contains('\0') => Err(refuse()),
        Value::Object(m) => refuse_nul(m, Some(name)),
        Value::Array(items) => {
            for (i, item) in items.iter().enumerate() {
                refuse_nul_in(item, &format!("{name}[{i}]"), false)?;
            }
            Ok(())
        }
        _ => Ok(()),
    }
}

/// A decimal integer as forms send it: optional sign, digits only.
fn parse_decimal_i64(s: &str) -> Option<i64> {
    let digits = s.strip_prefix('-').unwrap_or(s);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

fn display(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

fn json_error_summary(e: &serde_json::Error) -> String {
    use serde_json::error::Category;
    match e.classify() {
        Category::Eof => "unexpected end of input".into(),
        Category::Io => "could not read the body".into(),
        _ => format!(
            "{} at line {} column {}",
            match e.classify() {
                Category::Syntax => "syntax error",
                _ => "invalid data",
            },
            e.line(),
            e.column()
        ),
    }
}

/// One step of a bracketed form key: `a`, `[b]`, `[]` or `[0]`.
enum Segment {
    Key(String),
    Push,
    Index(usize),
}

/// The deepest nesting a form key may have; deeper keys are refused.
const MAX_FORM_DEPTH: usize = 8;

fn parse_key(key: &str) -> Option<Vec<Segment>> {
    let (head, mut rest) = match key.find('[') {
        Some(i) => (&key[..i], &key[i..]),
        None => (key, ""),
    };
    if head.is_empty() {
        return None;
    }
    let mut segments = vec![Segment::Key(head.to_owned())];
    while !rest.is_empty() {
        let inner_end = rest.find(']')?;
        if !rest.starts_with('[') {
            return None;
        }
        let inner = &rest[1..inner_end];
        segments.push(if inner.is_empty() {
            Segment::Push
        } else if inner.bytes().all(|b| b.is_ascii_digit()) && inner.len() <= 4 {
            Segment::Index(inner.parse().ok()?)
        } else {
            Segment::Key(inner.to_owned())
        });
        rest = &rest[inner_end + 1..];
        if segments.len() > MAX_FORM_DEPTH {
            return None;
        }
    }
    Some(segments)
}

fn insert_bracketed(root: &mut Map<String, Value>, key: &str, value: String) -> ApiResult<()> {
    let invalid =
        || ApiError::invalid("parameter_invalid", clip(key), format!("Invalid parameter name: {}", clip(key)));
    let segments = parse_key(key).ok_or_else(invalid)?;
    let Segment::Key(first) = &segments[0] else {
        return Err(invalid());
    };
    let mut slot: &mut Value = root.entry(first.clone()).or_insert(Value::Null);
    for seg in &segments[1..] {
        slot = match seg {
            Segment::Key(k) => {
                if slot.is_null() {
                    *slot = Value::Object(Map::new());
                }
                match slot {
                    Value::Object(m) => m.entry(k.clone()).or_insert(Value::Null),
                    _ => return Err(invalid()),
                }
            }
            Segment::Push | Segment::Index(_) => {
                if slot.is_null() {
                    *slot = Value::Array(Vec::new());
                }
                let Value::Array(items) = slot else {
                    return Err(invalid());
                };
                let at = match seg {
                    Segment::Index(i) => *i,
                    _ => items.len(),
                };
                if at == items.len() {
                    items.push(Value::Null);
                } else if at > items.len() {
                    return Err(invalid());
                }
                &mut items[at]
            }
        };
    }
    // A key given twice is ambiguous (a list is written `key[]=`), and a value never
    // replaces a hash or a list.
    if !slot.is_null() {
        return Err(ApiError::invalid(
            "parameter_duplicate",
            clip(key),
            format!("Received the parameter {} more than once; send lists as {}[]=...", clip(key), clip(key)),
        ));
    }
    *slot = Value::String(value);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn form(s: &str) -> Value {
        Value::Object(Params::from_form(s.as_bytes()).unwrap().map)
    }

    #[test]
    fn form_bracket_notation_builds_nested_values() {
        assert_eq!(
            form("metadata[lease_id]=x&evidence[due_date]=1&expand[]=policy&expand[]=tenant&name=a%20b"),
            json!({"metadata": {"lease_id": "x"}, "evidence": {"due_date": "1"}, "expand": ["policy", "tenant"], "name": "a b"})
        );
        assert_eq!(form("expand[0]=a&expand[1]=b"), json!({"expand": ["a", "b"]}));
        assert_eq!(form("created[gte]=5&limit=3"), json!({"created": {"gte": "5"}, "limit": "3"}));
        assert_eq!(form("metadata="), json!({"metadata": ""}));
    }

    #[test]
    fn malformed_form_keys_are_refused() {
        for bad in ["[a]=1", "a[b=1", "expand[5]=x", "a=1&a[b]=2", "a[b]=1&a=2", "a[b]c=1"] {
            assert!(Params::from_form(bad.as_bytes()).is_err(), "{bad}");
        }
    }

    #[test]
    fn json_and_form_give_the_same_values() {
        let mut j = Params::from_json(br#"{"amount": 120000, "active": true, "evidence": {"due_date": 5}}"#).unwrap();
        let mut f = Params::from_form(b"amount=120000&active=true&evidence[due_date]=5").unwrap();
        for p in [&mut j, &mut f] {
            assert_eq!(p.req_int("amount").unwrap(), 120000);
            assert_eq!(p.bool("active").unwrap(), Some(true));
            let mut ev = p.req_object("evidence").unwrap();
            assert_eq!(ev.req_int("due_date").unwrap(), 5);
            assert_eq!(ev.name("due_date"), "evidence[due_date]");
        }
    }

    #[test]
    fn typed_getters_reject_wrong_types() {
        let mut p =
            Params::from_json(br#"{"a": 1.5, "b": "12x", "d": {"x": 1}, "e": "yes", "f": 99999999999999999999}"#)
                .unwrap();
        assert_eq!(p.req_int("a").unwrap_err().code(), Some("parameter_invalid_integer"));
        assert_eq!(p.req_int("b").unwrap_err().code(), Some("parameter_invalid_integer"));
        // Numbers beyond f64 are not JSON serde can hold: the body itself is refused.
        assert_eq!(Params::from_json(br#"{"c": 1e400}"#).unwrap_err().status(), 400);
        assert_eq!(p.req_string("d").unwrap_err().code(), Some("parameter_invalid_string"));
        assert_eq!(p.bool("e").unwrap_err().code(), Some("parameter_invalid_boolean"));
        assert_eq!(p.req_int("f").unwrap_err().code(), Some("parameter_invalid_integer"));
        assert_eq!(p.req_int("missing").unwrap_err().code(), Some("parameter_missing"));
    }

    #[test]
    fn unknown_nested_params_are_named_in_full() {
        let mut p = Params::from_json(br#"{"evidence": {"invoice_id": "i", "foo": 1}}"#).unwrap();
        let ev = p.req_object("evidence").unwrap();
        let err = ev.allow(&["invoice_id", "due_date"]).unwrap_err();
        assert_eq!(err.to_string(), "Received unknown parameter: evidence[foo]");
    }

    #[test]
    fn metadata_parsing() {
        let mut p = Params::from_json(br#"{"metadata": {"a": "1", "b": ""}}"#).unwrap();
        let update = p.metadata().unwrap().unwrap();
        assert_eq!(update, MetadataUpdate::Merge([("a".into(), Some("1".into())), ("b".into(), None)].into()));
        let mut p = Params::from_form(b"metadata=").unwrap();
        assert_eq!(p.metadata().unwrap(), Some(MetadataUpdate::Clear));
        let mut p = Params::from_json(br#"{"metadata": {"a": 5}}"#).unwrap();
        assert!(p.metadata().is_err());
        let mut p = Params::from_json(br#"{"metadata": "x"}"#).unwrap();
        assert!(p.metadata().is_err());
        let long = format!(r#"{{"metadata": {{"{}": "v"}}}}"#, "k".repeat(41));
        assert_eq!(
            Params::from_json(long.as_bytes()).unwrap().metadata().unwrap_err().code(),
            Some("metadata_invalid")
        );
    }

    #[test]
    fn nul_characters_are_refused_wherever_they_are() {
        let cases: [(&[u8], bool, &str); 7] = [
            (br#"{"name": "a\u0000b"}"#, true, "name"),
            (br#"{"metadata": {"k": "v\u0000"}}"#, true, "metadata[k]"),
            (br#"{"metadata": {"k\u0000": "v"}}"#, true, "metadata[k\\u0000]"),
            (br#"{"expand": ["policy", "x\u0000"]}"#, true, "expand[1]"),
            (b"name=a%00b", false, "name"),
            (b"email=x%00%40y.z", false, "email"),
            (b"metadata[a%00]=1", false, "metadata[a\\u0000]"),
        ];
        for (body, json, param) in cases {
            let err = if json { Params::from_json(body) } else { Params::from_form(body) }.unwrap_err();
            assert_eq!(err.code(), Some("parameter_invalid_string"), "{}", String::from_utf8_lossy(body));
            let ApiError::Client { param: Some(p), .. } = &err else { panic!("no param") };
            assert_eq!(p, param);
        }
        // Other control characters are ordinary text.
        assert!(Params::from_json(br#"{"name": "a\u0001b"}"#).is_ok());
    }

    #[test]
    fn non_object_json_is_refused() {
        assert!(Params::from_json(b"[1,2]").is_err());
        assert!(Params::from_json(b"\"x\"").is_err());
        assert!(Params::from_json(b"{").is_err());
        assert!(Params::from_json(b"\xff\xfe").is_err());
        assert!(Params::from_json(b"").unwrap().is_empty());
        assert!(Params::from_json(b" \n").unwrap().is_empty());
        assert!(Params::from_json(b"\x0c").is_err(), "form feed is not JSON whitespace");
    }
}
