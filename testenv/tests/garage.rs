//! testenv's Garage object store: objects written and read back through the S3 API with the
//! key it created (through the `object_store` crate's S3 client), across a
//! restart of the whole store and of one node of three. Without a `garage` program the tests
//! fail, or say SKIPPED where `PGWIRE_REPL_ALLOW_SKIP=1`.

use std::io::{Read, Write};
use std::net::TcpStream;

use object_store::aws::{AmazonS3, AmazonS3Builder};
use object_store::path::Path as ObjPath;
use object_store::{ObjectStoreExt, PutPayload};
use testenv::Garage;

fn start(nodes: usize) -> Option<Garage> {
    if Garage::binary().is_none() {
        testenv::skip(format!(
            "there is no garage program (install it with: {})",
            testenv::GARAGE_INSTALL
        ));
        return None;
    }
    Some(Garage::start(nodes).unwrap())
}

#[test]
fn one_node_keeps_an_object_across_a_restart() {
    let Some(mut garage) = start(1) else { return };
    let env = garage.env();
    let var = |name: &str| {
        env.iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
            .unwrap()
    };
    assert_eq!(var("AWS_ACCESS_KEY_ID"), garage.access_key_id());
    assert_eq!(var("AWS_SECRET_ACCESS_KEY"), garage.secret_access_key());
    assert_eq!(var("AWS_REGION"), "garage");
    assert_eq!(var("AWS_ENDPOINT_URL"), garage.endpoint());
    assert_eq!(var("AWS_ALLOW_HTTP"), "true");
    assert_eq!(garage.url("wal/"), "s3://pgwal/wal/");

    let info = garage.cli(0, &["bucket", "info", garage.bucket()]).unwrap();
    assert!(info.contains(garage.bucket()), "{info}");
    assert!(info.contains(garage.access_key_id()), "{info}");

    // An unsigned request gets S3's XML error.
    let (status, body) = unsigned_get(&garage.endpoint(), "/pgwal/nothing");
    assert_eq!(status, 403, "{body}");
    assert!(body.contains("<Code>AccessDenied</Code>"), "{body}");

    let object = b"000000010000000000000001 is not really here\n".repeat(100);
    put(&garage, 0, "wal/one", &object);
    assert_eq!(get(&garage, 0, "wal/one"), (200, object.clone()));
    assert_eq!(get(&garage, 0, "wal/none").0, 404);

    garage.stop_all().unwrap();
    assert!(TcpStream::connect(garage.endpoint().trim_start_matches("http://")).is_err());
    garage.start_all().unwrap();
    assert_eq!(get(&garage, 0, "wal/one"), (200, object));
}

#[test]
fn three_nodes_serve_while_one_is_down_and_take_it_back() {
    let Some(mut garage) = start(3) else { return };
    assert_eq!(garage.nodes(), 3);
    assert_eq!(health(&garage, 1)["status"], "healthy");
    let object = b"written through node 0\n".repeat(1000);
    put(&garage, 0, "wal/a", &object);

    garage.kill_node(1).unwrap();
    // Two of three copies are a quorum: node 2 still reads and writes.
    assert_eq!(health(&garage, 0)["status"], "degraded");
    assert_eq!(get(&garage, 2, "wal/a"), (200, object.clone()));
    put(&garage, 2, "wal/b", b"written while node 1 was down");

    garage.start_node(1).unwrap();
    for i in 0..3 {
        assert_eq!(health(&garage, i)["status"], "healthy", "node {i}");
    }
    assert_eq!(get(&garage, 1, "wal/a"), (200, object));
    assert_eq!(
        get(&garage, 1, "wal/b"),
        (200, b"written while node 1 was down".to_vec())
    );
}

fn health(garage: &Garage, node: usize) -> serde_json::Value {
    let out = garage.cli(node, &["json-api", "GetClusterHealth"]).unwrap();
    serde_json::from_str(&out).unwrap()
}

/// A client of node `node` with `garage`'s key (the `object_store` crate's S3 client).
fn client(garage: &Garage, node: usize) -> AmazonS3 {
    AmazonS3Builder::new()
        .with_endpoint(garage.endpoint_of(node))
        .with_allow_http(true)
        .with_region(garage.region())
        .with_bucket_name(garage.bucket())
        .with_access_key_id(garage.access_key_id())
        .with_secret_access_key(garage.secret_access_key())
        .with_retry(object_store::RetryConfig {
            max_retries: 0,
            ..Default::default()
        })
        .build()
        .unwrap()
}

fn block_on<F: std::future::Future>(f: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(f)
}

/// Stores `body` as `key` through node `node`, or fails the test with S3's answer.
fn put(garage: &Garage, node: usize, key: &str, body: &[u8]) {
    let store = client(garage, node);
    block_on(store.put(&ObjPath::from(key), PutPayload::from(body.to_vec())))
        .unwrap_or_else(|e| panic!("PUT {key} through node {node}: {e}"));
}

/// The status and body of reading `key` through node `node`: 200 and the bytes, or 404.
fn get(garage: &Garage, node: usize, key: &str) -> (u16, Vec<u8>) {
    let store = client(garage, node);
    match block_on(async { store.get(&ObjPath::from(key)).await?.bytes().await }) {
        Ok(b) => (200, b.to_vec()),
        Err(object_store::Error::NotFound { .. }) => (404, Vec::new()),
        Err(e) => panic!("GET {key} through node {node}: {e}"),
    }
}

/// One unsigned HTTP/1.1 request (`Connection: close`); its status and body.
fn unsigned_get(endpoint: &str, path: &str) -> (u16, String) {
    let host = endpoint.strip_prefix("http://").unwrap();
    let mut stream = TcpStream::connect(host).unwrap();
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut answer = String::new();
    stream.read_to_string(&mut answer).unwrap();
    let status = answer.get(9..12).and_then(|s| s.parse().ok()).unwrap_or(0);
    (status, answer)
}
