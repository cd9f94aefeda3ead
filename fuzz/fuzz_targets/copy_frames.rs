//! Arbitrary bytes, cut into arbitrary messages and batches, through the
//! binary COPY decoder: it must return `Err` on garbage, never panic, and every
//! field of every row of a batch it accepts must be readable.
//!
//! Input layout (what `make_corpus.sh` writes for real COPY output):
//!
//! | bytes | meaning |
//! |---|---|
//! | 1 | `ncols` given to `Decoder::new` |
//! | 1 | `count` of explicit message lengths |
//! | 2 × count | message lengths, u16 big-endian (clamped to what is left) |
//! | 8 | batch mask, u64 big-endian: bit `i % 64` set ends a `decode` call after message `i` |
//! | rest | the COPY stream; what the explicit lengths leave is one last message |
//!
//! Missing fields read as zero, so every byte string is a valid input.
#![no_main]

use bytes::Bytes;
use diff_core::copy::Decoder;
use libfuzzer_sys::fuzz_target;

fn split(data: &[u8]) -> (usize, Vec<Vec<Bytes>>) {
    let mut at = 0;
    let mut take = |n: usize| {
        let s = &data[at.min(data.len())..(at + n).min(data.len())];
        at += n;
        s
    };
    let ncols = take(1).first().copied().unwrap_or(0) as usize;
    let count = take(1).first().copied().unwrap_or(0) as usize;
    let lengths: Vec<usize> = (0..count)
        .map(|_| {
            let b = take(2);
            u16::from_be_bytes([b.first().copied().unwrap_or(0), b.get(1).copied().unwrap_or(0)]) as usize
        })
        .collect();
    let mut mask = [0u8; 8];
    let m = take(8);
    mask[..m.len()].copy_from_slice(m);
    let mask = u64::from_be_bytes(mask);
    let stream = Bytes::copy_from_slice(&data[at.min(data.len())..]);

    let mut msgs = vec![];
    let mut pos = 0;
    for len in lengths {
        let end = (pos + len).min(stream.len());
        msgs.push(stream.slice(pos..end));
        pos = end;
    }
    if pos < stream.len() {
        msgs.push(stream.slice(pos..));
    }
    let mut batches = vec![vec![]];
    for (i, m) in msgs.into_iter().enumerate() {
        batches.last_mut().expect("never empty").push(m);
        if mask & (1 << (i % 64)) != 0 {
            batches.push(vec![]);
        }
    }
    (ncols, batches)
}

fuzz_target!(|data: &[u8]| {
    let (ncols, batches) = split(data);
    let mut decoder = Decoder::new(ncols);
    for msgs in batches {
        let total: u64 = msgs.iter().map(|m| m.len() as u64).sum();
        // After an error the stream is abandoned in production; feeding the
        // decoder more must still not panic, so the loop goes on.
        let Ok(batch) = decoder.decode(msgs) else { continue };
        assert_eq!(batch.bytes(), total);
        for row in 0..batch.len() {
            for col in 0..ncols {
                if let Some(field) = batch.field(row, col) {
                    std::hint::black_box(field);
                }
            }
        }
    }
});
