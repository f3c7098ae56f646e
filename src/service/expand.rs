//! `expand`: replacing an id in a response by the object it names, as Stripe does
//! (`expand[]=policy`, nested `expand[]=guarantee.policy`, `expand[]=data.policy` on
//! lists), up to four levels deep.

use serde::Serialize;
use serde_json::Value;

use crate::error::{ApiError, ApiResult};
use crate::store::{self, Conn, Scope, Store};
use crate::views::Render;

/// How deep an expansion may go (`a.b.c.d`).
pub const MAX_DEPTH: usize = 4;

/// The expandable fields: (object, field, the object type the field's id names).
const EXPANDABLE: &[(&str, &str, &str)] = &[
    ("guarantee", "policy", "guarantee_policy"),
    ("guarantee", "tenant", "customer"),
    ("claim", "guarantee", "guarantee"),
    ("claim", "payout", "payout"),
    ("payout", "claim", "claim"),
    ("payout", "guarantee", "guarantee"),
];

/// The object type an expandable field of `object` names, if it is expandable.
fn target(object: &str, field: &str) -> Option<&'static str> {
    EXPANDABLE.iter().find(|(o, f, _)| *o == object && *f == field).map(|(_, _, t)| *t)
}

/// Every path that can be expanded on an object of type `root` (for the OpenAPI
/// document), with `data.` in front for a list.
pub fn all_paths(root: &str, list: bool) -> Vec<String> {
    fn walk(object: &str, prefix: &str, depth: usize, out: &mut Vec<String>) {
        if depth == MAX_DEPTH {
            return;
        }
        for (_, field, next) in EXPANDABLE.iter().filter(|(o, _, _)| *o == object) {
            let path = if prefix.is_empty() { field.to_string() } else { format!("{prefix}.{field}") };
            out.push(path.clone());
            walk(next, &path, depth + 1, out);
        }
    }
    let mut out = Vec::new();
    walk(root, "", 0, &mut out);
    if list {
        out.iter_mut().for_each(|p| p.insert_str(0, "data."));
    }
    out
}

/// Checks `paths` against an object of type `root` (or, with `list`, against the
/// items of a list, whose paths start with `data.`). Returns them split into fields.
pub fn parse(paths: &[String], root: &str, list: bool) -> ApiResult<Vec<Vec<String>>> {
    let invalid = |path: &str, why: &str| {
        ApiError::invalid(
            "parameter_invalid_expand",
            "expand",
            format!("This property cannot be expanded ({path}): {why}."),
        )
    };
    let mut out = Vec::with_capacity(paths.len());
    for path in paths {
        let mut fields: Vec<&str> = path.split('.').collect();
        if list {
            if fields.first() != Some(&"data") || fields.len() < 2 {
                return Err(invalid(path, "on a list, expand the items with data.<field>"));
            }
            fields.remove(0);
        }
        if fields.len() > MAX_DEPTH {
            return Err(invalid(path, "expansions go at most four levels deep"));
        }
        let mut object = root;
        for field in &fields {
            object = target(object, field)
                .ok_or_else(|| invalid(path, &format!("{object} has no expandable field {field}")))?;
        }
        out.push(fields.into_iter().map(str::to_owned).collect());
    }
    Ok(out)
}

/// An object as answered: its view when nothing is expanded (serialised once,
/// straight to the response), or the view's JSON tree with the expanded fields
/// filled in (by the views of the objects they name).
#[derive(Debug, Serialize)]
#[serde(untagged)]
pub enum Expanded<T> {
    Plain(T),
    Tree(Value),
}

/// The object's view with `paths` expanded; reads go through `conn`, so a write can
/// expand its answer inside its own transaction.
pub async fn apply<T: Render>(
    conn: &mut Conn,
    scope: &Scope,
    object: T,
    paths: &[Vec<String>],
) -> ApiResult<Expanded<T::View>> {
    let view = object.view();
    if paths.is_empty() {
        return Ok(Expanded::Plain(view));
    }
    let mut value = serde_json::to_value(&view).map_err(ApiError::internal)?;
    for path in paths {
        expand_path(conn, scope, &mut value, path).await?;
    }
    Ok(Expanded::Tree(value))
}

/// `apply` on each item of a list.
pub async fn apply_all<T: Render>(
    conn: &mut Conn,
    scope: &Scope,
    items: Vec<T>,
    paths: &[Vec<String>],
) -> ApiResult<Vec<Expanded<T::View>>> {
    let mut out = Vec::with_capacity(items.len());
    for item in items {
        out.push(apply(conn, scope, item, paths).await?);
    }
    Ok(out)
}

/// `apply` outside a transaction.
pub async fn apply_read<T: Render>(
    store: &Store,
    scope: &Scope,
    object: T,
    paths: &[Vec<String>],
) -> ApiResult<Expanded<T::View>> {
    if paths.is_empty() {
        return Ok(Expanded::Plain(object.view()));
    }
    let mut conn = store.acquire().await?;
    apply(&mut conn, scope, object, paths).await
}

async fn expand_path(conn: &mut Conn, scope: &Scope, root: &mut Value, path: &[String]) -> ApiResult<()> {
    let mut node = root;
    for field in path {
        let object = node["object"].as_str().unwrap_or_default().to_owned();
        let Some(kind) = target(&object, field) else { return Ok(()) };
        let slot = &mut node[field.as_str()];
        if let Value::String(id) = slot
            && let Some(found) = fetch(conn, scope, kind, id).await?
        {
            *slot = found;
        }
        if !slot.is_object() {
            return Ok(());
        }
        node = slot;
    }
    Ok(())
}

async fn fetch(conn: &mut Conn, scope: &Scope, kind: &str, id: &str) -> ApiResult<Option<Value>> {
    fn json<T: Render>(v: Option<T>) -> ApiResult<Option<Value>> {
        v.map(|v| serde_json::to_value(v.view()).map_err(ApiError::internal)).transpose()
    }
    match kind {
        "guarantee_policy" => json(store::policies::get(conn, scope, id).await?),
        "customer" => json(store::customers::get(conn, scope, id).await?),
        "guarantee" => json(store::guarantees::get(conn, scope, id).await?),
        "claim" => json(store::claims::get(conn, scope, id).await?),
        "payout" => json(store::payouts::get(conn, scope, id).await?),
        _ => Ok(None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn paths(p: &[&str]) -> Vec<String> {
        p.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn valid_paths() {
        assert_eq!(parse(&paths(&["policy", "tenant"]), "guarantee", false).unwrap().len(), 2);
        assert!(parse(&paths(&["guarantee.policy"]), "claim", false).is_ok());
        assert!(parse(&paths(&["claim.guarantee.policy"]), "payout", false).is_ok());
        assert!(parse(&paths(&["data.policy"]), "guarantee", true).is_ok());
        assert!(parse(&paths(&["claim.payout.claim.guarantee"]), "payout", false).is_ok(), "four levels");
    }

    #[test]
    fn every_listed_path_parses() {
        for root in ["guarantee", "claim", "payout"] {
            for list in [false, true] {
                let paths = all_paths(root, list);
                assert!(!paths.is_empty());
                parse(&paths, root, list).unwrap();
            }
        }
        assert!(all_paths("customer", false).is_empty());
        assert!(all_paths("guarantee", false).contains(&"tenant".to_string()));
        assert!(all_paths("payout", true).contains(&"data.claim.guarantee.policy".to_string()));
    }

    #[test]
    fn invalid_paths() {
        for (p, root, list) in [
            ("nope", "guarantee", false),
            ("policy", "claim", false),
            ("policy", "guarantee", true),
            ("data.nope", "claim", true),
            ("claim.payout.claim.guarantee.policy", "payout", false),
            ("", "guarantee", false),
            ("policy", "customer", false),
        ] {
            let err = parse(&paths(&[p]), root, list).unwrap_err();
            assert_eq!(err.code(), Some("parameter_invalid_expand"), "{p}");
        }
    }
}
