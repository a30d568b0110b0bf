//! The scripts print URLs with their passwords masked (`user:****@host`) and hand passwords to
//! libpq programs in `PGPASSWORD`, never on a command line (where `ps` shows them to everyone).

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn repository() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the repository root")
        .to_path_buf()
}

fn bash(script: &str, args: &[&str]) -> Output {
    Command::new("bash")
        .current_dir(repository())
        .arg("-c")
        .arg(script)
        .arg("bash")
        .args(args)
        .output()
        .expect("run bash")
}

/// `function url` through scripts/url.sh.
fn url_function(function: &str, url: &str) -> String {
    let output = bash(&format!(". scripts/url.sh && {function} \"$1\""), &[url]);
    assert!(
        output.status.success(),
        "{function} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout)
        .expect("UTF-8 output")
        .trim_end_matches('\n')
        .to_owned()
}

#[test]
fn the_scripts_redact_passwords_in_urls() {
    let cases = [
        (
            "postgres://app:s3cret@db:5432/app",
            "postgres://app:****@db:5432/app",
            "postgres://app@db:5432/app",
            "s3cret",
        ),
        (
            "http://elastic:ch%40n%5Cge@[::1]:9200/",
            "http://elastic:****@[::1]:9200/",
            "http://elastic@[::1]:9200/",
            "ch@n\\ge",
        ),
        (
            "postgres://db/app?sslmode=require&password=p%40ss&x=1",
            "postgres://db/app?sslmode=require&password=****&x=1",
            "postgres://db/app?sslmode=require&x=1",
            "p@ss",
        ),
        (
            "postgres://app@db/app",
            "postgres://app@db/app",
            "postgres://app@db/app",
            "",
        ),
        (
            "http://127.0.0.1:9200",
            "http://127.0.0.1:9200",
            "http://127.0.0.1:9200",
            "",
        ),
        // libpq's key=value form, which psql accepts as a DATABASE_URL.
        (
            "host=db user=app password=s3cret dbname=app",
            "host=db user=app password=**** dbname=app",
            "host=db user=app dbname=app",
            "s3cret",
        ),
        (
            r"host=db password = 'it\'s x' dbname=app",
            "host=db password=**** dbname=app",
            "host=db dbname=app",
            "it's x",
        ),
    ];
    for (url, redacted, without, password) in cases {
        assert_eq!(
            url_function("redact_url", url),
            redacted,
            "redact_url {url}"
        );
        assert_eq!(
            url_function("url_without_password", url),
            without,
            "url_without_password {url}"
        );
        assert_eq!(
            url_function("url_password", url),
            password,
            "url_password {url}"
        );
    }
}

#[test]
fn the_scripts_mask_every_parameter_named_like_a_password() {
    let cases = [
        (
            "postgres://db/app?sslmode=require&sslpassword=k3y&x=1",
            "postgres://db/app?sslmode=require&sslpassword=****&x=1",
        ),
        (
            "host=db sslpassword=k3y user=app",
            "host=db sslpassword=**** user=app",
        ),
        (
            r"host=db sslpassword = 'k3y\' x' user=app",
            "host=db sslpassword=**** user=app",
        ),
    ];
    for (url, redacted) in cases {
        let shown = url_function("redact_url", url);
        assert_eq!(shown, redacted, "redact_url {url}");
    }
    // Off command lines too (libpq has no variable for sslpassword: it is not passed on).
    for url in [
        "postgres://db/app?sslmode=require&sslpassword=k3y&x=1",
        "host=db sslpassword=k3y user=app",
    ] {
        let without = url_function("url_without_password", url);
        assert!(
            !without.contains("k3y"),
            "url_without_password {url}: {without}"
        );
    }
}

#[test]
fn the_scripts_mask_a_password_written_as_it_is_or_without_a_scheme() {
    for (url, redacted) in [
        (
            "postgres://app:s3/cret@db/app",
            "postgres://app:****@db/app",
        ),
        (
            "postgres://app:s3#cret@db/app",
            "postgres://app:****@db/app",
        ),
        ("app:s3cret@db:5432/app", "app:****@db:5432/app"),
        ("app:AbC9+/x==@db/app", "app:****@db/app"),
        // A port and a path with an '@' are not a password.
        (
            "http://node:9200/orders@v2/_doc/1",
            "http://node:9200/orders@v2/_doc/1",
        ),
    ] {
        assert_eq!(
            url_function("redact_url", url),
            redacted,
            "redact_url {url}"
        );
    }
}

#[test]
fn kafka_sh_refuses_a_bootstrap_list_with_credentials_without_printing_them() {
    let output = bash(
        "scripts/kafka.sh check \"$1\"",
        &["svc:s3cret@b:9092,c:9092"],
    );
    let shown = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(!output.status.success(), "{shown}");
    assert!(!shown.contains("s3cret"), "{shown}");
    assert!(shown.contains("KAFKA_SASL_PASSWORD"), "{shown}");
}

#[test]
fn postgres_sh_passes_the_password_in_the_environment_and_never_prints_it() {
    // A stand-in psql that records how it was called, and answers.
    let bin = std::env::temp_dir().join(format!("fake-psql-{}", uuid::Uuid::now_v7().simple()));
    std::fs::create_dir_all(&bin).expect("a temporary directory");
    let record = bin.join("calls");
    let psql = bin.join("psql");
    std::fs::write(
        &psql,
        format!(
            "#!/usr/bin/env bash\nprintf 'argv:%s\\n' \"$*\" >>'{0}'\n\
             printf 'PGPASSWORD:%s\\n' \"${{PGPASSWORD:-}}\" >>'{0}'\necho 1\n",
            record.display()
        ),
    )
    .expect("write the fake psql");
    let chmod = Command::new("chmod")
        .arg("+x")
        .arg(&psql)
        .status()
        .expect("chmod");
    assert!(chmod.success());
    let path = format!(
        "{}:{}",
        bin.display(),
        std::env::var("PATH").unwrap_or_default()
    );

    let output = Command::new("scripts/postgres.sh")
        .current_dir(repository())
        .arg("start")
        .env("PATH", path)
        .env(
            "DATABASE_URL",
            "postgres://app:s3cr%40t@db.example:5432/app",
        )
        .env_remove("PGPASSWORD")
        .output()
        .expect("run scripts/postgres.sh");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "postgres.sh start failed: {stderr}"
    );
    let calls = std::fs::read_to_string(&record).expect("psql was called");
    let _ = std::fs::remove_dir_all(&bin);

    for (what, text) in [("stdout", &*stdout), ("stderr", &*stderr)] {
        assert!(
            !text.contains("s3cr"),
            "postgres.sh printed the password on {what}: {text}"
        );
    }
    assert_eq!(
        stdout.lines().last(),
        Some("DATABASE_URL=postgres://app@db.example:5432/app"),
        "the last line is the URL without its password"
    );
    let argv: Vec<&str> = calls.lines().filter(|l| l.starts_with("argv:")).collect();
    assert!(!argv.is_empty(), "psql was called: {calls}");
    assert!(
        argv.iter().all(|l| !l.contains("s3cr")),
        "the password went on psql's command line: {calls}"
    );
    assert!(
        calls.lines().any(|l| l == "PGPASSWORD:s3cr@t"),
        "psql got the (decoded) password in PGPASSWORD: {calls}"
    );
}
