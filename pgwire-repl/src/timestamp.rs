//! PostgreSQL timestamps on the wire: microseconds since 2000-01-01 00:00:00 UTC.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Seconds from the Unix epoch to PostgreSQL's epoch, 2000-01-01.
const PG_EPOCH_UNIX_SECS: u64 = 946_684_800;

fn pg_epoch() -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(PG_EPOCH_UNIX_SECS)
}

/// Converts a wire timestamp to `SystemTime`. Values a `SystemTime` cannot hold (a hostile
/// server's `i64::MAX`) saturate at the PostgreSQL epoch rather than panic.
pub fn to_system_time(micros: i64) -> SystemTime {
    let d = Duration::from_micros(micros.unsigned_abs());
    let t = if micros >= 0 {
        pg_epoch().checked_add(d)
    } else {
        pg_epoch().checked_sub(d)
    };
    t.unwrap_or_else(pg_epoch)
}

/// Converts `SystemTime` to a wire timestamp, saturating at the ends of the `i64` range.
pub fn from_system_time(t: SystemTime) -> i64 {
    match t.duration_since(pg_epoch()) {
        Ok(d) => i64::try_from(d.as_micros()).unwrap_or(i64::MAX),
        Err(e) => i64::try_from(e.duration().as_micros()).map_or(i64::MIN, |v| -v),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn epoch_and_round_trip() {
        assert_eq!(
            to_system_time(0),
            UNIX_EPOCH + Duration::from_secs(946_684_800)
        );
        assert_eq!(from_system_time(UNIX_EPOCH), -946_684_800_000_000);
        for v in [0, 1, -1, 123_456_789_012, -5_000_000] {
            assert_eq!(from_system_time(to_system_time(v)), v);
        }
        // Extremes neither panic nor wrap.
        let _ = to_system_time(i64::MAX);
        let _ = to_system_time(i64::MIN);
    }
}
