//! Property tests of everything that parses untrusted input: the frame decoder
//! (bytes from the network), the histogram decoder and the plan loader (files from
//! users). Arbitrary input must give a value or an error, never a panic or an
//! unbounded allocation; valid frames survive any split; a plan that loads is
//! within the bounds a worker can run. 10,000 cases each.

use bytes::BytesMut;
use cnibench_proto::codec::{self, MAX_FRAME};
use cnibench_proto::msg::Msg;
use cnibench_proto::units::Dur;
use cnibench_proto::{hist, plan};
use proptest::prelude::*;
use std::time::Duration;

fn config() -> ProptestConfig {
    ProptestConfig {
        cases: 10_000,
        ..ProptestConfig::default()
    }
}

/// Messages built from arbitrary field values.
fn any_msg() -> impl Strategy<Value = Msg> {
    prop_oneof![
        (any::<u32>(), any::<[u8; 32]>()).prop_map(|(v, n)| Msg::Challenge {
            proto_version: v,
            nonce: n
        }),
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
    fn decoder_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
        let mut buf = BytesMut::from(&bytes[..]);
        // Decode until it needs more bytes or fails; either is fine, a panic is not.
        while let Ok(Some(_)) = codec::decode(&mut buf) {}
        prop_assert!(buf.capacity() <= MAX_FRAME + 1024 || buf.capacity() <= bytes.len() * 2 + 1024);
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
}
