//! Records real traffic from a testenv server and writes it as the fuzz targets' seed corpus.
//!
//! ```sh
//! cargo run -p pgwire-repl-benches --bin record_fuzz_corpus -- fuzz/corpus
//! ```
//!
//! The library's client talks to the server through a recording TCP proxy: SCRAM, MD5 and
//! cleartext logins, replication commands and their errors, a SQL session with a notice,
//! streaming with keepalives and status updates, and, on a promoted standby, a timeline's
//! history and its end. The recorded bytes are cut into frames with the library's decoder
//! and written (WAL payloads cut to a few bytes, to keep the corpus small) as:
//! `backend_message/` (server byte streams), `replication_message/` (CopyData bodies both
//! ways), `scram/` (server-first, NUL, server-final), `timeline_history/`, `conninfo/` and
//! `uri/` (the connection strings used), `archive_names/` (the standby's `pg_wal` names) and
//! `archive_scan/` (archive layouts in that target's 4-byte encoding). Existing files are
//! replaced; file names say what each one holds.

use std::collections::BTreeMap;
use std::error::Error;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::BytesMut;
use pgwire_repl::protocol::backend::{Authentication, BackendMessage};
use pgwire_repl::protocol::codec::{decode_frame, write_message};
use pgwire_repl::{
    Client, Config, CreateSlotOptions, FeedbackConfig, StartReplication, StreamEnd, StreamEvent,
    TimelineId,
};
use testenv::{roles, Cluster, Options};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{TcpListener, TcpStream};

type Res<T> = Result<T, Box<dyn Error + Send + Sync>>;

/// WAL payloads are cut to this many bytes in the corpus: the decoders never look inside.
const PAYLOAD_KEPT: usize = 24;

/// The bytes of one proxied connection, each direction in order.
#[derive(Default, Clone)]
struct Capture {
    label: String,
    from_server: Vec<u8>,
    from_client: Vec<u8>,
}

type Captures = Arc<Mutex<Vec<Capture>>>;

/// A recording proxy in front of `upstream`; each connection is labelled with the label
/// current when it was accepted.
struct Proxy {
    port: u16,
    captures: Captures,
    label: Arc<Mutex<String>>,
}

impl Proxy {
    async fn start(upstream: u16) -> Res<Proxy> {
        let listener = TcpListener::bind((testenv::HOST, 0)).await?;
        let port = listener.local_addr()?.port();
        let captures: Captures = Arc::default();
        let label = Arc::new(Mutex::new(String::new()));
        let (c, l) = (captures.clone(), label.clone());
        tokio::spawn(async move {
            while let Ok((down, _)) = listener.accept().await {
                let Ok(up) = TcpStream::connect((testenv::HOST, upstream)).await else {
                    continue;
                };
                let idx = {
                    let mut all = c.lock().expect("captures");
                    all.push(Capture {
                        label: l.lock().expect("label").clone(),
                        ..Capture::default()
                    });
                    all.len() - 1
                };
                let (dr, dw) = down.into_split();
                let (ur, uw) = up.into_split();
                tokio::spawn(pump(ur, dw, c.clone(), idx, true));
                tokio::spawn(pump(dr, uw, c.clone(), idx, false));
            }
        });
        Ok(Proxy {
            port,
            captures,
            label,
        })
    }

    fn config(&self, role: roles::Role) -> Res<Config> {
        let mut s = format!(
            "host={} port={} user={} dbname=postgres sslmode=disable",
            testenv::HOST,
            self.port,
            role.name
        );
        if let Some(pw) = role.password {
            s.push_str(&format!(" password={pw}"));
        }
        Ok(Config::parse(&s)?)
    }

    fn label(&self, l: &str) {
        *self.label.lock().expect("label") = l.to_owned();
    }
}

async fn pump(
    mut r: OwnedReadHalf,
    mut w: OwnedWriteHalf,
    log: Captures,
    idx: usize,
    server: bool,
) {
    let mut buf = vec![0u8; 64 << 10];
    loop {
        let n = r.read(&mut buf).await.unwrap_or(0);
        if n == 0 {
            let _ = w.shutdown().await;
            return;
        }
        {
            let mut all = log.lock().expect("captures");
            let c = &mut all[idx];
            let dst = if server {
                &mut c.from_server
            } else {
                &mut c.from_client
            };
            dst.extend_from_slice(&buf[..n]);
        }
        if w.write_all(&buf[..n]).await.is_err() {
            return;
        }
    }
}

/// Runs blocking testenv work off the runtime's threads.
async fn blocking<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    tokio::task::spawn_blocking(f).await.expect("blocking task")
}

/// Streams from `start` until `wal` bytes and two keepalives have arrived, asking for a
/// keepalive and sending hot standby feedback on the way, then stops.
async fn stream_some(client: &mut Client, start: pgwire_repl::Lsn, wal: u64) -> Res<()> {
    let feedback = FeedbackConfig {
        status_interval: None,
        receive_timeout: Some(Duration::from_secs(30)),
        reply_to_keepalives: true,
    };
    let mut s = client
        .start_replication(StartReplication::new(start).feedback(feedback))
        .await?;
    let sender = s.sender();
    let (mut got, mut keepalives) = (0u64, 0);
    while got < wal || keepalives < 2 {
        match tokio::time::timeout(Duration::from_secs(30), s.recv()).await?? {
            StreamEvent::XLogData(x) => {
                got += x.data.len() as u64;
                let end = x.data_end().unwrap_or(x.wal_start);
                sender.set_positions(end, end, pgwire_repl::Lsn::INVALID);
            }
            StreamEvent::Keepalive(_) => {
                keepalives += 1;
                if keepalives == 1 {
                    sender.send_status(true).await?;
                    sender.send_hot_standby_feedback(0, 0, 0, 0).await?;
                }
            }
            StreamEvent::End(end) => return Err(format!("stream ended: {end:?}").into()),
        }
    }
    s.stop().await?;
    Ok(())
}

/// Everything the corpus needs besides the captures.
#[derive(Default)]
struct Extra {
    history: Vec<u8>,
    conninfos: Vec<String>,
    pg_wal_names: Vec<String>,
}

async fn record() -> Res<(Vec<Capture>, Extra)> {
    let mut extra = Extra::default();
    let primary = blocking(|| {
        Cluster::start(Options {
            // An idle walsender pings every second, asking for a reply.
            extra_conf: vec!["wal_sender_timeout = '2s'".into()],
            ..Options::default()
        })
    })
    .await?;
    let primary = Arc::new(primary);
    let proxy = Proxy::start(primary.port()).await?;

    // SCRAM, replication commands, an error, streaming.
    proxy.label("scram-replication");
    let config = proxy.config(roles::REPL_SCRAM)?;
    extra
        .conninfos
        .push(primary.conninfo(roles::REPL_SCRAM.name, roles::REPL_SCRAM.password));
    let mut c = Client::connect(&config).await?;
    let sys = c.identify_system().await?;
    let seg = c.wal_segment_size().await?;
    c.show("server_version").await?;
    let slot_opts = CreateSlotOptions {
        temporary: false,
        reserve_wal: true,
    };
    c.create_replication_slot("fuzz_corpus", slot_opts).await?;
    if c.server_version().is_some_and(|v| v.at_least(15)) {
        c.read_replication_slot("fuzz_corpus").await?;
    }
    let _ = c.drop_replication_slot("no_such_slot", false).await;
    let p = primary.clone();
    let writer = tokio::task::spawn_blocking(move || p.generate_wal(300 << 10));
    stream_some(&mut c, seg.round_down(sys.xlogpos), 256 << 10).await?;
    writer.await??;
    c.drop_replication_slot("fuzz_corpus", false).await?;
    c.close().await?;

    // The other password methods.
    for (label, role) in [
        ("md5", roles::REPL_MD5),
        ("cleartext", roles::REPL_PASSWORD),
    ] {
        proxy.label(label);
        extra
            .conninfos
            .push(primary.conninfo(role.name, role.password));
        let mut c = Client::connect(&proxy.config(role)?).await?;
        c.identify_system().await?;
        c.close().await?;
    }

    // A SQL session: row descriptions, typed rows, NULL, an empty query, a notice, an error.
    proxy.label("sql");
    let mut c = Client::connect_sql(&proxy.config(roles::REPL_TRUST)?).await?;
    c.simple_query("SELECT 1 AS a, NULL::text AS b, 'x' AS c, now() AS d; SELECT 2")
        .await?;
    c.simple_query("").await?;
    c.simple_query("DO $$BEGIN RAISE NOTICE 'corpus notice'; END$$")
        .await?;
    let _ = c.simple_query("SELECT 1/0").await;
    c.close().await?;

    // A promoted standby: a history file, and the end of timeline 1 streamed to it.
    let primary_captures = proxy.captures.clone();
    let primary = Arc::into_inner(primary).ok_or("primary still shared")?;
    let standby = blocking(move || -> testenv::Result<Cluster> {
        let standby = primary.make_standby("standby")?;
        primary.generate_wal(64 << 10)?;
        std::thread::sleep(Duration::from_millis(500));
        primary.stop()?;
        standby.promote()?;
        Ok(standby)
    })
    .await?;
    extra
        .conninfos
        .push(standby.socket_conninfo(roles::REPL_TRUST.name));
    let proxy = Proxy::start(standby.port()).await?;
    proxy.label("timeline-switch");
    let mut c = Client::connect(&proxy.config(roles::REPL_TRUST)?).await?;
    let history = c.timeline_history(TimelineId(2)).await?;
    extra.history = history.content.to_vec();
    let switch = history
        .entries()?
        .first()
        .ok_or("no history entry")?
        .switchpoint;
    let seg = c.wal_segment_size().await?;
    let mut s = c
        .start_replication(StartReplication::new(seg.round_down(switch)).timeline(TimelineId(1)))
        .await?;
    let next = loop {
        match tokio::time::timeout(Duration::from_secs(30), s.recv()).await?? {
            StreamEvent::End(StreamEnd::EndOfTimeline { next_start, .. }) => break next_start,
            StreamEvent::End(end) => return Err(format!("unexpected end {end:?}").into()),
            _ => {}
        }
    };
    drop(s);
    // Exactly at the switch point: the answer comes without COPY.
    let mut s = c
        .start_replication(StartReplication::new(next).timeline(TimelineId(1)))
        .await?;
    s.recv().await?;
    drop(s);
    c.close().await?;

    let mut names: Vec<String> = std::fs::read_dir(standby.pg_wal_dir())?
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .collect();
    names.sort();
    extra.pg_wal_names = names;

    // Let the proxies see both sides close.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let mut all = primary_captures.lock().expect("captures").clone();
    all.extend(proxy.captures.lock().expect("captures").iter().cloned());
    Ok((all, extra))
}

/// The frames of a server byte stream, with XLogData payloads cut short.
fn server_frames(bytes: &[u8]) -> Vec<(u8, Vec<u8>)> {
    let mut buf = BytesMut::from(bytes);
    let mut out = Vec::new();
    while let Ok(Some(f)) = decode_frame(&mut buf) {
        let mut body = f.body.to_vec();
        if f.tag == b'd' && body.first() == Some(&b'w') {
            body.truncate(25 + PAYLOAD_KEPT);
        }
        out.push((f.tag, body));
    }
    out
}

/// The CopyData bodies a client sent (its first message, the startup packet, has no tag).
fn client_copy_data(bytes: &[u8]) -> Vec<Vec<u8>> {
    let Some(len) = bytes
        .get(..4)
        .map(|b| i32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    else {
        return Vec::new();
    };
    let mut buf = BytesMut::from(bytes.get(len.max(0) as usize..).unwrap_or_default());
    let mut out = Vec::new();
    while let Ok(Some(f)) = decode_frame(&mut buf) {
        if f.tag == b'd' {
            out.push(f.body.to_vec());
        }
    }
    out
}

fn frame_bytes(tag: u8, body: &[u8]) -> Vec<u8> {
    let mut b = BytesMut::new();
    write_message(&mut b, tag, |d| d.extend_from_slice(body));
    b.to_vec()
}

fn write_corpus(root: &Path, captures: &[Capture], extra: &Extra) -> Res<BTreeMap<String, usize>> {
    let mut files: BTreeMap<PathBuf, Vec<u8>> = BTreeMap::new();
    let mut put = |target: &str, name: String, bytes: Vec<u8>| {
        files.insert(root.join(target).join(name), bytes);
    };

    let mut kinds: BTreeMap<Vec<u8>, usize> = BTreeMap::new();
    for cap in captures {
        let frames = server_frames(&cap.from_server);
        // backend_message: the session in pieces of up to 16 frames, read 184 bytes at a time.
        for (i, chunk) in frames.chunks(16).enumerate() {
            let mut input = vec![3u8];
            for (tag, body) in chunk {
                input.extend(frame_bytes(*tag, body));
            }
            put("backend_message", format!("{}-{i:02}", cap.label), input);
        }
        // replication_message: each kind of CopyData body a few times, both directions.
        let bodies = frames
            .iter()
            .filter(|(t, _)| *t == b'd')
            .map(|(_, b)| b.clone())
            .chain(client_copy_data(&cap.from_client));
        for body in bodies {
            let kind = body.first().copied().unwrap_or(0);
            let n = kinds.entry(vec![kind]).or_default();
            if *n < 4 {
                put(
                    "replication_message",
                    format!("{}-{}-{n}", cap.label, kind.escape_ascii()),
                    body,
                );
                *n += 1;
            }
        }
        // scram: server-first, NUL, server-final.
        let sasl = |code: i32| {
            frames.iter().find_map(|(tag, body)| {
                (*tag == b'R' && body.get(..4) == Some(&code.to_be_bytes()[..]))
                    .then(|| body[4..].to_vec())
            })
        };
        if let (Some(first), Some(last)) = (sasl(11), sasl(12)) {
            put(
                "scram",
                format!("{}-exchange", cap.label),
                [&first[..], &[0], &last[..]].concat(),
            );
            put("scram", format!("{}-first-only", cap.label), first);
        }
        // Every message kind seen must decode (the corpus is valid traffic).
        for (tag, body) in &frames {
            let f = pgwire_repl::protocol::codec::Frame {
                tag: *tag,
                body: body.clone().into(),
            };
            if let Ok(BackendMessage::Authentication(Authentication::Sasl(m))) =
                BackendMessage::decode(f.clone())
            {
                assert!(m.iter().any(|m| m == "SCRAM-SHA-256"));
            }
            BackendMessage::decode(f)?;
        }
    }

    put(
        "timeline_history",
        "promoted-standby".into(),
        extra.history.clone(),
    );
    for (i, s) in extra.conninfos.iter().enumerate() {
        put("conninfo", format!("testenv-{i}"), s.clone().into_bytes());
    }
    for (name, s) in [
        ("quoted", r"host='/var/run/postgresql' user=repl\ user password='a b\'c' connect_timeout=10 sslmode=prefer application_name=pgwal-recv"),
        ("ignored-keywords", "host=db1 port=5433 replication=true keepalives=1 target_session_attrs=any options='-c wal_sender_timeout=0'"),
    ] {
        put("conninfo", name.into(), s.as_bytes().to_vec());
    }
    for (name, s) in [
        ("full", "repl_scram:scram%2Dsecret@127.0.0.1:5433/postgres?sslmode=disable&application_name=pgwal%20recv&connect_timeout=10"),
        ("ipv6", "[::1]:5432/db?user=x"),
        ("socket", "%2Fvar%2Frun%2Fpostgresql/postgres?ssl=true"),
        ("empty", ""),
    ] {
        put("uri", name.into(), s.as_bytes().to_vec());
    }
    for n in &extra.pg_wal_names {
        put("archive_names", n.clone(), n.clone().into_bytes());
    }
    for (name, s) in [
        ("gz", "000000010000000000000003.gz"),
        ("zst-partial", "000000020000000000000004.zst.partial"),
        ("lz4", "0000000100000001000000FF.lz4"),
    ] {
        put("archive_names", name.into(), s.as_bytes().to_vec());
    }
    // archive_scan: [timeline and name form, segment, suffix, size and content] per file.
    for (name, entries) in [
        (
            "complete-then-partial",
            &[[0, 1, 0, 4], [0, 2, 0, 4], [0, 3, 4, 2]][..],
        ),
        (
            "timeline-switch",
            &[[0, 2, 0, 4], [0, 3, 4, 3], [1, 3, 4, 2], [1, 2, 0, 4]],
        ),
        (
            "damaged",
            &[[0, 1, 0, 4], [0, 2, 0, 3], [0, 3, 1, 4], [0, 4, 2, 0x84]],
        ),
        (
            "compressed",
            &[
                [0, 1, 1, 0x84],
                [0, 2, 3, 0x84],
                [0, 3, 2, 0x84],
                [0, 4, 7, 1],
            ],
        ),
        (
            "end-of-lsn-space",
            &[[0, 6, 0, 4], [0, 7, 0, 4], [1, 7, 4, 0]],
        ),
        (
            "xlogid-boundary",
            &[[0, 4, 0, 4], [0, 5, 4, 0], [0x18, 5, 0, 4], [0x1c, 3, 0, 4]],
        ),
    ] {
        put("archive_scan", name.into(), entries.concat());
    }

    let mut sizes = BTreeMap::new();
    for (path, bytes) in files {
        std::fs::create_dir_all(path.parent().ok_or("no parent")?)?;
        std::fs::write(&path, &bytes)?;
        let target = path
            .parent()
            .and_then(Path::file_name)
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default();
        *sizes.entry(target).or_default() += bytes.len();
    }
    Ok(sizes)
}

fn main() -> Res<()> {
    let root = PathBuf::from(
        std::env::args()
            .nth(1)
            .unwrap_or_else(|| "fuzz/corpus".into()),
    );
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let (captures, extra) = rt.block_on(record())?;
    let sizes = write_corpus(&root, &captures, &extra)?;
    for (target, bytes) in sizes {
        println!("{target}: {bytes} bytes");
    }
    Ok(())
}
