//! Latency histograms on the wire: HdrHistogram V2 compressed encoding (the format
//! HdrHistogram's Java, Go and Rust implementations and their `.hlog` files share).
//!
//! Decoding input from the network is hardened: the hdrhistogram crate trusts the
//! payload length and bounds written in the header, so a crafted header could make it
//! allocate gigabytes. [`decode`] inflates with a cap and checks the header first.

use flate2::read::ZlibDecoder;
use hdrhistogram::Histogram;
use hdrhistogram::serialization::{Deserializer, Serializer, V2DeflateSerializer};
use std::io::Read;

/// Highest trackable latency: 100 s, in ns. Larger values are clamped; [`record`]
/// says so, and the recorder counts them (`Counters::clamped`) for the result to
/// flag.
pub const HIGHEST_NS: u64 = 100_000_000_000;
/// Significant digits kept for every histogram.
pub const SIGFIG: u8 = 3;

// Cookie bases with the word-size bits (0x10) the V2 format sets.
const V2_COOKIE: u32 = 0x1c84_9313;
const V2_COMPRESSED_COOKIE: u32 = 0x1c84_9314;
const V2_HEADER: usize = 40;
/// Ceiling for an inflated histogram: far above any histogram with our bounds.
const MAX_INFLATED: usize = 1 << 20;

/// Why bytes could not be decoded into a histogram.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HistError {
    /// Not a V2 compressed histogram.
    #[error("not an HdrHistogram V2 compressed encoding")]
    BadCookie,
    /// Header values outside what cnibench produces or accepts.
    #[error("histogram header out of bounds: {0}")]
    Bounds(String),
    /// Truncated or corrupt data.
    #[error("corrupt histogram: {0}")]
    Corrupt(String),
}

/// A new, empty latency histogram with the standard bounds (1 ns .. 100 s, 3 digits).
pub fn new_latency() -> Histogram<u64> {
    // The bounds are constants that the constructor accepts (tested below).
    Histogram::new_with_bounds(1, HIGHEST_NS, SIGFIG).unwrap_or_else(|_| unreachable!())
}

/// Encode a histogram; an empty histogram encodes as no bytes.
pub fn encode(h: &Histogram<u64>) -> Vec<u8> {
    if h.is_empty() {
        return Vec::new();
    }
    let mut out = Vec::new();
    // Serializing into a Vec cannot fail for histograms we built.
    V2DeflateSerializer::new()
        .serialize(h, &mut out)
        .map(|_| out)
        .unwrap_or_default()
}

/// Decode bytes produced by [`encode`] (empty bytes = empty histogram).
pub fn decode(bytes: &[u8]) -> Result<Histogram<u64>, HistError> {
    if bytes.is_empty() {
        return Ok(new_latency());
    }
    let be32 = |b: &[u8], at: usize| -> Option<u32> {
        Some(u32::from_be_bytes(b.get(at..at + 4)?.try_into().ok()?))
    };
    if be32(bytes, 0) != Some(V2_COMPRESSED_COOKIE) {
        return Err(HistError::BadCookie);
    }
    let clen =
        be32(bytes, 4).ok_or_else(|| HistError::Corrupt("truncated header".into()))? as usize;
    let body = bytes
        .get(8..8usize.saturating_add(clen))
        .ok_or_else(|| HistError::Corrupt(format!("compressed length {clen} beyond input")))?;
    let mut inflated = Vec::new();
    ZlibDecoder::new(body)
        .take(MAX_INFLATED as u64 + 1)
        .read_to_end(&mut inflated)
        .map_err(|e| HistError::Corrupt(e.to_string()))?;
    if inflated.len() > MAX_INFLATED {
        return Err(HistError::Bounds("inflates beyond 1 MiB".into()));
    }
    if inflated.len() < V2_HEADER || be32(&inflated, 0) != Some(V2_COOKIE) {
        return Err(HistError::Corrupt("bad inner header".into()));
    }
    let payload_len = be32(&inflated, 4).unwrap_or(u32::MAX) as usize;
    if payload_len > inflated.len() - V2_HEADER {
        return Err(HistError::Corrupt("payload length beyond data".into()));
    }
    let digits = be32(&inflated, 12).unwrap_or(u32::MAX);
    let high = inflated
        .get(24..32)
        .and_then(|b| b.try_into().ok())
        .map(u64::from_be_bytes)
        .unwrap_or(u64::MAX);
    if digits > u32::from(SIGFIG) || high > HIGHEST_NS.saturating_mul(1000) {
        return Err(HistError::Bounds(format!(
            "digits {digits}, highest {high}"
        )));
    }
    let h: Histogram<u64> = Deserializer::new()
        .deserialize(&mut &inflated[..])
        .map_err(|e| HistError::Corrupt(format!("{e:?}")))?;
    // Re-home into the standard bounds so merges never fail on mismatched ranges.
    let mut out = new_latency();
    out.add(&h)
        .map_err(|e| HistError::Bounds(format!("cannot merge: {e:?}")))?;
    Ok(out)
}

/// Record `ns` into `h`, clamping to the trackable range; `true` when the value
/// was above it (recorded as [`HIGHEST_NS`]).
pub fn record(h: &mut Histogram<u64>, ns: u64) -> bool {
    h.saturating_record(ns.clamp(1, HIGHEST_NS));
    ns > HIGHEST_NS
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip() {
        let mut h = new_latency();
        for v in [1, 1000, 1_000_000, 123_456_789, HIGHEST_NS] {
            assert!(!record(&mut h, v), "{v} is in range");
        }
        assert!(record(&mut h, u64::MAX), "clamped");
        let bytes = encode(&h);
        let back = decode(&bytes).unwrap();
        assert_eq!(back, h);
        assert_eq!(back.len(), 6);
        assert_eq!(decode(&encode(&new_latency())).unwrap().len(), 0);
    }

    #[test]
    fn crafted_header_rejected() {
        // Valid compressed histogram, then corrupt bytes everywhere: never panics.
        let mut h = new_latency();
        record(&mut h, 5000);
        let good = encode(&h);
        for i in 0..good.len() {
            for v in [0u8, 0xff, 0x80] {
                let mut b = good.clone();
                b[i] = v;
                let _ = decode(&b);
            }
        }
        assert_eq!(decode(&[1, 2, 3]), Err(HistError::BadCookie));
        let mut huge = V2_COMPRESSED_COOKIE.to_be_bytes().to_vec();
        huge.extend_from_slice(&u32::MAX.to_be_bytes());
        assert!(matches!(decode(&huge), Err(HistError::Corrupt(_))));
    }
}
