//! Start-up checks of a PostgreSQL database: one direct connection that reports the
//! real reason it failed (the pool retries a refused connection until its acquire
//! timeout, then says only that it timed out), and creating a missing database.

use std::str::FromStr;
use std::time::Duration;

use sqlx::Connection;
use sqlx::postgres::{PgConnectOptions, PgConnection};

/// SQLSTATE of a connection to a database that does not exist.
pub const INVALID_CATALOG_NAME: &str = "3D000";
/// SQLSTATE of `CREATE DATABASE` on a name taken meanwhile.
const DUPLICATE_DATABASE: &str = "42P04";

/// Where a PostgreSQL URL points, without its password.
#[derive(Debug, Clone)]
pub struct PgTarget {
    /// `host:port`, or the socket path.
    pub address: String,
    /// The host name, or the socket's directory (what `createdb -h` takes).
    pub host: String,
    pub port: u16,
    pub user: String,
    pub database: String,
}

impl PgTarget {
    /// `None` for URLs other than `postgres://` and `postgresql://`.
    pub fn of(url: &str) -> Option<PgTarget> {
        if !(url.starts_with("postgres://") || url.starts_with("postgresql://")) {
            return None;
        }
        PgConnectOptions::from_str(url).ok().map(|o| PgTarget::from_options(&o))
    }

    fn from_options(o: &PgConnectOptions) -> PgTarget {
        let (address, host) = match o.get_socket() {
            Some(dir) => (format!("{}/.s.PGSQL.{}", dir.display(), o.get_port()), dir.display().to_string()),
            None => (format!("{}:{}", o.get_host(), o.get_port()), o.get_host().to_owned()),
        };
        PgTarget {
            address,
            host,
            port: o.get_port(),
            user: o.get_username().to_owned(),
            // PostgreSQL's own default: the database named after the user.
            database: o.get_database().unwrap_or(o.get_username()).to_owned(),
        }
    }
}

/// Opens and closes one connection to `url`, giving up after `timeout`; the error is
/// the driver's own (refused, unknown host, no such database, bad password), or
/// `TimedOut` when nothing answered.
pub async fn probe(url: &str, timeout: Duration) -> Result<(), sqlx::Error> {
    let opts = PgConnectOptions::from_str(url)?;
    let conn = tokio::time::timeout(timeout, PgConnection::connect_with(&opts)).await.map_err(|_| {
        sqlx::Error::Io(std::io::Error::new(
            std::io::ErrorKind::TimedOut,
            format!("no answer within {} s", timeout.as_secs_f64()),
        ))
    })??;
    // Best effort: the server drops the session anyway when the socket closes.
    let _ = conn.close().await;
    Ok(())
}

/// Creates the database `url` names, connecting with the same user to the
/// `postgres` maintenance database (or `template1` where there is none). `false` if
/// it existed already (another replica may have created it meanwhile).
pub async fn create_database(url: &str) -> Result<bool, sqlx::Error> {
    let opts = PgConnectOptions::from_str(url)?;
    let target = PgTarget::from_options(&opts);
    let mut conn = match PgConnection::connect_with(&opts.clone().database("postgres")).await {
        Err(e) if is_missing_database(&e) => PgConnection::connect_with(&opts.clone().database("template1")).await?,
        other => other?,
    };
    let created =
        match sqlx::raw_sql(&format!("CREATE DATABASE {}", quote_ident(&target.database))).execute(&mut conn).await {
            Ok(_) => true,
            Err(e) if e.as_database_error().and_then(|d| d.code()).as_deref() == Some(DUPLICATE_DATABASE) => false,
            Err(e) => return Err(e),
        };
    let _ = conn.close().await;
    Ok(created)
}

/// Whether `e` says the database does not exist.
pub fn is_missing_database(e: &sqlx::Error) -> bool {
    e.as_database_error().and_then(|d| d.code()).as_deref() == Some(INVALID_CATALOG_NAME)
}

/// `name` as an SQL identifier: bare if it is a plain lower-case name, else quoted.
pub fn quote_ident(name: &str) -> String {
    let plain = name.chars().next().is_some_and(|c| c.is_ascii_lowercase() || c == '_')
        && name.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
    if plain { name.to_owned() } else { format!("\"{}\"", name.replace('"', "\"\"")) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets_leave_the_password_out() {
        let t = PgTarget::of("postgres://app:hunter2@db.internal:6543/casapay").unwrap();
        assert_eq!(t.address, "db.internal:6543");
        assert_eq!((t.user.as_str(), t.database.as_str()), ("app", "casapay"));
        assert!(!format!("{t:?}").contains("hunter2"));
        let t = PgTarget::of("postgres://app@localhost").unwrap();
        assert_eq!((t.port, t.database.as_str()), (5432, "app"), "the database defaults to the user's name");
        assert!(PgTarget::of("sqlite://./casapay.db?mode=rwc").is_none());
    }

    #[test]
    fn identifiers_are_quoted_when_they_need_it() {
        assert_eq!(quote_ident("casapay_1"), "casapay_1");
        assert_eq!(quote_ident("CasaPay"), "\"CasaPay\"");
        assert_eq!(quote_ident("a\"b; drop"), "\"a\"\"b; drop\"");
        assert_eq!(quote_ident("1st"), "\"1st\"");
    }
}
