//! The client examples run against a real server and print what their comments promise.

mod common;

use std::path::PathBuf;
use std::process::Command;

use common::Server;

/// Builds an example and returns its binary: `cargo test` builds examples, but a run of this
/// test file alone does not.
fn example_binary(name: &str) -> PathBuf {
    let status = Command::new(env!("CARGO"))
        .args(["build", "--quiet", "--example", name])
        .current_dir(common::root())
        .status()
        .expect("cargo runs");
    assert!(status.success(), "cargo build --example {name} failed");
    common::root().join("target/debug/examples").join(name)
}

/// Runs an example binary against a server and returns its output, checking that it succeeded.
fn run_example(binary: &PathBuf, server: &Server) -> String {
    let output = Command::new(binary)
        .env("VALKEY_URL", server.url())
        .output()
        .unwrap_or_else(|error| panic!("cannot run {}: {error}", binary.display()));
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stdout}\n{stderr}");
    stdout
}

/// Returns the lines that start with `prefix`.
fn lines_of<'a>(stdout: &'a str, prefix: &str) -> Vec<&'a str> {
    stdout
        .lines()
        .filter(|line| line.starts_with(prefix))
        .collect()
}

#[test]
fn rust_client_example_runs() {
    let server = Server::start();
    let binary = example_binary("rust_client");
    let stdout = run_example(&binary, &server);

    // Five requests fit the user's sliding window of five a minute; the sixth does not.
    let requests = lines_of(&stdout, "request");
    assert_eq!(requests.len(), 6);
    assert!(
        requests[..5]
            .iter()
            .all(|line| line.contains("allowed: true")),
        "{stdout}"
    );
    assert!(requests[5].contains("allowed: false"), "{stdout}");

    // All four workers get a token: two from the full bucket, two more as it refills.
    let workers = lines_of(&stdout, "worker");
    assert_eq!(workers.len(), 4);
    assert!(
        workers.iter().all(|line| line.contains("allowed: true")),
        "{stdout}"
    );

    // A second run finds the bucket empty, so its last worker waits about a second, longer
    // than the redis crate's default response timeout.
    let again = run_example(&binary, &server);
    let workers = lines_of(&again, "worker");
    assert_eq!(workers.len(), 4);
    assert!(
        workers.iter().all(|line| line.contains("allowed: true")),
        "{again}"
    );
}
