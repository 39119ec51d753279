//! The worker binary against bad flags and strangers on its control port.

#![allow(clippy::unwrap_used)] // tests fail by panicking

use bytes::BytesMut;
use cnibench_proto::msg::{Msg, PROTO_VERSION};
use cnibench_proto::{auth, codec};
use cnibench_testkit::{Worker, tmpdir, write_token};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

const BIN: &str = env!("CARGO_BIN_EXE_cnibench-worker");

/// Start a worker on 127.0.0.1:0 with `token`; `addr` is its bound control address.
fn start_worker(token: &str) -> Worker {
    let tf = write_token(&tmpdir("worker-cli"), token);
    cnibench_testkit::start_worker(Path::new(BIN), "127.0.0.1", &tf, &[])
}

fn read_msg(s: &mut TcpStream) -> Option<Msg> {
    let mut buf = BytesMut::new();
    let mut chunk = [0u8; 4096];
    loop {
        if let Some(m) = codec::decode(&mut buf).unwrap() {
            return Some(m);
        }
        let n = s.read(&mut chunk).ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
    }
}

fn send(s: &mut TcpStream, m: &Msg) {
    let mut buf = BytesMut::new();
    codec::encode(m, &mut buf).unwrap();
    s.write_all(&buf).unwrap();
}

#[test]
fn bad_flags_exit_64() {
    let out = Command::new(BIN)
        .args(["--listen", "nonsense"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(64));
    let out = Command::new(BIN)
        .args([
            "--listen",
            "127.0.0.1:0",
            "--token-file",
            "/nonexistent/token",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(64));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("/nonexistent/token"), "{err}");
}

/// Open a connection and read the worker's challenge nonce.
fn challenge(w: &Worker) -> (TcpStream, [u8; 32]) {
    let mut s = TcpStream::connect(&w.addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let Some(Msg::Challenge { nonce, .. }) = read_msg(&mut s) else {
        panic!("no challenge")
    };
    (s, nonce)
}

/// Send `Auth` with our nonce; the worker's `Hello` proof, checked with `token`.
fn hello(s: &mut TcpStream, nonce_w: &[u8; 32], nonce_c: [u8; 32], token: &str) -> [u8; 32] {
    send(
        s,
        &Msg::Auth {
            proto_version: PROTO_VERSION,
            nonce: nonce_c,
        },
    );
    let Some(Msg::Hello { info, proof }) = read_msg(s) else {
        panic!("no Hello")
    };
    let digest = auth::info_digest(&info);
    assert!(auth::verify_worker(
        token.as_bytes(),
        nonce_w,
        &nonce_c,
        &digest,
        &proof
    ));
    proof
}

#[test]
fn wrong_token_and_wrong_version_are_rejected() {
    let w = start_worker("the-right-token");
    // The worker proves itself first; a coordinator with another token fails.
    let (mut s, nonce_w) = challenge(&w);
    let nonce_c = [3u8; 32];
    let proof_w = hello(&mut s, &nonce_w, nonce_c, "the-right-token");
    let proof = auth::coordinator_proof(b"a-wrong-token", &nonce_w, &nonce_c, &proof_w);
    send(&mut s, &Msg::Welcome { proof });
    match read_msg(&mut s) {
        Some(Msg::Reject { reason }) => assert!(reason.contains("authentication"), "{reason}"),
        other => panic!("expected Reject, got {other:?}"),
    }
    assert!(
        read_msg(&mut s).is_none(),
        "connection must close after Reject"
    );

    let (mut s, _) = challenge(&w);
    send(
        &mut s,
        &Msg::Auth {
            proto_version: PROTO_VERSION + 1,
            nonce: nonce_c,
        },
    );
    match read_msg(&mut s) {
        Some(Msg::Reject { reason }) => assert!(reason.contains("protocol version"), "{reason}"),
        other => panic!("expected Reject, got {other:?}"),
    }

    // Garbage closes only that connection: the worker still answers the next one.
    let (mut s, _) = challenge(&w);
    s.write_all(&[0xff; 16]).unwrap();
    assert!(read_msg(&mut s).is_none());
    challenge(&w);
}

#[test]
fn replayed_handshake_is_rejected() {
    let token = "the-right-token";
    let w = start_worker(token);
    // A genuine coordinator's Welcome, recorded.
    let (mut s, nonce_w) = challenge(&w);
    let nonce_c = [7u8; 32];
    let proof_w = hello(&mut s, &nonce_w, nonce_c, token);
    let recorded = Msg::Welcome {
        proof: auth::coordinator_proof(token.as_bytes(), &nonce_w, &nonce_c, &proof_w),
    };
    send(&mut s, &recorded);
    drop(s);
    // Replayed on a new connection (new challenge, same coordinator nonce), it
    // fails. (The worker may still be busy with the session it just accepted
    // until it sees that close: retry while it says busy.)
    let mut tries = 0;
    let (mut s, nonce_w2) = loop {
        let (mut s, nonce_w2) = challenge(&w);
        send(
            &mut s,
            &Msg::Auth {
                proto_version: PROTO_VERSION,
                nonce: nonce_c,
            },
        );
        match read_msg(&mut s) {
            Some(Msg::Hello { .. }) => break (s, nonce_w2),
            Some(Msg::Reject { reason }) if reason.contains("busy") && tries < 100 => {
                tries += 1;
                std::thread::sleep(Duration::from_millis(50));
            }
            other => panic!("expected Hello, got {other:?}"),
        }
    };
    assert_ne!(nonce_w, nonce_w2);
    send(&mut s, &recorded);
    match read_msg(&mut s) {
        Some(Msg::Reject { reason }) => assert!(reason.contains("authentication"), "{reason}"),
        other => panic!("expected Reject, got {other:?}"),
    }
}

#[test]
fn the_worker_proves_itself_and_its_info_first() {
    let w = start_worker("the-right-token");
    let (mut s, nonce_w) = challenge(&w);
    let nonce_c = [9u8; 32];
    send(
        &mut s,
        &Msg::Auth {
            proto_version: PROTO_VERSION,
            nonce: nonce_c,
        },
    );
    let Some(Msg::Hello { mut info, proof }) = read_msg(&mut s) else {
        panic!("no Hello")
    };
    let t = b"the-right-token";
    assert!(auth::verify_worker(
        t,
        &nonce_w,
        &nonce_c,
        &auth::info_digest(&info),
        &proof
    ));
    // Bound to both nonces and to what the worker says about itself.
    assert!(!auth::verify_worker(
        t,
        &nonce_c,
        &nonce_w,
        &auth::info_digest(&info),
        &proof
    ));
    info.node.push('x');
    assert!(!auth::verify_worker(
        t,
        &nonce_w,
        &nonce_c,
        &auth::info_digest(&info),
        &proof
    ));
}
