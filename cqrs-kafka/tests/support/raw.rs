//! A producer that writes record bytes no Rust client would: header names that are not UTF-8,
//! as a client in another language (Go's strings are bytes) may send them. It speaks the
//! Kafka protocol itself (a `Produce` v3 request with one v2 record batch) over a plain TCP
//! connection to the partition's leader, so it works with the test broker (`PLAINTEXT`), not
//! with a cluster behind TLS or SASL.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use cqrs_kafka::KafkaConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::ClientConfig;

/// One record: key, value and headers, every part as raw bytes.
pub struct RawRecord {
    pub key: Vec<u8>,
    pub value: Vec<u8>,
    pub headers: Vec<(Vec<u8>, Vec<u8>)>,
}

/// Writes `records` to `topic`'s `partition` in one batch, acknowledged by every in-sync
/// replica; panics with the broker's error code if it refuses them.
pub async fn produce(config: &KafkaConfig, topic: &str, partition: i32, records: &[RawRecord]) {
    let servers = config.bootstrap_servers().to_owned();
    let topic = topic.to_owned();
    let request = produce_request(&topic, partition, &record_batch(records));
    tokio::task::spawn_blocking(move || {
        let leader = leader_of(&servers, &topic, partition);
        let mut connection = TcpStream::connect(&leader)
            .unwrap_or_else(|e| panic!("connect to the leader {leader}: {e}"));
        connection
            .set_read_timeout(Some(Duration::from_secs(60)))
            .expect("timeout");
        connection.write_all(&request).expect("send");
        let mut size = [0_u8; 4];
        connection.read_exact(&mut size).expect("reply size");
        let mut reply = vec![0_u8; usize::try_from(i32::from_be_bytes(size)).expect("size")];
        connection.read_exact(&mut reply).expect("reply");
        // correlation id, topics (1), name, partitions (1), index, then the error code.
        let name_at = 4 + 4;
        let name_len = usize::from(u16::from_be_bytes([reply[name_at], reply[name_at + 1]]));
        let error_at = name_at + 2 + name_len + 4 + 4;
        let error = i16::from_be_bytes([reply[error_at], reply[error_at + 1]]);
        assert_eq!(
            error, 0,
            "the broker refused the raw batch (Kafka error code)"
        );
    })
    .await
    .expect("the raw producer");
}

/// `host:port` of the partition's leader, from the cluster's metadata.
fn leader_of(servers: &str, topic: &str, partition: i32) -> String {
    let client: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", servers)
        .create()
        .expect("metadata client");
    let metadata = client
        .fetch_metadata(Some(topic), Duration::from_secs(30))
        .expect("metadata");
    let leader = metadata.topics()[0]
        .partitions()
        .iter()
        .find(|p| p.id() == partition)
        .expect("the partition")
        .leader();
    let broker = metadata
        .brokers()
        .iter()
        .find(|b| b.id() == leader)
        .expect("the leader broker");
    format!("{}:{}", broker.host(), broker.port())
}

/// A `Produce` v3 request (acks = all), framed with its size.
fn produce_request(topic: &str, partition: i32, batch: &[u8]) -> Vec<u8> {
    let mut body = Vec::new();
    body.extend_from_slice(&0_i16.to_be_bytes()); // api key: Produce
    body.extend_from_slice(&3_i16.to_be_bytes()); // api version
    body.extend_from_slice(&1_i32.to_be_bytes()); // correlation id
    string(&mut body, b"cqrs-raw-test");
    body.extend_from_slice(&(-1_i16).to_be_bytes()); // no transactional id
    body.extend_from_slice(&(-1_i16).to_be_bytes()); // acks: all in-sync replicas
    body.extend_from_slice(&30_000_i32.to_be_bytes()); // timeout
    body.extend_from_slice(&1_i32.to_be_bytes()); // one topic
    string(&mut body, topic.as_bytes());
    body.extend_from_slice(&1_i32.to_be_bytes()); // one partition
    body.extend_from_slice(&partition.to_be_bytes());
    body.extend_from_slice(&i32::try_from(batch.len()).expect("len").to_be_bytes());
    body.extend_from_slice(batch);
    let mut framed = i32::try_from(body.len())
        .expect("len")
        .to_be_bytes()
        .to_vec();
    framed.extend_from_slice(&body);
    framed
}

/// A v2 record batch of `records`, uncompressed, not idempotent, CRC-32C checked.
fn record_batch(records: &[RawRecord]) -> Vec<u8> {
    let now = i64::try_from(
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .expect("clock")
            .as_millis(),
    )
    .expect("ms");
    let count = i32::try_from(records.len()).expect("count");
    // What the CRC covers: from the attributes to the end.
    let mut checked = Vec::new();
    checked.extend_from_slice(&0_i16.to_be_bytes()); // attributes
    checked.extend_from_slice(&(count - 1).to_be_bytes()); // last offset delta
    checked.extend_from_slice(&now.to_be_bytes()); // first timestamp
    checked.extend_from_slice(&now.to_be_bytes()); // max timestamp
    checked.extend_from_slice(&(-1_i64).to_be_bytes()); // producer id
    checked.extend_from_slice(&(-1_i16).to_be_bytes()); // producer epoch
    checked.extend_from_slice(&(-1_i32).to_be_bytes()); // base sequence
    checked.extend_from_slice(&count.to_be_bytes());
    for (delta, record) in records.iter().enumerate() {
        let mut body = vec![0_u8]; // attributes
        varint(&mut body, 0); // timestamp delta
        varint(&mut body, i64::try_from(delta).expect("delta"));
        bytes(&mut body, &record.key);
        bytes(&mut body, &record.value);
        varint(
            &mut body,
            i64::try_from(record.headers.len()).expect("headers"),
        );
        for (name, value) in &record.headers {
            bytes(&mut body, name);
            bytes(&mut body, value);
        }
        varint(&mut checked, i64::try_from(body.len()).expect("len"));
        checked.extend_from_slice(&body);
    }
    let mut batch = Vec::new();
    batch.extend_from_slice(&0_i64.to_be_bytes()); // base offset
    let length = 4 + 1 + 4 + checked.len(); // leader epoch, magic, crc, the rest
    batch.extend_from_slice(&i32::try_from(length).expect("len").to_be_bytes());
    batch.extend_from_slice(&(-1_i32).to_be_bytes()); // partition leader epoch
    batch.push(2); // magic
    batch.extend_from_slice(&crc32c(&checked).to_be_bytes());
    batch.extend_from_slice(&checked);
    batch
}

fn string(out: &mut Vec<u8>, text: &[u8]) {
    out.extend_from_slice(&i16::try_from(text.len()).expect("len").to_be_bytes());
    out.extend_from_slice(text);
}

fn bytes(out: &mut Vec<u8>, data: &[u8]) {
    varint(out, i64::try_from(data.len()).expect("len"));
    out.extend_from_slice(data);
}

/// A zigzag varint, as record fields are written.
fn varint(out: &mut Vec<u8>, value: i64) {
    let mut zigzag = u64::from_ne_bytes(((value << 1) ^ (value >> 63)).to_ne_bytes());
    loop {
        let low = u8::try_from(zigzag & 0x7f).expect("seven bits");
        zigzag >>= 7;
        if zigzag == 0 {
            out.push(low);
            return;
        }
        out.push(low | 0x80);
    }
}

/// CRC-32C (Castagnoli), bit by bit: small batches only.
fn crc32c(data: &[u8]) -> u32 {
    let mut crc = !0_u32;
    for &byte in data {
        crc ^= u32::from(byte);
        for _ in 0..8 {
            crc = if crc & 1 == 1 {
                (crc >> 1) ^ 0x82f6_3b78
            } else {
                crc >> 1
            };
        }
    }
    !crc
}
