//! The handshake proofs and the session's frame authentication, without I/O.
//!
//! Both sides prove they know the shared token with HMAC-SHA256; the token never
//! crosses the wire. Every proof covers both nonces and names who proves to whom,
//! so a proof is good for one handshake and one direction only. The worker proves
//! first (over its `WorkerInfo` too), and the coordinator's proof covers the
//! worker's: a coordinator answers nothing derived from the token to a peer that
//! has not proved itself, and its answer is bound to that very handshake.
//!
//! After the handshake both sides derive a session key from the token, both
//! nonces and the worker's proof, and from it one key per direction. Every frame
//! then carries `HMAC-SHA256(direction key, sequence number | payload)`, the
//! sequence number counting that direction's frames from 0: a frame that is
//! forged, altered, replayed, dropped or reordered fails verification, and the
//! connection closes ([`Sealer`], [`Opener`]; framing in `codec`).
//!
//! ```
//! use cnibench_proto::auth::{self, Side};
//! let (w, c, info) = ([1; 32], [2; 32], [3; 32]);
//! let proof_w = auth::worker_proof(b"token", &w, &c, &info);
//! assert!(auth::verify_worker(b"token", &w, &c, &info, &proof_w));
//! let proof_c = auth::coordinator_proof(b"token", &w, &c, &proof_w);
//! assert!(auth::verify_coordinator(b"token", &w, &c, &proof_w, &proof_c));
//! let (mut seal, _) = auth::session(b"token", &w, &c, &proof_w, Side::Coordinator);
//! let (_, mut open) = auth::session(b"token", &w, &c, &proof_w, Side::Worker);
//! let tag = seal.tag(b"frame");
//! assert!(open.open(b"frame", &tag));
//! assert!(!open.open(b"frame", &tag), "a replayed frame fails");
//! ```

use crate::msg::{NONCE_LEN, WorkerInfo};
use hmac::{Hmac, KeyInit, Mac};
use sha2::{Digest, Sha256};

type HmacSha256 = Hmac<Sha256>;

/// Length of a proof, a digest and a frame's authentication tag.
pub const TAG_LEN: usize = 32;

/// A nonce, proof, digest or key: 32 bytes.
pub type Bytes32 = [u8; NONCE_LEN];

/// Which side proves, or which end of a session this is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    /// The coordinator (the worker takes orders only from a proven one).
    Coordinator,
    /// The worker (results come from a real worker).
    Worker,
}

/// Labels: the construction's version, and who proves to whom.
const WORKER_PROOF: &[u8] = b"cnibench-v2 proof by worker to coordinator";
const COORDINATOR_PROOF: &[u8] = b"cnibench-v2 proof by coordinator to worker";
const SESSION: &[u8] = b"cnibench-v2 session";
const WORKER_TO_COORDINATOR: &[u8] = b"cnibench-v2 frames worker to coordinator";
const COORDINATOR_TO_WORKER: &[u8] = b"cnibench-v2 frames coordinator to worker";

fn hmac(key: &[u8], parts: &[&[u8]]) -> Bytes32 {
    // HMAC accepts keys of any length.
    let mut m = <HmacSha256 as KeyInit>::new_from_slice(key).unwrap_or_else(|_| unreachable!());
    for p in parts {
        m.update(p);
    }
    m.finalize().into_bytes().into()
}

/// Constant-time comparison of two 32-byte values.
fn same(a: &Bytes32, b: &Bytes32) -> bool {
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// SHA-256 of the worker's self-description as it is encoded on the wire, so the
/// worker's proof also vouches for what it says about itself.
pub fn info_digest(info: &WorkerInfo) -> Bytes32 {
    let bytes = postcard::to_stdvec(info).unwrap_or_default();
    Sha256::digest(&bytes).into()
}

/// The worker's proof: HMAC-SHA256(token, label | nonce_w | nonce_c | info digest).
pub fn worker_proof(token: &[u8], nonce_w: &Bytes32, nonce_c: &Bytes32, info: &Bytes32) -> Bytes32 {
    hmac(token, &[WORKER_PROOF, nonce_w, nonce_c, info])
}

/// Check a worker's proof in constant time.
pub fn verify_worker(
    token: &[u8],
    nonce_w: &Bytes32,
    nonce_c: &Bytes32,
    info: &Bytes32,
    proof: &Bytes32,
) -> bool {
    same(&worker_proof(token, nonce_w, nonce_c, info), proof)
}

/// The coordinator's proof, given only after the worker's checked out:
/// HMAC-SHA256(token, label | nonce_w | nonce_c | worker's proof).
pub fn coordinator_proof(
    token: &[u8],
    nonce_w: &Bytes32,
    nonce_c: &Bytes32,
    worker_proof: &Bytes32,
) -> Bytes32 {
    hmac(token, &[COORDINATOR_PROOF, nonce_w, nonce_c, worker_proof])
}

/// Check a coordinator's proof in constant time.
pub fn verify_coordinator(
    token: &[u8],
    nonce_w: &Bytes32,
    nonce_c: &Bytes32,
    worker_proof: &Bytes32,
    proof: &Bytes32,
) -> bool {
    same(
        &coordinator_proof(token, nonce_w, nonce_c, worker_proof),
        proof,
    )
}

/// The two frame keys of a session as seen from `side`: what it sends with, and
/// what it checks the peer's frames with. The session key is
/// HMAC-SHA256(token, label | nonce_w | nonce_c | worker's proof); each
/// direction's key is HMAC-SHA256(session key, direction label).
pub fn session(
    token: &[u8],
    nonce_w: &Bytes32,
    nonce_c: &Bytes32,
    worker_proof: &Bytes32,
    side: Side,
) -> (Sealer, Opener) {
    session_from_secret(
        &hmac(token, &[SESSION, nonce_w, nonce_c, worker_proof]),
        side,
    )
}

/// The frame keys from an already derived session secret.
pub fn session_from_secret(secret: &Bytes32, side: Side) -> (Sealer, Opener) {
    let w2c = hmac(secret, &[WORKER_TO_COORDINATOR]);
    let c2w = hmac(secret, &[COORDINATOR_TO_WORKER]);
    let (send, recv) = match side {
        Side::Coordinator => (c2w, w2c),
        Side::Worker => (w2c, c2w),
    };
    (Sealer { key: send, seq: 0 }, Opener { key: recv, seq: 0 })
}

/// Tags the frames one side sends, numbering them from 0.
pub struct Sealer {
    key: Bytes32,
    seq: u64,
}

impl Sealer {
    /// The tag of the next frame sent.
    pub fn tag(&mut self, payload: &[u8]) -> Bytes32 {
        let t = hmac(&self.key, &[&self.seq.to_be_bytes(), payload]);
        self.seq = self.seq.wrapping_add(1);
        t
    }
}

/// Checks the frames one side receives, expecting them numbered from 0.
pub struct Opener {
    key: Bytes32,
    seq: u64,
}

impl Opener {
    /// Whether `tag` is the next frame's tag over `payload`; only a good frame
    /// advances the count (the connection closes at a bad one anyway).
    pub fn open(&mut self, payload: &[u8], tag: &Bytes32) -> bool {
        let ok = same(&hmac(&self.key, &[&self.seq.to_be_bytes(), payload]), tag);
        if ok {
            self.seq = self.seq.wrapping_add(1);
        }
        ok
    }
}

// Keys stay out of logs.
impl std::fmt::Debug for Sealer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Sealer {{ seq: {} }}", self.seq)
    }
}

impl std::fmt::Debug for Opener {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Opener {{ seq: {} }}", self.seq)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const W: Bytes32 = [1; 32];
    const C: Bytes32 = [2; 32];
    const I: Bytes32 = [3; 32];

    #[test]
    fn proofs_bind_token_nonces_roles_and_info() {
        let p = worker_proof(b"secret", &W, &C, &I);
        assert!(verify_worker(b"secret", &W, &C, &I, &p));
        assert!(!verify_worker(b"wrong", &W, &C, &I, &p));
        assert!(!verify_worker(b"secret", &C, &W, &I, &p), "nonces swapped");
        assert!(!verify_worker(b"secret", &[9; 32], &C, &I, &p));
        assert!(!verify_worker(b"secret", &W, &[9; 32], &I, &p));
        assert!(
            !verify_worker(b"secret", &W, &C, &[9; 32], &p),
            "other info"
        );
        // A worker's proof is no coordinator's proof, whatever it is taken over.
        for over in [I, p] {
            assert!(!verify_coordinator(b"secret", &W, &C, &over, &p));
        }
        let q = coordinator_proof(b"secret", &W, &C, &p);
        assert!(verify_coordinator(b"secret", &W, &C, &p, &q));
        assert!(!verify_coordinator(b"wrong", &W, &C, &p, &q));
        assert!(!verify_coordinator(b"secret", &C, &W, &p, &q));
        assert!(!verify_coordinator(b"secret", &W, &C, &[0; 32], &q));
        assert!(!verify_worker(b"secret", &W, &C, &I, &q));
    }

    #[test]
    fn frames_are_bound_to_direction_order_and_session() {
        let (mut c_seal, mut c_open) = session(b"t", &W, &C, &I, Side::Coordinator);
        let (mut w_seal, mut w_open) = session(b"t", &W, &C, &I, Side::Worker);
        let t0 = c_seal.tag(b"a");
        let t1 = c_seal.tag(b"b");
        // Reordered: the second frame first fails.
        assert!(!w_open.open(b"b", &t1));
        assert!(w_open.open(b"a", &t0));
        assert!(!w_open.open(b"a", &t0), "replayed");
        assert!(!w_open.open(b"B", &t1), "altered");
        assert!(w_open.open(b"b", &t1));
        // A coordinator's frame reflected back at it fails: each direction has its key.
        let t = c_seal.tag(b"x");
        assert!(!c_open.open(b"x", &t));
        let u = w_seal.tag(b"x");
        assert!(c_open.open(b"x", &u));
        // Another session (another nonce) has other keys.
        let (_, mut other) = session(b"t", &[5; 32], &C, &I, Side::Worker);
        let (mut s, _) = session(b"t", &W, &C, &I, Side::Coordinator);
        assert!(!other.open(b"a", &s.tag(b"a")));
    }
}
