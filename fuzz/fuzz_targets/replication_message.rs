//! The replication messages inside CopyData, as the stream's state machine receives them.
//!
//! Input: one CopyData body. Checks: no panic in `ReplicationMessage::decode`,
//! `StandbyMessage::decode` or `CopyBoth::handle`; an XLogData payload is a slice of the
//! body, never a copy; whatever decodes encodes back to a CopyData frame that decodes the same.
#![no_main]

use bytes::{Bytes, BytesMut};
use libfuzzer_sys::fuzz_target;
use pgwire_repl::protocol::backend::BackendMessage;
use pgwire_repl::protocol::codec::decode_frame;
use pgwire_repl::protocol::replication::{ReplicationMessage, StandbyMessage};
use pgwire_repl::protocol::streaming::CopyBoth;
use pgwire_repl::{Lsn, StreamEvent};

fn reframe(encode: impl FnOnce(&mut BytesMut)) -> Bytes {
    let mut out = BytesMut::new();
    encode(&mut out);
    let f = decode_frame(&mut out)
        .expect("an encoded message frames")
        .expect("a whole frame");
    assert!(out.is_empty());
    assert_eq!(f.tag, b'd');
    f.body
}

fuzz_target!(|data: &[u8]| {
    let body = Bytes::copy_from_slice(data);

    if let Ok(m) = ReplicationMessage::decode(body.clone()) {
        if let ReplicationMessage::XLogData(x) = &m {
            let inside = body.as_ptr_range();
            assert!(
                x.data.is_empty() || inside.contains(&x.data.as_ptr()),
                "payload copied"
            );
            assert!(x.data_end().is_some());
        }
        let again = reframe(|b| m.encode(b));
        assert_eq!(ReplicationMessage::decode(again).expect("round trip"), m);
    }

    if let Ok(m) = StandbyMessage::decode(&body) {
        let again = reframe(|b| m.encode(b));
        assert_eq!(StandbyMessage::decode(&again).expect("round trip"), m);
    }

    let start = Lsn(0x1_0000_0000);
    let mut state = CopyBoth::new(start);
    if let Ok(h) = state.handle(BackendMessage::CopyData(body)) {
        assert!(!h.send_copy_done);
        match h.event {
            Some(StreamEvent::XLogData(x)) => {
                assert_eq!(
                    state.last_received(),
                    start.max(x.data_end().expect("checked"))
                )
            }
            Some(StreamEvent::Keepalive(_)) => assert_eq!(state.last_received(), start),
            other => panic!("CopyData gave {other:?}"),
        }
    }
});
