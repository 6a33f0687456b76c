//! Test harness: real `valkey-server` processes with the built module, each on its own
//! loopback port and in its own directory, stopped when dropped (also when a test panics).
//!
//! The server binary is `$VALKEY_SERVER`, else `.valkey/bin/valkey-server` as `make server`
//! fetches it, else `valkey-server` on the PATH. The module is `$RATELIMIT_MODULE`, else the
//! release build, which the harness brings up to date once per test binary.

#![allow(dead_code)]

pub mod traffic;

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// How long a server may take to start accepting commands.
const START_TIMEOUT: Duration = Duration::from_secs(20);

/// Returns the project root.
pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Returns the module to load, built in release mode on first use unless `$RATELIMIT_MODULE` names one.
pub fn module_path() -> &'static Path {
    static MODULE: OnceLock<PathBuf> = OnceLock::new();
    MODULE.get_or_init(|| {
        if let Some(path) = std::env::var_os("RATELIMIT_MODULE") {
            return PathBuf::from(path);
        }
        let status = Command::new(env!("CARGO"))
            .args(["build", "--release", "--lib", "--quiet"])
            .current_dir(root())
            .status()
            .expect("cargo runs");
        assert!(status.success(), "cargo build --release failed");
        root().join("target/release/libvalkey_ratelimit.so")
    })
}

/// Returns the server binary.
pub fn server_path() -> PathBuf {
    if let Some(path) = std::env::var_os("VALKEY_SERVER") {
        let path = PathBuf::from(path);
        return if path.is_relative() {
            root().join(path)
        } else {
            path
        };
    }
    let bundled = root().join(".valkey/bin/valkey-server");
    if bundled.exists() {
        return bundled;
    }
    PathBuf::from("valkey-server")
}

/// The client ports servers take. They are below Linux's default ephemeral range (32768 to
/// 60999), so that no outgoing connection takes one between the check here and the server's
/// bind, and below the cluster bus ports of tests/common/cluster.rs.
const PORTS: std::ops::Range<u32> = 10_000..20_000;

/// Returns a loopback port that is free now, picked at random so that parallel tests rarely
/// pick the same one. If the bind fails anyway, `Server::launch` starts again on another port.
pub fn free_port() -> u16 {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let seed = std::process::id()
        ^ std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |elapsed| elapsed.subsec_nanos());
    loop {
        let step = NEXT.fetch_add(7919, Ordering::Relaxed);
        let port = PORTS.start + seed.wrapping_add(step) % (PORTS.end - PORTS.start);
        if TcpListener::bind(("127.0.0.1", port as u16)).is_ok() {
            return port as u16;
        }
    }
}

fn new_dir() -> PathBuf {
    static COUNTER: AtomicU32 = AtomicU32::new(0);
    let dir = std::env::temp_dir().join(format!(
        "valkey-ratelimit-test-{}-{}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    ));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("the test directory can be created");
    dir
}

/// A running server.
pub struct Server {
    pub port: u16,
    dir: PathBuf,
    args: Vec<String>,
    child: Option<Child>,
}

impl Server {
    /// Starts a server with the module loaded and no persistence.
    pub fn start() -> Server {
        Server::start_with(&[])
    }

    /// Starts a server with the module loaded and extra `--name value` arguments.
    pub fn start_with(extra: &[&str]) -> Server {
        let mut args = vec![
            "--loadmodule".to_string(),
            module_path().display().to_string(),
        ];
        args.extend(extra.iter().map(|arg| arg.to_string()));
        Server::start_args(args)
    }

    /// Starts a server with the module loaded on a copy of an RDB file.
    pub fn start_with_rdb(rdb: &[u8], extra: &[&str]) -> Server {
        let mut args = vec![
            "--loadmodule".to_string(),
            module_path().display().to_string(),
        ];
        args.extend(extra.iter().map(|arg| arg.to_string()));
        let mut server = Server {
            port: free_port(),
            dir: new_dir(),
            args,
            child: None,
        };
        std::fs::write(server.dir.join("dump.rdb"), rdb).expect("the RDB file can be written");
        server.launch();
        server
    }

    /// Starts a server without the module.
    pub fn start_without_module(extra: &[&str]) -> Server {
        Server::start_args(extra.iter().map(|arg| arg.to_string()).collect())
    }

    fn start_args(args: Vec<String>) -> Server {
        let mut server = Server {
            port: free_port(),
            dir: new_dir(),
            args,
            child: None,
        };
        server.launch();
        server
    }

    fn launch(&mut self) {
        for _ in 0..5 {
            match self.try_launch() {
                Ok(()) => return,
                // Another process took the port between the check and the bind.
                Err(log) if log.contains("Address already in use") => self.port = free_port(),
                Err(log) => panic!("valkey-server did not start; log:\n{log}"),
            }
        }
        panic!("no free port after five tries; log:\n{}", self.log());
    }

    /// Starts the server; on failure returns its log.
    fn try_launch(&mut self) -> Result<(), String> {
        let log = std::fs::File::create(self.log_path()).expect("the log file can be created");
        let mut command = Command::new(server_path());
        command
            .args(["--port", &self.port.to_string()])
            .args(["--bind", "127.0.0.1"])
            .args(["--dir", &self.dir.display().to_string()])
            .args(["--save", ""])
            .args(["--appendonly", "no"])
            .args(["--enable-debug-command", "yes"])
            .args(&self.args)
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("the log file can be shared"))
            .stderr(log);
        let child = command
            .spawn()
            .unwrap_or_else(|error| panic!("cannot start {}: {error}", server_path().display()));
        self.child = Some(child);
        self.wait_until_ready()
    }

    fn wait_until_ready(&mut self) -> Result<(), String> {
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            let exited = self
                .child
                .as_mut()
                .and_then(|child| child.try_wait().ok().flatten());
            if let Some(status) = exited {
                self.child = None;
                return Err(format!(
                    "valkey-server exited with {status}:\n{}",
                    self.log()
                ));
            }
            if let Ok(mut connection) = self.try_connect() {
                // Another test's server may hold the port until this one fails to bind it, so
                // only this child's own process id counts as ready. PING fails while loading.
                let info: redis::RedisResult<String> =
                    redis::cmd("INFO").arg("server").query(&mut connection);
                let pid = self.child.as_ref().map(|child| child.id().to_string());
                let ours = info.is_ok_and(|text| field_of(&text, "process_id") == pid);
                let pong: redis::RedisResult<String> = redis::cmd("PING").query(&mut connection);
                if ours && pong.is_ok() {
                    return Ok(());
                }
            }
            if Instant::now() >= deadline {
                return Err(format!("the server did not answer:\n{}", self.log()));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/", self.port)
    }

    fn try_connect(&self) -> redis::RedisResult<redis::Connection> {
        redis::Client::open(self.url())?.get_connection()
    }

    /// Opens a new RESP2 connection.
    pub fn connect(&self) -> redis::Connection {
        self.try_connect().expect("the server accepts connections")
    }

    /// Opens a new RESP3 connection.
    pub fn connect_resp3(&self) -> redis::Connection {
        let url = format!("{}?protocol=resp3", self.url());
        redis::Client::open(url)
            .and_then(|client| client.get_connection())
            .expect("the server accepts RESP3 connections")
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn log_path(&self) -> PathBuf {
        self.dir.join("server.log")
    }

    /// Returns the server log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.log_path()).unwrap_or_default()
    }

    /// Stops the server at once, without saving.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Stops the server with `SHUTDOWN`, saving if it is configured to.
    pub fn shutdown(&mut self) {
        if let Ok(mut connection) = self.try_connect() {
            let _: redis::RedisResult<()> = redis::cmd("SHUTDOWN").query(&mut connection);
        }
        if let Some(mut child) = self.child.take() {
            let deadline = Instant::now() + START_TIMEOUT;
            while child.try_wait().ok().flatten().is_none() && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(10));
            }
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts the server again on the same port and directory, with the same arguments.
    pub fn restart(&mut self) {
        self.kill();
        self.launch();
    }

    /// Starts the server again after changing its arguments.
    pub fn restart_with(&mut self, args: Vec<String>) {
        self.kill();
        self.args = args;
        self.launch();
    }

    pub fn args(&self) -> &[String] {
        &self.args
    }

    /// Returns the process id of the running server.
    pub fn pid(&self) -> u32 {
        self.child.as_ref().expect("the server is running").id()
    }

    /// Sends a signal to the server process, such as `STOP` or `CONT`.
    pub fn signal(&self, name: &str) {
        let status = Command::new("kill")
            .args([&format!("-{name}"), &self.pid().to_string()])
            .status()
            .expect("kill runs");
        assert!(status.success(), "kill -{name} failed");
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.kill();
        if !std::thread::panicking() {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

/// Runs a command given as words.
pub fn call<T: redis::FromRedisValue>(connection: &mut redis::Connection, words: &[&str]) -> T {
    try_call(connection, words).unwrap_or_else(|error| panic!("{words:?} failed: {error}"))
}

/// Runs a command given as words, returning the error.
pub fn try_call<T: redis::FromRedisValue>(
    connection: &mut redis::Connection,
    words: &[&str],
) -> redis::RedisResult<T> {
    let mut command = redis::cmd(words[0]);
    for word in &words[1..] {
        command.arg(*word);
    }
    command.query(connection)
}

/// Runs a limiting command and returns its five integers.
pub fn decide(connection: &mut redis::Connection, words: &[&str]) -> [i64; 5] {
    let reply: Vec<i64> = call(connection, words);
    reply
        .try_into()
        .unwrap_or_else(|reply: Vec<i64>| panic!("{words:?} replied {reply:?}, not five integers"))
}

/// Runs commands in one MULTI/EXEC, where the server's clock does not move, and returns each
/// reply's five integers.
pub fn decide_at_once(connection: &mut redis::Connection, commands: &[&[&str]]) -> Vec<[i64; 5]> {
    let mut pipe = redis::pipe();
    pipe.atomic();
    for words in commands {
        let command = pipe.cmd(words[0]);
        for word in &words[1..] {
            command.arg(*word);
        }
    }
    let replies: Vec<Vec<i64>> = pipe.query(connection).expect("the transaction runs");
    replies
        .into_iter()
        .map(|reply| reply.try_into().expect("each reply has five integers"))
        .collect()
}

/// The error message of a command that must fail.
pub fn error_of(connection: &mut redis::Connection, words: &[&str]) -> String {
    match try_call::<redis::Value>(connection, words) {
        Ok(value) => panic!("{words:?} must fail, replied {value:?}"),
        Err(error) => error_text(&error),
    }
}

/// Formats an error as the server sent it: its code and message.
pub fn error_text(error: &redis::RedisError) -> String {
    match (error.code(), error.detail()) {
        (Some(code), Some(detail)) => format!("{code} {detail}"),
        (Some(code), None) => code.to_string(),
        _ => error.to_string(),
    }
}

/// Everything that identifies a key's state: its serialized value and its expiry.
pub fn snapshot(connection: &mut redis::Connection, key: &str) -> (Option<Vec<u8>>, i64) {
    let dump: Option<Vec<u8>> = call(connection, &["DUMP", key]);
    let expiry: i64 = call(connection, &["PEXPIRETIME", key]);
    (dump, expiry)
}

/// `RL.INFO` as a map of field to value.
pub fn info(
    connection: &mut redis::Connection,
    key: &str,
) -> std::collections::HashMap<String, redis::Value> {
    let pairs: Vec<redis::Value> = call(connection, &["RL.INFO", key]);
    pairs
        .chunks(2)
        .map(|pair| {
            let name: String =
                redis::from_redis_value(pair[0].clone()).expect("field names are strings");
            (name, pair[1].clone())
        })
        .collect()
}

/// Returns one numeric `RL.INFO` field.
pub fn info_number(connection: &mut redis::Connection, key: &str, field: &str) -> i64 {
    let fields = info(connection, key);
    let value = fields
        .get(field)
        .unwrap_or_else(|| panic!("RL.INFO {key} has no field {field}: {fields:?}"));
    redis::from_redis_value(value.clone()).expect("the field is a number")
}

pub fn sleep_ms(ms: u64) {
    std::thread::sleep(Duration::from_millis(ms));
}

/// Asserts that a measured time is at most `expected` and at least `expected - slack`.
pub fn assert_close_below(value: i64, expected: i64, slack: i64) {
    assert!(value <= expected, "{value} is above {expected}");
    assert!(
        value >= expected - slack,
        "{value} is more than {slack} below {expected}"
    );
}

/// Returns one field of an INFO section, or `None`.
pub fn info_field(
    connection: &mut redis::Connection,
    section: &str,
    field: &str,
) -> Option<String> {
    let text: String = call(connection, &["INFO", section]);
    field_of(&text, field)
}

/// Returns the value of `field:value` in `INFO`-style text.
pub fn field_of(text: &str, field: &str) -> Option<String> {
    text.lines()
        .find_map(|line| line.strip_prefix(field)?.strip_prefix(':'))
        .map(|value| value.trim().to_string())
}

/// Waits until `check` holds, failing after `timeout` with `what`.
pub fn wait_until(timeout: Duration, what: &str, mut check: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !check() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A small deterministic random number generator (xorshift64*), so that a failing randomized
/// test can be run again with the same seed.
pub struct Random(u64);

impl Random {
    pub fn new(seed: u64) -> Random {
        Random(seed.max(1))
    }

    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// Returns a number below `bound`.
    pub fn below(&mut self, bound: u64) -> u64 {
        self.next() % bound
    }

    pub fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len() as u64) as usize]
    }

    pub fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }
}

/// Encodes a command as a RESP array of bulk strings.
pub fn command(words: &[&str]) -> Vec<u8> {
    let mut bytes = format!("*{}\r\n", words.len()).into_bytes();
    for word in words {
        bytes.extend_from_slice(format!("${}\r\n{word}\r\n", word.len()).as_bytes());
    }
    bytes
}

/// Sends a command on a new connection without reading the reply, so that the client blocks.
pub fn send_blocking(server: &Server, words: &[&str]) -> TcpStream {
    let mut stream = TcpStream::connect(("127.0.0.1", server.port)).unwrap();
    stream.write_all(&command(words)).unwrap();
    stream
}

/// Reads whatever reply arrives on a blocked connection within `timeout`.
pub fn read_reply(stream: &mut TcpStream, timeout: Duration) -> String {
    stream.set_read_timeout(Some(timeout)).unwrap();
    let mut buffer = [0u8; 512];
    match stream.read(&mut buffer) {
        Ok(len) => String::from_utf8_lossy(&buffer[..len]).into_owned(),
        Err(error) => format!("no reply: {error}"),
    }
}

/// Returns the clients blocked in `RL.WAIT` now, from `INFO ratelimit`.
pub fn blocked_waiters(connection: &mut redis::Connection) -> u64 {
    info_field(connection, "ratelimit", "ratelimit_blocked_waiters")
        .unwrap()
        .parse()
        .unwrap()
}
