//! Cursor pagination shared by every list: newest first, ordered by `(created, seq)`
//! so objects created in the same second keep a stable order.

use std::collections::HashMap;

use sqlx::any::{AnyArguments, AnyRow};
use sqlx::{Arguments, Encode, Row, Type};

use super::{Conn, Scope};

/// Bounds on `created` (`created[gt]=...` and friends).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CreatedFilter {
    pub gt: Option<i64>,
    pub gte: Option<i64>,
    pub lt: Option<i64>,
    pub lte: Option<i64>,
}

/// A page request after validation: `limit` is 1..=100 and at most one cursor is set.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PageRequest {
    pub limit: i64,
    pub starting_after: Option<String>,
    pub ending_before: Option<String>,
    pub created: CreatedFilter,
}

impl Default for PageRequest {
    fn default() -> Self {
        PageRequest { limit: 10, starting_after: None, ending_before: None, created: CreatedFilter::default() }
    }
}

#[derive(Debug)]
pub struct Page<T> {
    pub data: Vec<T>,
    pub has_more: bool,
}

/// A SQL statement under construction with numbered (`$n`) placeholders, which both
/// PostgreSQL and SQLite accept.
pub struct Sql {
    pub text: String,
    pub args: AnyArguments<'static>,
    n: usize,
}

impl Sql {
    pub fn new(text: impl Into<String>) -> Self {
        Sql { text: text.into(), args: AnyArguments::default(), n: 0 }
    }

    /// Binds a value and returns its placeholder.
    pub fn bind<T>(&mut self, value: T) -> String
    where
        T: 'static + Send + Encode<'static, sqlx::Any> + Type<sqlx::Any>,
    {
        self.args.add(value).expect("plain values encode");
        self.n += 1;
        // Not `format!`: a request binds dozens, and formatting took 500 instructions each.
        let mut digits = itoa::Buffer::new();
        let digits = digits.format(self.n);
        let mut placeholder = String::with_capacity(1 + digits.len());
        placeholder.push('$');
        placeholder.push_str(digits);
        placeholder
    }

    pub fn push(&mut self, s: &str) {
        self.text.push_str(s);
    }

    /// How many values are bound so far.
    pub fn bound(&self) -> usize {
        self.n
    }

    /// Appends ` AND <column> = <value>`.
    pub fn and_eq<T>(&mut self, column: &str, value: T)
    where
        T: 'static + Send + Encode<'static, sqlx::Any> + Type<sqlx::Any>,
    {
        let p = self.bind(value);
        self.text.push_str(&format!(" AND {column} = {p}"));
    }

    /// Appends ` AND <column> = <value>` when a list's filter is given.
    pub fn and_eq_some<T>(&mut self, column: &str, value: Option<T>)
    where
        T: 'static + Send + Encode<'static, sqlx::Any> + Type<sqlx::Any>,
    {
        if let Some(value) = value {
            self.and_eq(column, value);
        }
    }
}

/// One page of `table` (a resource's, from `crate::resource`), scoped to the caller,
/// with `filters` already appended to the `WHERE` clause by `add_filters`. The cursor
/// objects must exist in scope (checked by the caller beforehand, so an unknown
/// cursor is a 404, not an empty page).
pub async fn fetch_page<T>(
    conn: &mut Conn,
    table: &str,
    columns: &str,
    scope: &Scope,
    page: &PageRequest,
    add_filters: impl FnOnce(&mut Sql),
    map: impl Fn(&AnyRow) -> Result<T, sqlx::Error>,
) -> Result<Page<T>, sqlx::Error> {
    fetch_page_in(conn, table, columns, Some(scope), page, add_filters, map).await
}

/// `fetch_page` across every account and mode (`scope: None`, for operators, whose
/// keys span accounts), or in one.
pub async fn fetch_page_in<T>(
    conn: &mut Conn,
    table: &str,
    columns: &str,
    scope: Option<&Scope>,
    page: &PageRequest,
    add_filters: impl FnOnce(&mut Sql),
    map: impl Fn(&AnyRow) -> Result<T, sqlx::Error>,
) -> Result<Page<T>, sqlx::Error> {
    let mut sql = match scope {
        Some(scope) => {
            let mut sql = Sql::new(format!("SELECT {columns} FROM {table} WHERE account_id = $1 AND livemode = $2"));
            sql.bind(scope.account_id.clone());
            sql.bind(scope.livemode);
            sql
        }
        None => Sql::new(format!("SELECT {columns} FROM {table} WHERE 1 = 1")),
    };
    add_filters(&mut sql);
    let c = &page.created;
    for (op, bound) in [(">", c.gt), (">=", c.gte), ("<", c.lt), ("<=", c.lte)] {
        if let Some(v) = bound {
            let p = sql.bind(v);
            sql.push(&format!(" AND created {op} {p}"));
        }
    }
    // Walking backwards (ending_before) reads the page in ascending order and flips it.
    let backwards = page.ending_before.is_some();
    if let Some(cursor) = page.starting_after.as_ref().or(page.ending_before.as_ref()) {
        let op = if backwards { ">" } else { "<" };
        let in_scope = match scope {
            Some(scope) => {
                let (a, l) = (sql.bind(scope.account_id.clone()), sql.bind(scope.livemode));
                format!("account_id = {a} AND livemode = {l} AND ")
            }
            None => String::new(),
        };
        let id = sql.bind(cursor.clone());
        sql.push(&format!(" AND (created, seq) {op} (SELECT created, seq FROM {table} WHERE {in_scope}id = {id})"));
    }
    let order = if backwards { "ASC" } else { "DESC" };
    let lim = sql.bind(page.limit + 1);
    sql.push(&format!(" ORDER BY created {order}, seq {order} LIMIT {lim}"));

    let rows = sqlx::query_with(&sql.text, sql.args).fetch_all(&mut *conn).await?;
    let has_more = rows.len() as i64 > page.limit;
    let mut data = rows.iter().take(page.limit as usize).map(&map).collect::<Result<Vec<_>, _>>()?;
    if backwards {
        data.reverse();
    }
    Ok(Page { data, has_more })
}

/// One object of `table` by id in the caller's scope; `lock` ends the statement (a
/// lock clause, or nothing).
pub async fn fetch_one<T>(
    conn: &mut Conn,
    table: &str,
    columns: &str,
    scope: &Scope,
    id: &str,
    lock: &str,
    from_row: impl Fn(&AnyRow) -> Result<T, sqlx::Error>,
) -> Result<Option<T>, sqlx::Error> {
    fetch_one_with(conn, &select_one_sql(table, columns, lock), scope, id, from_row).await
}

/// The statement [`fetch_one`] runs: `$1` the id, `$2` and `$3` the scope.
pub fn select_one_sql(table: &str, columns: &str, lock: &str) -> String {
    format!("SELECT {columns} FROM {table} WHERE id = $1 AND account_id = $2 AND livemode = $3{lock}")
}

/// [`fetch_one`] with its statement built already (see [`select_one_sql`]).
pub async fn fetch_one_with<T>(
    conn: &mut Conn,
    sql: &str,
    scope: &Scope,
    id: &str,
    from_row: impl Fn(&AnyRow) -> Result<T, sqlx::Error>,
) -> Result<Option<T>, sqlx::Error> {
    let row = sqlx::query(sql).bind(id).bind(&scope.account_id).bind(scope.livemode).fetch_optional(&mut *conn).await?;
    row.as_ref().map(from_row).transpose()
}

/// A resource's reads in the caller's scope, from its table, its columns and its row
/// decoder: `get`, `get_for_update` (the row locked until the transaction ends) and
/// `list` (a page, newest first, with the list's own filter appended by `|sql| ...`).
macro_rules! scoped_reads {
    ($ty:ty, $table:expr, $columns:expr, $from_row:expr;
     list($filter:ident : $filter_ty:ty) |$sql:ident| $add_filters:expr) => {
        /// Reads one object in the caller's scope.
        pub async fn get(
            conn: &mut $crate::store::Conn,
            scope: &$crate::store::Scope,
            id: &str,
        ) -> Result<Option<$ty>, sqlx::Error> {
            static SQL: std::sync::LazyLock<String> =
                std::sync::LazyLock::new(|| $crate::store::list::select_one_sql($table, $columns, ""));
            $crate::store::list::fetch_one_with(conn, &SQL, scope, id, $from_row).await
        }

        /// Reads one object and locks it until the transaction ends.
        pub async fn get_for_update(
            tx: &mut $crate::store::Tx,
            scope: &$crate::store::Scope,
            id: &str,
        ) -> Result<Option<$ty>, sqlx::Error> {
            static SQL: $crate::store::PerBackend = $crate::store::PerBackend::new(|backend| {
                $crate::store::list::select_one_sql($table, $columns, backend.lock_clause())
            });
            let sql = SQL.get(tx.backend());
            $crate::store::list::fetch_one_with(tx, sql, scope, id, $from_row).await
        }

        /// A page of the caller's objects that pass the list's filter.
        pub async fn list(
            conn: &mut $crate::store::Conn,
            scope: &$crate::store::Scope,
            page: &$crate::store::PageRequest,
            $filter: $filter_ty,
        ) -> Result<$crate::store::Page<$ty>, sqlx::Error> {
            let add_filters = |$sql: &mut $crate::store::list::Sql| $add_filters;
            $crate::store::list::fetch_page(conn, $table, $columns, scope, page, add_filters, $from_row).await
        }
    };
}
pub(crate) use scoped_reads;

/// Whether an object with this id exists in `table` for the caller.
pub async fn exists(conn: &mut Conn, table: &str, scope: &Scope, id: &str) -> Result<bool, sqlx::Error> {
    let sql = format!("SELECT 1 FROM {table} WHERE id = $1 AND account_id = $2 AND livemode = $3");
    let row =
        sqlx::query(&sql).bind(id).bind(&scope.account_id).bind(scope.livemode).fetch_optional(&mut *conn).await?;
    Ok(row.is_some())
}

/// The rows of `select` (a query up to its `WHERE`) whose `id` is one of `ids`, by id:
/// one query for a whole batch; `suffix` follows the `WHERE` (an order and a lock).
/// Repeated ids are sent once; the list is then padded to a power of two (repeating
/// the last id, which changes nothing) so that batches of any size share a few
/// prepared statements instead of one per length.
pub async fn fetch_by_ids<T>(
    conn: &mut Conn,
    select: &str,
    ids: &[&str],
    suffix: &str,
    from_row: impl Fn(&AnyRow) -> Result<T, sqlx::Error>,
) -> Result<HashMap<String, T>, sqlx::Error> {
    let mut ids = ids.to_vec();
    ids.sort_unstable();
    ids.dedup();
    let Some(last) = ids.last() else { return Ok(HashMap::new()) };
    let mut sql = Sql::new("");
    let padded = ids.len().next_power_of_two();
    let params: Vec<String> =
        ids.iter().chain(std::iter::repeat_n(last, padded - ids.len())).map(|id| sql.bind(id.to_string())).collect();
    sql.push(&format!("{select} WHERE id IN ({}){suffix}", params.join(", ")));
    let rows = sqlx::query_with(&sql.text, sql.args).fetch_all(&mut *conn).await?;
    rows.iter().map(|r| Ok((r.try_get("id")?, from_row(r)?))).collect()
}
