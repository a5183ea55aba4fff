//! Several hosts: tried in order, skipping those that are down, too slow or not the kind
//! `target_session_attrs` asks for.

use std::net::TcpListener;
use std::time::{Duration, Instant};

use pgwire_repl::error::Report;
use pgwire_repl::{Client, Config, Error};
use testenv::roles::REPL_SCRAM;
use testenv::Cluster;

use crate::common::cluster;

/// A port nothing listens on.
fn dead_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn hosts(ports: &[u16], extra: &str) -> Config {
    let hosts = vec!["127.0.0.1"; ports.len()].join(",");
    let ports: Vec<String> = ports.iter().map(u16::to_string).collect();
    Config::parse(&format!(
        "host={hosts} port={} user={} password={} dbname=postgres {extra}",
        ports.join(","),
        REPL_SCRAM.name,
        REPL_SCRAM.password.unwrap()
    ))
    .unwrap()
}

/// The port of the server a client reached.
async fn port_of(c: &mut Client) -> u16 {
    // The walsender answers SHOW for any setting.
    c.show("port").await.unwrap().parse().unwrap()
}

async fn reached(cfg: &Config, replication: bool) -> u16 {
    let mut c = if replication {
        Client::connect(cfg).await
    } else {
        Client::connect_sql(cfg).await
    }
    .unwrap_or_else(|e| panic!("{}", Report(&e)));
    port_of(&mut c).await
}

#[tokio::test]
async fn first_host_down() {
    let pg = cluster(&[]);
    let dead = dead_port();
    assert_eq!(
        reached(&hosts(&[dead, pg.port()], ""), true).await,
        pg.port()
    );
    // The URI form.
    let uri = format!(
        "postgresql://{}:{}@127.0.0.1:{dead},127.0.0.1:{}/postgres",
        REPL_SCRAM.name,
        REPL_SCRAM.password.unwrap(),
        pg.port()
    );
    assert_eq!(
        reached(&Config::parse(&uri).unwrap(), true).await,
        pg.port()
    );
    // All down: one line per host.
    let dead2 = dead_port();
    let e = Client::connect(&hosts(&[dead, dead2], ""))
        .await
        .unwrap_err();
    let text = Report(&e).to_string();
    assert!(
        text.starts_with("could not connect to any of 2 servers: "),
        "{text}"
    );
    for port in [dead, dead2] {
        assert!(
            text.contains(&format!(
                "connection to server at \"127.0.0.1\", port {port} failed: Connection refused"
            )),
            "{text}"
        );
    }
    assert!(!text.contains(REPL_SCRAM.password.unwrap()), "{text}");
    // A wrong password ends the list: the next host is not tried (as libpq).
    let mut cfg = hosts(&[pg.port(), dead], "");
    cfg.password = Some("wrong".into());
    let e = Client::connect(&cfg).await.unwrap_err();
    assert_eq!(e.code(), Some("28P01"), "{e}");
}

#[tokio::test]
async fn connect_timeout_is_per_host() {
    let pg = cluster(&[]);
    // Accepts TCP connections (the kernel's backlog) but never answers.
    let silent = TcpListener::bind("127.0.0.1:0").unwrap();
    let silent_port = silent.local_addr().unwrap().port();
    let start = Instant::now();
    let cfg = hosts(&[silent_port, pg.port()], "connect_timeout=2");
    assert_eq!(reached(&cfg, true).await, pg.port());
    // connect_timeout for the silent host, then a real server's startup: 2 s at least, and
    // far less than the half minute allowed here for a loaded machine (the silent host alone
    // would hold a connection without a timeout for ever).
    let took = start.elapsed();
    assert!(
        took >= Duration::from_secs(2) && took < Duration::from_secs(30),
        "{took:?}"
    );
    // Alone, the silent host times out with libpq's message.
    let e = Client::connect(&hosts(&[silent_port], "connect_timeout=2"))
        .await
        .unwrap_err();
    assert!(matches!(e, Error::Timeout(_)), "{e:?}");
    // In a list, each host's line says what happened to it.
    let e = Client::connect(&hosts(&[silent_port, dead_port()], "connect_timeout=2"))
        .await
        .unwrap_err();
    let text = Report(&e).to_string();
    assert!(
        text.contains(&format!("port {silent_port} failed: timeout expired")),
        "{text}"
    );
    drop(silent);
}

/// A primary and its hot standby.
fn pair() -> (Cluster, Cluster) {
    let primary = cluster(&[]);
    let standby = primary.make_standby("multihost_slot").unwrap();
    (primary, standby)
}

#[tokio::test]
async fn target_session_attrs() {
    let (primary, standby) = pair();
    let (p, s) = (primary.port(), standby.port());
    for replication in [true, false] {
        for (attrs, order, want) in [
            ("any", [s, p], s),
            ("read-write", [s, p], p),
            ("primary", [s, p], p),
            ("read-only", [p, s], s),
            ("standby", [p, s], s),
            ("prefer-standby", [p, s], s),
            ("prefer-standby", [p, p], p),
        ] {
            let cfg = hosts(&order, &format!("target_session_attrs={attrs}"));
            assert_eq!(
                reached(&cfg, replication).await,
                want,
                "{attrs} {order:?} replication={replication}"
            );
        }
    }
    // PostgreSQL 14 and later report the standby state at startup, also to a walsender.
    let c = Client::connect(&hosts(&[s], "")).await.unwrap();
    if primary.version() >= 14 {
        assert_eq!(c.parameter("in_hot_standby"), Some("on"));
    }
    // No host of the kind asked for.
    let e = Client::connect(&hosts(&[s], "target_session_attrs=read-write"))
        .await
        .unwrap_err();
    assert_eq!(
        Report(&e).to_string(),
        format!("connection to server at \"127.0.0.1\", port {s} failed: session is read-only")
    );
    let e = Client::connect(&hosts(&[p, dead_port()], "target_session_attrs=standby"))
        .await
        .unwrap_err();
    let text = Report(&e).to_string();
    assert!(
        text.contains(&format!(
            "port {p} failed: server is not in hot standby mode"
        )),
        "{text}"
    );
}

#[tokio::test]
async fn follows_the_primary_after_a_failover() {
    let (primary, standby) = pair();
    let cfg = hosts(
        &[primary.port(), standby.port()],
        "target_session_attrs=read-write",
    );
    assert_eq!(reached(&cfg, true).await, primary.port());
    primary.stop().unwrap();
    assert!(Client::connect(&cfg).await.is_err());
    standby.promote().unwrap();
    assert_eq!(reached(&cfg, true).await, standby.port());
}
