//! Hand-written SVG bar charts for the HTML reports: no script, no external resource, every
//! label escaped. Each chart is an `<svg role="img">` with a `<title>`, bars are
//! `<rect class="bar">` with a `<title>` tooltip.

use std::fmt::Write as _;

use super::html::esc;

/// One bar.
pub(super) struct Bar {
    /// Axis label.
    pub label: String,
    /// Height (or length).
    pub value: f64,
    /// Value as shown in the tooltip and next to horizontal bars.
    pub shown: String,
}

/// How axis ticks are written.
#[derive(Clone, Copy)]
pub(super) enum Unit {
    /// Plain counts.
    Count,
    /// US dollars.
    Dollars,
}

const WIDTH: f64 = 760.0;

/// A vertical bar chart (days, histogram buckets) `id` with accessible title `title`.
pub(super) fn vertical(id: &str, title: &str, bars: &[Bar], unit: Unit) -> String {
    let height = 280.0;
    let (left, right, top) = (78.0, 12.0, 14.0);
    let plot_w = WIDTH - left - right;
    // Labels are about 6.6 px a character: turn them when the widest does not fit its slot.
    let widest = bars
        .iter()
        .map(|b| b.label.chars().count())
        .max()
        .unwrap_or(0) as f64
        * 6.6;
    let rotate = bars.len() > 12 || widest > plot_w / bars.len().max(1) as f64 * 0.95;
    let bottom = if rotate { 78.0 } else { 34.0 };
    let plot_h = height - top - bottom;
    let (max, step) = axis(
        bars.iter().map(|b| b.value).fold(0.0, f64::max),
        matches!(unit, Unit::Count),
    );
    let mut s = open(id, title, WIDTH, height);
    // Grid lines and tick labels.
    let mut v = 0.0;
    while v <= max + step / 2.0 {
        let y = top + plot_h - v / max * plot_h;
        let _ = write!(
            s,
            r#"<line class="grid" x1="{left}" y1="{y:.1}" x2="{x2}" y2="{y:.1}"/><text class="tick" x="{tx}" y="{ty:.1}" text-anchor="end">{label}</text>"#,
            x2 = WIDTH - right,
            tx = left - 6.0,
            ty = y + 4.0,
            label = esc(&tick(v, step, unit)),
        );
        v += step;
    }
    if bars.is_empty() {
        let _ = write!(
            s,
            r#"<text class="empty" x="{}" y="{}" text-anchor="middle">no data</text>"#,
            left + plot_w / 2.0,
            top + plot_h / 2.0
        );
    }
    let slot = plot_w / bars.len().max(1) as f64;
    let bar_w = (slot * 0.72).max(1.0);
    for (i, b) in bars.iter().enumerate() {
        let h = if max > 0.0 {
            b.value / max * plot_h
        } else {
            0.0
        };
        let x = left + i as f64 * slot + (slot - bar_w) / 2.0;
        let y = top + plot_h - h;
        let _ = write!(
            s,
            r#"<rect class="bar" x="{x:.1}" y="{y:.1}" width="{bar_w:.1}" height="{h:.1}"><title>{} — {}</title></rect>"#,
            esc(&b.label),
            esc(&b.shown)
        );
        let cx = x + bar_w / 2.0;
        let ly = top + plot_h + 14.0;
        if rotate {
            // Label every bar while they fit, else every n-th.
            let every = (bars.len() / 31).max(1);
            if i.is_multiple_of(every) {
                let _ = write!(
                    s,
                    r#"<text class="label" x="{cx:.1}" y="{ly:.1}" text-anchor="end" transform="rotate(-45 {cx:.1} {ly:.1})">{}</text>"#,
                    esc(&b.label)
                );
            }
        } else {
            let _ = write!(
                s,
                r#"<text class="label" x="{cx:.1}" y="{ly:.1}" text-anchor="middle">{}</text>"#,
                esc(&b.label)
            );
        }
    }
    let _ = write!(
        s,
        r#"<line class="axis" x1="{left}" y1="{y}" x2="{x2}" y2="{y}"/></svg>"#,
        y = top + plot_h,
        x2 = WIDTH - right
    );
    s
}

/// A horizontal bar chart (models, groups) `id` with accessible title `title`.
pub(super) fn horizontal(id: &str, title: &str, bars: &[Bar]) -> String {
    let row = 26.0;
    let (left, right, top) = (200.0, 110.0, 8.0);
    let height = top * 2.0 + row * bars.len().max(1) as f64;
    let plot_w = WIDTH - left - right;
    let max = bars.iter().map(|b| b.value).fold(0.0, f64::max);
    let mut s = open(id, title, WIDTH, height);
    if bars.is_empty() {
        let _ = write!(
            s,
            r#"<text class="empty" x="{}" y="{}" text-anchor="middle">no data</text>"#,
            WIDTH / 2.0,
            top + row / 2.0 + 4.0
        );
    }
    for (i, b) in bars.iter().enumerate() {
        let y = top + i as f64 * row;
        let w = if max > 0.0 {
            b.value / max * plot_w
        } else {
            0.0
        };
        let _ = write!(
            s,
            r#"<text class="label" x="{lx}" y="{ty:.1}" text-anchor="end">{label}</text><rect class="bar" x="{left}" y="{by:.1}" width="{w:.1}" height="{bh:.1}"><title>{full} — {shown}</title></rect><text class="value" x="{vx:.1}" y="{ty:.1}">{shown}</text>"#,
            lx = left - 8.0,
            ty = y + row / 2.0 + 4.0,
            label = esc(&shorten(&b.label, 28)),
            by = y + 4.0,
            bh = row - 8.0,
            full = esc(&b.label),
            shown = esc(&b.shown),
            vx = left + w + 6.0,
        );
    }
    s.push_str("</svg>");
    s
}

fn open(id: &str, title: &str, w: f64, h: f64) -> String {
    format!(
        r#"<svg id="{id}" class="chart" role="img" aria-labelledby="{id}-title" viewBox="0 0 {w} {h:.0}" width="{w}" height="{h:.0}" xmlns="http://www.w3.org/2000/svg"><title id="{id}-title">{}</title>"#,
        esc(title)
    )
}

fn shorten(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        s.to_owned()
    } else {
        let mut t: String = s.chars().take(max - 1).collect();
        t.push('…');
        t
    }
}

/// A round axis maximum at or above `max` and its tick step (4 steps); whole steps for counts.
fn axis(max: f64, whole: bool) -> (f64, f64) {
    if whole && max <= 4.0 {
        return (4.0, 1.0);
    }
    if max <= 0.0 || !max.is_finite() {
        return (1.0, 0.25);
    }
    let raw = max / 4.0;
    let mag = 10f64.powf(raw.log10().floor());
    let step = [1.0, 2.0, 2.5, 5.0, 10.0]
        .iter()
        .map(|m| m * mag)
        .find(|s| s * 4.0 >= max)
        .unwrap_or(10.0 * mag);
    (step * 4.0, step)
}

fn tick(v: f64, step: f64, unit: Unit) -> String {
    let decimals = if step >= 1.0 {
        0
    } else {
        (-step.log10().floor() as usize + 1).min(10)
    };
    let n = format!("{v:.decimals$}");
    match unit {
        Unit::Count => n,
        Unit::Dollars => format!("${n}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn axes_are_round() {
        assert_eq!(axis(7.0, true), (8.0, 2.0));
        assert_eq!(axis(100.0, true), (100.0, 25.0));
        assert_eq!(axis(2.0, true), (4.0, 1.0));
        assert_eq!(axis(0.0, false), (1.0, 0.25));
        assert_eq!(axis(0.0123, false), (0.02, 0.005));
        assert_eq!(tick(0.005, 0.005, Unit::Dollars), "$0.0050");
        assert_eq!(tick(50.0, 25.0, Unit::Count), "50");
    }

    #[test]
    fn labels_are_escaped() {
        let bars = [Bar {
            label: "<script>alert(1)</script>".into(),
            value: 3.0,
            shown: "3".into(),
        }];
        for svg in [
            vertical("a", "t", &bars, Unit::Count),
            horizontal("b", "t", &bars),
        ] {
            assert!(!svg.contains("<script"), "{svg}");
            assert!(svg.contains("&lt;script&gt;"));
        }
    }
}
