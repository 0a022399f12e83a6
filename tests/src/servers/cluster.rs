//! `TestCluster`: a Redis Cluster of N primaries with R replicas each on
//! loopback (`cluster-node-timeout 2000`), slots split evenly, ready when
//! every node says `cluster_state:ok` and all agree on `CLUSTER SLOTS`. It
//! can compute a key's slot, find a slot's owner, move a slot live (as
//! `redis-cli --cluster reshard` does) and kill a node.
//! [`TestCluster::start_tls`] starts one whose nodes talk TLS, for
//! `rediss+cluster://`.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::time::Duration;

use super::{connect, poll, run, try_poll, TestCerts};
use crate::TestRedis;

/// Number of hash slots in a Redis Cluster.
pub const SLOTS: u16 = 16384;

/// Keys moved per `MIGRATE` in [`TestCluster::move_slot`].
const MIGRATE_BATCH: usize = 100;

/// The slot of `key`, as Redis computes it: CRC16/XMODEM of the hash tag
/// (the bytes between the first `{` and the next `}`, when not empty) or of
/// the whole key, modulo 16384.
#[must_use]
pub fn slot_of(key: impl AsRef<[u8]>) -> u16 {
    let key = key.as_ref();
    let tagged = key.iter().position(|&b| b == b'{').and_then(|open| {
        let rest = &key[open + 1..];
        rest.iter()
            .position(|&b| b == b'}')
            .filter(|&close| close > 0)
            .map(|close| &rest[..close])
    });
    crc16_xmodem(tagged.unwrap_or(key)) % SLOTS
}

/// CRC16/XMODEM: polynomial 0x1021, initial value 0, no reflection.
fn crc16_xmodem(data: &[u8]) -> u16 {
    let mut crc: u16 = 0;
    for &byte in data {
        crc ^= u16::from(byte) << 8;
        for _ in 0..8 {
            crc = if crc & 0x8000 == 0 {
                crc << 1
            } else {
                (crc << 1) ^ 0x1021
            };
        }
    }
    crc
}

/// One node's view of `CLUSTER SLOTS`: `(first, last, [primary port,
/// replica ports sorted...])`, sorted by first slot.
type SlotMap = Vec<(u16, u16, Vec<u16>)>;

/// A running cluster, every node stopped when dropped.
#[derive(Debug)]
pub struct TestCluster {
    /// Primaries first (in slot order), then replicas.
    nodes: Vec<TestRedis>,
    /// Node ids, by port.
    ids: HashMap<u16, String>,
    primaries: usize,
}

impl TestCluster {
    /// Starts `primaries` primaries (slots split evenly in start order) and
    /// `replicas_per_primary` replicas of each; returns once the cluster is
    /// consistent. Panics if that takes more than 20 s.
    #[must_use]
    pub fn start(primaries: usize, replicas_per_primary: usize) -> Self {
        Self::start_with(primaries, replicas_per_primary, None)
    }

    /// The same over TLS with the server certificate of `certs` (clients
    /// verified against its CA only if they present a certificate): every
    /// node has a TLS port and the cluster bus is TLS (`tls-cluster yes`;
    /// the node certificate is also its client certificate on the bus),
    /// so `CLUSTER SLOTS` and redirects name TLS ports to TLS clients.
    /// Each node also keeps a plain port for the harness's own admin
    /// connections (to plain clients the nodes name plain ports): every
    /// port this handle takes or returns is a plain one, except
    /// [`TestCluster::tls_ports`], [`TestCluster::tls_port_of`] and the
    /// `rediss+cluster://` [`TestCluster::url`].
    #[must_use]
    pub fn start_tls(primaries: usize, replicas_per_primary: usize, certs: &TestCerts) -> Self {
        Self::start_with(primaries, replicas_per_primary, Some(certs))
    }

    /// Up to three fresh clusters: a rare start (about one in a few
    /// thousand on a loaded 2-core machine) never converges, one node
    /// knowing too few others after 20 s; a new set of nodes does.
    fn start_with(
        primaries: usize,
        replicas_per_primary: usize,
        certs: Option<&TestCerts>,
    ) -> Self {
        const ATTEMPTS: usize = 3;
        assert!(
            (1..=usize::from(SLOTS)).contains(&primaries),
            "a cluster needs 1..=16384 primaries"
        );
        for attempt in 1..=ATTEMPTS {
            match Self::try_start(primaries, replicas_per_primary, certs) {
                Ok(cluster) => return cluster,
                Err(e) if attempt < ATTEMPTS => {
                    eprintln!("spool-tests: cluster start {attempt} failed, starting anew: {e}");
                }
                Err(e) => panic!("{e}"),
            }
        }
        unreachable!("the last attempt returns or panics")
    }

    /// One start: the nodes, slots, meetings and replication, then a wait
    /// of up to 20 s for consistency (the nodes stop if it is not reached).
    fn try_start(
        primaries: usize,
        replicas_per_primary: usize,
        certs: Option<&TestCerts>,
    ) -> Result<Self, String> {
        let total = primaries * (1 + replicas_per_primary);
        // In parallel: each node's 2 s CLUSTER_WRITABLE_DELAY starts with it.
        let nodes: Vec<TestRedis> = std::thread::scope(|scope| {
            let starting: Vec<_> = (0..total)
                .map(|_| {
                    scope.spawn(|| {
                        let builder = TestRedis::builder().cluster_enabled();
                        match certs {
                            None => builder.start(),
                            Some(certs) => builder.tls(certs).keep_plain_port().start(),
                        }
                    })
                })
                .collect();
            starting
                .into_iter()
                .map(|h| h.join().expect("start a cluster node"))
                .collect()
        });
        let ids: HashMap<u16, String> = nodes
            .iter()
            .map(|n| {
                let id: String = run(n.port(), redis::cmd("CLUSTER").arg("MYID"), "CLUSTER MYID");
                (n.port(), id)
            })
            .collect();
        let me = Self {
            nodes,
            ids,
            primaries,
        };
        // Distinct config epochs up front, as redis-cli does: no epoch
        // collisions to resolve by gossip.
        for (epoch, node) in me.nodes.iter().enumerate() {
            set_config_epoch(node.port(), epoch + 1);
        }
        for (i, node) in me.nodes[..primaries].iter().enumerate() {
            let (first, last) = slot_range(i, primaries);
            let () = run(
                node.port(),
                redis::cmd("CLUSTER")
                    .arg("ADDSLOTSRANGE")
                    .arg(first)
                    .arg(last),
                "CLUSTER ADDSLOTSRANGE",
            );
        }
        // The first primary meets the other primaries; each replica meets its
        // own primary, so it knows its id at once. Gossip does the rest.
        let meet = |from: u16, to: &TestRedis| {
            let () = run(
                from,
                redis::cmd("CLUSTER")
                    .arg("MEET")
                    .arg("127.0.0.1")
                    .arg(to.port())
                    .arg(
                        to.cluster_bus_port()
                            .expect("a cluster node has a bus port"),
                    ),
                "CLUSTER MEET",
            );
        };
        for node in &me.nodes[1..primaries] {
            meet(me.nodes[0].port(), node);
        }
        for (i, replica) in me.nodes[primaries..].iter().enumerate() {
            meet(replica.port(), &me.nodes[i % primaries]);
        }
        for (i, replica) in me.nodes[primaries..].iter().enumerate() {
            let primary_id = &me.ids[&me.nodes[i % primaries].port()];
            try_poll(
                "a replica to learn its primary's id",
                Duration::from_secs(10),
                || {
                    let nodes: String = run(
                        replica.port(),
                        redis::cmd("CLUSTER").arg("NODES"),
                        "CLUSTER NODES",
                    );
                    if nodes.contains(primary_id.as_str()) {
                        Ok(())
                    } else {
                        Err(nodes)
                    }
                },
            )?;
            let () = run(
                replica.port(),
                redis::cmd("CLUSTER").arg("REPLICATE").arg(primary_id),
                "CLUSTER REPLICATE",
            );
        }
        me.wait_consistent(Duration::from_secs(20))
            .map_err(|e| format!("{e}\n{}", me.nodes_tables()))?;
        Ok(me)
    }

    /// Every node's `CLUSTER NODES`, for a start that did not converge.
    fn nodes_tables(&self) -> String {
        let mut out = String::new();
        for node in &self.nodes {
            let table = connect(node.port())
                .and_then(|mut con| redis::cmd("CLUSTER").arg("NODES").query::<String>(&mut con))
                .unwrap_or_else(|e| e.to_string());
            let _ = write!(out, "CLUSTER NODES of {}:\n{table}", node.port());
        }
        out
    }

    /// Waits until every live node reports `cluster_state:ok`, knows every
    /// node, and returns the same `CLUSTER SLOTS` with every primary's
    /// replicas, covering all 16384 slots.
    fn wait_consistent(&self, within: Duration) -> Result<(), String> {
        let total = self.nodes.len();
        let replicas = total / self.primaries - 1;
        try_poll("the cluster to be consistent", within, || {
            self.check_consistent(total, replicas)
        })
    }

    /// One look at every node for [`TestCluster::wait_consistent`].
    fn check_consistent(&self, total: usize, replicas: usize) -> Result<(), String> {
        {
            let mut first: Option<SlotMap> = None;
            for node in &self.nodes {
                let info: String = run(
                    node.port(),
                    redis::cmd("CLUSTER").arg("INFO"),
                    "CLUSTER INFO",
                );
                if !info.contains("cluster_state:ok")
                    || !info.contains(&format!("cluster_known_nodes:{total}\r"))
                {
                    return Err(format!("node {}: {info}", node.port()));
                }
                let map = slot_map(node.port())?;
                let covered: usize = map.iter().map(|(a, b, _)| usize::from(b - a) + 1).sum();
                if covered != usize::from(SLOTS)
                    || map.iter().any(|(_, _, n)| n.len() != 1 + replicas)
                {
                    return Err(format!("node {}: slots {map:?}", node.port()));
                }
                match &first {
                    None => first = Some(map),
                    Some(f) if *f == map => {}
                    Some(f) => {
                        return Err(format!("node {} says {map:?}, another {f:?}", node.port()))
                    }
                }
            }
            Ok(())
        }
    }

    /// The slot of `key`: [`slot_of`].
    #[must_use]
    pub fn slot_of(key: impl AsRef<[u8]>) -> u16 {
        slot_of(key)
    }

    /// The first node's data directory (for logs of a test's children).
    #[must_use]
    pub fn dir(&self) -> &std::path::Path {
        self.nodes[0].dir()
    }

    /// `redis+cluster://127.0.0.1:P1,127.0.0.1:P2,...` (the primaries), or
    /// `rediss+cluster://` and their TLS ports with
    /// [`TestCluster::start_tls`].
    #[must_use]
    pub fn url(&self) -> String {
        let tls = self.nodes[0].tls_port().is_some();
        let ports = if tls { self.tls_ports() } else { self.ports() };
        let hosts: Vec<String> = ports.iter().map(|p| format!("127.0.0.1:{p}")).collect();
        let scheme = if tls {
            "rediss+cluster"
        } else {
            "redis+cluster"
        };
        format!("{scheme}://{}", hosts.join(","))
    }

    /// The primaries' TLS ports, in the order of [`TestCluster::ports`]
    /// (empty without TLS).
    #[must_use]
    pub fn tls_ports(&self) -> Vec<u16> {
        self.nodes[..self.primaries]
            .iter()
            .filter_map(TestRedis::tls_port)
            .collect()
    }

    /// The TLS port of the node whose plain port is `port`, with TLS.
    #[must_use]
    pub fn tls_port_of(&self, port: u16) -> Option<u16> {
        self.nodes
            .iter()
            .find(|n| n.port() == port)
            .unwrap_or_else(|| panic!("no cluster node on port {port}"))
            .tls_port()
    }

    /// `redis://127.0.0.1:P` of each primary: the seed list for
    /// `redis::cluster::ClusterClient::new`.
    #[must_use]
    pub fn node_urls(&self) -> Vec<String> {
        self.ports()
            .iter()
            .map(|p| format!("redis://127.0.0.1:{p}"))
            .collect()
    }

    /// The primaries' ports, in slot order as started.
    #[must_use]
    pub fn ports(&self) -> Vec<u16> {
        self.nodes[..self.primaries]
            .iter()
            .map(TestRedis::port)
            .collect()
    }

    /// The replicas' ports.
    #[must_use]
    pub fn replica_ports(&self) -> Vec<u16> {
        self.nodes[self.primaries..]
            .iter()
            .map(TestRedis::port)
            .collect()
    }

    /// The node id of the node on `port`.
    #[must_use]
    pub fn node_id(&self, port: u16) -> &str {
        self.ids
            .get(&port)
            .map_or_else(|| panic!("no cluster node on port {port}"), String::as_str)
    }

    /// The port of the primary that owns `slot`, per `CLUSTER SLOTS` of the
    /// first node that answers.
    #[must_use]
    pub fn node_for_slot(&self, slot: u16) -> u16 {
        let map = self
            .nodes
            .iter()
            .find_map(|n| slot_map(n.port()).ok())
            .expect("a cluster node answering CLUSTER SLOTS");
        owner(&map, slot).unwrap_or_else(|| panic!("no node owns slot {slot}: {map:?}"))
    }

    /// Moves `slot` to the primary on `to_port` while clients may keep using
    /// it, exactly as `redis-cli --cluster reshard` does: `SETSLOT IMPORTING`
    /// on the target, `MIGRATING` on the source, `GETKEYSINSLOT` + `MIGRATE
    /// ... KEYS` in batches of 100, then `SETSLOT NODE` on the target, the
    /// source and every other primary. Returns once every live node agrees.
    pub fn move_slot(&self, slot: u16, to_port: u16) {
        let from_port = self.node_for_slot(slot);
        if from_port == to_port {
            return;
        }
        let from_id = self.node_id(from_port).to_owned();
        let to_id = self.node_id(to_port).to_owned();
        let mut target = connect(to_port).expect("connect to the target node");
        let mut source = connect(from_port).expect("connect to the source node");
        let () = redis::cmd("CLUSTER")
            .arg("SETSLOT")
            .arg(slot)
            .arg("IMPORTING")
            .arg(&from_id)
            .query(&mut target)
            .expect("CLUSTER SETSLOT IMPORTING on the target");
        let () = redis::cmd("CLUSTER")
            .arg("SETSLOT")
            .arg(slot)
            .arg("MIGRATING")
            .arg(&to_id)
            .query(&mut source)
            .expect("CLUSTER SETSLOT MIGRATING on the source");
        loop {
            let keys: Vec<Vec<u8>> = redis::cmd("CLUSTER")
                .arg("GETKEYSINSLOT")
                .arg(slot)
                .arg(MIGRATE_BATCH)
                .query(&mut source)
                .expect("CLUSTER GETKEYSINSLOT on the source");
            if keys.is_empty() {
                break;
            }
            let () = redis::cmd("MIGRATE")
                .arg("127.0.0.1")
                .arg(to_port)
                .arg("")
                .arg(0)
                .arg(5000)
                .arg("KEYS")
                .arg(&keys)
                .query(&mut source)
                .expect("MIGRATE ... KEYS from the source to the target");
        }
        let set_node = |port: u16, what: &str| {
            let () = run(
                port,
                redis::cmd("CLUSTER")
                    .arg("SETSLOT")
                    .arg(slot)
                    .arg("NODE")
                    .arg(&to_id),
                what,
            );
        };
        set_node(to_port, "CLUSTER SETSLOT NODE on the target");
        set_node(from_port, "CLUSTER SETSLOT NODE on the source");
        for port in self.live_primary_ports() {
            if port != to_port && port != from_port {
                set_node(port, "CLUSTER SETSLOT NODE on another primary");
            }
        }
        poll(
            "every node to see the moved slot on its target",
            Duration::from_secs(10),
            || {
                for node in &self.nodes {
                    if let Ok(map) = slot_map(node.port()) {
                        if owner(&map, slot) != Some(to_port) {
                            return Err(format!(
                                "node {} still says {:?}",
                                node.port(),
                                owner(&map, slot)
                            ));
                        }
                    }
                }
                Ok(())
            },
        );
    }

    fn live_primary_ports(&self) -> Vec<u16> {
        self.ports()
            .into_iter()
            .filter(|&p| connect(p).is_ok())
            .collect()
    }

    /// SIGKILLs the node on `port`.
    pub fn kill_node(&mut self, port: u16) {
        self.nodes
            .iter_mut()
            .find(|n| n.port() == port)
            .unwrap_or_else(|| panic!("no cluster node on port {port}"))
            .kill();
    }
}

/// The `i`-th of `n` even slot ranges, inclusive.
fn slot_range(i: usize, n: usize) -> (usize, usize) {
    let slots = usize::from(SLOTS);
    (i * slots / n, (i + 1) * slots / n - 1)
}

fn owner(map: &SlotMap, slot: u16) -> Option<u16> {
    map.iter()
        .find(|(a, b, _)| (*a..=*b).contains(&slot))
        .and_then(|(_, _, nodes)| nodes.first().copied())
}

/// `CLUSTER SLOTS` of the node on `port`, normalized.
fn slot_map(port: u16) -> Result<SlotMap, String> {
    let mut con = connect(port).map_err(|e| e.to_string())?;
    let ranges: Vec<redis::Value> = redis::cmd("CLUSTER")
        .arg("SLOTS")
        .query(&mut con)
        .map_err(|e| e.to_string())?;
    let mut map = SlotMap::new();
    for range in ranges {
        let redis::Value::Array(items) = range else {
            return Err(format!("CLUSTER SLOTS entry is not an array: {range:?}"));
        };
        let int = |v: &redis::Value| match v {
            redis::Value::Int(i) => u16::try_from(*i).map_err(|e| e.to_string()),
            other => Err(format!("not an integer: {other:?}")),
        };
        let (Some(first), Some(last)) = (items.first(), items.get(1)) else {
            return Err(format!("short CLUSTER SLOTS entry: {items:?}"));
        };
        let mut ports = Vec::new();
        for node in &items[2..] {
            let redis::Value::Array(fields) = node else {
                return Err(format!("CLUSTER SLOTS node is not an array: {node:?}"));
            };
            ports.push(int(fields
                .get(1)
                .ok_or("CLUSTER SLOTS node without port")?)?);
        }
        ports[1..].sort_unstable();
        map.push((int(first)?, int(last)?, ports));
    }
    map.sort_unstable();
    Ok(map)
}

/// `CLUSTER SET-CONFIG-EPOCH epoch` on a new node. A node whose epoch is
/// already set (a stray gossip packet from another test's cluster that used
/// this port a moment ago bumped it) keeps it: gossip resolves any epoch
/// collision, so that is not worth failing a test for.
fn set_config_epoch(port: u16, epoch: usize) {
    let mut con = connect(port)
        .unwrap_or_else(|e| panic!("CLUSTER SET-CONFIG-EPOCH: connect to {port}: {e}"));
    let set: redis::RedisResult<()> = redis::cmd("CLUSTER")
        .arg("SET-CONFIG-EPOCH")
        .arg(epoch)
        .query(&mut con);
    if let Err(e) = set {
        assert!(
            e.to_string().contains("already non-zero"),
            "CLUSTER SET-CONFIG-EPOCH (on port {port}): {e}"
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crc16_matches_the_redis_cluster_spec_vectors() {
        // From the Redis Cluster specification.
        assert_eq!(crc16_xmodem(b"123456789"), 0x31C3);
        assert_eq!(slot_of(b"foo"), 12182);
        assert_eq!(slot_of(b"{user1000}.following"), slot_of(b"user1000"));
        assert_eq!(slot_of("foo{}{bar}"), crc16_xmodem(b"foo{}{bar}") % SLOTS);
        assert_eq!(TestCluster::slot_of("foo"), 12182);
        assert_eq!(slot_of(b"foo{{bar}}zap"), slot_of(b"{bar"));
        assert_eq!(slot_of(b"foo{bar}{zap}"), slot_of(b"bar"));
    }
}
