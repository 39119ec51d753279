//! Parameter matrices: a scenario field written as a list expands into one
//! scenario per value, as netperf and qperf size sweeps (and perf-tests' MSS
//! sweep) do:
//!
//! ```yaml
//! - { name: rr, traffic: tcp-rr, path: pod-to-pod-cross-node, request_size: [1, 1KiB, 16KiB] }
//! ```
//!
//! runs `rr/request_size=1`, `rr/request_size=1KiB` and `rr/request_size=16KiB`.
//!
//! - The fields that may be lists are [`FIELDS`]: the sizes, the parallelism
//!   and the offered rate. Other fields (durations, placement, objectives)
//!   describe how a scenario is measured, not a parameter of the path.
//! - Several lists make the cross product. Names list the fields in
//!   alphabetical order (`rr/request_size=1KiB,streams=2`); the scenarios run
//!   in that order too, the first field varying slowest, each field's values in
//!   the order written.
//! - Values are named canonically (`1024` and `1k` are both `1KiB`); the same
//!   value twice in one list is an error, and so is an empty list.
//! - A rate list holds fixed rates of one kind (`[1000/s, 10000/s]` or
//!   `[1Gbit/s, 5Gbit/s]`): neither `max` nor a sweep has a value to plot the
//!   point at. A scalar `rate: sweep(...)` next to lists runs one sweep per
//!   point (the capacity at each message size, say).
//! - A plan holds at most [`MAX_SCENARIOS`] scenarios, lists expanded; the
//!   error says how many a matrix would make.
//!
//! Each expanded scenario keeps where it came from in
//! [`ScenarioSpec::matrix`](super::ScenarioSpec::matrix) (and so in
//! `result.json`), so reports can group the points and plot a measure against
//! the parameter.

use super::ScenarioSpec;
use super::validate::Invalid;
use crate::units::{Rate, RateOrSweep, Size};
use serde::de::{self, IntoDeserializer};
use serde::{Deserialize, Deserializer, Serialize};
use serde_saphyr::{Location, Spanned};
use std::fmt;
use std::marker::PhantomData;

/// The fields a scenario may write as a list, in the order names list them.
pub const FIELDS: [&str; 6] = [
    "connections",
    "message_size",
    "rate",
    "request_size",
    "response_size",
    "streams",
];

/// Most scenarios a plan may hold once its lists are expanded: each runs for
/// its duration times its repetitions, and a report draws a section for each.
pub const MAX_SCENARIOS: usize = 256;

/// Where an expanded scenario sits in its matrix.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MatrixPoint {
    /// The name of the scenario as written, shared by all its points.
    pub group: String,
    /// The list-valued fields and this point's value of each, in name order.
    pub params: Vec<MatrixParam>,
}

/// One list-valued field at one point.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MatrixParam {
    /// The field, e.g. `request_size`.
    pub field: String,
    /// Its value as the name spells it, e.g. `1KiB`.
    pub value: String,
    /// The value as a number: bytes, a count, or requests or bits per second.
    pub number: f64,
}

impl MatrixPoint {
    /// This point's parameters as its name spells them: `request_size=1KiB,streams=2`.
    pub fn label(&self) -> String {
        self.params
            .iter()
            .map(|p| format!("{}={}", p.field, p.value))
            .collect::<Vec<_>>()
            .join(",")
    }
}

/// A field as written: one value, or a list of values each with its position.
#[derive(Debug)]
pub(super) enum OneOrList<T> {
    /// A plain value.
    One(T),
    /// A matrix axis.
    List(Vec<Spanned<T>>),
}

impl<T: Copy> OneOrList<T> {
    /// The value, or the first of the list: the fields of a scenario before
    /// each point of its matrix sets its own.
    pub(super) fn first(&self) -> Option<T> {
        match self {
            OneOrList::One(v) => Some(*v),
            OneOrList::List(l) => l.first().map(|s| s.value),
        }
    }
}

impl<'de, T: Deserialize<'de>> Deserialize<'de> for OneOrList<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(OneOrListVisitor(PhantomData))
    }
}

/// A sequence is a list; any scalar goes to `T` as it would without lists, so
/// its errors read the same.
struct OneOrListVisitor<T>(PhantomData<T>);

impl<'de, T: Deserialize<'de>> de::Visitor<'de> for OneOrListVisitor<T> {
    type Value = OneOrList<T>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a value or a list of values")
    }

    fn visit_seq<A: de::SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        let mut out = Vec::new();
        while let Some(v) = seq.next_element::<Spanned<T>>()? {
            out.push(v);
        }
        Ok(OneOrList::List(out))
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
        T::deserialize(v.into_deserializer()).map(OneOrList::One)
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Self::Value, E> {
        T::deserialize(v.into_deserializer()).map(OneOrList::One)
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Self::Value, E> {
        T::deserialize(v.into_deserializer()).map(OneOrList::One)
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Self::Value, E> {
        T::deserialize(v.into_deserializer()).map(OneOrList::One)
    }

    fn visit_bool<E: de::Error>(self, v: bool) -> Result<Self::Value, E> {
        T::deserialize(v.into_deserializer()).map(OneOrList::One)
    }
}

/// One value of a list-valued field.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) enum Value {
    /// `streams`, `connections`.
    Count(u32),
    /// `request_size`, `response_size`, `message_size`.
    Size(Size),
    /// `rate` (fixed rates only).
    Rate(Rate),
}

impl Value {
    /// The value of `field` in `spec`, if `field` is one of [`FIELDS`].
    pub(super) fn of(field: &str, spec: &ScenarioSpec) -> Option<Value> {
        Some(match field {
            "connections" => Value::Count(spec.connections),
            "message_size" => Value::Size(spec.message_size),
            "rate" => Value::Rate(spec.rate),
            "request_size" => Value::Size(spec.request_size),
            "response_size" => Value::Size(spec.response_size),
            "streams" => Value::Count(spec.streams),
            _ => return None,
        })
    }

    /// Set `field` of `spec` to this value.
    fn set(self, field: &str, spec: &mut ScenarioSpec) {
        match (field, self) {
            ("connections", Value::Count(v)) => spec.connections = v,
            ("streams", Value::Count(v)) => spec.streams = v,
            ("message_size", Value::Size(v)) => spec.message_size = v,
            ("request_size", Value::Size(v)) => spec.request_size = v,
            ("response_size", Value::Size(v)) => spec.response_size = v,
            ("rate", Value::Rate(v)) => spec.rate = v,
            _ => {}
        }
    }

    /// As names and plans spell it: `4`, `1KiB`, `20000/s`, `5Gbit/s`.
    pub(super) fn text(self) -> String {
        match self {
            Value::Count(v) => v.to_string(),
            Value::Size(v) => v.to_string(),
            Value::Rate(Rate::BitsPerSecond(v)) => [(1e9, "G"), (1e6, "M"), (1e3, "K")]
                .iter()
                .find(|(scale, _)| v >= *scale && (v / scale).fract() == 0.0)
                .map_or_else(
                    || format!("{v}bit/s"),
                    |(scale, prefix)| format!("{}{prefix}bit/s", v / scale),
                ),
            Value::Rate(r) => r.to_string(),
        }
    }

    fn number(self) -> f64 {
        match self {
            Value::Count(v) => f64::from(v),
            Value::Size(v) => v.0 as f64,
            Value::Rate(r) => r.value().unwrap_or(0.0),
        }
    }
}

/// One list-valued field of a scenario: its values, each with where it is written.
#[derive(Debug)]
pub(super) struct Axis {
    /// One of [`FIELDS`].
    pub(super) field: &'static str,
    /// Values in the order written.
    pub(super) values: Vec<(Value, Location)>,
}

/// A broken rule of a list, with the element it is about (or `None`: the
/// scenario).
pub(super) type Misplaced = (Option<Location>, Invalid);

fn misplaced(at: Option<Location>, field: &'static str, message: String) -> Misplaced {
    (at, Invalid { field, message })
}

/// Append `field`'s axis to `axes` when it is written as a list; `value`
/// turns an element into a [`Value`] or says why it cannot be one.
pub(super) fn push_axis<T: Copy>(
    axes: &mut Vec<Axis>,
    scenario: &str,
    field: &'static str,
    written: Option<&OneOrList<T>>,
    value: impl Fn(T) -> Result<Value, String>,
) -> Result<(), Misplaced> {
    let Some(OneOrList::List(list)) = written else {
        return Ok(());
    };
    if list.is_empty() {
        return Err(misplaced(
            None,
            field,
            format!("scenario `{scenario}`: {field}: an empty list expands to no scenario"),
        ));
    }
    let mut values: Vec<(Value, Location)> = Vec::with_capacity(list.len());
    for (i, el) in list.iter().enumerate() {
        let at = Some(el.referenced);
        let v = value(el.value).map_err(|why| {
            misplaced(
                at,
                field,
                format!("scenario `{scenario}`: {field} element {}: {why}", i + 1),
            )
        })?;
        if values.iter().any(|(seen, _)| *seen == v) {
            return Err(misplaced(
                at,
                field,
                format!(
                    "scenario `{scenario}`: {field} lists {} twice (element {})",
                    v.text(),
                    i + 1
                ),
            ));
        }
        if let (Value::Rate(a), Some((Value::Rate(b), _))) = (v, values.first())
            && std::mem::discriminant(&a) != std::mem::discriminant(b)
        {
            return Err(misplaced(
                at,
                field,
                format!(
                    "scenario `{scenario}`: {field} element {}: a rate list is either requests per second or bitrates, not both",
                    i + 1
                ),
            ));
        }
        values.push((v, el.referenced));
    }
    axes.push(Axis { field, values });
    Ok(())
}

/// A `rate:` list element as a point of the matrix: a fixed rate.
pub(super) fn fixed_rate(r: RateOrSweep) -> Result<Value, String> {
    match r {
        RateOrSweep::Rate(Rate::Max) => Err(
            "a rate list holds fixed rates; `max` has no value to plot it at: make it a scenario of its own".into(),
        ),
        RateOrSweep::Rate(r) => Ok(Value::Rate(r)),
        RateOrSweep::Sweep(_) => Err(
            "a rate list holds fixed rates, not sweeps: write one `rate: sweep(...)` (it runs at every point of the other lists)".into(),
        ),
    }
}

/// How many scenarios `axes` expand to (1 without lists); saturating, so a
/// plan asking for billions is refused, not counted out.
pub(super) fn count(axes: &[Axis]) -> usize {
    axes.iter()
        .fold(1usize, |n, a| n.saturating_mul(a.values.len()))
}

/// One scenario per point of the cross product of `axes` (the first axis
/// varying slowest), each with the position of every list element it took, so
/// that an error about that field can point at it. Without axes, `base` alone.
pub(super) fn expand(
    base: &ScenarioSpec,
    axes: &[Axis],
) -> Vec<(ScenarioSpec, Vec<(&'static str, Location)>)> {
    if axes.is_empty() {
        return vec![(base.clone(), Vec::new())];
    }
    let mut out = Vec::with_capacity(count(axes));
    let mut index = vec![0usize; axes.len()];
    loop {
        let mut spec = base.clone();
        let mut params = Vec::with_capacity(axes.len());
        let mut places = Vec::with_capacity(axes.len());
        for (axis, &i) in axes.iter().zip(&index) {
            let (v, at) = axis.values[i];
            v.set(axis.field, &mut spec);
            params.push(MatrixParam {
                field: axis.field.to_string(),
                value: v.text(),
                number: v.number(),
            });
            places.push((axis.field, at));
        }
        let point = MatrixPoint {
            group: base.name.clone(),
            params,
        };
        spec.name = format!("{}/{}", base.name, point.label());
        spec.matrix = Some(point);
        out.push((spec, places));
        // The next point: the last axis fastest.
        let mut k = axes.len();
        loop {
            if k == 0 {
                return out;
            }
            k -= 1;
            index[k] += 1;
            if index[k] < axes[k].values.len() {
                break;
            }
            index[k] = 0;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::{PlanError, load};
    use super::*;

    fn plan(scenarios: &str) -> Result<Vec<ScenarioSpec>, PlanError> {
        load("m.yaml", &format!("name: m\nscenarios:\n{scenarios}")).map(|p| p.scenarios)
    }

    fn names(specs: &[ScenarioSpec]) -> Vec<&str> {
        specs.iter().map(|s| s.name.as_str()).collect()
    }

    #[test]
    fn one_list_expands_in_the_order_written() {
        let s = plan(
            "  - { name: rr, traffic: tcp-rr, path: pod-to-pod-cross-node, request_size: [1, 16k, 1KiB, 1MB] }\n",
        )
        .unwrap();
        assert_eq!(
            names(&s),
            [
                "rr/request_size=1",
                "rr/request_size=16KiB",
                "rr/request_size=1KiB",
                "rr/request_size=1000000"
            ]
        );
        let sizes: Vec<u64> = s.iter().map(|s| s.request_size.0).collect();
        assert_eq!(sizes, [1, 16 << 10, 1 << 10, 1_000_000]);
        let m = s[1].matrix.as_ref().unwrap();
        assert_eq!(m.group, "rr");
        assert_eq!(
            m.params,
            [MatrixParam {
                field: "request_size".into(),
                value: "16KiB".into(),
                number: 16384.0
            }]
        );
        assert_eq!(m.label(), "request_size=16KiB");
        // Everything else is the scenario's.
        assert!(
            s.iter()
                .all(|x| x.response_size == Size(1) && x.connections == 1)
        );
    }

    #[test]
    fn several_lists_make_the_cross_product_in_name_order() {
        // Written streams first: names and order still follow FIELDS.
        let s = plan(
            "  - name: st\n    traffic: tcp-stream\n    path: pod-to-pod-cross-node\n    streams: [1, 4]\n    message_size: [1KiB, 64KiB, 1MiB]\n  - { name: after, traffic: tcp-rr, path: pod-to-pod-cross-node }\n",
        )
        .unwrap();
        assert_eq!(
            names(&s),
            [
                "st/message_size=1KiB,streams=1",
                "st/message_size=1KiB,streams=4",
                "st/message_size=64KiB,streams=1",
                "st/message_size=64KiB,streams=4",
                "st/message_size=1MiB,streams=1",
                "st/message_size=1MiB,streams=4",
                "after",
            ]
        );
        let v: Vec<(u64, u32)> = s[..6]
            .iter()
            .map(|x| (x.message_size.0, x.streams))
            .collect();
        assert_eq!(
            v,
            [
                (1024, 1),
                (1024, 4),
                (65536, 1),
                (65536, 4),
                (1 << 20, 1),
                (1 << 20, 4)
            ]
        );
        assert!(s[6].matrix.is_none());
        let fields: Vec<&str> = s[0]
            .matrix
            .as_ref()
            .unwrap()
            .params
            .iter()
            .map(|p| p.field.as_str())
            .collect();
        assert_eq!(fields, ["message_size", "streams"]);
    }

    #[test]
    fn every_list_field() {
        let s = plan(
            "  - { name: a, traffic: tcp-rr, path: pod-to-pod-cross-node, connections: [1, 2], response_size: [1, 2], rate: [100/s, 200/s] }\n  - { name: b, traffic: udp-stream, path: pod-to-pod-cross-node, rate: [500Mbit/s, 1Gbit/s, 1500000bit/s] }\n",
        )
        .unwrap();
        assert_eq!(s.len(), 11);
        assert_eq!(
            s[7].name,
            "a/connections=2,rate=200/s,response_size=2",
            "{:?}",
            names(&s)
        );
        assert_eq!(
            (s[7].connections, s[7].rate, s[7].response_size),
            (2, Rate::PerSecond(200.0), Size(2))
        );
        assert_eq!(
            names(&s[8..]),
            ["b/rate=500Mbit/s", "b/rate=1Gbit/s", "b/rate=1500Kbit/s"]
        );
        assert_eq!(s[9].matrix.as_ref().unwrap().params[0].number, 1e9);
    }

    #[test]
    fn a_sweep_runs_at_every_point() {
        let s = plan(
            "  - { name: cap, traffic: tcp-rr, path: pod-to-pod-cross-node, request_size: [1, 1KiB], rate: 'sweep(1000/s..8000/s, x2)' }\n",
        )
        .unwrap();
        assert_eq!(s.len(), 2);
        assert!(s.iter().all(|x| x.sweep.is_some()));
    }

    /// The plan of `scenario` is refused about `field`, saying `says`, at the
    /// line holding `at` (and not before), where `at` starts.
    #[track_caller]
    fn refused(scenario: &str, at: &str, field: &str, says: &str) {
        let text = format!("name: m\nscenarios:\n{scenario}");
        let (line, column) = text
            .lines()
            .enumerate()
            .find_map(|(i, l)| l.find(at).map(|c| (i as u64 + 1, c as u64 + 1)))
            .unwrap();
        let e = load("m.yaml", &text).unwrap_err();
        assert_eq!(
            (e.line, e.column, e.field.as_deref()),
            (Some(line), Some(column), Some(field)),
            "{e}"
        );
        assert!(e.message.contains(says), "{e}");
    }

    #[test]
    fn a_bad_element_names_its_own_position() {
        let head = "  - name: rr\n    traffic: tcp-rr\n    path: pod-to-pod-cross-node\n";
        // Parse errors: serde points at the element.
        let bad = |tail: &str| format!("{head}    {tail}\n");
        refused(
            &bad("request_size: [1, 2, lots]"),
            "lots]",
            "request_size",
            "`lots` does not start with a number",
        );
        refused(
            &bad("connections: [1, -2]"),
            "-2]",
            "connections",
            "invalid u32",
        );
        // Rules of one scenario, about an element's value: that element.
        refused(
            &bad("request_size: [1, 0, 2]"),
            "0, 2]",
            "request_size",
            "scenario `rr/request_size=0`: request_size must be 1 byte..64MiB",
        );
        refused(
            &bad("connections:\n      - 1\n      - 20000"),
            "20000",
            "connections",
            "connections must be 1..=10000, got 20000",
        );
        refused(
            &bad("rate: [100/s, 1Gbit/s]"),
            "1Gbit/s]",
            "rate",
            "not both",
        );
        refused(
            &bad("rate: [1Gbit/s, 2Gbit/s]"),
            "1Gbit/s,",
            "rate",
            "in requests",
        );
        refused(
            &bad("rate: [100/s, max]"),
            "max]",
            "rate",
            "element 2: a rate list holds fixed rates; `max`",
        );
        refused(
            &bad("rate: ['sweep(1/s..4/s, x2)']"),
            "'sweep",
            "rate",
            "not sweeps",
        );
        refused(
            &bad("streams: [1, 2, 4, 2]"),
            "2]",
            "streams",
            "streams lists 2 twice (element 4)",
        );
        refused(
            &bad("request_size: [1024, 1k]"),
            "1k]",
            "request_size",
            "lists 1KiB twice",
        );
        // An empty list has no element: the scenario.
        refused(&bad("streams: []"), "name: rr", "streams", "empty list");
        // A rule about another field: the scenario.
        refused(
            &bad("request_size: [1, 2]\n    interval: 1h"),
            "name: rr",
            "interval",
            "scenario `rr/request_size=1`",
        );
    }

    #[test]
    fn lists_only_where_a_matrix_makes_sense() {
        let e = plan(
            "  - { name: rr, traffic: tcp-rr, path: pod-to-pod-cross-node, duration: [1s, 2s] }\n",
        )
        .unwrap_err();
        assert_eq!(e.field.as_deref(), Some("duration"), "{e}");
        let e = plan(
            "  - { name: rr, traffic: tcp-rr, path: pod-to-pod-cross-node, streams: { a: 1 } }\n",
        )
        .unwrap_err();
        assert_eq!(e.field.as_deref(), Some("streams"), "{e}");
        assert!(e.message.contains("a value or a list of values"), "{e}");
    }

    #[test]
    fn names_collide_with_other_scenarios() {
        let e = plan("  - { name: rr/streams=2, traffic: tcp-stream, path: pod-to-pod-cross-node }\n  - { name: rr, traffic: tcp-stream, path: pod-to-pod-cross-node, streams: [1, 2] }\n")
            .unwrap_err();
        assert_eq!((e.line, e.field.as_deref()), (Some(4), Some("name")), "{e}");
        assert!(
            e.message.contains("duplicate scenario name `rr/streams=2`"),
            "{e}"
        );
        let e = plan("  - { name: ' ', traffic: tcp-stream, path: pod-to-pod-cross-node, streams: [1, 2] }\n")
            .unwrap_err();
        assert!(e.message.contains("must not be empty"), "{e}");
    }

    #[test]
    fn the_limit_says_how_many_a_matrix_makes() {
        let many: Vec<String> = (1..=100).map(|i| i.to_string()).collect();
        let text = format!(
            "  - {{ name: a, traffic: tcp-rr, path: pod-to-pod-cross-node }}\n  - {{ name: rr, traffic: tcp-rr, path: pod-to-pod-cross-node, request_size: [1, 2, 3], connections: [{}] }}\n",
            many.join(", ")
        );
        let e = plan(&text).unwrap_err();
        assert_eq!(
            (e.line, e.field.as_deref()),
            (Some(4), Some("connections")),
            "{e}"
        );
        assert!(
            e.message.contains(
                "connections x request_size = 100 x 3 expands to 300 scenarios; with the 1 before it the plan would hold 301, more than 256"
            ),
            "{e}"
        );
        // Billions are counted without being listed.
        let ten: Vec<String> = (1..=1000).map(|i| i.to_string()).collect();
        let l = ten.join(", ");
        let text = format!(
            "  - {{ name: rr, traffic: tcp-rr, path: pod-to-pod-cross-node, request_size: [{l}], response_size: [{l}], connections: [{l}] }}\n"
        );
        let e = plan(&text).unwrap_err();
        assert!(e.message.contains("expands to 1000000000 scenarios"), "{e}");
        // Exactly the limit loads.
        let l: Vec<String> = (1..=128).map(|i| i.to_string()).collect();
        let text = format!(
            "  - {{ name: rr, traffic: tcp-rr, path: pod-to-pod-cross-node, request_size: [{}], response_size: [1, 2] }}\n",
            l.join(", ")
        );
        assert_eq!(plan(&text).unwrap().len(), MAX_SCENARIOS);
    }

    #[test]
    fn plain_plans_are_held_to_the_limit_too() {
        let one = "  - { name: sNUM, traffic: tcp-rr, path: pod-to-pod-cross-node }\n";
        let text: String = (0..=MAX_SCENARIOS)
            .map(|i| one.replace("NUM", &i.to_string()))
            .collect();
        let e = plan(&text).unwrap_err();
        assert!(e.message.contains("more than 256 scenarios"), "{e}");
    }

    #[test]
    fn rate_names() {
        for (r, text) in [
            (Rate::BitsPerSecond(5e9), "5Gbit/s"),
            (Rate::BitsPerSecond(2.5e9), "2500Mbit/s"),
            (Rate::BitsPerSecond(1500.0), "1500bit/s"),
            (Rate::BitsPerSecond(999.0), "999bit/s"),
            (Rate::PerSecond(20000.0), "20000/s"),
            (Rate::PerSecond(0.5), "0.5/s"),
        ] {
            assert_eq!(Value::Rate(r).text(), text);
            assert_eq!(text.parse::<Rate>().unwrap(), r, "{text} parses back");
        }
    }
}
