//! Length-prefixed framing: `u32` big-endian payload length, then a postcard-encoded
//! [`Msg`]. The length is checked against [`MAX_FRAME`] before anything is allocated,
//! and "not enough bytes yet" is `Ok(None)`, not an error, so a reader simply loops
//! read/decode (mini-redis style).
//!
//! After the handshake frames are sealed ([`encode_sealed`], [`decode_sealed`]): the
//! payload is the message followed by its [`TAG_LEN`]-byte tag (`auth::Sealer`), and
//! the tag is checked before the message is parsed.

use crate::auth::{Opener, Sealer, TAG_LEN};
use crate::msg::Msg;
use bytes::{Buf, BufMut, BytesMut};

/// Largest accepted payload. Interval reports with a full histogram are a few KiB.
pub const MAX_FRAME: usize = 4 << 20;

const HEADER: usize = 4;

/// Why a frame could not be decoded. Any of these closes the connection.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    /// The announced length exceeds [`MAX_FRAME`].
    #[error("frame of {len} bytes exceeds the maximum of {MAX_FRAME}")]
    TooLarge {
        /// Announced length.
        len: usize,
    },
    /// The payload names a message type this version does not know.
    #[error("unknown message type (peer speaks another protocol version?)")]
    UnknownType,
    /// The payload is not a valid message.
    #[error("malformed frame: {0}")]
    Malformed(String),
    /// A sealed frame's tag is wrong: forged, altered, replayed or out of order.
    #[error("frame failed authentication (altered, forged or replayed)")]
    Unauthenticated,
}

/// Why a message could not be encoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EncodeError {
    /// The encoded message exceeds [`MAX_FRAME`].
    #[error("message of {len} bytes exceeds the maximum frame of {MAX_FRAME}")]
    TooLarge {
        /// Encoded length.
        len: usize,
    },
    /// Serialization failed.
    #[error("cannot encode message: {0}")]
    Serialize(String),
}

/// Append one frame holding `msg` to `dst`.
pub fn encode(msg: &Msg, dst: &mut BytesMut) -> Result<(), EncodeError> {
    let payload = postcard::to_stdvec(msg).map_err(|e| EncodeError::Serialize(e.to_string()))?;
    if payload.len() > MAX_FRAME {
        return Err(EncodeError::TooLarge { len: payload.len() });
    }
    dst.reserve(HEADER + payload.len());
    dst.put_u32(payload.len() as u32);
    dst.put_slice(&payload);
    Ok(())
}

/// Append one sealed frame holding `msg` to `dst`: the message, then its tag.
pub fn encode_sealed(msg: &Msg, seal: &mut Sealer, dst: &mut BytesMut) -> Result<(), EncodeError> {
    let payload = postcard::to_stdvec(msg).map_err(|e| EncodeError::Serialize(e.to_string()))?;
    let len = payload.len() + TAG_LEN;
    if len > MAX_FRAME {
        return Err(EncodeError::TooLarge { len });
    }
    let tag = seal.tag(&payload);
    dst.reserve(HEADER + len);
    dst.put_u32(len as u32);
    dst.put_slice(&payload);
    dst.put_slice(&tag);
    Ok(())
}

/// Take one frame's payload from the front of `src`; `Ok(None)` if incomplete.
fn take_frame(src: &mut BytesMut) -> Result<Option<BytesMut>, DecodeError> {
    if src.len() < HEADER {
        return Ok(None);
    }
    let len = u32::from_be_bytes([src[0], src[1], src[2], src[3]]) as usize;
    if len > MAX_FRAME {
        return Err(DecodeError::TooLarge { len });
    }
    if src.len() < HEADER + len {
        src.reserve(HEADER + len - src.len());
        return Ok(None);
    }
    src.advance(HEADER);
    Ok(Some(src.split_to(len)))
}

/// Take one frame from the front of `src`; `Ok(None)` if it is not complete yet.
pub fn decode(src: &mut BytesMut) -> Result<Option<Msg>, DecodeError> {
    match take_frame(src)? {
        Some(payload) => parse(&payload).map(Some),
        None => Ok(None),
    }
}

/// Take one sealed frame from the front of `src`, checking its tag before
/// anything else; `Ok(None)` if it is not complete yet.
pub fn decode_sealed(src: &mut BytesMut, open: &mut Opener) -> Result<Option<Msg>, DecodeError> {
    let Some(payload) = take_frame(src)? else {
        return Ok(None);
    };
    let Some(split) = payload.len().checked_sub(TAG_LEN) else {
        return Err(DecodeError::Unauthenticated);
    };
    let (msg, tag) = payload.split_at(split);
    let tag: &[u8; TAG_LEN] = tag.try_into().map_err(|_| DecodeError::Unauthenticated)?;
    if !open.open(msg, tag) {
        return Err(DecodeError::Unauthenticated);
    }
    parse(msg).map(Some)
}

/// The message in one frame's payload.
fn parse(payload: &[u8]) -> Result<Msg, DecodeError> {
    if first_varint_unknown(payload) {
        return Err(DecodeError::UnknownType);
    }
    match postcard::take_from_bytes::<Msg>(payload) {
        Ok((msg, [])) => Ok(msg),
        Ok((_, rest)) => Err(DecodeError::Malformed(format!(
            "{} trailing bytes after message",
            rest.len()
        ))),
        Err(e) => Err(DecodeError::Malformed(e.to_string())),
    }
}

/// Whether the payload's leading variant index is beyond the known message types.
fn first_varint_unknown(payload: &[u8]) -> bool {
    let mut value: u64 = 0;
    for (i, b) in payload.iter().take(5).enumerate() {
        value |= u64::from(b & 0x7f) << (7 * i);
        if b & 0x80 == 0 {
            return value >= MSG_VARIANTS;
        }
    }
    true
}

/// Number of [`Msg`] variants (kept in sync by the `variant_count` test).
const MSG_VARIANTS: u64 = 16;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::msg::*;
    use crate::plan;
    use std::collections::BTreeMap;

    fn spec() -> plan::ScenarioSpec {
        plan::load(
            "t.yaml",
            "name: t\nscenarios:\n  - {name: s, traffic: tcp-rr, path: pod-to-pod-cross-node, request_size: 1KiB}\n",
        )
        .unwrap()
        .scenarios
        .remove(0)
    }

    /// One of every message type.
    pub(crate) fn samples() -> Vec<Msg> {
        let info = WorkerInfo {
            version: "0.1.0".into(),
            node: "node-1".into(),
            pod_ip: Some("10.244.1.2".parse().unwrap()),
            host_ip: None,
            data_ip: "127.0.0.2".parse().unwrap(),
            cni: "flannel".into(),
            cni_mode: Some("vxlan".into()),
            mtu: Some(1450),
            kernel: "6.1.0".into(),
            cpu_model: "Xeon".into(),
            cpus: 2,
            boot_id: Some("b7c1".into()),
        };
        let cpu = CpuUsage {
            window_ns: 1_000_000_000,
            node: Some(NodeCpu {
                user_ns: 1,
                system_ns: 2,
                softirq_ns: 3,
                irq_ns: 4,
                steal_ns: 5,
                idle_ns: 6,
            }),
            process_ns: Some(7),
            process_user_ns: Some(6),
            cgroup_ns: None,
            busiest_sender_ns: Some(8),
        };
        let mut errors = BTreeMap::new();
        errors.insert("reset".to_string(), 3);
        vec![
            Msg::Challenge {
                proto_version: PROTO_VERSION,
                nonce: [7; 32],
            },
            Msg::Auth {
                proto_version: 1,
                nonce: [1; 32],
            },
            Msg::Hello {
                info,
                proof: [9; 32],
            },
            Msg::Welcome { proof: [3; 32] },
            Msg::Reject {
                reason: "bad token".into(),
            },
            Msg::Prepare(Job {
                id: 42,
                role: Role::Client,
                scenario: spec(),
                target: Some("127.0.0.3:4000".parse().unwrap()),
                server_cert: vec![],
                clock_correction_ns: -3,
                peers: vec!["127.0.0.3".parse().unwrap()],
                client_index: 1,
            }),
            Msg::Ready {
                job: 42,
                port: 40000,
                cert: vec![1, 2],
            },
            Msg::Start {
                job: 42,
                at_unix_ns: 1_700_000_000_000_000_000,
            },
            Msg::Stop { job: 42 },
            Msg::Ping { seq: 1, t1: -5 },
            Msg::Pong {
                seq: 1,
                t1: -5,
                t2: 10,
                t3: 11,
            },
            Msg::Interval(IntervalReport {
                job: 42,
                seq: 3,
                warmup: false,
                t_start_ns: 1_000_000_000,
                t_end_ns: 2_000_000_000,
                latency: vec![1, 2, 3],
                service: vec![4],
                transit: vec![5],
                send_lag: vec![6],
                counters: Counters {
                    bytes_sent: 1,
                    bytes_received: 2,
                    transactions: 3,
                    attempts: 5,
                    failed: 1,
                    unfinished: 1,
                    connections: 4,
                    errors,
                    status: BTreeMap::from([("2xx".to_string(), 3)]),
                    clamped: 1,
                },
                schedule: ScheduleStats {
                    intended: 5,
                    queued: 1,
                    late: 1,
                    max_lag_ns: 9,
                    unsent: 2,
                },
                udp: Some(UdpStats {
                    received: 9,
                    lost: 1,
                    reordered: 2,
                    duplicates: 0,
                    jitter_ns: Some(3),
                    flows: 1,
                    transit_negative: 1,
                }),
                cpu: Some(cpu),
                health: Some(Box::new(HealthCounters {
                    netns: Some("net:[4026531840]".into()),
                    tcp_retrans_segs: Some(3),
                    conntrack_entries: None,
                    softnet_squeezed: Some(0),
                    ..Default::default()
                })),
            }),
            Msg::Baseline {
                job: 42,
                cpu,
                health: None,
            },
            Msg::Done {
                job: 42,
                intervals: 10,
            },
            Msg::Failed {
                job: 42,
                error: "connect refused".into(),
            },
            Msg::Abort {
                reason: "user".into(),
            },
        ]
    }

    #[test]
    fn variant_count() {
        assert_eq!(samples().len() as u64, MSG_VARIANTS);
    }

    #[test]
    fn round_trip_every_message() {
        for m in samples() {
            let mut buf = BytesMut::new();
            encode(&m, &mut buf).unwrap();
            assert_eq!(decode(&mut buf).unwrap(), Some(m));
            assert!(buf.is_empty());
        }
    }

    #[test]
    fn split_at_every_byte_boundary() {
        let mut all = BytesMut::new();
        for m in samples() {
            encode(&m, &mut all).unwrap();
        }
        let bytes = all.freeze();
        for cut in 0..=bytes.len() {
            let mut buf = BytesMut::new();
            let mut out = Vec::new();
            buf.extend_from_slice(&bytes[..cut]);
            while let Some(m) = decode(&mut buf).unwrap() {
                out.push(m);
            }
            buf.extend_from_slice(&bytes[cut..]);
            while let Some(m) = decode(&mut buf).unwrap() {
                out.push(m);
            }
            assert_eq!(out, samples(), "cut at {cut}");
        }
    }

    #[test]
    fn oversized_length_rejected_before_allocation() {
        let mut buf = BytesMut::from(&[0xff, 0xff, 0xff, 0xff][..]);
        assert_eq!(
            decode(&mut buf),
            Err(DecodeError::TooLarge {
                len: u32::MAX as usize
            })
        );
        // Nothing was reserved for the announced 4 GiB.
        assert!(buf.capacity() < 1024);
    }

    #[test]
    fn unknown_type_and_trailing_bytes() {
        let mut buf = BytesMut::from(&[0, 0, 0, 1, 99][..]);
        assert_eq!(decode(&mut buf), Err(DecodeError::UnknownType));
        let mut buf = BytesMut::new();
        let payload = postcard::to_stdvec(&Msg::Stop { job: 1 }).unwrap();
        buf.put_u32(payload.len() as u32 + 2);
        buf.put_slice(&payload);
        buf.put_slice(&[0, 0]);
        assert!(matches!(decode(&mut buf), Err(DecodeError::Malformed(_))));
    }

    #[test]
    fn garbage_never_panics() {
        use rand::{Rng, SeedableRng};
        let mut rng = rand::rngs::StdRng::seed_from_u64(7);
        let frames: Vec<Vec<u8>> = samples()
            .iter()
            .map(|m| {
                let mut b = BytesMut::new();
                encode(m, &mut b).unwrap();
                b.to_vec()
            })
            .collect();
        for i in 0..20_000 {
            let mut f = frames[i % frames.len()].clone();
            // Mutate a few payload bytes (keep the length valid half the time).
            let start = if i % 2 == 0 { 4 } else { 0 };
            for _ in 0..rng.random_range(1..4) {
                let at = rng.random_range(start..f.len());
                f[at] = rng.random();
            }
            let mut buf = BytesMut::from(&f[..]);
            let _ = decode(&mut buf);
        }
    }

    #[test]
    fn sealed_frames_round_trip_and_fail_when_touched() {
        use crate::auth::{Side, session};
        let (w, c, p) = ([1; 32], [2; 32], [3; 32]);
        let (mut seal, _) = session(b"t", &w, &c, &p, Side::Coordinator);
        let (_, mut open) = session(b"t", &w, &c, &p, Side::Worker);
        let mut all = BytesMut::new();
        for m in samples() {
            encode_sealed(&m, &mut seal, &mut all).unwrap();
        }
        let bytes = all.freeze();
        let mut buf = BytesMut::from(&bytes[..]);
        for m in samples() {
            assert_eq!(decode_sealed(&mut buf, &mut open), Ok(Some(m)));
        }
        assert_eq!(decode_sealed(&mut buf, &mut open), Ok(None));
        // Any one bit of the first frame's payload or tag flipped fails it.
        let first = 4 + u32::from_be_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]) as usize;
        for at in 4..first {
            let mut f = BytesMut::from(&bytes[..first]);
            f[at] ^= 1;
            let (_, mut open) = session(b"t", &w, &c, &p, Side::Worker);
            assert_eq!(
                decode_sealed(&mut f, &mut open),
                Err(DecodeError::Unauthenticated),
                "{at}"
            );
        }
        // A plain frame, or one shorter than a tag, is not a sealed one.
        let (_, mut open) = session(b"t", &w, &c, &p, Side::Worker);
        let mut plain = BytesMut::new();
        encode(&Msg::Stop { job: 1 }, &mut plain).unwrap();
        assert_eq!(
            decode_sealed(&mut plain, &mut open),
            Err(DecodeError::Unauthenticated)
        );
        let mut short = BytesMut::from(&[0, 0, 0, 1, 0][..]);
        assert_eq!(
            decode_sealed(&mut short, &mut open),
            Err(DecodeError::Unauthenticated)
        );
    }
}
