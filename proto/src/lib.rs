//! Everything cnibench's coordinator and workers agree on, without any I/O: the plan
//! model ([`plan`]), control messages ([`msg`]), the frame codec ([`codec`]),
//! histogram encoding ([`hist`]), the handshake proofs ([`auth`]), the clock
//! offset estimator ([`clock`]) and open-loop pacing ([`pacing`]). All of it is testable on byte buffers and fuzzable.
//!
//! ```
//! use bytes::BytesMut;
//! use cnibench_proto::{codec, msg::Msg};
//! let mut buf = BytesMut::new();
//! codec::encode(&Msg::Welcome, &mut buf).unwrap();
//! assert_eq!(codec::decode(&mut buf).unwrap(), Some(Msg::Welcome));
//! ```

pub mod auth;
pub mod clock;
pub mod codec;
pub mod hist;
pub mod msg;
pub mod pacing;
pub mod plan;
pub mod slo;
pub mod units;
