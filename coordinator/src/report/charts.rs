//! Inline SVG charts for `report.html`, drawn with plotters' SVG backend (text is
//! SVG `<text>` in the page's sans-serif font: no font files, no bitmaps).
//!
//! - [`spectrum`]: latency by percentile, x = log10(1/(1-q)) so 90%, 99%, 99.9%
//!   and 99.99% are evenly spaced; y = latency on a log scale.
//! - [`timeline`]: a rate per measured interval over time.
//! - [`bars`]: a median per label with a min..max whisker.
//! - [`by_param`]: a measure against a matrix parameter (log scale for values
//!   spanning a factor of 10 or more), ticks at the values run.
//! - [`cpu_chart`]: CPU cost bars, or a strip saying "CPU not measured".

use super::doc::Chart;
use crate::fmt;
use crate::result::Stat;
use hdrhistogram::Histogram;
use plotters::coord::Shift;
use plotters::coord::ranged1d::{DefaultFormatting, KeyPointHint, Ranged};
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};
use std::error::Error;
use std::ops::Range;

/// Chart size in px (scaled down by CSS on narrow screens).
const SIZE: (u32, u32) = (580, 330);
/// Height of a chart that only carries a sentence.
const STRIP: u32 = 80;
const FONT: &str = "sans-serif";
/// Font sizes as passed to plotters, which draws them at 1/1.24 of that (~12px).
const LABEL: f64 = 15.0;
const TITLE: f64 = 16.0;
const GREY: RGBColor = RGBColor(0x59, 0x63, 0x6e);
/// Colour-blind friendly categorical palette (Tableau 10).
const PALETTE: [RGBColor; 8] = [
    RGBColor(0x4e, 0x79, 0xa7),
    RGBColor(0xf2, 0x8e, 0x2b),
    RGBColor(0xe1, 0x57, 0x59),
    RGBColor(0x59, 0xa1, 0x4f),
    RGBColor(0xb0, 0x7a, 0xa1),
    RGBColor(0x76, 0xb7, 0xb2),
    RGBColor(0xed, 0xc9, 0x48),
    RGBColor(0x9c, 0x75, 0x5f),
];
/// Colour of a merged ("all repetitions") line.
pub(crate) const MERGED: RGBColor = RGBColor(0x1f, 0x23, 0x28);

/// The i-th series colour; the same index gets the same colour in every chart.
pub(crate) fn color(i: usize) -> RGBColor {
    PALETTE[i % PALETTE.len()]
}

type Drawn = Result<(), Box<dyn Error>>;
type Root<'a> = DrawingArea<SVGBackend<'a>, Shift>;

/// Draw on a white SVG canvas of `size` and return the document.
fn svg(size: (u32, u32), draw: impl FnOnce(&Root<'_>) -> Drawn) -> Result<String, String> {
    let mut buf = String::new();
    {
        let root = SVGBackend::with_string(&mut buf, size).into_drawing_area();
        root.fill(&WHITE).map_err(|e| e.to_string())?;
        draw(&root).map_err(|e| e.to_string())?;
        root.present().map_err(|e| e.to_string())?;
    }
    Ok(buf)
}

/// A chart on `root` with the margins and label areas of every chart.
fn frame<'a, 'b, 's>(root: &'a Root<'s>) -> ChartBuilder<'a, 'b, SVGBackend<'s>> {
    let mut b = ChartBuilder::on(root);
    b.margin(12)
        .margin_right(30)
        .x_label_area_size(40)
        .y_label_area_size(64);
    b
}

/// One line of a line chart; `None` y values leave a gap.
#[derive(Debug)]
pub(crate) struct Line {
    /// Legend text.
    pub label: String,
    /// Colour.
    pub color: RGBColor,
    /// Stroke width, px.
    pub width: u32,
    /// (x, y) points in data units.
    pub points: Vec<(f64, Option<f64>)>,
}

/// A linear f64 coordinate whose ticks (and grid lines) are exactly `ticks`,
/// e.g. at the percentiles 50%, 90%, ... of a spectrum.
#[derive(Debug, Clone)]
struct Ticked {
    range: Range<f64>,
    ticks: Vec<f64>,
}

impl Ranged for Ticked {
    type FormatOption = DefaultFormatting;
    type ValueType = f64;

    fn map(&self, v: &f64, limit: (i32, i32)) -> i32 {
        let span = self.range.end - self.range.start;
        if span == 0.0 {
            return (limit.0 + limit.1) / 2;
        }
        let f = (v - self.range.start) / span;
        limit.0 + (f * f64::from(limit.1 - limit.0)).round() as i32
    }

    fn key_points<H: KeyPointHint>(&self, hint: H) -> Vec<f64> {
        if hint.weight().allow_light_points() {
            Vec::new()
        } else {
            self.ticks.clone()
        }
    }

    fn range(&self) -> Range<f64> {
        self.range.clone()
    }
}

/// A linear axis with explicit tick positions and labels.
struct Axis {
    range: Range<f64>,
    ticks: Vec<f64>,
    label: Box<dyn Fn(f64) -> String>,
    desc: String,
}

impl Axis {
    fn coord(&self) -> Ticked {
        Ticked {
            range: self.range.clone(),
            ticks: self.ticks.clone(),
        }
    }
}

/// `0..top` with about `n` round ticks (steps of 1, 2, 2.5 or 5 times a power of
/// ten), labelled with as many decimals as the step needs.
fn zero_based(max: f64, n: usize, desc: String) -> Axis {
    let max = if max.is_finite() && max > 0.0 {
        max
    } else {
        1.0
    };
    let raw = max / n.max(1) as f64;
    let mag = 10f64.powf(raw.log10().floor());
    let step = [1.0, 2.0, 2.5, 5.0, 10.0]
        .iter()
        .map(|m| m * mag)
        .find(|s| *s >= raw)
        .unwrap_or(10.0 * mag);
    let steps = (max / step).ceil().max(1.0) as usize;
    let decimals = (0..6)
        .find(|d| {
            let scaled = step * 10f64.powi(*d);
            (scaled - scaled.round()).abs() < 1e-6 * scaled.max(1.0)
        })
        .unwrap_or(6) as usize;
    Axis {
        range: 0.0..step * steps as f64,
        ticks: (0..=steps).map(|i| step * i as f64).collect(),
        label: Box::new(move |v| format!("{v:.decimals$}")),
        desc,
    }
}

/// Split a line at its gaps into drawable runs.
fn segments(points: &[(f64, Option<f64>)]) -> Vec<Vec<(f64, f64)>> {
    points
        .split(|(_, y)| y.is_none())
        .map(|run| run.iter().filter_map(|(x, y)| y.map(|y| (*x, y))).collect())
        .filter(|run: &Vec<(f64, f64)>| !run.is_empty())
        .collect()
}

fn line_chart(
    x: Axis,
    y: Axis,
    lines: &[Line],
    legend: SeriesLabelPosition,
) -> Result<String, String> {
    svg(SIZE, |root| {
        let mut chart = frame(root).build_cartesian_2d(x.coord(), y.coord())?;
        let (xl, yl) = (&x.label, &y.label);
        chart
            .configure_mesh()
            .x_label_formatter(&|v| xl(*v))
            .y_label_formatter(&|v| yl(*v))
            .x_desc(x.desc.as_str())
            .y_desc(y.desc.as_str())
            .label_style((FONT, LABEL))
            .axis_desc_style((FONT, TITLE))
            .bold_line_style(RGBColor(0xe6, 0xe9, 0xec))
            .draw()?;
        for line in lines {
            let style = line.color.stroke_width(line.width);
            let runs = segments(&line.points);
            for (i, run) in runs.into_iter().enumerate() {
                let marker = line.points.len() <= 40;
                let series = LineSeries::new(run, style).point_size(if marker { 2 } else { 0 });
                let drawn = chart.draw_series(series)?;
                if i == 0 {
                    let c = line.color;
                    drawn.label(line.label.as_str()).legend(move |(px, py)| {
                        PathElement::new(vec![(px, py), (px + 18, py)], c.stroke_width(3))
                    });
                }
            }
        }
        chart
            .configure_series_labels()
            .position(legend)
            .label_font((FONT, LABEL))
            .background_style(WHITE.mix(0.85))
            .border_style(RGBColor(0xd0, 0xd7, 0xde))
            .draw()?;
        Ok(())
    })
}

/// Lines over a zero-based x axis described by `x_desc` (e.g. offered load),
/// y values divided by `scale` and shown in `unit`.
pub(crate) fn xy(x_desc: &str, unit: &str, scale: f64, lines: Vec<Line>) -> Result<String, String> {
    zero_based_lines(
        x_desc,
        1.05,
        unit,
        scale,
        lines,
        "nothing measured",
        SeriesLabelPosition::UpperLeft,
    )
}

/// A line chart on zero-based axes: x up to the largest x times `x_headroom`,
/// y values divided by `scale`; `empty` is shown when no y was measured.
fn zero_based_lines(
    x_desc: &str,
    x_headroom: f64,
    unit: &str,
    scale: f64,
    mut lines: Vec<Line>,
    empty: &str,
    legend: SeriesLabelPosition,
) -> Result<String, String> {
    for l in &mut lines {
        for p in &mut l.points {
            p.1 = p.1.map(|v| v / scale);
        }
    }
    let all = || lines.iter().flat_map(|l| l.points.iter());
    if all().all(|p| p.1.is_none()) {
        return message(empty, SIZE.1);
    }
    let x_max = all().map(|p| p.0).fold(0.0, f64::max);
    let y_max = all().filter_map(|p| p.1).fold(0.0, f64::max);
    let x = zero_based(x_max * x_headroom, 6, x_desc.to_string());
    let y = zero_based(y_max * 1.1, 5, unit.to_string());
    line_chart(x, y, &lines, legend)
}

/// A tick on a parameter axis: the value and how the scenario names spell it.
pub(crate) type ParamTick = (f64, String);

/// Whether parameter values (all positive) are drawn on a log scale: when
/// they span a factor of 10 or more, as size sweeps do.
pub(crate) fn log_scale(ticks: &[ParamTick]) -> bool {
    let lo = ticks.iter().map(|t| t.0).fold(f64::INFINITY, f64::min);
    let hi = ticks.iter().map(|t| t.0).fold(0.0, f64::max);
    lo > 0.0 && hi / lo >= 10.0
}

/// A measure against a matrix parameter: `lines` in data units (y divided by
/// `scale`, shown in `unit`), x ticks at `ticks` labelled as the scenario
/// names spell them (labels too close to the previous one are left out), on
/// a log scale per [`log_scale`].
pub(crate) fn by_param(
    x_desc: &str,
    ticks: &[ParamTick],
    unit: &str,
    scale: f64,
    mut lines: Vec<Line>,
) -> Result<String, String> {
    let log = log_scale(ticks);
    let tx = |v: f64| if log { v.log10() } else { v };
    for l in &mut lines {
        for p in &mut l.points {
            p.0 = tx(p.0);
            p.1 = p.1.map(|v| v / scale);
        }
    }
    let all = || lines.iter().flat_map(|l| l.points.iter());
    if ticks.is_empty() || all().all(|p| p.1.is_none()) {
        return message("nothing measured", SIZE.1);
    }
    let xs: Vec<f64> = ticks.iter().map(|t| tx(t.0)).collect();
    let lo = xs.iter().copied().fold(f64::INFINITY, f64::min);
    let hi = xs.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let pad = if hi > lo { (hi - lo) * 0.06 } else { 1.0 };
    let mut labels: Vec<(f64, String)> = Vec::new();
    let mut sorted: Vec<(f64, &str)> = xs
        .iter()
        .zip(ticks)
        .map(|(x, t)| (*x, t.1.as_str()))
        .collect();
    sorted.sort_by(|a, b| a.0.total_cmp(&b.0));
    for (x, text) in sorted {
        let crowded = labels
            .last()
            .is_some_and(|(prev, _)| x - prev < (hi - lo + 2.0 * pad) / 12.0);
        if !crowded {
            labels.push((x, text.to_string()));
        }
    }
    let x = Axis {
        range: lo - pad..hi + pad,
        ticks: xs,
        label: Box::new(move |v| {
            labels
                .iter()
                .find(|(x, _)| (x - v).abs() < 1e-9)
                .map_or_else(String::new, |(_, l)| l.clone())
        }),
        desc: if log {
            format!("{x_desc} (log scale)")
        } else {
            x_desc.to_string()
        },
    };
    let y_max = all().filter_map(|p| p.1).fold(0.0, f64::max);
    // Room above the lines for the legend, a row per line.
    let headroom = (1.1 + 0.1 * lines.len() as f64).clamp(1.25, 1.7);
    let y = zero_based(y_max * headroom, 5, unit.to_string());
    line_chart(x, y, &lines, SeriesLabelPosition::UpperRight)
}

/// The percentiles labelled on the spectrum's x axis.
const SPECTRUM_TICKS: [(f64, &str); 5] = [
    (0.5, "50%"),
    (0.9, "90%"),
    (0.99, "99%"),
    (0.999, "99.9%"),
    (0.9999, "99.99%"),
];

/// x position of quantile `q`.
fn spectrum_x(q: f64) -> f64 {
    (1.0 / (1.0 - q)).log10()
}

/// A spectrum line: legend text, colour, stroke width and histogram.
pub(crate) type HistLine<'a> = (String, RGBColor, u32, &'a Histogram<u64>);

/// The latency spectrum chart, or `None` when no line has latency samples
/// (stream kinds).
pub(crate) fn spectrum_chart(title: String, lines: &[HistLine<'_>]) -> Option<Chart> {
    lines.iter().any(|l| !l.3.is_empty()).then(|| Chart {
        title,
        svg: spectrum(lines),
    })
}

/// Latency spectrum: one line per histogram; empty histograms are left out.
fn spectrum(series: &[HistLine<'_>]) -> Result<String, String> {
    let series: Vec<_> = series.iter().filter(|s| !s.3.is_empty()).collect();
    if series.is_empty() {
        return message("no latency samples", SIZE.1);
    }
    let x_max = spectrum_x(0.9999);
    const STEPS: usize = 200;
    let lines: Vec<Line> = series
        .iter()
        .map(|(label, color, width, h)| Line {
            label: label.clone(),
            color: *color,
            width: *width,
            points: (0..=STEPS)
                .map(|i| {
                    let x = x_max * i as f64 / STEPS as f64;
                    let q = 1.0 - 10f64.powf(-x);
                    (x, Some((h.value_at_quantile(q).max(1) as f64).log10()))
                })
                .collect(),
        })
        .collect();
    let ys = || {
        lines
            .iter()
            .flat_map(|l| l.points.iter().filter_map(|p| p.1))
    };
    let lo = ys().fold(f64::INFINITY, f64::min).floor();
    let hi = ys().fold(f64::NEG_INFINITY, f64::max).ceil().max(lo + 1.0);
    let decades = (hi - lo) as i32;
    let per_decade: &[f64] = if decades <= 2 {
        &[1.0, 2.0, 5.0]
    } else {
        &[1.0]
    };
    let ticks = (lo as i32..=hi as i32)
        .flat_map(|e| per_decade.iter().map(move |m| (m * 10f64.powi(e)).log10()))
        .filter(|y| (lo..=hi).contains(y))
        .collect();
    let x = Axis {
        range: 0.0..x_max,
        ticks: SPECTRUM_TICKS.iter().map(|(q, _)| spectrum_x(*q)).collect(),
        label: Box::new(|v| {
            SPECTRUM_TICKS
                .iter()
                .find(|(q, _)| (spectrum_x(*q) - v).abs() < 1e-6)
                .map_or_else(String::new, |(_, l)| (*l).to_string())
        }),
        desc: "percentile".into(),
    };
    let y = Axis {
        range: lo..hi,
        ticks,
        label: Box::new(|v| fmt::ns(10f64.powf(v).round() as u64)),
        desc: "latency (log scale)".into(),
    };
    line_chart(x, y, &lines, SeriesLabelPosition::UpperLeft)
}

/// A rate over time: `lines` in data units divided by `scale` for display.
pub(crate) fn timeline(unit: &str, scale: f64, lines: Vec<Line>) -> Result<String, String> {
    zero_based_lines(
        "seconds since repetition start (warm-up excluded)",
        1.0,
        unit,
        scale,
        lines,
        "no interval measured",
        SeriesLabelPosition::LowerRight,
    )
}

/// How bar charts read, for their captions.
pub(crate) const BARS: &str = " (bar: median, whisker: min..max)";

/// One bar: label, colour and the median with its min..max spread (data units).
pub(crate) type Bar<'a> = (String, RGBColor, &'a Stat);

/// Bars of medians with min..max whiskers, values divided by `scale`.
pub(crate) fn bars(unit: &str, scale: f64, bars: &[Bar<'_>]) -> Result<String, String> {
    if bars.is_empty() {
        return message("nothing measured", SIZE.1);
    }
    let n = bars.len();
    let y_max = bars.iter().map(|b| b.2.max / scale).fold(0.0, f64::max);
    let y = zero_based(y_max * 1.15, 5, unit.to_string());
    let labels: Vec<String> = bars.iter().map(|b| b.0.clone()).collect();
    svg(SIZE, |root| {
        let mut chart = frame(root).build_cartesian_2d(
            Ticked {
                range: -0.5..n as f64 - 0.5,
                ticks: (0..n).map(|i| i as f64).collect(),
            },
            y.coord(),
        )?;
        let yl = &y.label;
        chart
            .configure_mesh()
            .disable_x_mesh()
            .x_label_formatter(&|v| {
                let i = v.round();
                (i >= 0.0)
                    .then(|| labels.get(i as usize).cloned())
                    .flatten()
                    .unwrap_or_default()
            })
            .y_label_formatter(&|v| yl(*v))
            .y_desc(y.desc.as_str())
            .label_style((FONT, LABEL))
            .axis_desc_style((FONT, TITLE))
            .bold_line_style(RGBColor(0xe6, 0xe9, 0xec))
            .draw()?;
        let value_style = TextStyle::from((FONT, LABEL).into_font())
            .color(&GREY)
            .pos(Pos::new(HPos::Center, VPos::Bottom));
        for (i, (_, color, s)) in bars.iter().enumerate() {
            let x = i as f64;
            let (med, min, max) = (s.median / scale, s.min / scale, s.max / scale);
            chart.draw_series([Rectangle::new(
                [(x - 0.3, 0.0), (x + 0.3, med)],
                color.filled(),
            )])?;
            let whisker = GREY.stroke_width(2);
            chart.draw_series([
                PathElement::new(vec![(x, min), (x, max)], whisker),
                PathElement::new(vec![(x - 0.08, min), (x + 0.08, min)], whisker),
                PathElement::new(vec![(x - 0.08, max), (x + 0.08, max)], whisker),
            ])?;
            chart.draw_series([Text::new(
                value_text(med),
                (x, max.max(med) + (y.range.end - y.range.start) * 0.02),
                value_style.clone(),
            )])?;
        }
        Ok(())
    })
}

/// A bar's value with three significant digits (whole numbers from 100 up).
fn value_text(v: f64) -> String {
    let magnitude = if v == 0.0 {
        0
    } else {
        v.abs().log10().floor() as i32
    };
    let decimals = (2 - magnitude).clamp(0, 6) as usize;
    format!("{v:.decimals$}")
}

/// The CPU cost chart: `bars` of node cores (per unit of traffic, as `unit`
/// says), or a strip saying "CPU not measured" when there are none.
pub(crate) fn cpu_chart(scenario: &str, unit: &str, bars_: &[Bar<'_>]) -> Chart {
    Chart {
        title: format!(
            "{scenario}: CPU cost{}",
            if bars_.is_empty() { "" } else { BARS }
        ),
        svg: if bars_.is_empty() {
            message("CPU not measured", STRIP)
        } else {
            bars(unit, 1.0, bars_)
        },
    }
}

/// An empty framed chart `height` px high carrying one sentence.
fn message(text: &str, height: u32) -> Result<String, String> {
    svg((SIZE.0, height), |root| {
        let (w, h) = (SIZE.0 as i32, height as i32);
        root.draw(&Rectangle::new(
            [(8, 8), (w - 8, h - 8)],
            RGBColor(0xd0, 0xd7, 0xde).stroke_width(1),
        ))?;
        let style = TextStyle::from((FONT, 22.0).into_font())
            .color(&GREY)
            .pos(Pos::new(HPos::Center, VPos::Center));
        root.draw(&Text::new(text.to_string(), (w / 2, h / 2), style))?;
        Ok(())
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use cnibench_proto::hist;

    #[test]
    fn spectrum_is_svg_with_percentile_labels() {
        let mut h = hist::new_latency();
        for v in 1..=10_000u64 {
            hist::record(&mut h, v * 1000);
        }
        let svg = spectrum(&[("loopback".into(), color(0), 2, &h)]).unwrap();
        assert!(svg.starts_with("<svg"), "{}", &svg[..80]);
        for label in ["50%", "99.99%", "loopback", "percentile"] {
            assert!(svg.contains(label), "{label}");
        }
        assert!(!svg.contains("href"), "no external references");
    }

    #[test]
    fn a_measure_against_a_parameter() {
        let ticks: Vec<ParamTick> = [1.0, 1024.0, 16384.0, 65536.0]
            .into_iter()
            .zip(["1", "1KiB", "16KiB", "64KiB"])
            .map(|(v, t)| (v, t.to_string()))
            .collect();
        assert!(log_scale(&ticks));
        assert!(!log_scale(&ticks[1..2]));
        assert!(!log_scale(&[(1.0, "1".into()), (8.0, "8".into())]));
        let line = Line {
            label: "vxlan".into(),
            color: color(0),
            width: 2,
            points: vec![
                (1.0, Some(50_000.0)),
                (1024.0, Some(60_000.0)),
                (16384.0, None),
                (65536.0, Some(250_000.0)),
            ],
        };
        let svg = by_param("request_size, bytes", &ticks, "p50, us", 1e3, vec![line]).unwrap();
        for text in [
            "1KiB",
            "64KiB",
            "vxlan",
            "request_size, bytes (log scale)",
            "p50, us",
        ] {
            assert!(svg.contains(text), "{text}");
        }
        let empty = Line {
            label: "x".into(),
            color: color(1),
            width: 2,
            points: vec![(1.0, None)],
        };
        let svg = by_param("streams", &ticks[..1], "Gbit/s", 1e9, vec![empty]).unwrap();
        assert!(svg.contains("nothing measured"));
    }

    #[test]
    fn ticks_and_gaps() {
        let a = zero_based(9.3, 5, String::new());
        assert_eq!(a.ticks, vec![0.0, 2.0, 4.0, 6.0, 8.0, 10.0]);
        assert_eq!((a.label)(4.0), "4");
        let b = zero_based(1.1, 6, String::new());
        assert_eq!((b.label)(b.ticks[3]), "0.6");
        assert_eq!(value_text(17.149), "17.1");
        assert_eq!(value_text(0.0471), "0.0471");
        assert_eq!(value_text(20935.4), "20935");
        let s = segments(&[
            (0.0, Some(1.0)),
            (1.0, None),
            (2.0, Some(2.0)),
            (3.0, Some(3.0)),
        ]);
        assert_eq!(s, vec![vec![(0.0, 1.0)], vec![(2.0, 2.0), (3.0, 3.0)]]);
        assert!(
            message("CPU not measured", STRIP)
                .unwrap()
                .contains("CPU not measured")
        );
    }
}
