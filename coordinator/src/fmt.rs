//! Numbers for people: latency, rates, CPU cores and dates, spelled one way
//! wherever they appear (the table printed after a run, summary.csv, the
//! reports, progress lines, flags and objectives).
//!
//! ```
//! use cnibench_coordinator::fmt;
//! assert_eq!(fmt::ns(12_345), "12.3us");
//! assert_eq!(fmt::gbit_s(1.25e9), "1.250 Gbit/s");
//! assert_eq!(fmt::per_s(700.4), "700/s");
//! ```

/// A latency or duration in ns, in the unit that fits: `999ns`, `12.3us`,
/// `2.50ms`, `1.20s`.
pub fn ns(ns: u64) -> String {
    match ns {
        0..1_000 => format!("{ns}ns"),
        1_000..1_000_000 => format!("{:.1}us", ns as f64 / 1e3),
        1_000_000..1_000_000_000 => format!("{:.2}ms", ns as f64 / 1e6),
        _ => format!("{:.2}s", ns as f64 / 1e9),
    }
}

/// A signed duration in ns, for clock offsets: `-1.5us`, `+2.00ms`.
pub fn signed_ns(ns: i64) -> String {
    let sign = if ns < 0 { "-" } else { "+" };
    format!("{sign}{}", self::ns(ns.unsigned_abs()))
}

/// Bit/s as Gbit/s with `digits` decimals, without the unit: `1.250`.
pub fn gbps(bps: f64, digits: usize) -> String {
    format!("{:.digits$}", bps / 1e9)
}

/// Bit/s as Gbit/s with 3 decimals and the unit: `1.250 Gbit/s`.
pub fn gbit_s(bps: f64) -> String {
    format!("{} Gbit/s", gbps(bps, 3))
}

/// A count or rate in whole numbers: `700`.
pub fn whole(v: f64) -> String {
    format!("{v:.0}")
}

/// Operations per second, whole: `700/s`.
pub fn per_s(v: f64) -> String {
    format!("{v:.0}/s")
}

/// Requests per second, whole: `700 req/s`.
pub fn req_s(v: f64) -> String {
    format!("{v:.0} req/s")
}

/// CPU cores, 3 decimals: `0.125`.
pub fn cores(v: f64) -> String {
    format!("{v:.3}")
}

/// A percentage, 3 decimals: `0.125%`.
pub fn pct(v: f64) -> String {
    format!("{v:.3}%")
}

/// `digits` decimals, or nothing when there is no value (a CSV cell).
pub fn fixed(v: Option<f64>, digits: usize) -> String {
    v.map(|x| format!("{x:.digits$}")).unwrap_or_default()
}

/// UTC time of a unix timestamp in ns, `YYYY-MM-DD HH:MM:SS UTC`.
pub fn utc(unix_ns: i64) -> String {
    let secs = unix_ns.div_euclid(1_000_000_000);
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    // Civil date from days since 1970-01-01 (H. Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02} {:02}:{:02}:{:02} UTC",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn latency() {
        assert_eq!(ns(999), "999ns");
        assert_eq!(ns(12_345), "12.3us");
        assert_eq!(ns(2_500_000), "2.50ms");
        assert_eq!(signed_ns(-1500), "-1.5us");
    }

    #[test]
    fn rates_and_cells() {
        assert_eq!(gbps(2.5e9, 2), "2.50");
        assert_eq!(gbit_s(1.25e9), "1.250 Gbit/s");
        assert_eq!(
            (whole(699.6), per_s(700.0), req_s(7.0)),
            ("700".into(), "700/s".into(), "7 req/s".into())
        );
        assert_eq!((cores(0.125), pct(0.5)), ("0.125".into(), "0.500%".into()));
        assert_eq!(
            (fixed(Some(1.0), 2), fixed(None, 2)),
            ("1.00".into(), String::new())
        );
    }

    #[test]
    fn utc_dates() {
        assert_eq!(utc(0), "1970-01-01 00:00:00 UTC");
        assert_eq!(utc(951_827_696_000_000_000), "2000-02-29 12:34:56 UTC");
        assert_eq!(utc(1_735_689_599_999_999_999), "2024-12-31 23:59:59 UTC");
    }
}
