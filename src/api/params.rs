//! Request parameters: one parser for JSON bodies, form bodies (Stripe's bracket
//! notation) and query strings.
//!
//! Every source becomes the same JSON-like tree, which `api::input` reads into each
//! operation's input type. Form values are all strings, so that reader takes `"42"`
//! and `"true"` as well as JSON's own numbers and booleans: a request means the same,
//! and fails the same, either way.

use serde_json::{Map, Value};

use crate::error::{ApiError, ApiResult, clip};

/// The parameters of one request, or of one nested hash within it (`evidence`).
#[derive(Debug, Default)]
pub struct Params {
    map: Map<String, Value>,
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
                Ok(Params { map })
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
        Ok(Params { map: root })
    }

    /// The parameter tree, for the typed input's deserialiser.
    pub(crate) fn into_map(self) -> Map<String, Value> {
        self.map
    }

    /// The parameters in a canonical form (keys sorted), to compare two requests.
    pub fn canonical(&self) -> String {
        serde_json::Value::Object(self.map.clone()).to_string()
    }

    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
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
            // `key[0]` is a hash key "0" (`metadata[0]=x`) until something asks for a
            // list, which takes a hash of "0".."n" in order (the SDKs' `expand[0]=`).
            Segment::Index(i) if slot.is_null() || slot.is_object() => {
                if slot.is_null() {
                    *slot = Value::Object(Map::new());
                }
                match slot {
                    Value::Object(m) => m.entry(i.to_string()).or_insert(Value::Null),
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
    // A plain key given again makes a list (`expand=a&expand=b`, as form encoders
    // write arrays); a value never replaces a hash, nor joins a list written `key[]=`.
    if segments.len() == 1 {
        match slot {
            Value::String(first) => {
                *slot = Value::Array(vec![Value::String(std::mem::take(first)), Value::String(value)]);
                return Ok(());
            }
            Value::Array(items) if items.iter().all(Value::is_string) => {
                items.push(Value::String(value));
                return Ok(());
            }
            _ => {}
        }
    }
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
        assert_eq!(form("expand[0]=a&expand[1]=b"), json!({"expand": {"0": "a", "1": "b"}}));
        assert_eq!(form("metadata[0]=a&metadata[7]=b"), json!({"metadata": {"0": "a", "7": "b"}}));
        assert_eq!(form("created[gte]=5&limit=3"), json!({"created": {"gte": "5"}, "limit": "3"}));
        assert_eq!(form("expand=a&expand=b&expand=c"), json!({"expand": ["a", "b", "c"]}));
        assert_eq!(form("metadata="), json!({"metadata": ""}));
    }

    #[test]
    fn malformed_form_keys_are_refused() {
        for bad in ["[a]=1", "a[b=1", "expand[]=x&expand[5]=y", "a=1&a[b]=2", "a[b]=1&a=2", "a[b]c=1", "a[b]=1&a[b]=2"]
        {
            assert!(Params::from_form(bad.as_bytes()).is_err(), "{bad}");
        }
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
