//! Test harness (feature `test-harness`): a real PostgreSQL server for tests,
//! examples and benchmarks, on machines that have the PostgreSQL binaries but
//! no running server.
//!
//! * If `DATABASE_URL` is set, that server is used (each test still gets its
//!   own database, created there and named `sbt_<pid>_<n>`; they are not
//!   dropped, so point it at a throwaway server).
//! * Otherwise the first test of the process starts **one** throwaway cluster
//!   (`initdb -A trust -N` into a temp dir, as the `postgres` user when run
//!   as root, `fsync=off`, 127.0.0.1 on a free port) and a watchdog process
//!   that stops it and removes its directory when the test process exits,
//!   however it exits.
//! * Every test gets a fresh database copied from a migrated template.
//! * If no server can be started or reached, the test **fails** with the
//!   reason; it never skips.
//!
//! Binaries are looked up in `$PG_BIN_DIR`, then `/usr/lib/postgresql/15/bin`,
//! then `PATH`.
//!
//! ```no_run
//! # async fn demo() {
//! use switchboard_core::store::EventStore;
//! let store = switchboard_store_postgres::testing::fresh_store().await;
//! assert!(store.read_all(None, 10).await.expect("read").is_empty());
//! # }
//! ```

use crate::{PostgresOptions, PostgresStore};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::str::FromStr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::OnceLock;
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use tokio::sync::OnceCell;

static COUNTER: AtomicU64 = AtomicU64::new(0);

fn unique(prefix: &str) -> String {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    format!(
        "{prefix}_{}_{}_{nanos}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    )
}

/// How to stop a cluster.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StopMode {
    /// Disconnect clients, shut down cleanly.
    Fast,
    /// Kill the server without a checkpoint (like a crash); restart recovers from WAL.
    Immediate,
}

/// A throwaway PostgreSQL cluster owned by this process. Dropping it stops
/// the server and removes its directory; a watchdog process does the same if
/// this process dies first.
///
/// ```no_run
/// use switchboard_store_postgres::testing::{StopMode, TestCluster};
/// let cluster = TestCluster::start().expect("PostgreSQL binaries installed");
/// let url = cluster.url("postgres");
/// cluster.stop(StopMode::Immediate).expect("stop"); // simulate a crash
/// cluster.restart().expect("restart");
/// # let _ = url;
/// ```
#[derive(Debug)]
pub struct TestCluster {
    dir: PathBuf,
    port: u16,
    bin: PathBuf,
    as_postgres: bool,
    /// Whether commits are flushed to disk (`fsync=on`), as on a production
    /// server; test clusters run with `fsync=off` for speed.
    durable: bool,
}

impl TestCluster {
    /// Creates and starts a cluster in a new temp directory, with
    /// `fsync=off` (fast, not crash-safe: for tests).
    pub fn start() -> Result<Self, String> {
        Self::start_with(false)
    }

    /// [`TestCluster::start`] with `fsync=on` and full page writes: commits
    /// wait for the disk, as on a production server (for benchmarks).
    pub fn start_durable() -> Result<Self, String> {
        Self::start_with(true)
    }

    fn start_with(durable: bool) -> Result<Self, String> {
        let bin = pg_bin_dir();
        let as_postgres = running_as_root();
        let dir = std::env::temp_dir().join(unique("switchboard-pg"));
        std::fs::create_dir_all(&dir)
            .map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
        let mut cluster = TestCluster {
            dir,
            port: 0,
            bin,
            as_postgres,
            durable,
        };
        if as_postgres {
            // initdb refuses root: the cluster belongs to the postgres user.
            run(Command::new("chown")
                .arg("postgres:postgres")
                .arg(&cluster.dir))?;
        }
        cluster.spawn_watchdog()?;
        let data = cluster.data_dir();
        run(cluster
            .pg("initdb")
            .args([
                "-A",
                "trust",
                "-N",
                "-U",
                "postgres",
                "-E",
                "UTF8",
                "--locale=C",
                "-D",
            ])
            .arg(&data))
        .map_err(|e| format!("initdb failed ({}): {e}", cluster.bin.display()))?;
        let mut last_error = String::new();
        for _ in 0..5 {
            cluster.port = free_port()?;
            match cluster.restart() {
                Ok(()) => return Ok(cluster),
                // Most likely someone took the port between our probe and the bind.
                Err(e) => last_error = e,
            }
        }
        Err(last_error)
    }

    /// Starts the (stopped) server again on the same port and data.
    pub fn restart(&self) -> Result<(), String> {
        let durability = if self.durable {
            "-c fsync=on -c full_page_writes=on"
        } else {
            "-c fsync=off -c full_page_writes=off"
        };
        let options = format!(
            "-c listen_addresses=127.0.0.1 -p {} -k {} {durability} \
             -c max_connections=400 -c shared_buffers=32MB",
            self.port,
            self.dir.display()
        );
        run(self
            .pg("pg_ctl")
            .arg("-D")
            .arg(self.data_dir())
            .arg("-l")
            .arg(self.dir.join("server.log"))
            .args(["-w", "-t", "60", "-o", &options, "start"]))
        .map_err(|e| {
            let log = std::fs::read_to_string(self.dir.join("server.log")).unwrap_or_default();
            let tail: String = log.lines().rev().take(15).collect::<Vec<_>>().join("\n");
            format!("PostgreSQL did not start: {e}\nserver log (last lines, newest first):\n{tail}")
        })
    }

    /// Stops the server (waiting until it is down).
    pub fn stop(&self, mode: StopMode) -> Result<(), String> {
        let mode = match mode {
            StopMode::Fast => "fast",
            StopMode::Immediate => "immediate",
        };
        run(self
            .pg("pg_ctl")
            .arg("-D")
            .arg(self.data_dir())
            .args(["-w", "-t", "60", "-m", mode, "stop"]))
    }

    /// A connection string for database `dbname` on this cluster.
    pub fn url(&self, dbname: &str) -> String {
        format!(
            "host=127.0.0.1 port={} user=postgres dbname={dbname} connect_timeout=10",
            self.port
        )
    }

    /// The TCP port.
    pub fn port(&self) -> u16 {
        self.port
    }

    fn data_dir(&self) -> PathBuf {
        self.dir.join("data")
    }

    fn pg(&self, program: &str) -> Command {
        let exe = if self.bin.as_os_str().is_empty() {
            PathBuf::from(program)
        } else {
            self.bin.join(program)
        };
        let mut cmd = if self.as_postgres {
            let mut c = Command::new("runuser");
            c.args(["-u", "postgres", "--"]).arg(exe);
            c
        } else {
            Command::new(exe)
        };
        // Never inherit the test's stdout (a pipe reader would wait on it).
        cmd.stdin(Stdio::null());
        cmd
    }

    /// A detached process that waits for this process to exit, then stops the
    /// server and removes the directory (covers panics, aborts and kills).
    fn spawn_watchdog(&self) -> Result<(), String> {
        let stop = if self.as_postgres {
            "runuser -u postgres -- \"$PG_CTL\""
        } else {
            "\"$PG_CTL\""
        };
        let pg_ctl = if self.bin.as_os_str().is_empty() {
            PathBuf::from("pg_ctl")
        } else {
            self.bin.join("pg_ctl")
        };
        let script = format!(
            "while kill -0 \"$PARENT\" 2>/dev/null; do sleep 0.5; done; \
             {stop} -D \"$DIR/data\" -m immediate -w stop >/dev/null 2>&1; rm -rf \"$DIR\""
        );
        Command::new("setsid")
            .args(["sh", "-c", &script])
            .env("PARENT", std::process::id().to_string())
            .env("DIR", &self.dir)
            .env("PG_CTL", pg_ctl)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map(drop)
            .map_err(|e| format!("cannot start the cluster watchdog (setsid sh): {e}"))
    }
}

impl Drop for TestCluster {
    fn drop(&mut self) {
        let _ = self.stop(StopMode::Immediate);
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn pg_bin_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("PG_BIN_DIR") {
        return PathBuf::from(dir);
    }
    let debian = Path::new("/usr/lib/postgresql/15/bin");
    if debian.join("pg_ctl").exists() {
        return debian.to_path_buf();
    }
    PathBuf::new() // rely on PATH
}

fn running_as_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
        .unwrap_or(false)
}

fn free_port() -> Result<u16, String> {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .map_err(|e| format!("no free TCP port: {e}"))
}

fn run(cmd: &mut Command) -> Result<(), String> {
    let out = cmd
        .output()
        .map_err(|e| format!("cannot run {cmd:?}: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "{cmd:?} exited with {}: {}{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ))
    }
}

/// The server every test of this process uses: `DATABASE_URL`, or the shared
/// throwaway cluster (started on first use). Returns the admin connection config.
pub fn server() -> Result<tokio_postgres::Config, String> {
    static SHARED: OnceLock<Result<TestCluster, String>> = OnceLock::new();
    if let Ok(url) = std::env::var("DATABASE_URL") {
        return tokio_postgres::Config::from_str(&url)
            .map_err(|e| format!("DATABASE_URL is not a valid connection string: {e}"));
    }
    // Statics are never dropped: the watchdog stops this cluster at exit.
    let cluster = SHARED.get_or_init(TestCluster::start).as_ref()?;
    tokio_postgres::Config::from_str(&cluster.url("postgres")).map_err(|e| e.to_string())
}

/// Creates a new database on `admin`'s server, optionally from a template.
/// Returns the config of the new database.
pub async fn create_database(
    admin: &tokio_postgres::Config,
    template: Option<&str>,
) -> Result<tokio_postgres::Config, String> {
    let name = unique("sbt");
    let (client, connection) = admin
        .connect(tokio_postgres::NoTls)
        .await
        .map_err(|e| format!("cannot reach the test PostgreSQL server: {e}"))?;
    let driver = tokio::spawn(connection);
    let sql = match template {
        Some(t) => format!("CREATE DATABASE {name} TEMPLATE {t}"),
        None => format!("CREATE DATABASE {name}"),
    };
    let mut result = Ok(());
    // The template may still be held for a moment by connections being closed.
    for attempt in 0..50 {
        result = client.batch_execute(&sql).await;
        match &result {
            Err(e) if e.code() == Some(&tokio_postgres::error::SqlState::OBJECT_IN_USE) => {
                tokio::time::sleep(Duration::from_millis(20 * (attempt + 1))).await;
            }
            _ => break,
        }
    }
    drop(client);
    let _ = driver.await;
    result.map_err(|e| format!("{sql} failed: {e}"))?;
    let mut config = admin.clone();
    config.dbname(&name);
    Ok(config)
}

/// A migrated template database for this process (created once).
async fn template(admin: &tokio_postgres::Config) -> Result<String, String> {
    static TEMPLATE: OnceCell<Result<String, String>> = OnceCell::const_new();
    TEMPLATE
        .get_or_init(|| async {
            let config = create_database(admin, None).await?;
            let name = config
                .get_dbname()
                .map(str::to_owned)
                .ok_or_else(|| "template without a name".to_string())?;
            // No listener; the pool is closed before the template is copied
            // (create_database retries while it is still in use).
            let manager = deadpool_postgres::Manager::from_config(
                config.clone(),
                tokio_postgres::NoTls,
                deadpool_postgres::ManagerConfig::default(),
            );
            let pool = deadpool_postgres::Pool::builder(manager)
                .max_size(1)
                .build()
                .map_err(|e| e.to_string())?;
            let store = PostgresStore::from_pool(pool.clone(), None, PostgresOptions::default())
                .map_err(|e| e.to_string())?;
            store
                .migrate()
                .await
                .map_err(|e| format!("migrating the template failed: {e}"))?;
            drop(store);
            pool.close();
            Ok(name)
        })
        .await
        .clone()
}

/// A fresh, migrated, empty database: its connection config.
pub async fn try_fresh_database() -> Result<tokio_postgres::Config, String> {
    let admin = server()?;
    let template = template(&admin).await?;
    create_database(&admin, Some(&template)).await
}

/// A store on a fresh, migrated, empty database, with LISTEN wake-ups.
pub async fn try_fresh_store() -> Result<PostgresStore, String> {
    let config = try_fresh_database().await?;
    // Tests run in parallel against one server (maybe a shared DATABASE_URL
    // with the default max_connections = 100): keep each store's pool small,
    // yet large enough for the 8-writer concurrency tests to really overlap.
    let options = PostgresOptions {
        max_connections: 8,
        ..PostgresOptions::default()
    };
    PostgresStore::connect_config(config, options)
        .await
        .map_err(|e| format!("cannot connect to the test database: {e}"))
}

/// [`try_fresh_store`] for tests.
///
/// # Panics
/// When no server can be started or reached: a Postgres test must fail then,
/// never skip.
pub async fn fresh_store() -> PostgresStore {
    match try_fresh_store().await {
        Ok(store) => store,
        Err(e) => panic!("PostgreSQL test server unavailable: {e}"),
    }
}
