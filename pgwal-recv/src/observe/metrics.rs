//! `--metrics-listen`: Prometheus metrics at `http://ADDR/metrics`, in the OpenMetrics text
//! format (prometheus-client's encoder), read from the [`Monitor`] at each scrape.
//!
//! The HTTP side is the least a scraper needs: `GET`/`HEAD /metrics`, one request per
//! connection, request head capped at 8 KiB and 10 s.

use std::net::SocketAddr;
use std::time::Duration;

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::registry::Registry;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use crate::observe::monitor::Monitor;

const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";
const MAX_REQUEST: usize = 8192;
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
                    tokio::spawn(async move {
                        let _ = tokio::time::timeout(REQUEST_TIMEOUT, handle(sock, &m)).await;
                    });
                }
                // Out of descriptors, say: try again shortly rather than spin.
                Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
            }
        }
    });
    Ok(bound)
}

async fn handle(mut sock: TcpStream, monitor: &Monitor) -> std::io::Result<()> {
    let mut buf = Vec::with_capacity(1024);
    let mut chunk = [0u8; 1024];
    while !buf.windows(4).any(|w| w == b"\r\n\r\n") {
        if buf.len() >= MAX_REQUEST {
            return respond(&mut sock, "431 Request Header Fields Too Large", "", false).await;
        }
        let n = sock.read(&mut chunk).await?;
        if n == 0 {
            return Ok(());
        }
        buf.extend_from_slice(&chunk[..n]);
    }
    let head = String::from_utf8_lossy(&buf);
    let mut parts = head.lines().next().unwrap_or("").split(' ');
    let (method, target) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
    let path = target.split('?').next().unwrap_or("");
    match (method, path) {
        ("GET" | "HEAD", "/metrics") => {
            respond(&mut sock, "200 OK", &render(monitor), method == "HEAD").await
        }
        ("GET" | "HEAD", _) => respond(&mut sock, "404 Not Found", "", false).await,
        _ => respond(&mut sock, "405 Method Not Allowed", "", false).await,
    }
}

async fn respond(
    sock: &mut TcpStream,
    status: &str,
    body: &str,
    head: bool,
) -> std::io::Result<()> {
    let ctype = if status.starts_with("200") {
        CONTENT_TYPE
    } else {
        "text/plain; charset=utf-8"
    };
    let mut out = format!(
        "HTTP/1.1 {status}\r\nContent-Type: {ctype}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    if !head {
        out.push_str(body);
    }
    sock.write_all(out.as_bytes()).await?;
    sock.shutdown().await
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
}
