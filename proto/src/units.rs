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
        if bytes.fract() != 0.0 || bytes > u64::MAX as f64 {
            return Err(format!("size `{s}` is not a whole number of bytes"));
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

impl fmt::Display for Rate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Rate::Max => write!(f, "max"),
            Rate::PerSecond(v) => write!(f, "{v}/s"),
            Rate::BitsPerSecond(v) => write!(f, "{v}bit/s"),
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
    }

    #[test]
    fn sizes() {
        assert_eq!("1500".parse::<Size>().unwrap().0, 1500);
        assert_eq!("64KiB".parse::<Size>().unwrap().0, 65536);
        assert_eq!("64k".parse::<Size>().unwrap().0, 65536);
        assert_eq!("1MB".parse::<Size>().unwrap().0, 1_000_000);
        assert!("1.5".parse::<Size>().is_err());
        assert_eq!(Size(65536).to_string(), "64KiB");
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
}
