//! Everything cnibench's coordinator and workers agree on, without any I/O: the plan
//! model ([`plan`]), control messages ([`msg`]), the frame codec ([`codec`]),
//! histogram encoding ([`hist`]), the handshake proofs ([`auth`]), the clock
//! offset estimator and the wall clock it is fed from ([`clock`]) and open-loop
//! pacing ([`pacing`]). All of it is testable on byte buffers and fuzzable.
//!
//! # Layout
//!
//! ```text
//! src/
//!   lib.rs          this overview
//!   plan/           the test plan (YAML) and what a worker is asked to run
//!     mod.rs        the model: Plan, ScenarioSpec, Traffic, PathKind, Stall, limits; load()
//!     raw.rs        the YAML as written, and defaults resolved into a ScenarioSpec
//!     matrix.rs     list-valued fields expanded into one scenario per value (MatrixPoint)
//!     yaml.rs       Plan::to_yaml, a plan written back as YAML that loads to the same plan
//!     validate.rs   one function per rule; validate::job() for a worker's job
//!     location.rs   PlanError, and a serde error turned into file:line:column and field
//!     slo.rs        objectives (also reachable as cnibench_proto::slo)
//!   units.rs        quantities in plans: durations, sizes, rates, percents, sweeps
//!   pacing.rs       open-loop arrival times (uniform, Poisson)
//!   msg.rs          control messages between coordinator and worker
//!   codec.rs        length-prefixed frames of those messages
//!   hist.rs         latency histograms on the wire
//!   auth.rs         handshake proofs and per-frame authentication
//!   clock.rs        clock offset from ping/pong samples; unix_now_ns, the wall clock
//! ```
//!
//! ```
//! use bytes::BytesMut;
//! use cnibench_proto::{codec, msg::Msg};
//! let mut buf = BytesMut::new();
//! codec::encode(&Msg::Stop { job: 1 }, &mut buf).unwrap();
//! assert_eq!(codec::decode(&mut buf).unwrap(), Some(Msg::Stop { job: 1 }));
//! ```

pub mod auth;
pub mod clock;
pub mod codec;
pub mod hist;
pub mod msg;
pub mod pacing;
pub mod plan;
/// The objectives of a scenario; lives with the plan, kept here under its old path.
pub use plan::slo;
pub mod units;
