//! testenv's Garage object store: objects written and read back through the S3 API with the
//! key it created (a signed request made here, AWS Signature Version 4 on `sha2`), across a
//! restart of the whole store and of one node of three. Without a `garage` program the tests
//! fail, or say SKIPPED where `PGWIRE_REPL_ALLOW_SKIP=1`.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{SystemTime, UNIX_EPOCH};

use sha2::{Digest, Sha256};
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
    let (status, body) = request(&garage.endpoint(), "GET", "/pgwal/nothing", b"", None);
    let body = String::from_utf8_lossy(&body);
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

/// Stores `body` as `key` through node `node`, or fails the test with S3's answer.
fn put(garage: &Garage, node: usize, key: &str, body: &[u8]) {
    let path = format!("/{}/{key}", garage.bucket());
    let (status, answer) = request(&garage.endpoint_of(node), "PUT", &path, body, Some(garage));
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&answer));
}

/// The status and body of reading `key` through node `node`.
fn get(garage: &Garage, node: usize, key: &str) -> (u16, Vec<u8>) {
    let path = format!("/{}/{key}", garage.bucket());
    request(&garage.endpoint_of(node), "GET", &path, b"", Some(garage))
}

/// One HTTP/1.1 request (`Connection: close`, no query string), signed with `garage`'s key
/// when given; returns the status and the body.
fn request(
    endpoint: &str,
    method: &str,
    path: &str,
    body: &[u8],
    signer: Option<&Garage>,
) -> (u16, Vec<u8>) {
    let host = endpoint.strip_prefix("http://").unwrap();
    let mut head = format!(
        "{method} {path} HTTP/1.1\r\nHost: {host}\r\nContent-Length: {}\r\nConnection: close\r\n",
        body.len()
    );
    if let Some(garage) = signer {
        for (name, value) in sign(garage, method, host, path, body) {
            head.push_str(&format!("{name}: {value}\r\n"));
        }
    }
    head.push_str("\r\n");
    let mut stream = TcpStream::connect(host).unwrap();
    stream.write_all(head.as_bytes()).unwrap();
    stream.write_all(body).unwrap();
    let mut answer = Vec::new();
    stream.read_to_end(&mut answer).unwrap();
    let split = answer
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("an HTTP answer");
    let head = String::from_utf8_lossy(&answer[..split]).to_ascii_lowercase();
    let status = head[9..12].parse().unwrap();
    let body = answer[split + 4..].to_vec();
    assert!(
        !head.contains("transfer-encoding: chunked"),
        "a chunked answer, which this test does not read: {head}"
    );
    (status, body)
}

/// The `x-amz-date`, `x-amz-content-sha256` and `Authorization` headers of AWS Signature
/// Version 4 for a request with no query string, signing those and `host`.
fn sign(
    garage: &Garage,
    method: &str,
    host: &str,
    path: &str,
    body: &[u8],
) -> Vec<(&'static str, String)> {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let date = amz_date(now);
    let day = &date[..8];
    let payload = hex(&Sha256::digest(body));
    let signed = "host;x-amz-content-sha256;x-amz-date";
    let canonical = format!(
        "{method}\n{path}\n\nhost:{host}\nx-amz-content-sha256:{payload}\nx-amz-date:{date}\n\n\
         {signed}\n{payload}"
    );
    let scope = format!("{day}/{}/s3/aws4_request", garage.region());
    let to_sign = format!(
        "AWS4-HMAC-SHA256\n{date}\n{scope}\n{}",
        hex(&Sha256::digest(canonical.as_bytes()))
    );
    let mut key = format!("AWS4{}", garage.secret_access_key()).into_bytes();
    for part in [day, garage.region(), "s3", "aws4_request"] {
        key = hmac(&key, part.as_bytes());
    }
    let signature = hex(&hmac(&key, to_sign.as_bytes()));
    vec![
        ("x-amz-date", date.clone()),
        ("x-amz-content-sha256", payload),
        (
            "Authorization",
            format!(
                "AWS4-HMAC-SHA256 Credential={}/{scope}, SignedHeaders={signed}, \
                 Signature={signature}",
                garage.access_key_id()
            ),
        ),
    ]
}

/// HMAC-SHA256 (RFC 2104).
fn hmac(key: &[u8], msg: &[u8]) -> Vec<u8> {
    // A key longer than the 64-byte block (the first: "AWS4" and a 64-digit secret) is
    // hashed first.
    let key = if key.len() > 64 {
        Sha256::digest(key).to_vec()
    } else {
        key.to_vec()
    };
    let mut block = [0u8; 64];
    block[..key.len()].copy_from_slice(&key);
    let pad = |byte: u8| block.iter().map(|b| b ^ byte).collect::<Vec<u8>>();
    let inner = Sha256::new()
        .chain_update(pad(0x36))
        .chain_update(msg)
        .finalize();
    Sha256::new()
        .chain_update(pad(0x5c))
        .chain_update(inner)
        .finalize()
        .to_vec()
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// `YYYYMMDDTHHMMSSZ` for `secs` since the epoch (days to a civil date: Howard Hinnant's
/// `civil_from_days`).
fn amz_date(secs: u64) -> String {
    let days = (secs / 86400) as i64;
    let rem = secs % 86400;
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}{m:02}{d:02}T{:02}{:02}{:02}Z",
        rem / 3600,
        rem / 60 % 60,
        rem % 60
    )
}

#[test]
fn amz_dates() {
    assert_eq!(amz_date(0), "19700101T000000Z");
    // date -u -d @1709251199: Thu Feb 29 23:59:59 UTC 2024
    assert_eq!(amz_date(1_709_251_199), "20240229T235959Z");
    assert_eq!(amz_date(1_709_251_200), "20240301T000000Z");
}
