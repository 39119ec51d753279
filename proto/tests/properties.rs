//! Property tests of everything that parses untrusted input: the frame decoder
//! (bytes from the network), the histogram decoder and the plan loader (files from
//! users). Arbitrary input must give a value or an error, never a panic or an
//! unbounded allocation; valid frames survive any split; a plan that loads is
//! within the bounds a worker can run. 10,000 cases each.

#![allow(clippy::unwrap_used)] // tests fail by panicking

use bytes::BytesMut;
use cnibench_proto::auth::{self, Side};
use cnibench_proto::codec::{self, MAX_FRAME};
use cnibench_proto::msg::{
    Counters, CpuUsage, HealthCounters, IntervalReport, Job, Msg, NodeCpu, Role, ScheduleStats,
    UdpStats, WorkerInfo,
};
use cnibench_proto::units::{Dur, Rate};
use cnibench_proto::{hist, plan};
use proptest::prelude::*;
use std::collections::BTreeMap;
use std::time::Duration;

fn config() -> ProptestConfig {
    ProptestConfig {
        cases: 10_000,
        ..ProptestConfig::default()
    }
}

/// A scenario as a worker receives it: values a validated plan can hold
/// (quantities cross the wire in their plan spelling and are parsed again).
fn any_scenario() -> impl Strategy<Value = plan::ScenarioSpec> {
    let base = plan::load(
        "p.yaml",
        "name: p\nscenarios:\n  - { name: s, traffic: tcp-rr, path: pod-to-pod-cross-node }\n",
    )
    .unwrap()
    .scenarios
    .remove(0);
    (
        1u32..100_000,
        1u32..1000,
        proptest::option::of(1u32..1000),
        1u64..=64 << 20,
        prop_oneof![
            Just(Rate::Max),
            (1u32..10_000_000).prop_map(|r| Rate::PerSecond(f64::from(r))),
            (1u64..100_000_000_000).prop_map(|b| Rate::BitsPerSecond(b as f64)),
        ],
        100u64..86_400_000,
        "[a-z0-9-]{1,20}",
    )
        .prop_map(
            move |(connections, clients, threads, size, rate, ms, name)| plan::ScenarioSpec {
                name,
                connections,
                clients,
                threads,
                request_size: cnibench_proto::units::Size(size),
                rate,
                duration: Dur(Duration::from_millis(ms)),
                ..base.clone()
            },
        )
}

/// Arbitrary bytes where a histogram goes.
fn any_bytes() -> impl Strategy<Value = Vec<u8>> {
    proptest::collection::vec(any::<u8>(), 0..48)
}

/// Counters with arbitrary values and error kinds.
fn any_counters() -> impl Strategy<Value = Counters> {
    (
        any::<[u64; 8]>(),
        proptest::collection::btree_map("[a-z0-9-]{1,12}", any::<u64>(), 0..4),
        proptest::collection::btree_map("[1-5]xx", any::<u64>(), 0..3),
    )
        .prop_map(
            |(n, errors, status): (_, BTreeMap<_, _>, BTreeMap<_, _>)| Counters {
                bytes_sent: n[0],
                bytes_received: n[1],
                transactions: n[2],
                connections: n[3],
                errors,
                status,
                clamped: n[4],
                attempts: n[5],
                failed: n[6],
                unfinished: n[7],
            },
        )
}

/// An interval report with arbitrary counters, histograms and CPU figures.
fn any_interval() -> impl Strategy<Value = IntervalReport> {
    (
        (any::<u64>(), any::<u32>(), any::<bool>(), any::<[u64; 2]>()),
        (any_bytes(), any_bytes(), any_bytes(), any_bytes()),
        any_counters(),
        any::<[u64; 5]>(),
        proptest::option::of((
            any::<[u64; 5]>(),
            proptest::option::of(any::<u64>()),
            any::<u32>(),
        )),
        proptest::option::of((any::<[u64; 7]>(), any::<[Option<u64>; 3]>())),
        proptest::option::of((
            proptest::option::of("net:\\[[0-9]{1,10}\\]"),
            any::<[Option<u64>; 6]>(),
        )),
    )
        .prop_map(
            |(
                (job, seq, warmup, t),
                (latency, service, transit, send_lag),
                counters,
                s,
                udp,
                cpu,
                health,
            )| {
                IntervalReport {
                    job,
                    seq,
                    warmup,
                    t_start_ns: t[0],
                    t_end_ns: t[1],
                    latency,
                    service,
                    transit,
                    send_lag,
                    counters,
                    schedule: ScheduleStats {
                        intended: s[0],
                        queued: s[1],
                        late: s[2],
                        max_lag_ns: s[3],
                        unsent: s[4],
                    },
                    udp: udp.map(|(u, jitter_ns, flows)| UdpStats {
                        received: u[0],
                        lost: u[1],
                        reordered: u[2],
                        duplicates: u[3],
                        jitter_ns,
                        flows,
                        transit_negative: u[4],
                    }),
                    cpu: cpu.map(|(c, [process_ns, cgroup_ns, busiest_sender_ns])| CpuUsage {
                        window_ns: c[0],
                        node: Some(NodeCpu {
                            user_ns: c[1],
                            system_ns: c[2],
                            softirq_ns: c[3],
                            irq_ns: c[4],
                            steal_ns: c[5],
                            idle_ns: c[6],
                        }),
                        process_ns,
                        process_user_ns: process_ns.map(|p| p / 2),
                        cgroup_ns,
                        busiest_sender_ns,
                    }),
                    health: health.map(|(netns, h)| {
                        Box::new(HealthCounters {
                            netns,
                            tcp_out_segs: h[0],
                            tcp_retrans_segs: h[1],
                            udp_rcvbuf_errors: h[2],
                            conntrack_entries: h[3],
                            softnet_dropped: h[4],
                            sock_rtt_us: h[5],
                            ..HealthCounters::default()
                        })
                    }),
                }
            },
        )
}

/// A job with an arbitrary scenario, role, target and peers.
fn any_job() -> impl Strategy<Value = Job> {
    (
        any::<u64>(),
        any::<bool>(),
        any_scenario(),
        // serde carries IPv6 addresses without flow label and scope.
        proptest::option::of(
            (any::<std::net::IpAddr>(), any::<u16>()).prop_map(std::net::SocketAddr::from),
        ),
        any_bytes(),
        any::<i64>(),
        (
            proptest::collection::vec(any::<std::net::IpAddr>(), 0..3),
            any::<u32>(),
        ),
    )
        .prop_map(
            |(
                id,
                client,
                scenario,
                target,
                server_cert,
                clock_correction_ns,
                (peers, client_index),
            )| Job {
                id,
                role: if client { Role::Client } else { Role::Server },
                scenario,
                target,
                server_cert,
                clock_correction_ns,
                peers,
                client_index,
            },
        )
}

/// What a worker says about itself in `Hello`.
fn any_info() -> impl Strategy<Value = WorkerInfo> {
    (
        ".{0,20}",
        proptest::option::of(any::<std::net::IpAddr>()),
        any::<std::net::IpAddr>(),
        proptest::option::of(any::<u32>()),
        any::<u32>(),
    )
        .prop_map(|(node, pod_ip, data_ip, mtu, cpus)| WorkerInfo {
            version: "0.1.0".into(),
            node,
            pod_ip,
            host_ip: None,
            data_ip,
            cni: "cni".into(),
            cni_mode: None,
            mtu,
            kernel: "6.1".into(),
            cpu_model: "cpu".into(),
            cpus,
            boot_id: None,
        })
}

/// Messages built from arbitrary field values, among them the two large ones a
/// session carries most: jobs and interval reports.
fn any_msg() -> impl Strategy<Value = Msg> {
    prop_oneof![
        any_job().prop_map(Msg::Prepare),
        any_interval().prop_map(Msg::Interval),
        (any::<u32>(), any::<[u8; 32]>()).prop_map(|(v, n)| Msg::Challenge {
            proto_version: v,
            nonce: n
        }),
        (any::<u32>(), any::<[u8; 32]>()).prop_map(|(v, n)| Msg::Auth {
            proto_version: v,
            nonce: n
        }),
        (any_info(), any::<[u8; 32]>()).prop_map(|(info, proof)| Msg::Hello { info, proof }),
        any::<[u8; 32]>().prop_map(|proof| Msg::Welcome { proof }),
        (
            any::<u64>(),
            any::<u16>(),
            proptest::collection::vec(any::<u8>(), 0..64)
        )
            .prop_map(|(job, port, cert)| Msg::Ready { job, port, cert }),
        (any::<u64>(), any::<i64>()).prop_map(|(job, at)| Msg::Start {
            job,
            at_unix_ns: at
        }),
        (any::<u64>(), any::<i64>(), any::<i64>(), any::<i64>())
            .prop_map(|(seq, t1, t2, t3)| Msg::Pong { seq, t1, t2, t3 }),
        ".{0,40}".prop_map(|reason| Msg::Reject { reason }),
        (any::<u64>(), ".{0,40}").prop_map(|(job, error)| Msg::Failed { job, error }),
    ]
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn decoder_never_panics(
        len in prop_oneof![any::<u32>(), 0u32..2048, (MAX_FRAME as u32 - 8)..(MAX_FRAME as u32 + 8)],
        rest in proptest::collection::vec(any::<u8>(), 0..512),
    ) {
        // A length in front: arbitrary, small, or about the largest allowed.
        let bytes = [&len.to_be_bytes()[..], &rest].concat();
        let mut buf = BytesMut::from(&bytes[..]);
        // Decode until it needs more bytes or fails; either is fine, a panic is not.
        let last = loop {
            match codec::decode(&mut buf) {
                Ok(Some(_)) => continue,
                other => break other,
            }
        };
        // The length the frame at the front announces, where the decoder stopped.
        let announced = (buf.len() >= 4).then(|| u32::from_be_bytes([buf[0], buf[1], buf[2], buf[3]]) as usize);
        match last {
            // An oversized frame is refused as it is announced, before anything
            // is reserved for it.
            Err(codec::DecodeError::TooLarge { len }) => {
                prop_assert_eq!(announced, Some(len));
                prop_assert!(len > MAX_FRAME);
                prop_assert!(buf.capacity() <= 2 * bytes.len().max(1), "{} reserved", buf.capacity());
            }
            // Waiting for the rest of a frame: room for that frame at most
            // (the buffer's own growth doubles at most what it held).
            Ok(None) => {
                let frame = announced.map_or(0, |n| n + 4);
                prop_assert!(frame <= MAX_FRAME + 4, "waits for a frame of {frame} bytes");
                prop_assert!(
                    buf.capacity() <= frame.max(2 * bytes.len().max(1)),
                    "{} reserved for a frame of {frame} bytes from {} bytes of input",
                    buf.capacity(),
                    bytes.len()
                );
            }
            _ => {}
        }
    }

    #[test]
    fn frames_survive_any_split(msgs in proptest::collection::vec(any_msg(), 1..5), cut in any::<prop::sample::Index>()) {
        let mut all = BytesMut::new();
        for m in &msgs {
            codec::encode(m, &mut all).unwrap();
        }
        let at = cut.index(all.len() + 1);
        let mut buf = BytesMut::from(&all[..at]);
        let mut out = Vec::new();
        while let Some(m) = codec::decode(&mut buf).unwrap() {
            out.push(m);
        }
        buf.extend_from_slice(&all[at..]);
        while let Some(m) = codec::decode(&mut buf).unwrap() {
            out.push(m);
        }
        prop_assert_eq!(out, msgs);
    }

    #[test]
    fn histogram_decoder_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..256)) {
        let _ = hist::decode(&bytes);
        // Also with a valid cookie in front, so the inflater and header checks run.
        let mut b = vec![0x1c, 0x84, 0x93, 0x14];
        b.extend_from_slice(&bytes);
        let _ = hist::decode(&b);
    }

    #[test]
    fn plan_loader_never_panics(text in ".{0,300}") {
        let _ = plan::load("fuzz.yaml", &text);
    }

    #[test]
    fn plan_loader_on_plan_shaped_text(
        name in "[a-z-]{0,12}",
        traffic in "(tcp-stream|tcp-rr|udp-rr|http1|bogus)",
        key in "(streams|connections|rate|duration|request_size|nonsense)",
        value in "(0|1|-5|10s|100/s|5Gbit/s|max|1KiB|x|999999999999|10000000000000000000s|100000000h)",
    ) {
        let text = format!("name: p\nscenarios:\n  - name: {name}\n    traffic: {traffic}\n    path: pod-to-pod-cross-node\n    {key}: {value}\n");
        match plan::load("p.yaml", &text) {
            Ok(p) => prop_assert_eq!(p.scenarios.len(), 1),
            // Every error says where.
            Err(e) => prop_assert!(e.line.is_some() || e.field.is_some(), "{}", e),
        }
    }

    #[test]
    fn matrices_expand_to_their_product_or_say_where(
        key in "(connections|rate|request_size|message_size)",
        values in proptest::collection::vec("(0|1|2|-5|100/s|5Gbit/s|max|1KiB|1k|x|999999999999)", 0..6),
        streams in proptest::collection::vec(1u32..20, 0..4),
    ) {
        let list = |v: Vec<String>| v.join(", ");
        let text = format!(
            "name: p\nscenarios:\n  - name: m\n    traffic: tcp-rr\n    path: pod-to-pod-cross-node\n    {key}: [{}]\n    streams: [{}]\n",
            list(values.clone()),
            list(streams.iter().map(u32::to_string).collect()),
        );
        match plan::load("p.yaml", &text) {
            Ok(p) => {
                prop_assert_eq!(p.scenarios.len(), values.len() * streams.len());
                prop_assert!(p.scenarios.len() <= plan::MAX_SCENARIOS);
                let mut names: Vec<&str> = p.scenarios.iter().map(|s| s.name.as_str()).collect();
                names.sort_unstable();
                names.dedup();
                prop_assert_eq!(names.len(), p.scenarios.len());
                for s in &p.scenarios {
                    let m = s.matrix.as_ref().unwrap();
                    prop_assert_eq!(m.params.len(), 2);
                    prop_assert_eq!(&s.name, &format!("m/{}", m.label()));
                }
            }
            Err(e) => prop_assert!(e.line.is_some() && e.field.is_some(), "{}", e),
        }
    }

    #[test]
    fn loaded_plans_are_within_bounds(
        duration in (0u64..=u64::MAX, "(ns|us|ms|s|m|h)"),
        warmup in (0u64..=100_000, "(ns|ms|s|h)"),
        interval in (1u64..=100_000, "(us|ms|s)"),
    ) {
        let text = format!(
            "name: p\nscenarios:\n  - {{ name: s, traffic: tcp-rr, path: pod-to-pod-cross-node, duration: {}{}, warmup: {}{}, interval: {}{} }}\n",
            duration.0, duration.1, warmup.0, warmup.1, interval.0, interval.1
        );
        if let Ok(p) = plan::load("p.yaml", &text) {
            let s = &p.scenarios[0];
            prop_assert!(s.warmup.0 + s.duration.0 <= plan::MAX_RUN);
            prop_assert!(u64::from(s.interval_count()) <= plan::MAX_INTERVALS);
        }
    }

    #[test]
    fn interval_count_is_the_bounds_plus_one(
        warmup_ms in prop_oneof![Just(0u64), 0u64..=2_000],
        duration_ms in 1u64..=2_000,
        interval_ms in 1u64..=200,
    ) {
        let mut s = plan::load("p.yaml", "name: p\nscenarios:\n  - { name: s, traffic: tcp-rr, path: pod-to-pod-cross-node }\n")
            .unwrap()
            .scenarios
            .remove(0);
        s.warmup = Dur(Duration::from_millis(warmup_ms));
        s.duration = Dur(Duration::from_millis(duration_ms));
        s.interval = Dur(Duration::from_millis(interval_ms));
        prop_assert_eq!(s.interval_count() as usize, s.interval_bounds().len() + 1);
    }

    #[test]
    fn handshake_proofs_hold_only_for_their_own_inputs(
        token in proptest::collection::vec(any::<u8>(), 1..64),
        other in proptest::collection::vec(any::<u8>(), 1..64),
        nonce_w in any::<[u8; 32]>(),
        nonce_c in any::<[u8; 32]>(),
        info in any_info(),
        flip in 0usize..32 * 8,
    ) {
        let digest = auth::info_digest(&info);
        let proof_w = auth::worker_proof(&token, &nonce_w, &nonce_c, &digest);
        prop_assert!(auth::verify_worker(&token, &nonce_w, &nonce_c, &digest, &proof_w));
        let proof_c = auth::coordinator_proof(&token, &nonce_w, &nonce_c, &proof_w);
        prop_assert!(auth::verify_coordinator(&token, &nonce_w, &nonce_c, &proof_w, &proof_c));
        // Neither proof passes for the other role.
        prop_assert!(!auth::verify_coordinator(&token, &nonce_w, &nonce_c, &proof_w, &proof_w));
        prop_assert!(!auth::verify_worker(&token, &nonce_w, &nonce_c, &digest, &proof_c));
        if other != token {
            prop_assert!(!auth::verify_worker(&other, &nonce_w, &nonce_c, &digest, &proof_w));
            prop_assert!(!auth::verify_coordinator(&other, &nonce_w, &nonce_c, &proof_w, &proof_c));
        }
        // One bit of either nonce, of the info digest or of a proof changed: refused.
        let bit = |mut b: [u8; 32]| { b[flip / 8] ^= 1 << (flip % 8); b };
        prop_assert!(!auth::verify_worker(&token, &bit(nonce_w), &nonce_c, &digest, &proof_w));
        prop_assert!(!auth::verify_worker(&token, &nonce_w, &bit(nonce_c), &digest, &proof_w));
        prop_assert!(!auth::verify_worker(&token, &nonce_w, &nonce_c, &bit(digest), &proof_w));
        prop_assert!(!auth::verify_worker(&token, &nonce_w, &nonce_c, &digest, &bit(proof_w)));
        prop_assert!(!auth::verify_coordinator(&token, &bit(nonce_w), &nonce_c, &proof_w, &proof_c));
        prop_assert!(!auth::verify_coordinator(&token, &nonce_w, &bit(nonce_c), &proof_w, &proof_c));
        prop_assert!(!auth::verify_coordinator(&token, &nonce_w, &nonce_c, &bit(proof_w), &proof_c));
        prop_assert!(!auth::verify_coordinator(&token, &nonce_w, &nonce_c, &proof_w, &bit(proof_c)));
    }

    #[test]
    fn sealed_frames_survive_any_split_and_fail_any_change(
        msgs in proptest::collection::vec(any_msg(), 1..4),
        nonce_w in any::<[u8; 32]>(),
        nonce_c in any::<[u8; 32]>(),
        proof_w in any::<[u8; 32]>(),
        cut in any::<prop::sample::Index>(),
        flip in any::<prop::sample::Index>(),
    ) {
        let keys = |side| auth::session(b"token", &nonce_w, &nonce_c, &proof_w, side);
        let (mut seal, _) = keys(Side::Coordinator);
        let mut all = BytesMut::new();
        for m in &msgs {
            codec::encode_sealed(m, &mut seal, &mut all).unwrap();
        }
        let (_, mut open) = keys(Side::Worker);
        let at = cut.index(all.len() + 1);
        let mut buf = BytesMut::from(&all[..at]);
        let mut out = Vec::new();
        while let Some(m) = codec::decode_sealed(&mut buf, &mut open).unwrap() {
            out.push(m);
        }
        buf.extend_from_slice(&all[at..]);
        while let Some(m) = codec::decode_sealed(&mut buf, &mut open).unwrap() {
            out.push(m);
        }
        prop_assert_eq!(&out, &msgs);
        // One bit flipped anywhere after the first length field: the frame holding
        // it fails, and every frame before it reads as sent.
        let bit = flip.index((all.len() - 4) * 8) + 4 * 8;
        let mut bad = all.clone();
        bad[bit / 8] ^= 1 << (bit % 8);
        let (_, mut open) = keys(Side::Worker);
        let mut read = 0;
        let failed = loop {
            match codec::decode_sealed(&mut bad, &mut open) {
                Ok(Some(m)) => { prop_assert_eq!(&m, &msgs[read]); read += 1; }
                // A flipped length may leave the decoder waiting for more bytes.
                Ok(None) => break false,
                Err(_) => break true,
            }
        };
        prop_assert!(failed || read < msgs.len(), "the change went unnoticed");
        // The peer's own direction key does not open them.
        let (_, mut wrong) = keys(Side::Coordinator);
        let mut again = all.clone();
        prop_assert!(codec::decode_sealed(&mut again, &mut wrong).is_err());
    }
}
