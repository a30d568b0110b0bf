//! Errors are one line on stderr, never a panic or a backtrace, never the password, with a
//! distinct exit code: 2 bad input, 3 not found, 4 server unreachable (a retry may cure it),
//! 1 a server that answers and refuses (a retry would be refused the same way).

mod support;

use std::net::TcpListener;
use std::process::Stdio;

use cqrs_postgres::testing::fresh_store;
use support::{cqrs, cqrs_with};

/// A port nothing listens on: bound, then closed.
fn closed_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("a free port");
    listener.local_addr().expect("its address").port()
}

fn one_line(stderr: &str) {
    assert_eq!(stderr.lines().count(), 1, "one line: {stderr}");
    assert!(
        !stderr.contains("panicked") && !stderr.contains("backtrace"),
        "{stderr}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_failure_has_one_line_and_its_exit_code() {
    // server down
    let down = format!("postgres://app:s3cret-pw@127.0.0.1:{}/app", closed_port());
    let run = cqrs_with(&[("DATABASE_URL", &down)], &["status"]).await;
    assert_eq!(run.code, 4, "{run:?}");
    one_line(&run.stderr);
    assert!(run.stderr.starts_with("cqrs: "), "{}", run.stderr);
    assert!(
        run.stderr.contains("127.0.0.1"),
        "names the address: {}",
        run.stderr
    );
    assert!(!run.stderr.contains("s3cret-pw"), "{}", run.stderr);

    // A server that answers and refuses the connection (here: no such database, 3D000; the
    // same for a wrong password, 28P01) is not unreachable: a script retrying on 4 would
    // retry for ever.
    let url = support::database_url();
    let (base, query) = url.split_once('?').unwrap_or((&url, ""));
    let (server, _) = base.rsplit_once('/').expect("a URL with a database");
    let refused = format!("{server}/no_such_database_here?{query}");
    let run = cqrs_with(&[("DATABASE_URL", &refused)], &["status"]).await;
    assert_eq!(run.code, 1, "{run:?}");
    one_line(&run.stderr);
    assert!(
        run.stderr.contains("no_such_database_here"),
        "says what was refused: {}",
        run.stderr
    );

    // a malformed URL, with its password
    let run = cqrs_with(
        &[],
        &[
            "--database-url",
            "postgres://app:s3cret-pw@[::1/app",
            "status",
        ],
    )
    .await;
    assert_eq!(run.code, 2, "{run:?}");
    one_line(&run.stderr);
    assert!(!run.stderr.contains("s3cret-pw"), "{}", run.stderr);
    let run = cqrs_with(
        &[],
        &["--database-url", "mysql://app:s3cret-pw@db/app", "status"],
    )
    .await;
    assert_eq!(run.code, 2, "{run:?}");
    assert!(!run.stderr.contains("s3cret-pw"), "{}", run.stderr);

    // no URL at all, a bad schema name, a bad position, an unknown command
    let run = cqrs_with(&[], &["status"]).await;
    assert_eq!(run.code, 2, "{run:?}");
    one_line(&run.stderr);
    assert!(run.stderr.contains("DATABASE_URL"), "{}", run.stderr);
    let store = fresh_store().await.expect("a fresh schema");
    let run = cqrs(&store, &["--schema", "Bad-Name", "status"]).await;
    assert_eq!(run.code, 2, "{run:?}");
    one_line(&run.stderr);
    let run = cqrs(&store, &["dead-letters", "show", "orders", "twelve"]).await;
    assert_eq!(run.code, 2, "{run:?}");
    let run = cqrs(&store, &["events", "tail", "--from", "x/y"]).await;
    assert_eq!(run.code, 2, "{run:?}");
    one_line(&run.stderr);
    let run = cqrs(&store, &["frobnicate"]).await;
    assert_eq!(run.code, 2, "{run:?}");
    let huge = (u64::MAX / 2 + 1).to_string();
    let run = cqrs(&store, &["streams", "show", "order-1", "--from", &huge]).await;
    assert_eq!(run.code, 2, "a version past the store's: {run:?}");
    one_line(&run.stderr);

    // not found: a stream, a letter, a projection
    let run = cqrs(&store, &["streams", "show", "order-404"]).await;
    assert_eq!(run.code, 3, "{run:?}");
    one_line(&run.stderr);
    let run = cqrs(&store, &["dead-letters", "show", "orders", "1/1"]).await;
    assert_eq!(run.code, 3, "{run:?}");
    let run = cqrs(
        &store,
        &["dead-letters", "skip", "orders", "--key", "order-1"],
    )
    .await;
    assert_eq!(run.code, 3, "{run:?}");
    let run = cqrs(&store, &["dead-letters", "list", "--projection", "orders"]).await;
    assert_eq!(run.code, 3, "{run:?}");

    // help is not an error, and does not show the URL from the environment
    let run = cqrs_with(&[("DATABASE_URL", &down)], &["--help"]).await;
    assert_eq!(run.code, 0, "{run:?}");
    assert!(run.stdout.contains("dead-letters"), "{}", run.stdout);
    assert!(!run.stdout.contains("s3cret-pw"), "{}", run.stdout);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_interrupted_command_exits_130_not_as_a_success() {
    // A server that takes the connection and never answers: the command hangs until Ctrl-C.
    let silent = TcpListener::bind("127.0.0.1:0").expect("a free port");
    let url = format!(
        "postgres://app@127.0.0.1:{}/app",
        silent.local_addr().expect("address").port()
    );
    let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_cqrs"));
    command.env_clear().env("DATABASE_URL", &url).arg("status");
    command.stdout(Stdio::piped()).stderr(Stdio::piped());
    let child = command.spawn().expect("the cqrs binary starts");
    let (_held, _) = silent.accept().expect("the command connects");
    // Its Ctrl-C handler is in place before it connects; a moment more all the same.
    std::thread::sleep(std::time::Duration::from_millis(200));
    let interrupt = std::process::Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .expect("kill runs");
    assert!(interrupt.success());
    let output = tokio::task::spawn_blocking(move || child.wait_with_output())
        .await
        .expect("the wait ran")
        .expect("the command ends");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(130), "{stderr}");
    one_line(&stderr);
    assert!(stderr.contains("interrupted"), "{stderr}");
}
