//! Multi-row statements: a batch of rows written with one statement per chunk rather
//! than one per row (the claims engine's steps, the outbox's events and deliveries).

use std::ops::Range;

use super::list::Sql;
use super::{Conn, Scope, Tx};

/// The most rows one statement carries.
const MAX_ROWS: usize = 64;

/// Splits `n` rows into chunks whose sizes are powers of two, largest first, none above
/// `MAX_ROWS`: a statement then has one of seven texts whatever the batch size, and each
/// connection keeps those few prepared instead of one per length.
pub(crate) fn chunks(n: usize) -> Vec<Range<usize>> {
    let mut out = Vec::new();
    let mut start = 0;
    while start < n {
        let left = n - start;
        let size = if left >= MAX_ROWS { MAX_ROWS } else { 1 << left.ilog2() };
        out.push(start..start + size);
        start += size;
    }
    out
}

/// One row's placeholders for a resource's table: the columns every such table starts
/// with (`id, account_id, livemode, created`), then those `rest` binds.
pub(crate) fn scoped_row(
    sql: &mut Sql,
    id: String,
    scope: &Scope,
    created: i64,
    rest: impl FnOnce(&mut Sql) -> Vec<String>,
) -> Vec<String> {
    let mut row = vec![sql.bind(id), sql.bind(scope.account_id.clone()), sql.bind(scope.livemode), sql.bind(created)];
    row.extend(rest(sql));
    row
}

/// The rows' values bound into `sql`, as a `VALUES` list: `($1, $2, ...), ($9, ...)`.
fn value_groups<R>(sql: &mut Sql, rows: &[R], bind: impl Fn(&mut Sql, &R) -> Vec<String>) -> String {
    // Written into one string: a batch has hundreds of placeholders.
    let mut out = String::with_capacity(rows.len() * 64);
    for (i, row) in rows.iter().enumerate() {
        if i > 0 {
            out.push_str(", ");
        }
        push_list(&mut out, bind(sql, row).iter().map(String::as_str));
    }
    out
}

/// Appends `(a, b, c)`.
pub(crate) fn push_list<'a>(out: &mut String, items: impl IntoIterator<Item = &'a str>) {
    out.push('(');
    for (i, item) in items.into_iter().enumerate() {
        if i > 0 {
            out.push_str(", ");
        }
        out.push_str(item);
    }
    out.push(')');
}

/// Runs one statement per chunk of `rows` and returns the rows they affected.
/// `bind` binds one row's values and returns their placeholders; `statement` makes the
/// statement around the row groups, `($1, $2, ...), ($9, $10, ...)`.
pub(crate) async fn execute_rows<R>(
    conn: &mut Conn,
    rows: &[R],
    statement: impl Fn(&str) -> String,
    bind: impl Fn(&mut Sql, &R) -> Vec<String>,
) -> Result<u64, sqlx::Error> {
    let mut affected = 0;
    for chunk in chunks(rows.len()) {
        let mut sql = Sql::new("");
        let values = value_groups(&mut sql, &rows[chunk], &bind);
        sql.push(&statement(&values));
        affected += sqlx::query_with(&sql.text, sql.args).execute(&mut *conn).await?.rows_affected();
    }
    Ok(affected)
}

/// `execute_rows` for writes whose row counts nothing reads: each chunk's statement
/// is deferred (`Tx::defer`), to go out with the transaction's other writes.
pub(crate) async fn defer_rows<R>(
    tx: &mut Tx,
    table: &'static str,
    rows: &[R],
    statement: impl Fn(&str) -> String,
    bind: impl Fn(&mut Sql, &R) -> Vec<String>,
) -> Result<(), sqlx::Error> {
    for chunk in chunks(rows.len()) {
        tx.defer(table, |sql| statement(&value_groups(sql, &rows[chunk], &bind))).await?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sizes(n: usize) -> Vec<usize> {
        chunks(n).iter().map(|r| r.len()).collect()
    }

    #[test]
    fn value_groups_list_each_rows_placeholders() {
        let mut sql = Sql::new("");
        let rows = [(1_i64, "a"), (2, "b")];
        let groups =
            value_groups(&mut sql, &rows, |sql, (n, s)| vec![sql.bind(*n), sql.bind(s.to_string()), "0".into()]);
        assert_eq!(groups, "($1, $2, 0), ($3, $4, 0)");
        assert_eq!(value_groups(&mut sql, &rows[..0], |_, _| Vec::new()), "");
    }

    #[test]
    fn chunks_cover_every_row_once_in_power_of_two_sizes() {
        assert_eq!(sizes(0), Vec::<usize>::new());
        assert_eq!(sizes(1), vec![1]);
        assert_eq!(sizes(100), vec![64, 32, 4]);
        assert_eq!(sizes(63), vec![32, 16, 8, 4, 2, 1]);
        assert_eq!(sizes(200), vec![64, 64, 64, 8]);
        for n in 0..300 {
            let c = chunks(n);
            assert_eq!(c.iter().map(|r| r.len()).sum::<usize>(), n);
            assert!(c.windows(2).all(|w| w[0].end == w[1].start));
            assert!(c.iter().all(|r| r.len().is_power_of_two() && r.len() <= MAX_ROWS));
        }
    }
}
