//! Human-friendly quantities used in plans: durations (`10s`, `250ms`), byte sizes
//! (`1KiB`, `64k`, `1500`) and rates (`max`, `20000/s`, `5Gbit/s`, `100000pps`).
//!
//! Each type parses from a string (or a bare number where that is unambiguous) and
//! serializes back to a canonical string, so a plan echoed into `result.json` reads
//! like the plan that was written.

use serde::{Deserialize, Deserializer, Serialize, Serializer, de};
use std::fmt;
use std::str::FromStr;
use std::time::Duration;

/// Split `"12.5ms"` into `(12.5, "ms")`.
fn split_number(s: &str) -> Result<(f64, &str), String> {
    let s = s.trim();
    let end = s
        .find(|c: char| !(c.is_ascii_digit() || c == '.' || c == '_'))
        .unwrap_or(s.len());
    let (num, unit) = s.split_at(end);
    let num: String = num.chars().filter(|c| *c != '_').collect();
    let value: f64 = num
        .parse()
        .map_err(|_| format!("`{s}` does not start with a number"))?;
    if !value.is_finite() || value < 0.0 {
        return Err(format!("`{s}` is not a finite non-negative number"));
    }
    Ok((value, unit.trim()))
}

/// A span of time written as `10s`, `1.5s`, `250ms`, `100us`, `2m` or `1h`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default)]
pub struct Dur(pub Duration);

impl FromStr for Dur {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let (value, unit) = split_number(s)?;
        let scale = match unit {
            "ns" => 1e-9,
            "us" | "µs" => 1e-6,
            "ms" => 1e-3,
            "s" => 1.0,
            "m" | "min" => 60.0,
            "h" => 3600.0,
            "" => return Err(format!("duration `{s}` needs a unit (ns, us, ms, s, m, h)")),
            other => return Err(format!("unknown duration unit `{other}` in `{s}`")),
        };
        Duration::try_from_secs_f64(value * scale)
            .map(Dur)
            .map_err(|_| format!("duration `{s}` is out of range"))
    }
}

impl fmt::Display for Dur {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let ns = self.0.as_nanos();
        if ns.is_multiple_of(1_000_000_000) {
            write!(f, "{}s", ns / 1_000_000_000)
        } else if ns.is_multiple_of(1_000_000) {
            write!(f, "{}ms", ns / 1_000_000)
        } else if ns.is_multiple_of(1_000) {
            write!(f, "{}us", ns / 1_000)
        } else {
            write!(f, "{ns}ns")
        }
    }
}

/// A byte count written as `1500`, `64KiB`, `64k` (= KiB), `1MB` (10^6) or `1MiB`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default)]
pub struct Size(pub u64);

impl FromStr for Size {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let (value, unit) = split_number(s)?;
        let scale: f64 = match unit {
            "" | "B" => 1.0,
            "k" | "K" | "KiB" => 1024.0,
            "KB" | "kB" => 1e3,
            "m" | "M" | "MiB" => 1024.0 * 1024.0,
            "MB" => 1e6,
            "GiB" | "g" | "G" => 1024.0 * 1024.0 * 1024.0,
            "GB" => 1e9,
            other => return Err(format!("unknown size unit `{other}` in `{s}`")),
        };
        let bytes = value * scale;
        if bytes.fract() != 0.0 {
            return Err(format!("size `{s}` is not a whole number of bytes"));
        }
        // 2^64 as f64; `as u64` would quietly make anything above it u64::MAX.
        if bytes >= u64::MAX as f64 {
            return Err(format!("size `{s}` is out of range"));
        }
        Ok(Size(bytes as u64))
    }
}

impl fmt::Display for Size {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let b = self.0;
        if b >= 1 << 20 && b.is_multiple_of(1 << 20) {
            write!(f, "{}MiB", b >> 20)
        } else if b >= 1 << 10 && b.is_multiple_of(1 << 10) {
            write!(f, "{}KiB", b >> 10)
        } else {
            write!(f, "{b}")
        }
    }
}

/// How fast a client generates load.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub enum Rate {
    /// Closed loop: each connection sends the next request as soon as the last completes.
    #[default]
    Max,
    /// Open loop: this many requests (or datagrams) per second in total.
    PerSecond(f64),
    /// Open loop: this many bits per second in total (stream kinds).
    BitsPerSecond(f64),
}

impl FromStr for Rate {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let t = s.trim();
        if t == "max" {
            return Ok(Rate::Max);
        }
        let (value, unit) = split_number(t)?;
        if value <= 0.0 {
            return Err(format!("rate `{s}` must be positive (or `max`)"));
        }
        let bits = |scale: f64| Ok(Rate::BitsPerSecond(value * scale));
        match unit {
            "/s" | "pps" | "rps" => Ok(Rate::PerSecond(value)),
            "bit/s" | "bps" => bits(1.0),
            "Kbit/s" | "kbit/s" | "Kbps" => bits(1e3),
            "Mbit/s" | "Mbps" => bits(1e6),
            "Gbit/s" | "Gbps" => bits(1e9),
            _ => Err(format!(
                "unknown rate `{s}`: use `max`, `N/s`, `Npps` or a bitrate like `5Gbit/s`"
            )),
        }
    }
}

impl Rate {
    /// The number in the rate (requests or bits per second); `None` for `max`.
    pub fn value(self) -> Option<f64> {
        match self {
            Rate::Max => None,
            Rate::PerSecond(v) | Rate::BitsPerSecond(v) => Some(v),
        }
    }
}

impl fmt::Display for Rate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Rate::Max => write!(f, "max"),
            Rate::PerSecond(v) => write!(f, "{v}/s"),
            Rate::BitsPerSecond(v) => write!(f, "{v}bit/s"),
        }
    }
}

/// A share written as `0.1%` (or a bare number of percent).
#[derive(Debug, Clone, Copy, PartialEq, PartialOrd, Default)]
pub struct Percent(pub f64);

impl FromStr for Percent {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let (value, unit) = split_number(s)?;
        match unit {
            "%" | "" if value <= 100.0 => Ok(Percent(value)),
            "%" | "" => Err(format!("percentage `{s}` is above 100%")),
            other => Err(format!(
                "unknown unit `{other}` in `{s}`: write a percentage like `0.5%`"
            )),
        }
    }
}

impl fmt::Display for Percent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}%", self.0)
    }
}

/// An offered-load sweep: `sweep(1000/s..100000/s, x2)` runs 1000/s, 2000/s, ...
/// up to 100000/s (both ends of the same kind of rate), stopping at the first
/// step that does not hold.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Sweep {
    /// First (lowest) offered rate.
    pub from: Rate,
    /// Highest offered rate tried.
    pub to: Rate,
    /// Factor between steps (> 1).
    pub factor: f64,
}

/// Most steps a sweep may have (before refinement).
pub const MAX_SWEEP_STEPS: usize = 64;

impl Sweep {
    /// The geometric steps, in the unit of `from` (requests or bits per second).
    pub fn steps(&self) -> Vec<f64> {
        let (Some(from), Some(to)) = (self.from.value(), self.to.value()) else {
            return Vec::new();
        };
        let mut out = vec![from];
        let mut r = from;
        while out.len() < MAX_SWEEP_STEPS {
            r *= self.factor;
            if r > to * (1.0 + 1e-9) {
                break;
            }
            out.push(r);
        }
        out
    }

    /// The rate `r` in the unit of this sweep.
    pub fn rate(&self, r: f64) -> Rate {
        match self.from {
            Rate::BitsPerSecond(_) => Rate::BitsPerSecond(r),
            _ => Rate::PerSecond(r),
        }
    }
}

impl FromStr for Sweep {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let bad = || format!("`{s}` is not a sweep: write `sweep(1000/s..100000/s, x2)`");
        let inner = s
            .trim()
            .strip_prefix("sweep(")
            .and_then(|r| r.strip_suffix(')'))
            .ok_or_else(bad)?;
        let (range, factor) = inner.split_once(',').ok_or_else(bad)?;
        let (from, to) = range.split_once("..").ok_or_else(bad)?;
        let (from, to): (Rate, Rate) = (from.parse()?, to.parse()?);
        let factor: f64 = factor
            .trim()
            .strip_prefix('x')
            .ok_or_else(bad)?
            .parse()
            .map_err(|_| bad())?;
        if !(factor > 1.0 && factor <= 100.0) {
            return Err(format!(
                "sweep factor in `{s}` must be above 1 and at most 100"
            ));
        }
        match (from, to) {
            (Rate::PerSecond(a), Rate::PerSecond(b))
            | (Rate::BitsPerSecond(a), Rate::BitsPerSecond(b))
                if a < b => {}
            (Rate::PerSecond(_), Rate::PerSecond(_))
            | (Rate::BitsPerSecond(_), Rate::BitsPerSecond(_)) => {
                return Err(format!("sweep `{s}` must go from a lower to a higher rate"));
            }
            _ => {
                return Err(format!(
                    "sweep `{s}`: both ends must be rates of the same kind, not `max`"
                ));
            }
        }
        let sw = Sweep { from, to, factor };
        if sw.steps().len() >= MAX_SWEEP_STEPS {
            return Err(format!(
                "sweep `{s}` has more than {MAX_SWEEP_STEPS} steps: use a larger factor"
            ));
        }
        Ok(sw)
    }
}

impl fmt::Display for Sweep {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "sweep({}..{}, x{})", self.from, self.to, self.factor)
    }
}

/// What a plan's `rate:` field holds: one rate, or a sweep.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum RateOrSweep {
    /// One offered load.
    Rate(Rate),
    /// A search over offered loads.
    Sweep(Sweep),
}

impl FromStr for RateOrSweep {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        if s.trim().starts_with("sweep") {
            s.parse().map(RateOrSweep::Sweep)
        } else {
            s.parse().map(RateOrSweep::Rate)
        }
    }
}

impl fmt::Display for RateOrSweep {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RateOrSweep::Rate(r) => r.fmt(f),
            RateOrSweep::Sweep(s) => s.fmt(f),
        }
    }
}

/// Accept a string, or a bare integer where the type allows one (sizes).
struct StrOrInt<T>(std::marker::PhantomData<T>);

impl<T: FromStr<Err = String>> de::Visitor<'_> for StrOrInt<T> {
    type Value = T;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a quantity such as `10s`, `64KiB` or `20000/s`")
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<T, E> {
        v.parse().map_err(E::custom)
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<T, E> {
        v.to_string().parse().map_err(E::custom)
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<T, E> {
        v.to_string().parse().map_err(E::custom)
    }
    fn visit_f64<E: de::Error>(self, v: f64) -> Result<T, E> {
        v.to_string().parse().map_err(E::custom)
    }
}

macro_rules! serde_via_string {
    ($t:ty) => {
        impl<'de> Deserialize<'de> for $t {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                // Plans (YAML) may write a bare number; binary wire formats carry the string.
                let visitor = StrOrInt::<$t>(std::marker::PhantomData);
                if d.is_human_readable() {
                    d.deserialize_any(visitor)
                } else {
                    d.deserialize_str(visitor)
                }
            }
        }
        impl Serialize for $t {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.collect_str(self)
            }
        }
    };
}
serde_via_string!(Dur);
serde_via_string!(Size);
serde_via_string!(Rate);
serde_via_string!(Percent);
serde_via_string!(Sweep);
serde_via_string!(RateOrSweep);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!("10s".parse::<Dur>().unwrap().0, Duration::from_secs(10));
        assert_eq!(
            "1.5s".parse::<Dur>().unwrap().0,
            Duration::from_millis(1500)
        );
        assert_eq!(
            "250ms".parse::<Dur>().unwrap().0,
            Duration::from_millis(250)
        );
        assert_eq!("2m".parse::<Dur>().unwrap().0, Duration::from_secs(120));
        assert!("10".parse::<Dur>().unwrap_err().contains("needs a unit"));
        assert!("10 parsecs".parse::<Dur>().is_err());
        assert!("-1s".parse::<Dur>().is_err());
        assert_eq!(Dur(Duration::from_millis(1500)).to_string(), "1500ms");
        // Value x unit beyond what a Duration holds is an error, not a wrap.
        for big in ["100000000000000000000s", "10000000000000000h"] {
            assert!(
                big.parse::<Dur>().unwrap_err().contains("out of range"),
                "{big}"
            );
        }
        let huge = format!("{}h", "9".repeat(400));
        assert!(huge.parse::<Dur>().unwrap_err().contains("not a finite"));
    }

    #[test]
    fn sizes() {
        assert_eq!("1500".parse::<Size>().unwrap().0, 1500);
        assert_eq!("64KiB".parse::<Size>().unwrap().0, 65536);
        assert_eq!("64k".parse::<Size>().unwrap().0, 65536);
        assert_eq!("1MB".parse::<Size>().unwrap().0, 1_000_000);
        assert!("1.5".parse::<Size>().is_err());
        assert_eq!(Size(65536).to_string(), "64KiB");
        assert!(
            "18446744073709551616"
                .parse::<Size>()
                .unwrap_err()
                .contains("out of range")
        );
        assert!(
            "17179869184GiB"
                .parse::<Size>()
                .unwrap_err()
                .contains("out of range")
        );
        assert_eq!("16777216GiB".parse::<Size>().unwrap().0, 1 << 54);
    }

    #[test]
    fn rates() {
        assert_eq!("max".parse::<Rate>().unwrap(), Rate::Max);
        assert_eq!("20000/s".parse::<Rate>().unwrap(), Rate::PerSecond(20000.0));
        assert_eq!("100000pps".parse::<Rate>().unwrap(), Rate::PerSecond(1e5));
        assert_eq!("5Gbit/s".parse::<Rate>().unwrap(), Rate::BitsPerSecond(5e9));
        assert!("0/s".parse::<Rate>().is_err());
        assert!("fast".parse::<Rate>().is_err());
    }

    #[test]
    fn percents() {
        assert_eq!("0.5%".parse::<Percent>().unwrap(), Percent(0.5));
        assert_eq!("2".parse::<Percent>().unwrap(), Percent(2.0));
        assert!("101%".parse::<Percent>().is_err());
        assert!("1ms".parse::<Percent>().is_err());
    }

    #[test]
    fn sweeps() {
        let s: Sweep = "sweep(1000/s..10000/s, x2)".parse().unwrap();
        assert_eq!(s.steps(), vec![1000.0, 2000.0, 4000.0, 8000.0]);
        assert_eq!(s.rate(4000.0), Rate::PerSecond(4000.0));
        assert_eq!(s.to_string().parse::<Sweep>().unwrap(), s);
        let b: Sweep = "sweep(1Gbit/s..4Gbit/s, x2)".parse().unwrap();
        assert_eq!(b.steps(), vec![1e9, 2e9, 4e9]);
        assert_eq!(b.rate(2e9), Rate::BitsPerSecond(2e9));
        for bad in [
            "sweep(1000/s..100/s, x2)",
            "sweep(1000/s..1Gbit/s, x2)",
            "sweep(max..1000/s, x2)",
            "sweep(1/s..1000000000/s, x1.01)",
            "sweep(1000/s..2000/s, x1)",
            "sweep(1000/s..2000/s)",
            "sweep 1000/s",
        ] {
            assert!(bad.parse::<Sweep>().is_err(), "{bad}");
        }
        assert!(matches!(
            "500/s".parse::<RateOrSweep>().unwrap(),
            RateOrSweep::Rate(_)
        ));
        assert!(matches!(
            "sweep(1/s..4/s, x2)".parse::<RateOrSweep>().unwrap(),
            RateOrSweep::Sweep(_)
        ));
    }
}
