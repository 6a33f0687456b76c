#!/usr/bin/env python3
"""End-to-end benchmark of valkey-ratelimit against the alternatives, in one run.

Starts a Valkey with the module and, in turn, one with redis-cell. Both define CL.THROTTLE, so
they cannot share a server. It pins the server and redis-benchmark to different cores and
measures requests per second for each command next to INCR on the same server in the same run,
for two workloads: many cold keys (mostly allowed) and a few hot keys (mostly denied). It also
measures MEMORY USAGE per key, used_memory growth for many keys, and RL.SLIDING with full logs
of growing size. The report goes to bench/results.md.

Usage: bench/load.py [--quick] [--requests N] [--output PATH]
Environment: VALKEY_SERVER, RATELIMIT_MODULE, REDIS_CELL_SRC (redis-cell's source tarball).
"""

import argparse
import datetime
import json
import os
import platform
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SERVER = Path(os.environ.get("VALKEY_SERVER", ROOT / ".valkey/bin/valkey-server"))
MODULE = Path(os.environ.get("RATELIMIT_MODULE", ROOT / "target/release/libvalkey_ratelimit.so"))
CELL_SRC = Path(os.environ.get("REDIS_CELL_SRC", ROOT.parent / "shared/peers/redis-cell-0.5.0-src.tar.gz"))
CELL_BUILD = ROOT / ".valkey/peers"

# Cores: the server on the first, the load generator on the second (taskset needs two).
SERVER_CPU = "0"
CLIENT_CPU = "1"

# Lua scripts the way applications write these limiters today, each reading the server's clock.
FIXED_WINDOW_LUA = """
local count = redis.call('INCR', KEYS[1])
if count == 1 then redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
if count > tonumber(ARGV[1]) then return 0 end
return 1
"""

SLIDING_LOG_LUA = """
local now = redis.call('TIME')
local now_ms = tonumber(now[1]) * 1000 + math.floor(tonumber(now[2]) / 1000)
local window = tonumber(ARGV[2])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now_ms - window)
if redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[1]) then return 0 end
redis.call('ZADD', KEYS[1], now_ms, now_ms .. '-' .. math.random(1000000))
redis.call('PEXPIRE', KEYS[1], window)
return 1
"""

TOKEN_BUCKET_LUA = """
local now = redis.call('TIME')
local now_ms = tonumber(now[1]) * 1000 + math.floor(tonumber(now[2]) / 1000)
local capacity = tonumber(ARGV[1])
local rate = tonumber(ARGV[2]) / tonumber(ARGV[3])
local state = redis.call('HMGET', KEYS[1], 'tokens', 'ts')
local tokens = tonumber(state[1]) or capacity
local ts = tonumber(state[2]) or now_ms
tokens = math.min(capacity, tokens + (now_ms - ts) * rate)
local allowed = 0
if tokens >= 1 then tokens = tokens - 1; allowed = 1 end
redis.call('HSET', KEYS[1], 'tokens', tokens, 'ts', now_ms)
redis.call('PEXPIRE', KEYS[1], math.ceil(capacity / rate))
return allowed
"""


def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Server:
    """A valkey-server pinned to SERVER_CPU, stopped on exit."""

    def __init__(self, modules, extra=()):
        self.port = free_port()
        self.dir = tempfile.mkdtemp(prefix="valkey-ratelimit-bench-")
        args = ["taskset", "-c", SERVER_CPU, str(SERVER), "--port", str(self.port),
                "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", self.dir]
        for module in modules:
            args += ["--loadmodule", str(module)]
        args += list(extra)
        self.log = open(os.path.join(self.dir, "server.log"), "w")
        self.process = subprocess.Popen(args, stdout=self.log, stderr=subprocess.STDOUT)
        deadline = time.time() + 20
        while self.cli("PING") != "PONG":
            if time.time() > deadline or self.process.poll() is not None:
                self.process.kill()
                self.process.wait(timeout=20)
                raise RuntimeError(f"the server did not start; see {self.dir}/server.log")
            time.sleep(0.05)

    def cli(self, *words, stdin=None):
        result = subprocess.run(["redis-cli", "-p", str(self.port), *words], input=stdin,
                                capture_output=True, text=True)
        return result.stdout.strip()

    def info(self, section, field):
        for line in self.cli("INFO", section).splitlines():
            if line.startswith(field + ":"):
                return line.split(":", 1)[1].strip()
        raise KeyError(field)

    def stop(self):
        self.process.terminate()
        self.process.wait(timeout=20)
        self.log.close()
        shutil.rmtree(self.dir, ignore_errors=True)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()


def flush(server):
    """Empties the server and waits until background freeing is done, so that it does not
    take CPU from the next measurement."""
    server.cli("FLUSHALL", "SYNC")
    deadline = time.time() + 60
    while server.info("memory", "lazyfree_pending_objects") != "0" and time.time() < deadline:
        time.sleep(0.05)


def benchmark(server, words, requests, keys, pipeline):
    """Requests per second of one command, as redis-benchmark measures it."""
    flush(server)
    args = ["taskset", "-c", CLIENT_CPU, "redis-benchmark", "-p", str(server.port), "-c", "50",
            "-P", str(pipeline), "-n", str(requests), "-r", str(keys), "-q", *words]
    output = subprocess.run(args, capture_output=True, text=True, timeout=600).stdout
    last = output.replace("\r", "\n").strip().splitlines()[-1]
    match = re.search(r"([0-9.]+) requests per second", last)
    if not match:
        raise RuntimeError(f"redis-benchmark failed for {words}: {last}")
    return float(match.group(1))


INCR = ["INCR", "k:__rand_int__"]


def against_incr(server, words, requests, keys, pipeline):
    """Requests per second of a command and its ratio to INCR measured just before and just
    after it, so that a change in the machine's load during the run cancels out."""
    if words == INCR:
        rps = benchmark(server, INCR, requests, keys, pipeline)
        return rps, 1.0
    before = benchmark(server, INCR, requests, keys, pipeline)
    rps = benchmark(server, words, requests, keys, pipeline)
    after = benchmark(server, INCR, requests, keys, pipeline)
    return rps, rps / ((before + after) / 2)


def build_redis_cell():
    """Builds redis-cell for Valkey from its source tarball; None if the tarball is missing."""
    library = CELL_BUILD / "redis-cell/target/release/libredis_cell.so"
    if library.exists():
        return library
    if not CELL_SRC.exists():
        return None
    CELL_BUILD.mkdir(parents=True, exist_ok=True)
    subprocess.run(["tar", "xzf", str(CELL_SRC), "-C", str(CELL_BUILD)], check=True)
    subprocess.run(["cargo", "build", "--release", "--locked", "--features", "valkey"],
                   cwd=CELL_BUILD / "redis-cell", check=True, capture_output=True)
    return library


def machine():
    model = "unknown CPU"
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            model = line.split(":", 1)[1].strip()
            break
    return f"{model}, {os.cpu_count()} cores, Linux {platform.release()}"


def script_sha(server, source):
    return server.cli("SCRIPT", "LOAD", source)


def throughput(requests, cell_library):
    """Rows of (workload, pipeline, name, rps, ratio to INCR) for every command."""
    rows = []
    workloads = [("cold keys, mostly allowed", 1_000_000), ("hot keys, mostly denied", 10)]
    with Server([MODULE]) as server:
        fixed = script_sha(server, FIXED_WINDOW_LUA)
        sliding = script_sha(server, SLIDING_LOG_LUA)
        bucket = script_sha(server, TOKEN_BUCKET_LUA)
        commands = [
            ("INCR", INCR),
            ("SET with PX, for reference", ["SET", "k:__rand_int__", "1", "PX", "60000"]),
            ("RL.FIXED", ["RL.FIXED", "k:__rand_int__", "100", "1m"]),
            ("RL.SLIDING", ["RL.SLIDING", "k:__rand_int__", "100", "1m"]),
            ("RL.TOKENBUCKET", ["RL.TOKENBUCKET", "k:__rand_int__", "100", "100", "1m"]),
            ("RL.GCRA", ["RL.GCRA", "k:__rand_int__", "100", "100", "1m"]),
            ("RL.THROTTLE", ["RL.THROTTLE", "k:__rand_int__", "1m"]),
            ("RL.DEBOUNCE", ["RL.DEBOUNCE", "k:__rand_int__", "1m"]),
            ("CL.THROTTLE (this module)", ["CL.THROTTLE", "k:__rand_int__", "99", "100", "60"]),
            ("Lua fixed window", ["EVALSHA", fixed, "1", "k:__rand_int__", "100", "60000"]),
            ("Lua sliding log", ["EVALSHA", sliding, "1", "k:__rand_int__", "100", "60000"]),
            ("Lua token bucket", ["EVALSHA", bucket, "1", "k:__rand_int__", "100", "100", "60000"]),
        ]
        for workload, keys in workloads:
            for pipeline in (16, 1):
                for name, words in commands:
                    count = requests if pipeline > 1 else requests // 5
                    rps, ratio = against_incr(server, words, count, keys, pipeline)
                    rows.append((workload, pipeline, name, rps, ratio))
    if cell_library:
        with Server([cell_library]) as server:
            for workload, keys in workloads:
                for pipeline in (16, 1):
                    words = ["CL.THROTTLE", "k:__rand_int__", "99", "100", "60"]
                    count = requests if pipeline > 1 else requests // 5
                    rps, ratio = against_incr(server, words, count, keys, pipeline)
                    rows.append((workload, pipeline, "CL.THROTTLE (redis-cell)", rps, ratio))
    return rows


def memory(cell_library, many):
    """MEMORY USAGE of one key of each kind, and used_memory growth per key for many keys."""
    key = "rate:user:12345"
    rows = []
    with Server([MODULE]) as server:
        cases = [
            ("INCR counter", [["INCR", key]]),
            ("INCR counter with PEXPIRE", [["INCR", key], ["PEXPIRE", key, "60000"]]),
            ("RL.FIXED", [["RL.FIXED", key, "100", "1m"]]),
            ("RL.TOKENBUCKET", [["RL.TOKENBUCKET", key, "100", "100", "1m"]]),
            ("RL.GCRA", [["RL.GCRA", key, "100", "100", "1m"]]),
            ("RL.THROTTLE", [["RL.THROTTLE", key, "1m"]]),
            ("RL.DEBOUNCE", [["RL.DEBOUNCE", key, "1m"]]),
            ("Lua token bucket hash", [["HSET", key, "tokens", "99.0", "ts", "1796000000000"],
                                       ["PEXPIRE", key, "60000"]]),
        ]
        for name, commands in cases:
            flush(server)
            for words in commands:
                server.cli(*words)
            rows.append((name, int(server.cli("MEMORY", "USAGE", key))))

        flush(server)
        now_ms = int(time.time() * 1000)
        for index in range(100):
            server.cli("RL.APPLY", key, str(now_ms - 100 + index), "1", "SLIDING", "100",
                       "60000", "1")
        rows.append(("RL.SLIDING, 100 entries, 1m window", int(server.cli("MEMORY", "USAGE", key))))
        flush(server)
        members = []
        for index in range(100):
            now_ms = 1_796_000_000_000 + index
            members += [str(now_ms), f"{now_ms}-{index * 7919 % 1000000}"]
        server.cli("ZADD", key, *members)
        rows.append(("Lua sliding log sorted set, 100 entries", int(server.cli("MEMORY", "USAGE", key))))

        growth = []
        for name, template in [
            ("INCR counter", "INCR {key}"),
            ("SET with PX", "SET {key} 1 PX 3600000"),
            ("RL.FIXED", "RL.FIXED {key} 100 1h"),
            ("RL.TOKENBUCKET", "RL.TOKENBUCKET {key} 100 100 1h"),
            ("RL.GCRA", "RL.GCRA {key} 100 100 1h"),
            ("RL.SLIDING, 1 entry", "RL.SLIDING {key} 100 1h"),
        ]:
            flush(server)
            before = int(server.info("memory", "used_memory"))
            commands = "".join(template.format(key=f"rate:user:{index}") + "\n" for index in range(many))
            subprocess.run(["redis-cli", "-p", str(server.port), "--pipe"], input=commands,
                           capture_output=True, text=True, check=True)
            after = int(server.info("memory", "used_memory"))
            growth.append((name, many, (after - before) / many))
    if cell_library:
        with Server([cell_library]) as server:
            server.cli("CL.THROTTLE", key, "99", "100", "60")
            rows.append(("CL.THROTTLE (redis-cell)", int(server.cli("MEMORY", "USAGE", key))))
    return rows, growth


def sliding_growth(requests):
    """RL.SLIDING throughput on a hot key whose log is full, for logs of growing size."""
    rows = []
    with Server([MODULE]) as server:
        server.cli("CONFIG", "SET", "ratelimit.sliding-max-entries", "200000")
        for limit in (10, 1_000, 100_000):
            flush(server)
            window_ms = 3_600_000
            now_ms = int(time.time() * 1000)
            # One entry per millisecond up to now fills the log to its limit.
            commands = "".join(
                f"RL.APPLY log {now_ms - limit + index} 1 SLIDING {limit} {window_ms} 1\n"
                for index in range(limit))
            subprocess.run(["redis-cli", "-p", str(server.port), "--pipe"], input=commands,
                           capture_output=True, text=True, check=True)
            entries = server.cli("RL.INFO", "log").split("\n")
            words = ["RL.SLIDING", "log", str(limit), "1h"]
            args = ["taskset", "-c", CLIENT_CPU, "redis-benchmark", "-p", str(server.port),
                    "-c", "50", "-P", "16", "-n", str(requests), "-q", *words]
            output = subprocess.run(args, capture_output=True, text=True).stdout
            rps = float(re.search(r"([0-9.]+) requests per second",
                                  output.replace("\r", "\n").strip().splitlines()[-1]).group(1))
            used = entries[entries.index("entries") + 1] if "entries" in entries else "?"
            rows.append((limit, used, rps))
    return rows


def micro_benchmarks():
    """Mean time per call of each criterion benchmark from its last run, in nanoseconds."""
    rows = []
    for estimates in sorted((ROOT / "target/criterion").glob("*/new/estimates.json")):
        benchmark = json.loads(estimates.with_name("benchmark.json").read_text())
        mean = json.loads(estimates.read_text())["mean"]["point_estimate"]
        rows.append((benchmark["full_id"], mean))
    return rows


def report(path, throughput_rows, memory_rows, growth_rows, sliding_rows, requests, quick):
    lines = [
        "# Benchmark results",
        "",
        f"Measured {datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M} UTC by "
        "`bench/load.py` (`make bench`) on " + machine() + ".",
        f"Valkey {SERVER_VERSION} ({SERVER_ALLOCATOR} malloc), "
        f"redis-benchmark {BENCHMARK_VERSION}, {requests} requests per pipelined figure and a "
        "fifth of that without a pipeline, 50 connections; "
        f"the server on CPU {SERVER_CPU} and redis-benchmark on CPU {CLIENT_CPU}.",
        "Every ratio is to INCR on the same server, measured just before and just after the "
        "command with the same key pattern. These machines are noisy: compare ratios, and read "
        "absolute numbers only in passing.",
    ]

    if quick:
        lines += ["", "This is a quick run with few requests; its figures are rough."]

    for workload in dict.fromkeys(row[0] for row in throughput_rows):
        lines += ["", f"## Throughput: {workload}", "",
                  "| command | req/s, pipeline 16 | ratio to INCR | req/s, no pipeline | ratio to INCR |",
                  "|---|---:|---:|---:|---:|"]
        names = dict.fromkeys(row[2] for row in throughput_rows if row[0] == workload)
        for name in names:
            cells = {row[1]: row for row in throughput_rows if row[0] == workload and row[2] == name}
            piped, single = cells.get(16), cells.get(1)
            lines.append(f"| {name} | {piped[3]:,.0f} | {piped[4]:.2f} | {single[3]:,.0f} | {single[4]:.2f} |")

    lines += ["", "## Memory per key", "", "`MEMORY USAGE rate:user:12345` after one request.", "",
              "| key | bytes |", "|---|---:|"]
    lines += [f"| {name} | {size} |" for name, size in memory_rows]

    lines += ["", "## used_memory growth", "",
              "| keys | count | bytes per key |", "|---|---:|---:|"]
    lines += [f"| {name} | {count:,} | {per_key:.1f} |" for name, count, per_key in growth_rows]

    lines += ["", "## RL.SLIDING with a full log", "",
              "A hot key whose log is full, pipeline 16: nearly every request is denied.", "",
              "| limit | entries | req/s |", "|---:|---:|---:|"]
    lines += [f"| {limit:,} | {entries} | {rps:,.0f} |" for limit, entries, rps in sliding_rows]

    micro = micro_benchmarks()
    if micro:
        lines += ["", "## Micro benchmarks", "",
                  "`cargo bench --bench algorithms`: the pure code alone, no server. A denied "
                  "sliding decision on a full log searches it, so its cost grows with the log's "
                  "size as a logarithm.", "",
                  "| benchmark | ns per call |", "|---|---:|"]
        lines += [f"| {name} | {nanos:.1f} |" for name, nanos in micro]

    Path(path).write_text("\n".join(lines) + "\n")


def main():
    global SERVER_VERSION, SERVER_ALLOCATOR, BENCHMARK_VERSION
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="few requests, for a smoke test")
    parser.add_argument("--requests", type=int, default=1_000_000, help="requests per figure")
    parser.add_argument("--output", default=str(ROOT / "bench/results.md"))
    options = parser.parse_args()
    requests = 100_000 if options.quick else options.requests
    many = 100_000 if options.quick else 1_000_000

    for tool in ("taskset", "redis-benchmark", "redis-cli"):
        if not shutil.which(tool):
            sys.exit(f"{tool} is missing: run `make deps`")
    # valkey-server --version prints fields such as "v=9.1.2" and "malloc=libc".
    server_fields = dict(
        field.split("=", 1)
        for field in subprocess.run([str(SERVER), "--version"], capture_output=True,
                                    text=True).stdout.split()
        if "=" in field
    )
    SERVER_VERSION = server_fields.get("v", "unknown")
    SERVER_ALLOCATOR = server_fields.get("malloc", "unknown")
    BENCHMARK_VERSION = subprocess.run(["redis-benchmark", "--version"], capture_output=True,
                                       text=True).stdout.split()[1]
    cell_library = build_redis_cell()
    if cell_library is None:
        print(f"redis-cell source not found at {CELL_SRC}; its rows are left out", file=sys.stderr)

    throughput_rows = throughput(requests, cell_library)
    memory_rows, growth_rows = memory(cell_library, many)
    sliding_rows = sliding_growth(requests)
    report(options.output, throughput_rows, memory_rows, growth_rows, sliding_rows, requests,
           options.quick)
    print(Path(options.output).read_text())


if __name__ == "__main__":
    main()
