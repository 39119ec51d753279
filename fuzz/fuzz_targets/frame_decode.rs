//! Frames from the network: decode whatever arrives, in whatever pieces.
#![no_main]

use bytes::BytesMut;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    // First byte picks a split point, as a reader sees partial frames.
    let (cut, rest) = match data.split_first() {
        Some((c, r)) => (*c as usize % (r.len() + 1), r),
        None => return,
    };
    let mut buf = BytesMut::from(&rest[..cut]);
    while let Ok(Some(_)) = cnibench_proto::codec::decode(&mut buf) {}
    buf.extend_from_slice(&rest[cut..]);
    while let Ok(Some(_)) = cnibench_proto::codec::decode(&mut buf) {}
});
