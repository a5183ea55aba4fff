use std::time::{Duration, Instant, SystemTime};

use bytes::Bytes;

use super::LagTracker;
use crate::lsn::Lsn;
use crate::protocol::replication::{PrimaryKeepalive, XLogData};

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

fn xlog(start: u64, len: usize, wal_end: u64, send_time: SystemTime) -> XLogData {
    XLogData {
        wal_start: Lsn(start),
        wal_end: Lsn(wal_end),
        send_time,
        data: Bytes::from(vec![0u8; len]),
    }
}

fn keepalive(wal_end: u64, send_time: SystemTime) -> PrimaryKeepalive {
    PrimaryKeepalive {
        wal_end: Lsn(wal_end),
        send_time,
        reply_requested: false,
    }
}

#[test]
fn lag_in_bytes_and_time_counts_from_the_first_announcement() {
    let t0 = Instant::now();
    let wall = SystemTime::now();
    let mut lt = LagTracker::new(ms(1000));
    lt.begin(Lsn(1000));
    // The server announces WAL up to 5000 with the first 1000 bytes.
    lt.on_xlogdata(&xlog(1000, 1000, 5000, wall), t0, wall);
    let s = lt.snapshot(t0 + ms(250));
    assert_eq!(s.server_end, Lsn(5000));
    assert_eq!(s.received, Lsn(2000));
    assert_eq!(s.receive_lag_bytes, 3000);
    assert_eq!(s.receive_lag, ms(250));
    assert_eq!(s.flush_lag_bytes, None);
    // More arrives later; the oldest unreceived WAL was still announced at t0.
    lt.on_xlogdata(&xlog(2000, 2000, 9000, wall), t0 + ms(300), wall);
    let s = lt.snapshot(t0 + ms(400));
    assert_eq!(s.receive_lag_bytes, 5000);
    assert_eq!(s.receive_lag, ms(400));
    // Past 5000, the oldest unreceived WAL is the one announced at 300 ms.
    lt.on_xlogdata(&xlog(4000, 1500, 9000, wall), t0 + ms(500), wall);
    let s = lt.snapshot(t0 + ms(600));
    assert_eq!(s.receive_lag_bytes, 3500);
    assert_eq!(s.receive_lag, ms(300));
    // Everything received: no lag, whatever the time.
    lt.on_xlogdata(&xlog(5500, 3500, 9000, wall), t0 + ms(700), wall);
    let s = lt.snapshot(t0 + ms(5000));
    assert_eq!(s.receive_lag_bytes, 0);
    assert_eq!(s.receive_lag, Duration::ZERO);
    assert_eq!(s.received_bytes, 8000);
}

#[test]
fn flush_lag_trails_receive_lag() {
    let t0 = Instant::now();
    let wall = SystemTime::now();
    let mut lt = LagTracker::new(ms(1000));
    lt.begin(Lsn(0));
    lt.on_flushed(Lsn(0));
    lt.on_xlogdata(&xlog(0, 100, 100, wall), t0, wall);
    lt.on_xlogdata(&xlog(100, 100, 200, wall), t0 + ms(10), wall);
    let s = lt.snapshot(t0 + ms(50));
    assert_eq!(s.receive_lag_bytes, 0);
    assert_eq!(s.flush_lag_bytes, Some(200));
    assert_eq!(s.flush_lag, Some(ms(50)));
    lt.on_flushed(Lsn(100));
    let s = lt.snapshot(t0 + ms(50));
    assert_eq!(s.flush_lag_bytes, Some(100));
    assert_eq!(s.flush_lag, Some(ms(40)));
    lt.on_flushed(Lsn(200));
    let s = lt.snapshot(t0 + ms(60));
    assert_eq!(s.flush_lag_bytes, Some(0));
    assert_eq!(s.flush_lag, Some(Duration::ZERO));
}

#[test]
fn keepalives_announce_but_never_move_the_end_back() {
    let t0 = Instant::now();
    let wall = SystemTime::now();
    let mut lt = LagTracker::new(ms(1000));
    lt.begin(Lsn(0));
    lt.on_keepalive(&keepalive(300, wall), t0, wall);
    lt.on_keepalive(&keepalive(100, wall), t0 + ms(5), wall);
    let s = lt.snapshot(t0 + ms(20));
    assert_eq!(s.server_end, Lsn(300));
    assert_eq!(s.receive_lag_bytes, 300);
    assert_eq!(s.receive_lag, ms(20));
    assert_eq!(s.idle, Some(ms(15)));
}

#[test]
fn begin_forgets_the_previous_server() {
    let t0 = Instant::now();
    let wall = SystemTime::now();
    let mut lt = LagTracker::new(ms(1000));
    lt.begin(Lsn(0));
    lt.on_keepalive(&keepalive(10_000, wall), t0, wall);
    lt.begin(Lsn(500));
    let s = lt.snapshot(t0 + ms(10));
    assert_eq!((s.server_end, s.receive_lag_bytes), (Lsn(500), 0));
    assert_eq!(s.receive_lag, Duration::ZERO);
}

#[test]
fn clock_offset_is_reported_apart_from_lag() {
    let t0 = Instant::now();
    let wall = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000);
    let mut lt = LagTracker::new(ms(1000));
    lt.begin(Lsn(0));
    // The server's clock is 2 s ahead of ours.
    lt.on_xlogdata(&xlog(0, 10, 10, wall + ms(2000)), t0, wall);
    let s = lt.snapshot(t0);
    assert_eq!(s.clock_offset_micros, Some(-2_000_000));
    assert_eq!(s.receive_lag, Duration::ZERO);
    lt.on_keepalive(&keepalive(10, wall - ms(3)), t0, wall);
    assert_eq!(lt.snapshot(t0).clock_offset_micros, Some(3000));
}

#[test]
fn throughput_over_the_window_decays_when_idle() {
    let t0 = Instant::now();
    let wall = SystemTime::now();
    let mut lt = LagTracker::new(ms(1000));
    lt.begin(Lsn(0));
    // 1000 bytes every 10 ms for 2 s: 100 kB/s.
    for i in 0..200u64 {
        lt.on_xlogdata(
            &xlog(i * 1000, 1000, (i + 1) * 1000, wall),
            t0 + ms(i * 10),
            wall,
        );
    }
    let r = lt.snapshot(t0 + ms(2000)).bytes_per_sec;
    assert!((95_000.0..=105_000.0).contains(&r), "{r}");
    let r = lt.snapshot(t0 + ms(3500)).bytes_per_sec;
    assert!(r < 60_000.0, "{r}");
    assert_eq!(lt.snapshot(t0 + ms(60_000)).bytes_per_sec, 0.0);
    assert!(lt.rate_samples.len() <= 2);
}

#[test]
fn memory_stays_bounded_and_lag_is_never_understated() {
    let t0 = Instant::now();
    let wall = SystemTime::now();
    let mut lt = LagTracker::new(ms(1000));
    lt.begin(Lsn(0));
    // The server announces a new end every 2 ms and nothing is received for a long time.
    for i in 1..=100_000u64 {
        lt.on_keepalive(&keepalive(i * 10, wall), t0 + ms(2 * i), wall);
    }
    assert!(lt.announced.len() <= LagTracker::MAX_ANNOUNCEMENTS);
    let now = t0 + ms(200_002);
    for received in [5u64, 10_000, 500_000, 999_990] {
        let mut t = lt.clone();
        t.on_xlogdata(&xlog(0, received as usize, 0, wall), t0, wall);
        let s = t.snapshot(now);
        // The true age of the first unreceived byte: it was announced at 2 ms × ceil(r/10)+.
        let first_unreceived = received / 10 + 1;
        let truth = now - (t0 + ms(2 * first_unreceived));
        assert!(
            s.receive_lag >= truth,
            "{received}: {:?} < {truth:?}",
            s.receive_lag
        );
        assert!(
            s.receive_lag - truth <= ms(200),
            "{received}: {:?}",
            s.receive_lag
        );
    }
}
