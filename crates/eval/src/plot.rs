//! Line plots as standalone SVG: score against budget, error against layer.
//!
//! Small on purpose: linear axes with rounded ticks, one polyline with markers per series, a
//! legend sized to its longest name; no dependency beyond string formatting.

use std::fmt::Write;

/// One named line of `(x, y)` points; non-finite points are left out.
pub struct Series {
    pub name: String,
    pub points: Vec<(f64, f64)>,
}

/// A line plot of several series on shared axes.
pub struct LinePlot {
    pub title: String,
    pub x_label: String,
    pub y_label: String,
    pub series: Vec<Series>,
    /// Place x ticks at the data's x values (budgets) instead of rounded steps (layers).
    pub x_at_data: bool,
}

/// The plotting area, in pixels; the legend to its right grows with the names and their count.
const PLOT_WIDTH: f64 = 490.0;
const PLOT_HEIGHT: f64 = 345.0;
const LEFT: f64 = 70.0;
const TOP: f64 = 40.0;
const BOTTOM: f64 = 55.0;
/// Legend: the sample line, then the name; one row per series.
const LEGEND_GAP: f64 = 12.0;
const LEGEND_LINE: f64 = 20.0;
const LEGEND_ROW: f64 = 18.0;
/// Width allowed per character of a 12 px sans-serif name: 0.64 em, a digit's, `=`'s or `+`'s
/// width, above the average over policy names, so that names do not clip.
const CHAR_WIDTH: f64 = 7.7;

/// Colour-blind-safe palette (Okabe–Ito).
const COLOURS: [&str; 8] = [
    "#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#000000", "#F0E442",
];
/// Once the colours are used up they repeat with the next dash pattern, so no two series look
/// alike (24 distinct styles).
const DASHES: [&str; 3] = ["", "8 4", "2 3"];

/// The stroke of series `i`: its colour and, past the first round of colours, a dash pattern.
fn stroke(i: usize) -> (&'static str, String) {
    let colour = COLOURS[i % COLOURS.len()];
    let dash = DASHES[(i / COLOURS.len()) % DASHES.len()];
    let dash = if dash.is_empty() {
        String::new()
    } else {
        format!(r#" stroke-dasharray="{dash}""#)
    };
    (colour, dash)
}

/// About five round ticks covering `[lo, hi]`: multiples of 1, 2, 2.5 or 5 times a power of ten,
/// computed as `i·m / 10^k` so that 0.6 is 0.6 and not 0.6000000000000001.
fn ticks(lo: f64, hi: f64) -> Vec<f64> {
    let span = (hi - lo).max(f64::EPSILON);
    let raw = span / 5.0;
    let exponent = raw.log10().floor() as i32;
    let scale = |x: f64| {
        if exponent >= 0 {
            x * 10f64.powi(exponent)
        } else {
            x / 10f64.powi(-exponent)
        }
    };
    let m = [1.0, 2.0, 2.5, 5.0, 10.0]
        .into_iter()
        .find(|&m| scale(m) >= raw)
        .unwrap_or(10.0);
    let step = scale(m);
    let first = (lo / step).ceil() as i64;
    let last = (hi / step).floor() as i64;
    (first..=last).map(|i| scale(i as f64 * m)).collect()
}

fn label(x: f64) -> String {
    if x == x.round() && x.abs() < 1e6 {
        format!("{x:.0}")
    } else {
        format!("{x:.3}")
            .trim_end_matches('0')
            .trim_end_matches('.')
            .to_string()
    }
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

impl LinePlot {
    /// The plot as an SVG document.
    pub fn svg(&self) -> String {
        let points = || {
            self.series
                .iter()
                .flat_map(|s| s.points.iter())
                .filter(|(x, y)| x.is_finite() && y.is_finite())
        };
        let (mut x0, mut x1, mut y0, mut y1) = (f64::MAX, f64::MIN, 0f64, f64::MIN);
        for &(x, y) in points() {
            x0 = x0.min(x);
            x1 = x1.max(x);
            y0 = y0.min(y);
            y1 = y1.max(y);
        }
        if x0 > x1 {
            (x0, x1, y1) = (0.0, 1.0, 1.0);
        }
        if x1 == x0 {
            x1 = x0 + 1.0;
        }
        y1 = if y1 <= y0 { y0 + 1.0 } else { y1 * 1.05 };
        let (pw, ph) = (PLOT_WIDTH, PLOT_HEIGHT);
        let longest = self
            .series
            .iter()
            .map(|s| s.name.chars().count())
            .max()
            .unwrap_or(0);
        let width = LEFT + pw + LEGEND_GAP + LEGEND_LINE + 6.0 + CHAR_WIDTH * longest as f64 + 10.0;
        let rows = TOP + 10.0 + LEGEND_ROW * self.series.len() as f64;
        let height = (TOP + ph).max(rows) + BOTTOM;
        let sx = |x: f64| LEFT + (x - x0) / (x1 - x0) * pw;
        let sy = |y: f64| TOP + ph - (y - y0) / (y1 - y0) * ph;
        let mut svg = String::new();
        let _ = write!(
            svg,
            r#"<svg xmlns="http://www.w3.org/2000/svg" width="{width:.0}" height="{height:.0}" font-family="sans-serif" font-size="12">"#
        );
        let _ = write!(
            svg,
            r#"<rect width="100%" height="100%" fill="white"/><text x="{}" y="22" text-anchor="middle" font-size="14">{}</text>"#,
            LEFT + pw / 2.0,
            escape(&self.title)
        );
        let x_ticks = if self.x_at_data {
            let mut xs: Vec<f64> = points().map(|p| p.0).collect();
            xs.sort_by(f64::total_cmp);
            xs.dedup();
            xs
        } else {
            ticks(x0, x1)
        };
        for x in x_ticks {
            let _ = write!(
                svg,
                r##"<line x1="{0:.1}" y1="{1}" x2="{0:.1}" y2="{2}" stroke="#ddd"/><text x="{0:.1}" y="{3}" text-anchor="middle">{4}</text>"##,
                sx(x),
                TOP,
                TOP + ph,
                TOP + ph + 16.0,
                label(x)
            );
        }
        for y in ticks(y0, y1) {
            let _ = write!(
                svg,
                r##"<line x1="{0}" y1="{1:.1}" x2="{2}" y2="{1:.1}" stroke="#ddd"/><text x="{3}" y="{4:.1}" text-anchor="end">{5}</text>"##,
                LEFT,
                sy(y),
                LEFT + pw,
                LEFT - 6.0,
                sy(y) + 4.0,
                label(y)
            );
        }
        let _ = write!(
            svg,
            r##"<rect x="{LEFT}" y="{TOP}" width="{pw}" height="{ph}" fill="none" stroke="#333"/><text x="{}" y="{}" text-anchor="middle">{}</text><text transform="translate(16 {}) rotate(-90)" text-anchor="middle">{}</text>"##,
            LEFT + pw / 2.0,
            TOP + ph + BOTTOM - 14.0,
            escape(&self.x_label),
            TOP + ph / 2.0,
            escape(&self.y_label)
        );
        for (i, s) in self.series.iter().enumerate() {
            let (colour, dash) = stroke(i);
            let path: Vec<String> = s
                .points
                .iter()
                .filter(|(x, y)| x.is_finite() && y.is_finite())
                .map(|&(x, y)| format!("{:.1},{:.1}", sx(x), sy(y)))
                .collect();
            let _ = write!(
                svg,
                r#"<polyline fill="none" stroke="{colour}" stroke-width="2"{dash} points="{}"/>"#,
                path.join(" ")
            );
            for p in &path {
                let (x, y) = p.split_once(',').expect("formatted as x,y");
                let _ = write!(svg, r#"<circle cx="{x}" cy="{y}" r="3" fill="{colour}"/>"#);
            }
            let ly = TOP + 10.0 + LEGEND_ROW * i as f64;
            let _ = write!(
                svg,
                r#"<line x1="{0}" y1="{ly}" x2="{1}" y2="{ly}" stroke="{colour}" stroke-width="2"{dash}/><text x="{2}" y="{3}">{4}</text>"#,
                LEFT + pw + LEGEND_GAP,
                LEFT + pw + LEGEND_GAP + LEGEND_LINE,
                LEFT + pw + LEGEND_GAP + LEGEND_LINE + 6.0,
                ly + 4.0,
                escape(&s.name)
            );
        }
        svg.push_str("</svg>\n");
        svg
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ticks_are_round_and_cover_the_range() {
        assert_eq!(ticks(0.0, 1.0), vec![0.0, 0.2, 0.4, 0.6, 0.8, 1.0]);
        assert_eq!(ticks(0.0, 29.0), vec![0.0, 10.0, 20.0]);
        assert_eq!(label(0.25), "0.25");
        assert_eq!(label(128.0), "128");
    }

    #[test]
    fn the_svg_has_one_line_and_marker_per_point_per_series() {
        let plot = LinePlot {
            title: "score <vs> budget".into(),
            x_label: "budget".into(),
            y_label: "score".into(),
            series: vec![
                Series {
                    name: "snapkv".into(),
                    points: vec![(64.0, 0.2), (128.0, 0.5), (256.0, f64::NAN)],
                },
                Series {
                    name: "full".into(),
                    points: vec![(64.0, 1.0), (256.0, 1.0)],
                },
            ],
            x_at_data: true,
        };
        let svg = plot.svg();
        assert!(svg.starts_with("<svg") && svg.ends_with("</svg>\n"));
        assert_eq!(svg.matches("<polyline").count(), 2);
        assert_eq!(svg.matches("<circle").count(), 4);
        assert!(svg.contains("score &lt;vs&gt; budget"));
        // x ticks at the budgets: 64, 128, 256.
        assert!(svg.contains(">128</text>") && svg.contains(">256</text>"));
    }

    #[test]
    fn many_series_stay_distinct_and_long_names_fit() {
        let long = "snapkv+moments:window=32,kernel=15";
        let series = (0..20)
            .map(|i| Series {
                name: if i == 19 {
                    long.into()
                } else {
                    format!("p{i}")
                },
                points: vec![(64.0, i as f64), (128.0, i as f64 + 1.0)],
            })
            .collect();
        let plot = LinePlot {
            title: "t".into(),
            x_label: "budget".into(),
            y_label: "score".into(),
            series,
            x_at_data: true,
        };
        let svg = plot.svg();
        let styles: Vec<_> = (0..20).map(stroke).collect();
        for (i, a) in styles.iter().enumerate() {
            assert!(
                !styles[..i].contains(a),
                "series {i} repeats an earlier style"
            );
        }
        // Polyline and legend line of series 8 carry the first dash pattern.
        assert_eq!(svg.matches(r#"stroke-dasharray="8 4""#).count(), 16);
        let attr = |name: &str| -> f64 {
            let from = svg.find(&format!(r#"{name}=""#)).unwrap() + name.len() + 2;
            svg[from..from + svg[from..].find('"').unwrap()]
                .parse()
                .unwrap()
        };
        // The legend text starts at 598 px; 34 characters need 262 px.
        assert!(attr("width") >= 598.0 + 7.7 * long.chars().count() as f64);
        // Twenty legend rows (50 + 19·18 px) run past the 385 px plot bottom: the SVG grows.
        assert!(attr("height") >= 50.0 + 19.0 * 18.0 + 55.0);
    }
}
