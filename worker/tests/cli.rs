//! The worker binary against bad flags and strangers on its control port.

#![allow(clippy::unwrap_used)] // tests fail by panicking

use bytes::BytesMut;
use cnibench_proto::codec;
use cnibench_proto::msg::{Msg, PROTO_VERSION};
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

#[test]
fn wrong_token_and_wrong_version_are_rejected() {
    let w = start_worker("the-right-token");
    let mut s = TcpStream::connect(&w.addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let Some(Msg::Challenge { nonce, .. }) = read_msg(&mut s) else {
        panic!("no challenge")
    };
    let ours = [3u8; 32];
    let proof = cnibench_proto::auth::prove(
        b"a-wrong-token",
        cnibench_proto::auth::Side::Coordinator,
        &nonce,
        &ours,
    );
    send(
        &mut s,
        &Msg::Auth {
            proto_version: PROTO_VERSION,
            nonce: ours,
            proof,
        },
    );
    match read_msg(&mut s) {
        Some(Msg::Reject { reason }) => assert!(reason.contains("authentication"), "{reason}"),
        other => panic!("expected Reject, got {other:?}"),
    }
    assert!(
        read_msg(&mut s).is_none(),
        "connection must close after Reject"
    );

    let mut s = TcpStream::connect(&w.addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let _ = read_msg(&mut s);
    send(
        &mut s,
        &Msg::Auth {
            proto_version: PROTO_VERSION + 1,
            nonce: ours,
            proof,
        },
    );
    match read_msg(&mut s) {
        Some(Msg::Reject { reason }) => assert!(reason.contains("protocol version"), "{reason}"),
        other => panic!("expected Reject, got {other:?}"),
    }

    // Garbage closes only that connection: the worker still answers the next one.
    let mut s = TcpStream::connect(&w.addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let _ = read_msg(&mut s);
    s.write_all(&[0xff; 16]).unwrap();
    assert!(read_msg(&mut s).is_none());
    let mut s = TcpStream::connect(&w.addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    assert!(matches!(read_msg(&mut s), Some(Msg::Challenge { .. })));
}

#[test]
fn replayed_handshake_is_rejected() {
    let token = "the-right-token";
    let w = start_worker(token);
    // A genuine coordinator's Auth, recorded.
    let mut s = TcpStream::connect(&w.addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let Some(Msg::Challenge { nonce, .. }) = read_msg(&mut s) else {
        panic!("no challenge")
    };
    let ours = [7u8; 32];
    let proof = cnibench_proto::auth::prove(
        token.as_bytes(),
        cnibench_proto::auth::Side::Coordinator,
        &nonce,
        &ours,
    );
    let recorded = Msg::Auth {
        proto_version: PROTO_VERSION,
        nonce: ours,
        proof,
    };
    send(&mut s, &recorded);
    assert!(
        matches!(read_msg(&mut s), Some(Msg::Hello { .. })),
        "the genuine Auth is accepted"
    );
    drop(s);
    // Replayed on a new connection (new challenge), it fails.
    let mut s = TcpStream::connect(&w.addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let _ = read_msg(&mut s);
    send(&mut s, &recorded);
    match read_msg(&mut s) {
        Some(Msg::Reject { reason }) => assert!(reason.contains("authentication"), "{reason}"),
        other => panic!("expected Reject, got {other:?}"),
    }
}
