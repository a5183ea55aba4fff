//! `--metrics-listen`: Prometheus metrics at `http://ADDR/metrics`, in the OpenMetrics text
//! format (prometheus-client's encoder), read from the [`Monitor`] at each scrape.
//!
//! The HTTP side is hyper's HTTP/1.1 server: `GET`/`HEAD /metrics` (404 elsewhere, 405 for
//! other methods), keep-alive, a request head capped at hyper's smallest buffer (8 KiB,
//! 431 past it) and 10 s to arrive, an idle connection closed after those 10 s.

use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::header::{HeaderValue, CONTENT_TYPE as CONTENT_TYPE_HEADER};
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::registry::Registry;
use tokio::net::TcpListener;

use prometheus_client::metrics::MetricType;

use crate::observe::monitor::Monitor;
use crate::observe::wal_stats::RmgrStats;

const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";
/// The request head must fit (hyper's smallest read buffer).
const MAX_REQUEST: usize = 8192;
/// For a request head to arrive, and for an idle kept-alive connection.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

#[derive(Debug)]
struct MonitorCollector(Monitor);

fn counter(e: &mut DescriptorEncoder<'_>, name: &str, help: &str, v: u64) -> std::fmt::Result {
    let c = ConstCounter::new(v);
    c.encode(e.encode_descriptor(name, help, None, c.metric_type())?)
}

fn gauge_i(e: &mut DescriptorEncoder<'_>, name: &str, help: &str, v: i64) -> std::fmt::Result {
    let g = ConstGauge::new(v);
    g.encode(e.encode_descriptor(name, help, None, g.metric_type())?)
}

fn gauge_f(e: &mut DescriptorEncoder<'_>, name: &str, help: &str, v: f64) -> std::fmt::Result {
    let g = ConstGauge::new(v);
    g.encode(e.encode_descriptor(name, help, None, g.metric_type())?)
}

/// Records and bytes by resource manager (`rmgr` label, pg_waldump's names), for those seen
/// so far: only when the WAL is decoded (the archiver's `--verify`, `measure --stats`).
fn rmgr_counters(e: &mut DescriptorEncoder<'_>, monitor: &Monitor) -> std::fmt::Result {
    let (stats, names) = monitor.wal_stats();
    if names.is_empty() {
        return Ok(());
    }
    type Family = (&'static str, &'static str, fn(&RmgrStats) -> u64);
    let families: [Family; 3] = [
        ("pgwal_recv_wal_records", "WAL records decoded", |s| {
            s.records
        }),
        (
            "pgwal_recv_wal_record_bytes",
            "WAL record bytes decoded, full-page images aside (pg_waldump's record size)",
            |s| s.record_bytes,
        ),
        (
            "pgwal_recv_wal_fpi_bytes",
            "Full-page image bytes in the WAL decoded",
            |s| s.fpi_bytes,
        ),
    ];
    for (name, help, value) in families {
        let mut family = e.encode_descriptor(name, help, None, MetricType::Counter)?;
        for (id, rmgr) in &names {
            let c = ConstCounter::new(value(&stats.get(*id)));
            c.encode(family.encode_family(&[("rmgr", *rmgr)])?)?;
        }
    }
    Ok(())
}

fn lsn(l: pgwire_repl::Lsn) -> i64 {
    i64::try_from(l.0).unwrap_or(i64::MAX)
}

impl Collector for MonitorCollector {
    fn encode(&self, mut e: DescriptorEncoder<'_>) -> std::fmt::Result {
        let s = self.0.snapshot();
        let l = &s.lag;
        let e = &mut e;
        counter(
            e,
            "pgwal_recv_received_bytes",
            "WAL bytes received",
            l.received_bytes,
        )?;
        counter(
            e,
            "pgwal_recv_messages",
            "XLogData messages received",
            s.messages,
        )?;
        counter(
            e,
            "pgwal_recv_keepalives",
            "Keepalive messages received",
            s.keepalives,
        )?;
        counter(
            e,
            "pgwal_recv_segments_completed",
            "WAL segments completed (renamed from .partial)",
            s.segments_completed,
        )?;
        counter(
            e,
            "pgwal_recv_reconnects",
            "Reconnection attempts",
            s.reconnects,
        )?;
        let u = &s.upload;
        if u.active {
            gauge_i(
                e,
                "pgwal_recv_upload_waiting_segments",
                "Complete segments in the spool not yet confirmed by the object store",
                i64::try_from(u.waiting).unwrap_or(i64::MAX),
            )?;
            counter(
                e,
                "pgwal_recv_uploaded_bytes",
                "Bytes uploaded to the object store",
                u.bytes,
            )?;
            counter(
                e,
                "pgwal_recv_uploaded_files",
                "Files uploaded to the object store",
                u.files,
            )?;
            counter(
                e,
                "pgwal_recv_upload_retries",
                "Failed upload attempts (each retried)",
                u.retries,
            )?;
            // Upload lag: what was received and is not yet in the store.
            let stored = u.oldest_waiting.unwrap_or(l.received).min(l.received);
            gauge_i(
                e,
                "pgwal_recv_upload_lag_bytes",
                "Received position minus the position the object store holds everything before",
                i64::try_from(l.received.0 - stored.0).unwrap_or(i64::MAX),
            )?;
        }
        gauge_i(
            e,
            "pgwal_recv_received_lsn",
            "Position after the last WAL byte received",
            lsn(l.received),
        )?;
        gauge_i(
            e,
            "pgwal_recv_flushed_lsn",
            "Position of WAL made durable (0: nothing is written)",
            l.flushed.map_or(0, lsn),
        )?;
        gauge_i(
            e,
            "pgwal_recv_server_wal_end_lsn",
            "Highest WAL position the server announced",
            lsn(l.server_end),
        )?;
        gauge_i(
            e,
            "pgwal_recv_lag_bytes",
            "Server WAL end minus the received position",
            i64::try_from(l.receive_lag_bytes).unwrap_or(i64::MAX),
        )?;
        gauge_f(
            e,
            "pgwal_recv_lag_seconds",
            "Age of the oldest announced WAL not yet received (local clock)",
            l.receive_lag.as_secs_f64(),
        )?;
        if let (Some(bytes), Some(age)) = (l.flush_lag_bytes, l.flush_lag) {
            gauge_i(
                e,
                "pgwal_recv_flush_lag_bytes",
                "Server WAL end minus the durable position",
                i64::try_from(bytes).unwrap_or(i64::MAX),
            )?;
            gauge_f(
                e,
                "pgwal_recv_flush_lag_seconds",
                "Age of the oldest announced WAL not yet durable (local clock)",
                age.as_secs_f64(),
            )?;
        }
        gauge_f(
            e,
            "pgwal_recv_receive_rate_bytes_per_second",
            "WAL bytes per second over the last 2 seconds",
            l.bytes_per_sec,
        )?;
        if let Some(off) = l.clock_offset_micros {
            gauge_f(
                e,
                "pgwal_recv_clock_offset_seconds",
                "Local clock at arrival minus the server's send time (latency plus skew)",
                off as f64 / 1e6,
            )?;
        }
        rmgr_counters(e, &self.0)?;
        gauge_i(
            e,
            "pgwal_recv_timeline",
            "Timeline being streamed",
            i64::from(s.timeline),
        )?;
        gauge_i(
            e,
            "pgwal_recv_connected",
            "1 while a replication stream is open",
            i64::from(s.connected),
        )
    }
}

/// The metrics page as served.
pub fn render(monitor: &Monitor) -> String {
    let mut registry = Registry::default();
    registry.register_collector(Box::new(MonitorCollector(monitor.clone())));
    let mut out = String::new();
    if let Err(e) = prometheus_client::encoding::text::encode(&mut out, &registry) {
        out = format!("# error encoding metrics: {e}\n");
    }
    out
}

/// Binds `addr` and serves in the background; returns the bound address.
pub async fn start(addr: SocketAddr, monitor: Monitor) -> Result<SocketAddr, String> {
    let listener = TcpListener::bind(addr).await.map_err(|e| {
        format!(
            "could not listen for metrics on {addr}: {}",
            crate::output::os_error(&e)
        )
    })?;
    let bound = listener.local_addr().unwrap_or(addr);
    tokio::spawn(async move {
        loop {
            match listener.accept().await {
                Ok((sock, _)) => {
                    let m = monitor.clone();
                    let service =
                        hyper::service::service_fn(move |req| std::future::ready(answer(&req, &m)));
                    let conn = hyper::server::conn::http1::Builder::new()
                        .timer(TokioTimer::new())
                        .header_read_timeout(REQUEST_TIMEOUT)
                        .max_buf_size(MAX_REQUEST)
                        // As before hyper: `Content-Type`, for scrapers that match it exactly.
                        .title_case_headers(true)
                        .serve_connection(TokioIo::new(sock), service);
                    // A client gone mid-request is nothing to report.
                    tokio::spawn(async move {
                        let _ = conn.await;
                    });
                }
                // Out of descriptors, say: try again shortly rather than spin.
                Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
            }
        }
    });
    Ok(bound)
}

/// The answer to one request.
fn answer(
    req: &Request<Incoming>,
    monitor: &Monitor,
) -> Result<Response<Full<Bytes>>, std::convert::Infallible> {
    let (status, body) = match (req.method(), req.uri().path()) {
        (&Method::GET | &Method::HEAD, "/metrics") => (StatusCode::OK, render(monitor)),
        (&Method::GET | &Method::HEAD, _) => (StatusCode::NOT_FOUND, String::new()),
        _ => (StatusCode::METHOD_NOT_ALLOWED, String::new()),
    };
    let ctype = if status == StatusCode::OK {
        CONTENT_TYPE
    } else {
        "text/plain; charset=utf-8"
    };
    let mut response = Response::new(Full::new(Bytes::from(body)));
    *response.status_mut() = status;
    response
        .headers_mut()
        .insert(CONTENT_TYPE_HEADER, HeaderValue::from_static(ctype));
    Ok(response)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_fresh_monitor_renders_every_required_series() {
        let text = render(&Monitor::default());
        for line in [
            "pgwal_recv_received_bytes_total 0",
            "pgwal_recv_received_lsn 0",
            "pgwal_recv_flushed_lsn 0",
            "pgwal_recv_server_wal_end_lsn 0",
            "pgwal_recv_lag_bytes 0",
            "pgwal_recv_lag_seconds 0.0",
            "pgwal_recv_segments_completed_total 0",
            "pgwal_recv_reconnects_total 0",
            "pgwal_recv_timeline 0",
            "pgwal_recv_connected 0",
        ] {
            assert!(text.lines().any(|l| l == line), "{line} missing in\n{text}");
        }
        assert!(text.ends_with("# EOF\n"));
    }

    /// Sends `request` on `sock` and reads one response: its head, and its body by
    /// Content-Length.
    async fn exchange(sock: &mut tokio::net::TcpStream, request: &str) -> (String, String) {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        sock.write_all(request.as_bytes()).await.unwrap();
        let mut buf = Vec::new();
        let mut chunk = [0u8; 4096];
        loop {
            let text = String::from_utf8_lossy(&buf).into_owned();
            if let Some((head, body)) = text.split_once("\r\n\r\n") {
                let len: usize = head
                    .lines()
                    .find_map(|l| {
                        l.to_ascii_lowercase()
                            .strip_prefix("content-length: ")
                            .map(|v| v.parse().unwrap())
                    })
                    .unwrap_or(0);
                let want = if request.starts_with("HEAD") { 0 } else { len };
                if body.len() >= want {
                    return (head.to_owned(), body.to_owned());
                }
            }
            let n = sock.read(&mut chunk).await.unwrap();
            assert!(
                n > 0,
                "connection closed after {:?}",
                String::from_utf8_lossy(&buf)
            );
            buf.extend_from_slice(&chunk[..n]);
        }
    }

    #[tokio::test]
    async fn http_keep_alive_methods_paths_and_limits() {
        let addr = start("127.0.0.1:0".parse().unwrap(), Monitor::default())
            .await
            .unwrap();
        let mut sock = tokio::net::TcpStream::connect(addr).await.unwrap();
        // Two scrapes on one connection.
        for _ in 0..2 {
            let (head, body) =
                exchange(&mut sock, "GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n").await;
            assert!(head.starts_with("HTTP/1.1 200 OK\r\n"), "{head}");
            assert!(head.contains(CONTENT_TYPE), "{head}");
            assert!(body.ends_with("# EOF\n"), "{body}");
        }
        let (head, body) = exchange(&mut sock, "HEAD /metrics HTTP/1.1\r\nHost: x\r\n\r\n").await;
        assert!(
            head.starts_with("HTTP/1.1 200 OK\r\n") && body.is_empty(),
            "{head}"
        );
        let (head, _) = exchange(&mut sock, "GET /other HTTP/1.1\r\nHost: x\r\n\r\n").await;
        assert!(head.starts_with("HTTP/1.1 404 Not Found\r\n"), "{head}");
        let (head, _) = exchange(
            &mut sock,
            "POST /metrics HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n",
        )
        .await;
        assert!(
            head.starts_with("HTTP/1.1 405 Method Not Allowed\r\n"),
            "{head}"
        );
        // A request head past the cap is refused, on a connection of its own.
        let mut big = tokio::net::TcpStream::connect(addr).await.unwrap();
        let padding = "a".repeat(MAX_REQUEST * 2);
        let (head, _) = exchange(
            &mut big,
            &format!("GET /metrics HTTP/1.1\r\nHost: x\r\nX-Pad: {padding}\r\n\r\n"),
        )
        .await;
        assert!(head.starts_with("HTTP/1.1 431 "), "{head}");
    }

    #[tokio::test(start_paused = true)]
    async fn an_idle_connection_is_closed() {
        use tokio::io::AsyncReadExt;
        let addr = start("127.0.0.1:0".parse().unwrap(), Monitor::default())
            .await
            .unwrap();
        let mut sock = tokio::net::TcpStream::connect(addr).await.unwrap();
        let mut byte = [0u8; 1];
        let read = tokio::time::timeout(REQUEST_TIMEOUT * 2, sock.read(&mut byte)).await;
        // Closed by the server (EOF, or a 408 it sends first), before our own timeout.
        assert!(read.is_ok(), "still open after {:?}", REQUEST_TIMEOUT * 2);
    }
}
