//! The `casapay` command line.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use clap::builder::BoolishValueParser;
use clap::{Parser, Subcommand, ValueEnum};

use tokio_util::sync::CancellationToken;

use crate::api::rate_limit::RateLimitConfig;
use crate::app::{ApiConfig, AppState};
use crate::clock::{Clock, SystemClock};
use crate::jobs::dispatcher::{Dispatcher, DispatcherConfig};
use crate::jobs::engine::{Engine, EngineConfig};
use crate::jobs::metrics::{MetricsSampler, SAMPLE_EVERY};
use crate::metrics::Metrics;
use crate::service::rail::InstantRail;
use crate::service::{accounts, operators};
use crate::store::setup::{self, PgTarget};
use crate::store::{ServeLock, Store, StoreOptions, sqlite_file};
use crate::webhooks::ssrf::EgressPolicy;

#[derive(Debug, Parser)]
#[command(name = "casapay", version, about = "Server for the CasaPay rent-guarantee API")]
pub struct Cli {
    /// Database URL: postgres://... for PostgreSQL; unset means the embedded SQLite
    /// file in the data directory.
    #[arg(long, env = "DATABASE_URL", global = true, hide_env_values = true)]
    database_url: Option<String>,

    /// Data directory of the embedded SQLite store (the file is DIR/casapay.db).
    #[arg(long = "data", env = "CASAPAY_DATA", global = true, default_value = ".")]
    data_dir: PathBuf,

    /// Log format.
    #[arg(long, env = "CASAPAY_LOG_FORMAT", global = true, default_value = "text")]
    log_format: LogFormat,

    /// Create the PostgreSQL database DATABASE_URL names if it does not exist (its
    /// user needs the CREATEDB privilege). Default: false.
    #[arg(long, env = "CASAPAY_CREATE_DATABASE", global = true, num_args = 0..=1, default_missing_value = "true",
          value_parser = BoolishValueParser::new())]
    create_database: Option<bool>,

    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum LogFormat {
    Text,
    Json,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the API server.
    Serve(ServeArgs),
    /// Apply database migrations and exit.
    Migrate,
    /// Manage platform accounts.
    Accounts {
        #[command(subcommand)]
        command: AccountsCommand,
    },
    /// Manage operators: the claims staff, each a named person with keys.
    Operators {
        #[command(subcommand)]
        command: OperatorsCommand,
    },
    /// Create keys for the operator named `operator` (prefer `operators create`).
    OperatorKeys {
        #[command(subcommand)]
        command: OperatorKeysCommand,
    },
    /// Roll or revoke API keys.
    Keys {
        #[command(subcommand)]
        command: KeysCommand,
    },
    /// Forward the events of an account to a local URL, signed (like `stripe listen`).
    Listen(ListenArgs),
    /// Make an event happen in test mode, creating the objects behind it (like `stripe trigger`).
    Trigger(TriggerArgs),
}

#[derive(Debug, clap::Args)]
struct TriggerArgs {
    /// The event to make happen, e.g. claim.approved (`--list` shows them all).
    #[arg(required_unless_present = "list", conflicts_with = "list")]
    event: Option<String>,
    /// Print the events it can trigger, one a line, and exit.
    #[arg(long)]
    list: bool,
    /// A field of the object the event is about, in bracket notation (repeatable):
    /// `--param amount=5000`, `--param metadata[lease]=L1`.
    #[arg(long = "param", value_name = "KEY=VALUE", value_parser = parse_param)]
    params: Vec<(String, String)>,
    /// The API to create the objects on.
    #[arg(long, env = "CASAPAY_API", default_value = "http://127.0.0.1:8080")]
    api: String,
    /// The platform's secret test key (sk_test_...); live keys are refused.
    #[arg(long, env = "CASAPAY_API_KEY", hide_env_values = true, required_unless_present = "list")]
    api_key: Option<String>,
    /// How long to wait for the server to write the event (the claims engine, a test
    /// clock's advance), in seconds.
    #[arg(long, default_value_t = 60, value_parser = clap::value_parser!(u64).range(1..=3600))]
    timeout_secs: u64,
}

/// `KEY=VALUE` (the value may hold `=`; the key is not empty).
fn parse_param(s: &str) -> Result<(String, String), String> {
    match s.split_once('=') {
        Some((key, value)) if !key.is_empty() => Ok((key.to_owned(), value.to_owned())),
        _ => Err(format!("expected KEY=VALUE, e.g. amount=5000 or metadata[lease]=L1, not \"{s}\"")),
    }
}

#[derive(Debug, clap::Args)]
struct ListenArgs {
    /// Where to POST each event, e.g. http://localhost:4242/webhooks.
    #[arg(long)]
    forward_to: String,
    /// Only these event types, comma-separated (default: every event).
    #[arg(long, value_delimiter = ',')]
    events: Option<Vec<String>>,
    /// The API to listen to.
    #[arg(long, env = "CASAPAY_API", default_value = "http://127.0.0.1:8080")]
    api: String,
    /// The platform's secret key (its account and mode are listened to).
    #[arg(long, env = "CASAPAY_API_KEY", hide_env_values = true)]
    api_key: String,
    /// How often to read new events, in milliseconds.
    #[arg(long, default_value_t = 250, value_parser = clap::value_parser!(u64).range(10..=60_000))]
    poll_ms: u64,
}

#[derive(Debug, Subcommand)]
enum KeysCommand {
    /// Create a new secret key for an account and mode; prints it as JSON. The keys it
    /// replaces keep working for the grace period.
    Roll {
        #[arg(long)]
        account: String,
        /// `test` or `live`.
        #[arg(long)]
        mode: KeyMode,
        /// Hours the replaced keys keep working, 0 to 720 (0: they stop at once).
        // Negative numbers reach the range check (and its message) instead of being
        // taken for a flag.
        #[arg(long, default_value_t = 0, allow_negative_numbers = true,
              value_parser = clap::value_parser!(i64).range(0..=accounts::MAX_KEY_GRACE_HOURS))]
        grace_hours: i64,
    },
    /// Revoke a key at once. The key is read from standard input, so that it stays out
    /// of shell history and process lists.
    Revoke,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum KeyMode {
    Test,
    Live,
}

#[derive(Debug, clap::Args)]
struct ServeArgs {
    /// Address to listen on.
    #[arg(long, env = "CASAPAY_LISTEN", default_value = "127.0.0.1:8080")]
    listen: SocketAddr,
    /// Seed the documentation's test key and customer (cus_123456789).
    #[arg(long)]
    demo: bool,
    /// Do not run migrations at start.
    #[arg(long)]
    no_migrate: bool,
    /// Largest request body accepted, in bytes.
    #[arg(long, env = "CASAPAY_MAX_BODY_BYTES", default_value_t = 1_048_576)]
    max_body_bytes: usize,
    /// Largest file `POST /v1/files` accepts, in bytes (10 MiB).
    #[arg(long, env = "CASAPAY_MAX_FILE_BYTES", default_value_t = crate::domain::file::DEFAULT_MAX_FILE_BYTES)]
    max_file_bytes: usize,
    /// Requests running longer than this many seconds, body included, are answered 503.
    #[arg(long, env = "CASAPAY_REQUEST_TIMEOUT_SECS", default_value_t = 30)]
    request_timeout_secs: u64,
    /// Seconds a connection has to send a request's headers, from their first byte (from
    /// being accepted, for its first request); it is closed after that.
    #[arg(long, env = "CASAPAY_HEADER_READ_TIMEOUT_SECS", default_value_t = 10)]
    header_read_timeout_secs: u64,
    /// Seconds a keep-alive connection may wait for its next request before it is closed.
    #[arg(long, env = "CASAPAY_IDLE_TIMEOUT_SECS", default_value_t = 60)]
    idle_timeout_secs: u64,
    /// On SIGTERM or Ctrl-C, seconds the requests in flight, the engine's step and the
    /// webhook attempts have to finish; then the connections left are closed and the
    /// process exits.
    #[arg(long, env = "CASAPAY_SHUTDOWN_GRACE_SECS", default_value_t = 30)]
    shutdown_grace_secs: u64,
    /// Requests per second per test key (0: no limit).
    #[arg(long, env = "CASAPAY_RATE_LIMIT_TEST", default_value_t = 25)]
    rate_limit_test: u32,
    /// Requests per second per live key (0: no limit).
    #[arg(long, env = "CASAPAY_RATE_LIMIT_LIVE", default_value_t = 100)]
    rate_limit_live: u32,
    /// How long, in milliseconds, a key that authenticated is trusted without looking
    /// it up again: a key revoked by `casapay keys revoke` stops working within this
    /// time. 0 looks the key up on every request.
    #[arg(long, env = "CASAPAY_KEY_CACHE_MS", default_value_t = 1000)]
    key_cache_ms: u64,
    /// Failed authentications (unknown, revoked or expired keys) a second per client
    /// address, after a burst of 20; beyond it, 429 without a key lookup, except for
    /// keys that authenticated before in this process. 0: no limit.
    #[arg(long, env = "CASAPAY_AUTH_FAILURE_LIMIT", default_value_t = 5)]
    auth_failure_limit: u32,
    /// How often the claims engine looks for work, in milliseconds.
    #[arg(long, env = "CASAPAY_ENGINE_POLL_MS", default_value_t = 250)]
    engine_poll_ms: u64,
    /// The most claims, payouts and guarantees the engine handles per step (default:
    /// 100 on PostgreSQL, 25 on SQLite).
    #[arg(long, env = "CASAPAY_ENGINE_BATCH_SIZE")]
    engine_batch_size: Option<usize>,
    /// How many engine steps run at once on PostgreSQL (SQLite: always one).
    #[arg(long, env = "CASAPAY_ENGINE_WORKERS", default_value_t = 2)]
    engine_workers: usize,
    /// Serve the API only: no claims engine and no webhook dispatcher (leave them to
    /// other replicas).
    #[arg(long, env = "CASAPAY_NO_ENGINE", num_args = 0..=1, default_missing_value = "true",
          default_value = "false", action = clap::ArgAction::Set, value_parser = BoolishValueParser::new())]
    no_engine: bool,
    /// Allow http:// webhook URLs (default: false; true with --demo).
    #[arg(long, env = "CASAPAY_WEBHOOK_ALLOW_HTTP", num_args = 0..=1, default_missing_value = "true",
          value_parser = BoolishValueParser::new())]
    webhook_allow_http: Option<bool>,
    /// Allow webhook URLs that are or resolve to loopback, private, link-local or
    /// other non-public addresses (default: false; true with --demo).
    #[arg(long, env = "CASAPAY_WEBHOOK_ALLOW_PRIVATE", num_args = 0..=1, default_missing_value = "true",
          value_parser = BoolishValueParser::new())]
    webhook_allow_private: Option<bool>,
    /// Seconds a webhook endpoint has to answer with a 2xx.
    #[arg(long, env = "CASAPAY_WEBHOOK_TIMEOUT_SECS", default_value_t = 15)]
    webhook_timeout_secs: u64,
    /// Most webhook attempts in flight at once.
    #[arg(long, env = "CASAPAY_WEBHOOK_CONCURRENCY", default_value_t = 64)]
    webhook_concurrency: usize,
    /// Most webhook attempts in flight to one endpoint.
    #[arg(long, env = "CASAPAY_WEBHOOK_PER_ENDPOINT", default_value_t = 4)]
    webhook_per_endpoint: usize,
    /// Most webhook attempts in flight for one account in one mode (default: a quarter
    /// of --webhook-concurrency).
    #[arg(long, env = "CASAPAY_WEBHOOK_PER_ACCOUNT")]
    webhook_per_account: Option<usize>,
    /// Approvals of this amount (minor units) or more need two different operators
    /// (four eyes); 0 turns it off.
    #[arg(long, env = "CASAPAY_REVIEW_SECOND_APPROVAL_AMOUNT", default_value_t = crate::app::DEFAULT_SECOND_APPROVAL_AMOUNT,
          value_parser = clap::value_parser!(i64).range(0..))]
    review_second_approval_amount: i64,
    /// How long a sign-in to the review console (/review) lasts, in seconds.
    #[arg(long, env = "CASAPAY_CONSOLE_SESSION_SECS", default_value_t = 8 * 3600,
          value_parser = clap::value_parser!(i64).range(1..=30 * 86_400))]
    console_session_secs: i64,
    /// Mark the console's session cookie Secure on every answer (it is anyway behind
    /// a proxy that sends `X-Forwarded-Proto: https`). Default: false.
    #[arg(long, env = "CASAPAY_CONSOLE_SECURE_COOKIE", num_args = 0..=1, default_missing_value = "true",
          default_value = "false", action = clap::ArgAction::Set, value_parser = BoolishValueParser::new())]
    console_secure_cookie: bool,
    /// Most database connections held at once (default: 16 on PostgreSQL, 8 on SQLite).
    #[arg(long, env = "CASAPAY_DB_MAX_CONNECTIONS")]
    db_max_connections: Option<u32>,
    /// Keep Prometheus metrics and serve them at GET /metrics (`off`: no metrics, no
    /// /metrics, for measuring what they cost).
    #[arg(long, env = "CASAPAY_METRICS", num_args = 0..=1, default_missing_value = "true",
          default_value = "true", action = clap::ArgAction::Set, value_parser = BoolishValueParser::new())]
    metrics: bool,
    /// Serve GET /metrics on this address instead of the API's (e.g. a private port).
    #[arg(long, env = "CASAPAY_METRICS_LISTEN")]
    metrics_listen: Option<SocketAddr>,
}

#[derive(Debug, Subcommand)]
enum AccountsCommand {
    /// Create an account; prints its id and its test and live secret keys as JSON.
    Create {
        #[arg(long)]
        name: String,
    },
}

#[derive(Debug, Subcommand)]
enum OperatorsCommand {
    /// Create an operator and its key; prints {"id", "name", "key"} as JSON (the key is
    /// shown once).
    Create {
        #[arg(long)]
        name: String,
        #[arg(long)]
        email: Option<String>,
    },
    /// List the operators as JSON.
    List,
    /// Disable an operator: its keys stop working and its console sessions end.
    Disable {
        #[arg(long)]
        id: String,
    },
}

#[derive(Debug, Subcommand)]
enum OperatorKeysCommand {
    /// Create an operator key; prints it as JSON.
    Create,
}

pub fn main() -> ExitCode {
    let cli = Cli::parse();
    init_tracing(cli.log_format);
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("casapay: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(run(cli));
    // A blocking task still running (a DNS lookup, say) must not hold the exit up.
    runtime.shutdown_timeout(Duration::from_secs(1));
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("casapay: {e}");
            ExitCode::FAILURE
        }
    }
}

fn init_tracing(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,sqlx=warn"));
    use std::io::IsTerminal;
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal());
    match format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder.json().init(),
    }
}

impl Cli {
    fn database_url(&self) -> String {
        match &self.database_url {
            Some(url) if !url.is_empty() => url.clone(),
            _ => format!("sqlite://{}?mode=rwc", self.data_dir.join("casapay.db").display()),
        }
    }
}

/// Creates the directory of a SQLite database file if it is missing, and checks that
/// it can be written (SQLite writes its journal files beside the database).
fn ensure_sqlite_dir(cli: &Cli, url: &str) -> Result<(), String> {
    let Some(file) = sqlite_file(url) else { return Ok(()) };
    let dir = match file.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let hint = if cli.database_url.as_deref().is_some_and(|u| !u.is_empty()) {
        "point DATABASE_URL at a file in a writable directory"
    } else {
        "choose a writable data directory with --data or CASAPAY_DATA"
    };
    std::fs::create_dir_all(&dir)
        .map_err(|e| format!("cannot create the data directory {} ({e}): {hint}", dir.display()))?;
    let probe = dir.join(format!(".casapay-write-check-{}", std::process::id()));
    match std::fs::OpenOptions::new().write(true).create(true).truncate(true).open(&probe) {
        Ok(_) => {
            let _ = std::fs::remove_file(&probe);
            Ok(())
        }
        Err(e) => Err(format!("the data directory {} is not writable ({e}): {hint}", dir.display())),
    }
}

/// How long the start-up check waits for PostgreSQL to answer at all.
const PG_CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

async fn open_store(cli: &Cli, max_connections: u32) -> Result<Store, String> {
    let url = cli.database_url();
    ensure_sqlite_dir(cli, &url)?;
    let target = PgTarget::of(&url);
    if let Some(target) = &target {
        check_postgres(&url, target, cli.create_database.unwrap_or(false)).await?;
    }
    let mut opts = StoreOptions::new(url.clone());
    opts.max_connections = max_connections;
    Store::connect(&opts).await.map_err(|e| match (&target, sqlite_file(&url)) {
        (Some(target), _) => postgres_error(target, &e),
        (None, Some(file)) => format!("cannot open the SQLite database {}: {e}", file.display()),
        (None, None) => format!("cannot open the database: {e}"),
    })
}

/// One connection before the pool, which would retry a refused connection for its
/// whole acquire timeout and then report only that it timed out.
async fn check_postgres(url: &str, target: &PgTarget, create: bool) -> Result<(), String> {
    match setup::probe(url, PG_CONNECT_TIMEOUT).await {
        Ok(()) => Ok(()),
        Err(e) if create && setup::is_missing_database(&e) => match setup::create_database(url).await {
            Ok(created) => {
                if created {
                    tracing::info!(database = %target.database, address = %target.address, "database created");
                }
                Ok(())
            }
            Err(e) => Err(format!(
                "the database \"{}\" does not exist on the PostgreSQL server at {}, and creating it failed ({}). {}",
                target.database,
                target.address,
                short_error(&e),
                create_instructions(target)
            )),
        },
        Err(e) => Err(postgres_error(target, &e)),
    }
}

/// What went wrong reaching PostgreSQL, and what to do about it. Never the password.
fn postgres_error(target: &PgTarget, e: &sqlx::Error) -> String {
    let address = &target.address;
    if let sqlx::Error::Io(io) = e {
        let why = match io.kind() {
            std::io::ErrorKind::ConnectionRefused => "connection refused".to_owned(),
            _ => io.to_string(),
        };
        return format!(
            "could not connect to PostgreSQL at {address} ({why}): is it running, and reachable there? \
             Check the host and port in DATABASE_URL."
        );
    }
    if setup::is_missing_database(e) {
        return format!(
            "the database \"{}\" does not exist on the PostgreSQL server at {address}. {} Or let casapay \
             create it: --create-database, or CASAPAY_CREATE_DATABASE=true (the user needs the CREATEDB privilege).",
            target.database,
            create_instructions(target)
        );
    }
    match e.as_database_error().and_then(|d| d.code()).as_deref() {
        // invalid_password, invalid_authorization_specification
        Some("28P01" | "28000") => format!(
            "PostgreSQL at {address} refused user \"{}\" ({}): check the user and password in DATABASE_URL.",
            target.user,
            short_error(e)
        ),
        _ => format!("cannot open the database \"{}\" at {address}: {e}", target.database),
    }
}

fn create_instructions(target: &PgTarget) -> String {
    format!(
        "Create it with `createdb -h {} -p {} -U {} {}` (or `CREATE DATABASE {};` in psql).",
        shell_word(&target.host),
        target.port,
        shell_word(&target.user),
        shell_word(&target.database),
        setup::quote_ident(&target.database)
    )
}

/// The database's own message, without sqlx's "error returned from database" prefix.
fn short_error(e: &sqlx::Error) -> String {
    e.as_database_error().map(|d| d.message().to_owned()).unwrap_or_else(|| e.to_string())
}

/// `s` as one word for a POSIX shell.
fn shell_word(s: &str) -> String {
    if !s.is_empty() && s.chars().all(|c| c.is_ascii_alphanumeric() || "_-./:@".contains(c)) {
        s.to_owned()
    } else {
        format!("'{}'", s.replace('\'', "'\\''"))
    }
}

async fn run(cli: Cli) -> Result<(), String> {
    let clock = SystemClock;
    match &cli.command {
        Command::Serve(args) => serve(&cli, args).await,
        Command::Migrate => {
            let store = open_store(&cli, 2).await?;
            store.migrate().await.map_err(|e| format!("migration failed: {e}"))?;
            eprintln!("casapay: migrations applied");
            Ok(())
        }
        Command::Accounts { command: AccountsCommand::Create { name } } => {
            let store = open_store(&cli, 2).await?;
            store.migrate().await.map_err(|e| format!("migration failed: {e}"))?;
            let created = accounts::create_account(&store, name, clock.now()).await.map_err(|e| e.to_string())?;
            println!("{}", serde_json::to_string_pretty(&created).map_err(|e| e.to_string())?);
            Ok(())
        }
        Command::Keys { command: KeysCommand::Roll { account, mode, grace_hours } } => {
            let store = open_store(&cli, 2).await?;
            store.migrate().await.map_err(|e| format!("migration failed: {e}"))?;
            let live = matches!(mode, KeyMode::Live);
            // Bounded by the parser: the product is at most 720 x 3600.
            let key = accounts::roll_secret_key(&store, account, live, grace_hours * 3600, clock.now())
                .await
                .map_err(|e| e.to_string())?;
            println!("{}", serde_json::json!({ "key": key }));
            Ok(())
        }
        Command::Keys { command: KeysCommand::Revoke } => {
            let mut key = String::new();
            std::io::stdin().read_line(&mut key).map_err(|e| format!("cannot read the key: {e}"))?;
            let key = key.trim();
            if key.is_empty() {
                return Err("give the key to revoke on standard input".into());
            }
            let store = open_store(&cli, 2).await?;
            store.migrate().await.map_err(|e| format!("migration failed: {e}"))?;
            if accounts::revoke_key(&store, key, clock.now()).await.map_err(|e| e.to_string())? {
                eprintln!("casapay: key revoked");
                Ok(())
            } else {
                Err("no such key, or it was revoked already".into())
            }
        }
        Command::Operators { command } => {
            let store = open_store(&cli, 2).await?;
            store.migrate().await.map_err(|e| format!("migration failed: {e}"))?;
            let out = match command {
                OperatorsCommand::Create { name, email } => {
                    let created = operators::create(&store, name, email.as_deref(), clock.now())
                        .await
                        .map_err(|e| e.to_string())?;
                    serde_json::to_string_pretty(&created)
                }
                OperatorsCommand::List => {
                    let all = operators::list(&store).await.map_err(|e| e.to_string())?;
                    serde_json::to_string_pretty(&all)
                }
                OperatorsCommand::Disable { id } => {
                    let disabled = operators::disable(&store, id, clock.now()).await.map_err(|e| e.to_string())?;
                    serde_json::to_string_pretty(&disabled)
                }
            };
            println!("{}", out.map_err(|e| e.to_string())?);
            Ok(())
        }
        Command::Listen(args) => {
            let client = crate::tools::client::ApiClient::new(&args.api, &args.api_key)?;
            let options = crate::tools::listen::ListenOptions {
                forward_to: args.forward_to.clone(),
                events: args.events.clone(),
                poll: Duration::from_millis(args.poll_ms),
            };
            crate::tools::listen::listen(client, options, shutdown_signal()).await
        }
        Command::Trigger(args) => {
            use crate::tools::trigger;
            if args.list {
                print!("{}", trigger::list());
                return Ok(());
            }
            let options = trigger::TriggerOptions {
                event: args.event.clone().unwrap_or_default(),
                params: args.params.clone(),
                timeout: Duration::from_secs(args.timeout_secs),
                poll: Duration::from_millis(100),
            };
            trigger::trigger(&args.api, args.api_key.as_deref().unwrap_or_default(), options).await.map(|_| ())
        }
        Command::OperatorKeys { command: OperatorKeysCommand::Create } => {
            let store = open_store(&cli, 2).await?;
            store.migrate().await.map_err(|e| format!("migration failed: {e}"))?;
            let key = accounts::create_operator_key(&store, clock.now()).await.map_err(|e| e.to_string())?;
            println!("{}", serde_json::json!({ "key": key }));
            Ok(())
        }
    }
}

async fn serve(cli: &Cli, args: &ServeArgs) -> Result<(), String> {
    let url = cli.database_url();
    ensure_sqlite_dir(cli, &url)?;
    let _serve_lock = match sqlite_file(&url) {
        Some(file) => Some(ServeLock::acquire(&file)?),
        None => None,
    };
    // SQLite has one writer, and each connection keeps a page cache and a thread of its
    // own: 8 served reads as fast as 16 in the benchmark, with 67 instead of 104 MiB
    // peak RSS.
    let on_sqlite = url.starts_with("sqlite:");
    let default_connections = if on_sqlite { 8 } else { 16 };
    // An engine step holds SQLite's one writer for its whole batch, and every request
    // that writes waits behind it: batches of 25 caught up as fast as 100 in the
    // benchmark, with create claim's p99 at one connection 12-14 ms instead of 23-28.
    let default_batch = if on_sqlite { 25 } else { 100 };
    if args.metrics_listen.is_some() && !args.metrics {
        return Err("CASAPAY_METRICS_LISTEN is set but the metrics are off (CASAPAY_METRICS)".into());
    }
    let store = open_store(cli, args.db_max_connections.unwrap_or(default_connections).max(1)).await?;
    let store = if args.metrics { store } else { store.with_metrics(Metrics::off()) };
    if !args.no_migrate {
        store.migrate().await.map_err(|e| format!("migration failed: {e}"))?;
    }
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    if args.demo {
        accounts::seed_demo(&store, clock.now()).await.map_err(|e| format!("cannot seed the demo data: {e}"))?;
        tracing::info!(key = accounts::DEMO_TEST_KEY, customer = accounts::DEMO_CUSTOMER_ID, "demo data ready");
    }
    let state = AppState::new(
        store.clone(),
        clock.clone(),
        ApiConfig {
            max_body_bytes: args.max_body_bytes,
            max_file_bytes: args.max_file_bytes,
            request_timeout: Duration::from_secs(args.request_timeout_secs.max(1)),
            header_read_timeout: Duration::from_secs(args.header_read_timeout_secs.max(1)),
            idle_timeout: Duration::from_secs(args.idle_timeout_secs.max(1)),
            shutdown_grace: Duration::from_secs(args.shutdown_grace_secs),
            rate_limits: RateLimitConfig {
                test_per_second: args.rate_limit_test,
                live_per_second: args.rate_limit_live,
            },
            key_cache_ttl: Duration::from_millis(args.key_cache_ms),
            auth_failures_per_second: args.auth_failure_limit,
            second_approval_amount: args.review_second_approval_amount,
            console: crate::app::ConsoleConfig {
                session_seconds: args.console_session_secs,
                secure_cookie: args.console_secure_cookie,
            },
            metrics_route: args.metrics_listen.is_none(),
        },
    );
    // `--demo` is for development: webhooks to http:// and loopback are allowed unless set.
    let egress = EgressPolicy {
        allow_http: args.webhook_allow_http.unwrap_or(args.demo),
        allow_private: args.webhook_allow_private.unwrap_or(args.demo),
    };
    let state = state.with_egress(egress);
    tracing::info!(allow_http = egress.allow_http, allow_private = egress.allow_private, "webhook egress policy");
    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .map_err(|e| format!("cannot listen on {}: {e}", args.listen))?;

    // One token stops everything: the signal cancels it, the server drains its
    // requests, and the engine finishes the step it is in.
    let cancel = CancellationToken::new();
    let engine = Engine::new(
        store.clone(),
        clock.clone(),
        Arc::new(InstantRail),
        EngineConfig {
            poll_interval: Duration::from_millis(args.engine_poll_ms.max(10)),
            batch_size: args.engine_batch_size.unwrap_or(default_batch).max(1),
            workers: args.engine_workers.max(1),
            ..EngineConfig::default()
        },
    );
    let dispatcher = Dispatcher::new(
        store.clone(),
        clock.clone(),
        DispatcherConfig {
            max_in_flight: args.webhook_concurrency.max(1),
            per_endpoint: args.webhook_per_endpoint.max(1),
            per_account: args.webhook_per_account.unwrap_or(args.webhook_concurrency / 4).max(1),
            timeout: Duration::from_secs(args.webhook_timeout_secs.max(1)),
            egress,
            ..DispatcherConfig::default()
        },
    );
    // Quiet keys are forgotten by the rate limiter once a minute, so its memory stays flat.
    let limits = state.rate_limits.clone();
    let auth_failures = state.auth_failures.clone();
    let limits_cancel = cancel.clone();
    tokio::spawn(async move {
        loop {
            tokio::select! {
                _ = limits_cancel.cancelled() => break,
                _ = tokio::time::sleep(Duration::from_secs(60)) => {
                    limits.shrink();
                    auth_failures.shrink();
                }
            }
        }
    });
    let mut workers = if args.no_engine {
        Vec::new()
    } else {
        vec![tokio::spawn(engine.run(cancel.clone())), tokio::spawn(dispatcher.run(cancel.clone()))]
    };
    workers.extend(crate::jobs::endpoint_listener::start(&store, &url, cancel.clone()));
    if store.metrics().is_on() {
        // On every replica, --no-engine or not: the gauges are the database's, and any
        // replica Prometheus reaches shows them.
        let sampler = MetricsSampler::new(store.clone(), clock.clone(), SAMPLE_EVERY);
        workers.push(tokio::spawn(sampler.run(cancel.clone())));
    }
    if let Some(address) = args.metrics_listen {
        let listener =
            tokio::net::TcpListener::bind(address).await.map_err(|e| format!("cannot listen on {address}: {e}"))?;
        let served =
            crate::app::metrics::serve(listener, store.clone(), state.config.clone(), cancel.clone().cancelled_owned());
        workers.push(tokio::spawn(async move {
            if let Err(e) = served.await {
                tracing::error!(error = %e, "the metrics listener failed");
            }
        }));
        tracing::info!(address = %address, "metrics served at /metrics on their own address");
    }
    tracing::info!(address = %args.listen, backend = ?store.backend(), "casapay listening");
    // The grace period counts from the signal, for the server and the workers alike.
    let grace = state.config.shutdown_grace;
    let stop_by = Arc::new(std::sync::OnceLock::<tokio::time::Instant>::new());
    let signal = {
        let cancel = cancel.clone();
        let stop_by = stop_by.clone();
        async move {
            tokio::select! {
                _ = shutdown_signal() => {}
                _ = cancel.cancelled() => {}
            }
            let _ = stop_by.set(tokio::time::Instant::now() + grace);
            cancel.cancel();
        }
    };
    let served = crate::app::serve(listener, state, signal).await;
    cancel.cancel();
    let stop_by = stop_by.get().copied().unwrap_or_else(tokio::time::Instant::now);
    for mut task in workers {
        if tokio::time::timeout_at(stop_by, &mut task).await.is_err() {
            // What it was doing is redone after restart: a step's transaction rolls
            // back, and a leased webhook delivery is retried when its lease expires.
            tracing::warn!("shutdown grace period over: stopping background work mid-step");
            task.abort();
            let _ = task.await;
        }
    }
    served.map_err(|e| format!("server error: {e}"))?;
    store.close().await;
    tracing::info!("casapay stopped");
    Ok(())
}

/// Resolves on Ctrl-C or SIGTERM.
async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = term => {},
    }
    tracing::info!("shutdown requested: finishing requests in flight");
}

#[cfg(test)]
mod tests {
    use super::*;

    fn no_engine(args: &[&str]) -> bool {
        let cli = Cli::try_parse_from(args).expect("parses");
        match cli.command {
            Command::Serve(serve) => serve.no_engine,
            other => panic!("not serve: {other:?}"),
        }
    }

    #[test]
    fn trigger_takes_params_as_key_value_pairs_and_list_alone() {
        let cli = Cli::try_parse_from([
            "casapay",
            "trigger",
            "claim.paid",
            "--param",
            "metadata[note]=a=b",
            "--param",
            "amount=5000",
            "--api-key",
            "sk_test_x",
        ])
        .expect("parses");
        let Command::Trigger(args) = cli.command else { panic!("not trigger") };
        assert_eq!(args.event.as_deref(), Some("claim.paid"));
        assert_eq!(
            args.params,
            [("metadata[note]".to_owned(), "a=b".to_owned()), ("amount".to_owned(), "5000".to_owned())]
        );
        assert!(Cli::try_parse_from(["casapay", "trigger", "claim.paid", "--param", "=1", "--api-key", "k"]).is_err());
        assert!(Cli::try_parse_from(["casapay", "trigger", "claim.paid", "--list", "--api-key", "k"]).is_err());
        let Command::Trigger(args) = Cli::try_parse_from(["casapay", "trigger", "--list"]).expect("parses").command
        else {
            panic!("not trigger")
        };
        assert!(args.list && args.event.is_none());
    }

    #[test]
    fn boolean_settings_accept_the_spelled_and_the_numeric_forms() {
        assert!(!no_engine(&["casapay", "serve"]));
        assert!(no_engine(&["casapay", "serve", "--no-engine"]));
        for (value, want) in [("true", true), ("1", true), ("false", false), ("0", false)] {
            assert_eq!(no_engine(&["casapay", "serve", &format!("--no-engine={value}")]), want, "{value}");
        }
    }
}
