use crate::protocol::codec::{write_message, MAX_COPY_DATA};

use super::*;

/// A stream of CopyData frames with bodies of these sizes (byte `i` of frame `n` is
/// `n + i`, so a frame put back together wrongly shows).
fn copy_data_stream(sizes: &[usize]) -> Vec<u8> {
    let mut out = BytesMut::new();
    for (n, &size) in sizes.iter().enumerate() {
        write_message(&mut out, b'd', |d| {
            d.extend((0..size).map(|i| (n + i) as u8));
        });
    }
    out.to_vec()
}

/// Delivers `src` through a ReadBuffer in reads of at most `chunk(i)` bytes, as a socket
/// would, and returns the frame bodies' sizes, checking each body's bytes.
fn through_read_buffer(
    rb: &mut ReadBuffer,
    mut src: &[u8],
    mut chunk: impl FnMut(usize) -> usize,
) -> Vec<usize> {
    let mut sizes = Vec::new();
    let mut reads = 0;
    loop {
        while let Some(f) = rb.next_frame().unwrap() {
            assert_eq!(f.tag, b'd');
            let n = sizes.len();
            assert!(f.body.iter().enumerate().all(|(i, &b)| b == (n + i) as u8));
            sizes.push(f.body.len());
        }
        if src.is_empty() {
            assert!(rb.is_empty());
            return sizes;
        }
        let mut dst = rb.read_buf();
        let n = src.len().min(dst.remaining_mut()).min(chunk(reads)).max(1);
        assert!(dst.remaining_mut() >= n);
        dst.put_slice(&src[..n]);
        src = &src[n..];
        reads += 1;
    }
}

/// Delivers `src` in reads of at most `max_read` bytes and keeps every frame, as an
/// application that holds all it receives.
fn keep_all(rb: &mut ReadBuffer, mut src: &[u8], max_read: usize) -> Vec<Frame> {
    let mut kept = Vec::new();
    loop {
        while let Some(f) = rb.next_frame().unwrap() {
            kept.push(f);
        }
        if src.is_empty() {
            return kept;
        }
        let mut dst = rb.read_buf();
        let n = src.len().min(dst.remaining_mut()).min(max_read);
        dst.put_slice(&src[..n]);
        src = &src[n..];
    }
}

#[test]
fn read_buffer_never_moves_streaming_frames() {
    let full = 1 + 8 * 3 + (128 << 10);
    for sizes in [
        vec![full; 40],
        vec![1 + 24 + 8192; 200],
        [full, 18, 1 + 24 + 8192, 18, 5000, full, full, 34]
            .into_iter()
            .cycle()
            .take(300)
            .collect(),
    ] {
        let stream = copy_data_stream(&sizes);
        for chunk in [64 << 10, 1 << 20, 1000, 8191] {
            let mut rb = ReadBuffer::new();
            assert_eq!(through_read_buffer(&mut rb, &stream, |_| chunk), sizes);
            // Only partial headers (at most 4 bytes at a time) are ever moved.
            assert!(
                rb.moved_bytes() <= 4 * sizes.len() as u64,
                "moved {} bytes with reads of {chunk}",
                rb.moved_bytes()
            );
        }
        // Reads of every size from 1 byte up.
        let mut rb = ReadBuffer::new();
        let got = through_read_buffer(&mut rb, &stream, |i| 1 + (i * 7919) % 70000);
        assert_eq!(got, sizes);
        assert!(rb.moved_bytes() <= 4 * sizes.len() as u64);
    }
}

#[test]
fn read_buffer_takes_frames_above_the_streaming_size() {
    // Larger frames (a big DataRow, or WAL from a server built with larger pages) are
    // moved when they do not fit, and still come out whole.
    let sizes = [1 << 20, 100, MAX_COPY_DATA, 3 << 20, 5, STREAMING_FRAME];
    let stream = copy_data_stream(&sizes);
    let mut rb = ReadBuffer::new();
    assert_eq!(through_read_buffer(&mut rb, &stream, |_| 64 << 10), sizes);
}

#[test]
fn read_buffer_keeps_frames_held_elsewhere_intact() {
    // The application may keep frames while the buffer starts over: it then gets a new
    // allocation and the frames keep their bytes.
    let sizes = vec![60_000; 50];
    let mut rb = ReadBuffer::new();
    let kept = keep_all(&mut rb, &copy_data_stream(&sizes), 50_000);
    for (n, f) in kept.iter().enumerate() {
        assert_eq!(f.body.len(), 60_000);
        assert!(f.body.iter().enumerate().all(|(i, &b)| b == (n + i) as u8));
    }
}

#[test]
fn read_buffer_reuses_chunks_once_their_frames_are_dropped() {
    // A writer queue: frames are held for a while (here, the last 20), then dropped. The
    // buffer must take other chunks meanwhile and come back to the freed ones, not
    // allocate for every refill; and the frames held keep their bytes.
    let full = 1 + 8 * 3 + (128 << 10);
    let sizes = vec![full; 600];
    let stream = copy_data_stream(&sizes);
    let mut rb = ReadBuffer::new();
    let mut held = std::collections::VecDeque::new();
    // Frames of one size land at the same offsets of every chunk: an address seen before
    // is memory reused.
    let mut seen = std::collections::HashSet::new();
    let mut reused = 0;
    let (mut src, mut n) = (&stream[..], 0usize);
    while n < sizes.len() {
        while let Some(f) = rb.next_frame().unwrap() {
            assert!(f.body.iter().enumerate().all(|(i, &b)| b == (n + i) as u8));
            if !seen.insert(f.body.as_ptr() as usize) {
                reused += 1;
            }
            n += 1;
            held.push_back(f);
            if held.len() > 20 {
                held.pop_front();
            }
        }
        let mut dst = rb.read_buf();
        let k = src.len().min(dst.remaining_mut()).min(100_000);
        dst.put_slice(&src[..k]);
        src = &src[k..];
    }
    // 20 frames of 128 KiB span 3 or 4 chunks of 1 MiB; one more is being filled.
    assert!(
        rb.chunks_allocated() <= 5,
        "{} chunks allocated",
        rb.chunks_allocated()
    );
    assert!(reused > 500, "only {reused} frames in reused memory");
    assert!(rb.moved_bytes() <= 4 * sizes.len() as u64);
    assert!(rb.spare.len() <= SPARE_CHUNKS);
    for (k, f) in held.iter().enumerate() {
        let n = sizes.len() - held.len() + k;
        assert!(f.body.iter().enumerate().all(|(i, &b)| b == (n + i) as u8));
    }
}

#[test]
fn read_buffer_keeps_a_bounded_number_of_spare_chunks() {
    // Frames never dropped: every start-over needs a new chunk, and the chunks given up
    // are kept only up to the bound (the frames keep the rest alive themselves).
    let sizes = vec![1 + 24 + (128 << 10); 400];
    let mut rb = ReadBuffer::new();
    let kept = keep_all(&mut rb, &copy_data_stream(&sizes), usize::MAX);
    assert_eq!(kept.len(), sizes.len());
    assert!(rb.chunks_allocated() >= 400 / 7);
    assert_eq!(rb.spare.len(), SPARE_CHUNKS);
    drop(kept);
    // Now all free: the next start-overs reuse spares.
    let before = rb.chunks_allocated();
    let more = copy_data_stream(&vec![1 + 24 + (128 << 10); 50]);
    assert_eq!(through_read_buffer(&mut rb, &more, |_| 1 << 20).len(), 50);
    assert_eq!(rb.chunks_allocated(), before);
}

#[test]
fn read_buffer_reports_complete_frames_and_errors() {
    let mut rb = ReadBuffer::new();
    let mut dst = rb.read_buf();
    dst.put_slice(b"N\0\0\0\x04S\0\0\0\x04Z\0\0\0\x05IC\0\0");
    assert_eq!(rb.complete_frame_tags().collect::<Vec<_>>(), b"NSZ");
    assert_eq!(rb.len(), 19);
    let mut rb = ReadBuffer::new();
    rb.read_buf().put_slice(b"Z\0\0\0\x03");
    assert!(rb.next_frame().is_err());
    assert_eq!(rb.complete_frame_tags().count(), 0);
    // A length above the cap reserves nothing, even when read_buf is asked again.
    let mut rb = ReadBuffer::new();
    rb.read_buf().put_slice(b"d\x7f\xff\xff\xff");
    assert!(rb.next_frame().is_err());
    assert!(rb.read_buf().remaining_mut() <= ReadBuffer::DEFAULT_CAPACITY);
    assert!(rb.buf.capacity() <= ReadBuffer::DEFAULT_CAPACITY);
    // A read into an empty buffer is never empty, and never more than fits.
    let mut rb = ReadBuffer::with_capacity(0);
    let dst = rb.read_buf();
    assert!(dst.remaining_mut() >= MIN_READ);
    assert!(rb.buf.capacity() >= STREAMING_FRAME + MIN_READ);
}
