//! Customers table.

use sqlx::any::AnyRow;

use super::{Conn, Scope, execute_scoped, get_bool, get_json, insert_query, read_row, to_json};
use crate::domain::customer::Customer;
use crate::resource;

pub(crate) const COLUMNS: &str = "id, livemode, created, name, email, score, metadata, test_clock_id";

pub(crate) fn from_row(r: &AnyRow) -> Result<Customer, sqlx::Error> {
    Ok(read_row! { r, Customer {
        id, name, email, score,
        metadata: get_json(r, "metadata")?,
        test_clock = "test_clock_id",
        livemode: get_bool(r, "livemode")?,
        created,
    }})
}

pub async fn insert(conn: &mut Conn, scope: &Scope, c: &Customer) -> Result<(), sqlx::Error> {
    insert_with(conn, scope, c, "").await.map(|_| ())
}

/// Inserts unless a customer with this id exists (for the demo seed).
pub async fn insert_if_absent(conn: &mut Conn, scope: &Scope, c: &Customer) -> Result<bool, sqlx::Error> {
    insert_with(conn, scope, c, " ON CONFLICT (id) DO NOTHING").await
}

/// Inserts, with `on_conflict` appended to the statement; returns whether a row went in.
async fn insert_with(conn: &mut Conn, scope: &Scope, c: &Customer, on_conflict: &str) -> Result<bool, sqlx::Error> {
    let sql = format!(
        "INSERT INTO customers (id, account_id, livemode, created, name, email, score, metadata, test_clock_id) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9){on_conflict}"
    );
    let done = insert_query(&sql, &c.id, scope, c.created)
        .bind(c.name.clone())
        .bind(c.email.clone())
        .bind(c.score)
        .bind(to_json(&c.metadata))
        .bind(c.test_clock.clone())
        .execute(&mut *conn)
        .await?;
    Ok(done.rows_affected() == 1)
}

super::list::scoped_reads! {
    Customer, resource::CUSTOMER.table, COLUMNS, from_row;
    list(email: Option<String>) |sql| sql.and_eq_some("email", email)
}

pub async fn update(conn: &mut Conn, scope: &Scope, c: &Customer) -> Result<(), sqlx::Error> {
    let query = sqlx::query(
        "UPDATE customers SET name = $1, email = $2, score = $3, metadata = $4 \
         WHERE id = $5 AND account_id = $6 AND livemode = $7",
    )
    .bind(c.name.clone())
    .bind(c.email.clone())
    .bind(c.score)
    .bind(to_json(&c.metadata));
    execute_scoped(conn, query, &c.id, scope).await
}
