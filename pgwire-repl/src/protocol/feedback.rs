//! When to send standby status updates, sans-IO: the caller passes the time in.
//!
//! Three reasons to send one:
//! - **periodic**: every `status_interval` (the first right after streaming starts, as
//!   pg_receivewal does), whether or not the server asks — a server with
//!   `wal_sender_timeout = 0` never asks;
//! - **reply requested**: a keepalive with `reply_requested` set, answered at once when
//!   `reply_to_keepalives` is on;
//! - **ping**: nothing received for half of `receive_timeout`; the update asks the server for
//!   a reply, so a live server answers before the timeout declares the connection dead (the
//!   walreceiver's `wal_receiver_timeout` works the same way).
//!
//! The positions reported are the last ones the application set.

use std::time::{Duration, Instant, SystemTime};

use super::replication::{PrimaryKeepalive, StandbyStatusUpdate};
use crate::lsn::Lsn;

/// The stream's feedback settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FeedbackConfig {
    /// Send a status update this often; `None` never sends one unprompted.
    pub status_interval: Option<Duration>,
    /// Declare the connection dead after this long without any message; `None` waits forever.
    pub receive_timeout: Option<Duration>,
    /// Answer keepalives that request a reply with the last reported positions.
    pub reply_to_keepalives: bool,
}

impl Default for FeedbackConfig {
    fn default() -> FeedbackConfig {
        FeedbackConfig {
            status_interval: Some(Duration::from_secs(10)),
            receive_timeout: Some(Duration::from_secs(60)),
            reply_to_keepalives: true,
        }
    }
}

/// The positions a standby reports.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Positions {
    pub write: Lsn,
    pub flush: Lsn,
    pub apply: Lsn,
}

/// The feedback state of one stream.
#[derive(Debug, Clone)]
pub struct Feedback {
    cfg: FeedbackConfig,
    positions: Positions,
    last_status: Option<Instant>,
    last_receive: Instant,
    ping_sent: bool,
}

impl Feedback {
    pub fn new(cfg: FeedbackConfig, now: Instant) -> Feedback {
        Feedback {
            cfg,
            positions: Positions::default(),
            last_status: None,
            last_receive: now,
            ping_sent: false,
        }
    }

    pub fn config(&self) -> &FeedbackConfig {
        &self.cfg
    }

    pub fn positions(&self) -> Positions {
        self.positions
    }

    /// Records what the application has written, flushed and applied.
    pub fn set_positions(&mut self, p: Positions) {
        self.positions = p;
    }

    /// Any message arrived from the server.
    pub fn on_receive(&mut self, now: Instant) {
        self.last_receive = now;
        self.ping_sent = false;
    }

    /// A keepalive arrived: true if a status update should be sent now.
    pub fn on_keepalive(&self, k: &PrimaryKeepalive) -> bool {
        k.reply_requested && self.cfg.reply_to_keepalives
    }

    /// Builds a status update from the current positions and records that it was sent.
    pub fn status(
        &mut self,
        now: Instant,
        wall: SystemTime,
        reply_requested: bool,
    ) -> StandbyStatusUpdate {
        self.last_status = Some(now);
        StandbyStatusUpdate {
            write: self.positions.write,
            flush: self.positions.flush,
            apply: self.positions.apply,
            send_time: wall,
            reply_requested,
        }
    }

    fn ping_at(&self) -> Option<Instant> {
        let t = self.cfg.receive_timeout?;
        (!self.ping_sent).then(|| self.last_receive + t / 2)
    }

    fn status_at(&self) -> Option<Instant> {
        let i = self.cfg.status_interval?;
        Some(
            self.last_status
                .map_or_else(|| self.last_receive, |t| t + i),
        )
    }

    /// The update that is due now, if any (periodic or ping).
    pub fn poll(&mut self, now: Instant, wall: SystemTime) -> Option<StandbyStatusUpdate> {
        if self.ping_at().is_some_and(|t| now >= t) {
            self.ping_sent = true;
            return Some(self.status(now, wall, true));
        }
        if self.status_at().is_some_and(|t| now >= t) {
            return Some(self.status(now, wall, false));
        }
        None
    }

    /// When [`Feedback::poll`] next has something to send.
    pub fn next_wakeup(&self) -> Option<Instant> {
        match (self.ping_at(), self.status_at()) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// The instant after which silence means the connection is dead.
    pub fn deadline(&self) -> Option<Instant> {
        Some(self.last_receive + self.cfg.receive_timeout?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ka(reply: bool) -> PrimaryKeepalive {
        PrimaryKeepalive {
            wal_end: Lsn(1),
            send_time: SystemTime::UNIX_EPOCH,
            reply_requested: reply,
        }
    }

    #[test]
    fn first_status_at_once_then_every_interval() {
        let t0 = Instant::now();
        let wall = SystemTime::UNIX_EPOCH;
        let cfg = FeedbackConfig {
            status_interval: Some(Duration::from_secs(10)),
            receive_timeout: None,
            reply_to_keepalives: true,
        };
        let mut f = Feedback::new(cfg, t0);
        f.set_positions(Positions {
            write: Lsn(5),
            flush: Lsn(4),
            apply: Lsn(0),
        });
        let s = f.poll(t0, wall).unwrap();
        assert_eq!(
            (s.write, s.flush, s.apply, s.reply_requested),
            (Lsn(5), Lsn(4), Lsn(0), false)
        );
        assert!(f.poll(t0 + Duration::from_secs(9), wall).is_none());
        assert_eq!(f.next_wakeup(), Some(t0 + Duration::from_secs(10)));
        assert!(f.poll(t0 + Duration::from_secs(10), wall).is_some());
        assert!(f.on_keepalive(&ka(true)));
        assert!(!f.on_keepalive(&ka(false)));
    }

    #[test]
    fn pings_at_half_timeout_once_until_something_arrives() {
        let t0 = Instant::now();
        let wall = SystemTime::UNIX_EPOCH;
        let cfg = FeedbackConfig {
            status_interval: None,
            receive_timeout: Some(Duration::from_secs(8)),
            reply_to_keepalives: false,
        };
        let mut f = Feedback::new(cfg, t0);
        assert!(f.poll(t0 + Duration::from_secs(3), wall).is_none());
        let p = f.poll(t0 + Duration::from_secs(4), wall).unwrap();
        assert!(p.reply_requested);
        assert!(f.poll(t0 + Duration::from_secs(5), wall).is_none());
        assert_eq!(f.next_wakeup(), None);
        assert_eq!(f.deadline(), Some(t0 + Duration::from_secs(8)));
        f.on_receive(t0 + Duration::from_secs(6));
        assert_eq!(f.deadline(), Some(t0 + Duration::from_secs(14)));
        assert_eq!(f.next_wakeup(), Some(t0 + Duration::from_secs(10)));
        assert!(!f.on_keepalive(&ka(true)));
    }

    #[test]
    fn nothing_configured_means_never() {
        let t0 = Instant::now();
        let cfg = FeedbackConfig {
            status_interval: None,
            receive_timeout: None,
            reply_to_keepalives: true,
        };
        let mut f = Feedback::new(cfg, t0);
        assert!(f
            .poll(t0 + Duration::from_secs(1_000_000), SystemTime::UNIX_EPOCH)
            .is_none());
        assert_eq!(f.next_wakeup(), None);
        assert_eq!(f.deadline(), None);
    }
}
