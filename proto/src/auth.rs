//! Shared-token challenge/response. Both sides prove they know the token by
//! HMAC-SHA256 over both nonces with a role label; the token never crosses the wire,
//! and a recorded handshake cannot be replayed because each side's nonce is fresh.

use crate::msg::NONCE_LEN;
use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;

type HmacSha256 = Hmac<Sha256>;

/// Which side is proving.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    /// The coordinator proves to the worker (the worker takes orders only then).
    Coordinator,
    /// The worker proves to the coordinator (results come from a real worker).
    Worker,
}

impl Side {
    fn label(self) -> &'static [u8] {
        match self {
            Side::Coordinator => b"cnibench-v1-coordinator",
            Side::Worker => b"cnibench-v1-worker",
        }
    }
}

fn mac(token: &[u8], side: Side, theirs: &[u8; NONCE_LEN], ours: &[u8; NONCE_LEN]) -> HmacSha256 {
    // HMAC accepts keys of any length.
    let mut m = <HmacSha256 as KeyInit>::new_from_slice(token).unwrap_or_else(|_| unreachable!());
    m.update(side.label());
    m.update(theirs);
    m.update(ours);
    m
}

/// Proof by `side` over the peer's nonce (`theirs`) and its own (`ours`).
pub fn prove(
    token: &[u8],
    side: Side,
    theirs: &[u8; NONCE_LEN],
    ours: &[u8; NONCE_LEN],
) -> [u8; NONCE_LEN] {
    mac(token, side, theirs, ours)
        .finalize()
        .into_bytes()
        .into()
}

/// Check a proof in constant time.
pub fn verify(
    token: &[u8],
    side: Side,
    theirs: &[u8; NONCE_LEN],
    ours: &[u8; NONCE_LEN],
    proof: &[u8; NONCE_LEN],
) -> bool {
    mac(token, side, theirs, ours).verify_slice(proof).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prove_and_verify() {
        let (w, c) = ([1; 32], [2; 32]);
        let p = prove(b"secret", Side::Coordinator, &w, &c);
        assert!(verify(b"secret", Side::Coordinator, &w, &c, &p));
        assert!(!verify(b"wrong", Side::Coordinator, &w, &c, &p));
        // A coordinator proof is not a worker proof, and a new nonce invalidates it.
        assert!(!verify(b"secret", Side::Worker, &w, &c, &p));
        assert!(!verify(b"secret", Side::Coordinator, &[3; 32], &c, &p));
    }
}
