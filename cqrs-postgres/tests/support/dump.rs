//! Moving a schema to another cluster the way operators do: `pg_dump` and `pg_restore`, with
//! passwords passed through `PGPASSWORD`, never on a command line.

use std::path::{Path, PathBuf};
use std::process::Command;

use sqlx::PgPool;

/// The second cluster restores go to, from `RESTORE_DATABASE_URL`. Panics with what to do when it
/// is not set: a test that needs it never passes without it.
pub fn restore_database_url() -> String {
    std::env::var("RESTORE_DATABASE_URL")
        .ok()
        .filter(|url| !url.is_empty())
        .unwrap_or_else(|| {
            panic!(
                "RESTORE_DATABASE_URL is not set. This test restores a pg_dump into a second, \
                 fresh PostgreSQL cluster: run scripts/test.sh (which starts one), or \
                 `eval \"export RESTORE_$(PG_WORKDIR=/var/tmp/cqrs-pg-restore PG_PORT=54331 \
                 scripts/postgres.sh start | tail -n1)\"` first"
            )
        })
}

/// The directory of the PostgreSQL client programs: `$PG_BINDIR`, else PostgreSQL 15's, else
/// whatever `PATH` finds.
fn program(name: &str) -> PathBuf {
    let dir = std::env::var("PG_BINDIR").unwrap_or_else(|_| "/usr/lib/postgresql/15/bin".into());
    let path = Path::new(&dir).join(name);
    if path.exists() {
        path
    } else {
        PathBuf::from(name)
    }
}

/// `url` without its password, and the password (percent-decoded), for libpq's `PGPASSWORD`.
pub fn split_password(url: &str) -> (String, Option<String>) {
    let mut parsed = url::Url::parse(url).expect("a valid database URL");
    let password = parsed.password().map(percent_decode);
    parsed.set_password(None).expect("a URL with a host");
    (parsed.to_string(), password)
}

fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = bytes
            .get(i + 1..i + 3)
            .and_then(|h| std::str::from_utf8(h).ok())
            .and_then(|h| u8::from_str_radix(h, 16).ok());
        match (bytes[i], hex) {
            (b'%', Some(byte)) => {
                out.push(byte);
                i += 3;
            }
            (byte, _) => {
                out.push(byte);
                i += 1;
            }
        }
    }
    String::from_utf8(out).expect("a UTF-8 password")
}

/// A libpq program run against `url`: the URL (without password) as `--dbname`, the password in
/// `PGPASSWORD`.
fn libpq(name: &str, url: &str) -> Command {
    let (url, password) = split_password(url);
    let mut command = Command::new(program(name));
    command.arg(format!("--dbname={url}"));
    if let Some(password) = password {
        command.env("PGPASSWORD", password);
    }
    command
}

fn run(mut command: Command, what: &str) {
    let output = command.output().unwrap_or_else(|e| {
        panic!("cannot run {what} (install PostgreSQL 15's client programs or set PG_BINDIR): {e}")
    });
    assert!(
        output.status.success(),
        "{what} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
}

/// Copies `schema` from the database at `from` into the one at `to` with `pg_dump` (custom
/// format) and `pg_restore`: rows, sequences and all, as a move to a new cluster does.
pub fn dump_and_restore(schema: &str, from: &str, to: &str) {
    let file = std::env::temp_dir().join(format!("{schema}.dump"));
    let mut dump = libpq("pg_dump", from);
    dump.args([
        "--format=custom",
        "--no-owner",
        "--schema",
        schema,
        "--file",
    ])
    .arg(&file);
    run(dump, "pg_dump");
    let mut restore = libpq("pg_restore", to);
    restore.args(["--no-owner", "--exit-on-error"]).arg(&file);
    run(restore, "pg_restore");
    let _ = std::fs::remove_file(&file);
}

/// The next transaction id of `pool`'s cluster (no id is taken to read it).
pub async fn next_transaction_id(pool: &PgPool) -> u64 {
    let next: String = sqlx::query_scalar("SELECT pg_snapshot_xmax(pg_current_snapshot())::text")
        .fetch_one(pool)
        .await
        .expect("read the next transaction id");
    next.parse().expect("a transaction id")
}

/// Takes transaction ids on `pool`'s cluster until its next one is at least `target`: a
/// thousand small transactions per round trip.
pub async fn burn_transaction_ids_to(pool: &PgPool, target: u64) {
    let batch = "BEGIN; SELECT pg_current_xact_id(); COMMIT;\n".repeat(1000);
    while next_transaction_id(pool).await < target {
        sqlx::raw_sql(&batch)
            .execute(pool)
            .await
            .expect("burn transaction ids");
    }
}
