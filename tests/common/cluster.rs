//! Cluster harness: three primaries and three replicas on loopback, each a [`Server`] with the
//! module loaded, joined with `CLUSTER MEET` and slotted like `redis-cli --cluster create` does.
//! The servers stop when the [`Cluster`] is dropped, also when a test panics.

#![allow(dead_code)]

use crate::common::{call, error_text, field_of, try_call, Server};
use std::cell::RefCell;
use std::net::TcpListener;
use std::sync::atomic::{AtomicU16, Ordering};
use std::time::{Duration, Instant};

/// How long the cluster may take to agree on its shape, a sync or a failover.
pub const SETTLE_TIMEOUT: Duration = Duration::from_secs(20);

/// The slot ranges of the three primaries, as `redis-cli --cluster create` splits 16384 slots.
const SLOT_RANGES: [(u16, u16); 3] = [(0, 5460), (5461, 10922), (10923, 16383)];

/// The ports that [`free_bus_port`] takes from, below Linux's default ephemeral range (32768 to
/// 60999), so that no outgoing connection takes a bus port between the check and the bind.
const BUS_PORTS: std::ops::Range<u16> = 20000..32000;

/// Returns a loopback port in [`BUS_PORTS`] that is free now, starting from an offset of this
/// process so that test binaries running side by side are unlikely to try the same ports.
fn free_bus_port() -> u16 {
    static NEXT: AtomicU16 = AtomicU16::new(0);
    let span = BUS_PORTS.end - BUS_PORTS.start;
    let offset = (std::process::id() % u32::from(span)) as u16;
    for _ in 0..span {
        let step = NEXT.fetch_add(1, Ordering::Relaxed) % span;
        let port = BUS_PORTS.start + (offset + step) % span;
        if TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
    panic!("no port in {BUS_PORTS:?} is free on 127.0.0.1");
}

/// One server of the cluster, its node id and the connection the harness queries it on.
pub struct Node {
    pub server: Server,
    pub id: String,
    pub bus_port: u16,
    // One long-lived connection, so that the polling loops do not open a few hundred
    // connections a second.
    admin: RefCell<redis::Connection>,
}

impl Node {
    fn start() -> Node {
        // The bus port defaults to the client port plus 10000, which falls in BUS_PORTS and
        // could be another node's, so each node gets a free port of its own.
        // NOTE: a bus port taken between the check and the bind fails the start, because the
        // server's retry picks a new client port only.
        let bus_port = free_bus_port();
        let server = Server::start_with(&[
            "--cluster-enabled",
            "yes",
            "--cluster-config-file",
            "nodes.conf",
            "--cluster-port",
            &bus_port.to_string(),
            "--cluster-node-timeout",
            "2000",
            "--repl-diskless-sync",
            "yes",
            "--repl-diskless-sync-delay",
            "0",
        ]);
        let mut admin = server.connect();
        let id: String = call(&mut admin, &["CLUSTER", "MYID"]);
        Node {
            server,
            id,
            bus_port,
            admin: RefCell::new(admin),
        }
    }

    /// Runs a command given as words on the harness's own connection to this node.
    pub fn query<T: redis::FromRedisValue>(&self, words: &[&str]) -> T {
        call(&mut self.admin.borrow_mut(), words)
    }

    /// Runs a command given as words on the harness's own connection, returning the error.
    pub fn try_query<T: redis::FromRedisValue>(&self, words: &[&str]) -> redis::RedisResult<T> {
        try_call(&mut self.admin.borrow_mut(), words)
    }

    pub fn port(&self) -> u16 {
        self.server.port
    }

    /// Returns the address that `MOVED` replies and `CLUSTER NODES` give for this node.
    pub fn address(&self) -> String {
        format!("127.0.0.1:{}", self.server.port)
    }

    pub fn connect(&self) -> redis::Connection {
        self.server.connect()
    }

    /// Returns one field of `INFO section`, or `None` if the server does not report it.
    pub fn info_field(&self, section: &str, field: &str) -> Option<String> {
        let text: String = self.query(&["INFO", section]);
        field_of(&text, field)
    }

    /// Returns one field of `CLUSTER INFO`, or `None` if the server does not report it.
    pub fn cluster_info_field(&self, field: &str) -> Option<String> {
        let text: String = self.query(&["CLUSTER", "INFO"]);
        field_of(&text, field)
    }

    /// Returns the lines of `CLUSTER NODES`, one per node in this node's cluster table.
    pub fn cluster_nodes(&self) -> Vec<String> {
        let text: String = self.query(&["CLUSTER", "NODES"]);
        text.lines().map(str::to_string).collect()
    }
}

/// Returns whether the comma-separated flags of a `CLUSTER NODES` line include `flag`.
fn has_flag(flags: &str, flag: &str) -> bool {
    flags.split(',').any(|each| each == flag)
}

/// A running cluster: `nodes[0..3]` are the primaries and `nodes[3 + i]` replicates `nodes[i]`.
pub struct Cluster {
    pub nodes: Vec<Node>,
}

impl Cluster {
    /// Starts six servers, forms the cluster and waits until every node reports
    /// `cluster_state:ok` and lists every replica, and every replica's link is up.
    pub fn start() -> Cluster {
        let cluster = Cluster {
            nodes: (0..6).map(|_| Node::start()).collect(),
        };

        // Distinct config epochs, as `redis-cli --cluster create` sets them, spare the nodes the
        // epoch collision resolution, which bumps one node's epoch at a time.
        for (index, node) in cluster.nodes.iter().enumerate() {
            let epoch = (index + 1).to_string();
            let _: () = node.query(&["CLUSTER", "SET-CONFIG-EPOCH", &epoch]);
        }
        for (node, (first, last)) in cluster.nodes.iter().zip(SLOT_RANGES) {
            let (first, last) = (first.to_string(), last.to_string());
            let _: () = node.query(&["CLUSTER", "ADDSLOTSRANGE", &first, &last]);
        }

        // Meeting every pair directly is faster than waiting for gossip to spread the nodes.
        for (index, node) in cluster.nodes.iter().enumerate() {
            for other in &cluster.nodes[index + 1..] {
                let port = other.port().to_string();
                let bus_port = other.bus_port.to_string();
                let _: () = node.query(&["CLUSTER", "MEET", "127.0.0.1", &port, &bus_port]);
            }
        }

        // A node in handshake is listed under a made-up id, so only the real ids count.
        cluster.wait_until("every node lists the ids of all six nodes", || {
            cluster.nodes.iter().all(|node| {
                let lines = node.cluster_nodes();
                cluster
                    .nodes
                    .iter()
                    .all(|other| lines.iter().any(|line| line.starts_with(&other.id)))
            })
        });

        for index in 0..3 {
            let primary_id = cluster.nodes[index].id.clone();
            let _: () = cluster.nodes[3 + index].query(&["CLUSTER", "REPLICATE", &primary_id]);
        }
        cluster.wait_until("the cluster is ok with every replica in sync", || {
            cluster.is_settled()
        });
        cluster
    }

    pub fn primary(&self, index: usize) -> &Node {
        &self.nodes[index]
    }

    pub fn replica_of(&self, primary: usize) -> &Node {
        &self.nodes[3 + primary]
    }

    /// Returns the slot of `key`, as the cluster computes it.
    pub fn slot_of(&self, key: &str) -> u16 {
        self.nodes[0].query(&["CLUSTER", "KEYSLOT", key])
    }

    /// Returns the index of the primary that owns `slot` in the initial layout.
    pub fn initial_owner_of(slot: u16) -> usize {
        SLOT_RANGES
            .iter()
            .position(|(first, last)| (*first..=*last).contains(&slot))
            .expect("every slot has an owner")
    }

    /// Returns whether every node reports the cluster state ok and lists all six nodes, each
    /// link connected, no failure flag and each replica under its primary, and whether every
    /// replica's replication link is up.
    fn is_settled(&self) -> bool {
        let expected_primary_of: Vec<(&str, &str)> = (0..3)
            .map(|index| {
                (
                    self.nodes[3 + index].id.as_str(),
                    self.nodes[index].id.as_str(),
                )
            })
            .collect();
        for node in &self.nodes {
            if node.cluster_info_field("cluster_state").as_deref() != Some("ok") {
                return false;
            }
            let lines = node.cluster_nodes();
            let all_connected = lines.iter().all(|line| {
                let fields: Vec<&str> = line.split(' ').collect();
                fields.len() >= 8
                    && fields[7] == "connected"
                    && !has_flag(fields[2], "fail")
                    && !has_flag(fields[2], "fail?")
            });
            let replicas_known = expected_primary_of.iter().all(|(replica, primary)| {
                lines.iter().any(|line| {
                    let fields: Vec<&str> = line.split(' ').collect();
                    fields.len() >= 4
                        && fields[0] == *replica
                        && has_flag(fields[2], "slave")
                        && fields[3] == *primary
                })
            });
            if lines.len() != 6 || !all_connected || !replicas_known {
                return false;
            }
        }
        self.nodes[3..].iter().all(|replica| {
            replica
                .info_field("replication", "master_link_status")
                .as_deref()
                == Some("up")
        })
    }

    /// Polls `condition` every 50 ms and panics with every server's log if it does not hold
    /// within [`SETTLE_TIMEOUT`].
    pub fn wait_until(&self, what: &str, mut condition: impl FnMut() -> bool) {
        let deadline = Instant::now() + SETTLE_TIMEOUT;
        while !condition() {
            assert!(
                Instant::now() < deadline,
                "timed out after {SETTLE_TIMEOUT:?} waiting until {what}\n{}",
                self.logs()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Returns the log and `CLUSTER NODES` view of every node, for failure messages.
    pub fn logs(&self) -> String {
        let mut text = String::new();
        for (index, node) in self.nodes.iter().enumerate() {
            // A node that died cannot accept a connection, and its log records why.
            let view = redis::Client::open(node.server.url())
                .and_then(|client| client.get_connection())
                .and_then(|mut con| try_call::<String>(&mut con, &["CLUSTER", "NODES"]))
                .unwrap_or_else(|error| error_text(&error));
            text.push_str(&format!(
                "--- node {index} ({}, id {}) CLUSTER NODES:\n{view}\n--- log:\n{}\n",
                node.address(),
                node.id,
                node.server.log()
            ));
        }
        text
    }
}
