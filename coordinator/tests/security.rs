//! The control session against a man in the middle: a fake worker that the
//! coordinator reaches (a stale `--workers` entry, a DNS endpoint) and that relays
//! to a real worker. It can pass the handshake along, but every frame after it is
//! authenticated: what it injects or alters closes the session (issue 17, item 1).

#![allow(clippy::unwrap_used)] // tests fail by panicking

mod common;

use bytes::BytesMut;
use cnibench_proto::codec;
use cnibench_proto::msg::{Job, Msg, Role};
use common::*;
use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::time::Duration;

const PLAN: &str = "name: mitm\ndefaults: { duration: 2s, warmup: 0s, interval: 500ms }\nscenarios:\n  - { name: rr, traffic: tcp-rr, path: pod-to-pod-same-node }\n";

/// A job id no coordinator uses.
const FORGED: u64 = 0xF00D;

/// What the relay does besides forwarding.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Mode {
    /// Right after the handshake, send the worker a frame of its own: a `Prepare`.
    Inject,
    /// Alter the first `Ping` the coordinator sends (a bit of its timestamp).
    TamperToWorker,
    /// Alter the first `Pong` the worker sends.
    TamperToCoordinator,
}

/// What the relay saw.
#[derive(Debug, Default)]
struct Seen {
    /// The worker answered the injected `Prepare`.
    forged_ready: bool,
    /// The relay did its deed (injected or altered a frame).
    acted: bool,
    /// `Pong`s the worker sent after the deed.
    pongs_after: usize,
}

/// Read one length-prefixed frame (header included); `None` at EOF or error.
fn read_frame(s: &mut TcpStream) -> Option<Vec<u8>> {
    let mut len = [0u8; 4];
    s.read_exact(&mut len).ok()?;
    let mut f = len.to_vec();
    f.resize(4 + u32::from_be_bytes(len) as usize, 0);
    s.read_exact(&mut f[4..]).ok()?;
    Some(f)
}

/// The message in a frame, plain or followed by a 32-byte authentication tag,
/// and the length of its encoding.
fn parse(frame: &[u8]) -> Option<(Msg, usize)> {
    let payload = &frame[4..];
    for cut in [payload.len(), payload.len().saturating_sub(32)] {
        let mut b = BytesMut::from(&(cut as u32).to_be_bytes()[..]);
        b.extend_from_slice(&payload[..cut]);
        if let Ok(Some(m)) = codec::decode(&mut b) {
            return Some((m, cut));
        }
    }
    None
}

/// A forged `Prepare`: a tcp-rr server the worker would bind for us.
fn forged_prepare() -> Vec<u8> {
    let spec = cnibench_proto::plan::load("p.yaml", PLAN)
        .unwrap()
        .scenarios
        .remove(0);
    let job = Job {
        id: FORGED,
        role: Role::Server,
        scenario: spec,
        target: None,
        server_cert: vec![],
        clock_correction_ns: 0,
        peers: vec![],
        client_index: 0,
    };
    let mut b = BytesMut::new();
    codec::encode(&Msg::Prepare(job), &mut b).unwrap();
    b.to_vec()
}

/// Flip the lowest bit of the message's last byte (a varint's last byte stays a
/// valid last byte), leaving any tag alone.
fn tamper(frame: &mut [u8], msg_len: usize) {
    frame[4 + msg_len - 1] ^= 1;
}

/// Relay one coordinator connection to `worker`, doing `mode`.
fn relay(listener: TcpListener, worker: String, mode: Mode, seen: Arc<Mutex<Seen>>) {
    let (c, _) = listener.accept().unwrap();
    let w = TcpStream::connect(&worker).unwrap();
    for s in [&c, &w] {
        s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    }
    let (mut c_in, mut c_out) = (c.try_clone().unwrap(), c);
    let (mut w_in, mut w_out) = (w.try_clone().unwrap(), w);
    let seen2 = seen.clone();
    // Coordinator -> worker.
    let up = std::thread::spawn(move || {
        let mut n = 0;
        while let Some(mut f) = read_frame(&mut c_in) {
            n += 1;
            if mode == Mode::TamperToWorker
                && !seen2.lock().unwrap().acted
                && let Some((Msg::Ping { .. }, len)) = parse(&f)
            {
                tamper(&mut f, len);
                seen2.lock().unwrap().acted = true;
            }
            if w_out.write_all(&f).is_err() {
                break;
            }
            // Auth and Welcome passed: the session is open.
            if n == 2 && mode == Mode::Inject {
                seen2.lock().unwrap().acted = true;
                if w_out.write_all(&forged_prepare()).is_err() {
                    break;
                }
            }
        }
        let _ = w_out.shutdown(Shutdown::Both);
    });
    // Worker -> coordinator.
    while let Some(mut f) = read_frame(&mut w_in) {
        let mut s = seen.lock().unwrap();
        let parsed = parse(&f);
        if s.acted && matches!(parsed, Some((Msg::Pong { .. }, _))) {
            s.pongs_after += 1;
        }
        match parsed {
            Some((Msg::Ready { job: FORGED, .. }, _)) => s.forged_ready = true,
            Some((Msg::Pong { .. }, len)) if mode == Mode::TamperToCoordinator && !s.acted => {
                tamper(&mut f, len);
                s.acted = true;
            }
            _ => {}
        }
        drop(s);
        if c_out.write_all(&f).is_err() {
            break;
        }
    }
    let _ = c_out.shutdown(Shutdown::Both);
    up.join().unwrap();
}

/// Run the plan through a relay in `mode`; what the relay saw and what the
/// coordinator said.
fn through_relay(tag: &str, mode: Mode) -> (Seen, std::process::Output) {
    let (dir, token, plan) = setup(tag, PLAN);
    let w = start_worker("127.0.0.2", "node-a", &token);
    let listener = TcpListener::bind("127.0.0.3:0").unwrap();
    let fake = listener.local_addr().unwrap().to_string();
    let seen = Arc::new(Mutex::new(Seen::default()));
    let relay = {
        let (worker, seen) = (w.addr.clone(), seen.clone());
        std::thread::spawn(move || relay(listener, worker, mode, seen))
    };
    let o = run(&plan, &token, &fake, &dir.join("o"));
    relay.join().unwrap();
    let seen = std::mem::take(&mut *seen.lock().unwrap());
    (seen, o)
}

#[test]
fn a_relaying_fake_worker_cannot_inject_commands() {
    let (seen, o) = through_relay("mitm-inject", Mode::Inject);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(seen.acted, "the relay never saw the handshake end: {err}");
    assert!(
        !seen.forged_ready,
        "the worker obeyed a Prepare the coordinator never sent"
    );
    assert_ne!(o.status.code(), Some(0), "{err}");
}

#[test]
fn a_tampered_coordinator_frame_closes_the_session() {
    let (seen, o) = through_relay("mitm-tamper-up", Mode::TamperToWorker);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(seen.acted, "no Ping to alter: {err}");
    // The worker closed at the altered Ping (the first) instead of answering it.
    assert_eq!(seen.pongs_after, 0, "{err}");
    assert_ne!(o.status.code(), Some(0), "{err}");
}

#[test]
fn a_tampered_worker_frame_closes_the_session() {
    let (seen, o) = through_relay("mitm-tamper-down", Mode::TamperToCoordinator);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(seen.acted, "no Pong to alter: {err}");
    assert_ne!(o.status.code(), Some(0), "{err}");
    assert!(err.contains("authentication"), "{err}");
}

#[test]
fn a_datagram_rate_over_a_bitrate_cap_is_refused() {
    // 1M datagrams/s of 1400 B is 11.2 Gbit/s: above a 1 Gbit/s cap, though
    // the plan writes no bitrate (issue 17, item 5).
    let plan = "name: caps\ndefaults: { duration: 1s, warmup: 0s }\nscenarios:\n  - { name: pps, traffic: udp-stream, path: pod-to-pod-same-node, rate: 1000000pps, message_size: 1400 }\n";
    let (dir, token, plan) = setup("caps-pps", plan);
    let w = start_worker_with(
        "127.0.0.2",
        "node-a",
        &token,
        &["--cni", "loopback", "--max-bitrate", "1Gbit/s"],
    );
    let o = run(&plan, &token, &w.addr, &dir.join("o"));
    let out = format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    assert_ne!(o.status.code(), Some(0), "{out}");
    assert!(
        out.contains("--max-bitrate") && out.contains("11.20 Gbit/s"),
        "{out}"
    );
}
