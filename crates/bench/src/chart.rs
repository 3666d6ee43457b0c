//! The SVG chart: per scenario, throughput over time (accepted and end to end), and the latency
//! percentiles side by side.

use std::fmt::Write as _;

use crate::run::Outcome;

const WIDTH: f64 = 960.0;
const ROW: f64 = 220.0;
const PLOT_LEFT: f64 = 70.0;
const PLOT_WIDTH: f64 = 520.0;
const BARS_LEFT: f64 = 660.0;
const BARS_WIDTH: f64 = 260.0;
const PLOT_HEIGHT: f64 = 150.0;

const ACCEPTED: &str = "#1f77b4";
const E2E: &str = "#2ca02c";

pub fn svg(outcomes: &[Outcome]) -> String {
    let height = 40.0 + ROW * outcomes.len().max(1) as f64;
    let mut s = String::new();
    let _ = writeln!(
        s,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{height}" viewBox="0 0 {WIDTH} {height}" font-family="sans-serif" font-size="11">"#
    );
    let _ = writeln!(s, r#"<rect width="100%" height="100%" fill="white"/>"#);
    let _ = writeln!(
        s,
        r#"<text x="{PLOT_LEFT}" y="20" font-size="14" font-weight="bold">Premise benchmark: throughput over time (msg/s) and latency percentiles (ms)</text>"#
    );
    let _ = writeln!(
        s,
        r#"<text x="{PLOT_LEFT}" y="34"><tspan fill="{ACCEPTED}">■ accepted</tspan>  <tspan fill="{E2E}">■ end to end</tspan></text>"#
    );
    for (i, o) in outcomes.iter().enumerate() {
        let top = 50.0 + ROW * i as f64;
        throughput(&mut s, o, top);
        latencies(&mut s, o, top);
    }
    s.push_str("</svg>\n");
    s
}

fn throughput(s: &mut String, o: &Outcome, top: f64) {
    let bottom = top + PLOT_HEIGHT;
    let t_max = o.series.iter().map(|p| p.t).fold(1.0, f64::max);
    let y_max =
        nice(o.series.iter().map(|p| p.accepted_per_s.max(p.e2e_per_s)).fold(1.0, f64::max));
    let _ = writeln!(
        s,
        r#"<text x="{PLOT_LEFT}" y="{}" font-weight="bold">{}: {} (accepted {:.0}/s, end to end {:.0}/s)</text>"#,
        top - 4.0,
        esc(&o.name),
        esc(&o.about),
        o.accepted_per_s,
        o.e2e_per_s
    );
    let _ = writeln!(
        s,
        r##"<rect x="{PLOT_LEFT}" y="{top}" width="{PLOT_WIDTH}" height="{PLOT_HEIGHT}" fill="none" stroke="#999"/>"##
    );
    for k in 0..=4 {
        let v = y_max * f64::from(k) / 4.0;
        let y = bottom - PLOT_HEIGHT * f64::from(k) / 4.0;
        let _ = writeln!(
            s,
            r##"<line x1="{PLOT_LEFT}" x2="{}" y1="{y:.1}" y2="{y:.1}" stroke="#eee"/><text x="{}" y="{:.1}" text-anchor="end">{v:.0}</text>"##,
            PLOT_LEFT + PLOT_WIDTH,
            PLOT_LEFT - 4.0,
            y + 4.0
        );
    }
    let _ = writeln!(
        s,
        r#"<text x="{}" y="{}" text-anchor="end">{t_max:.0} s</text>"#,
        PLOT_LEFT + PLOT_WIDTH,
        bottom + 14.0
    );
    for (colour, value) in [(ACCEPTED, 0), (E2E, 1)] {
        let points: Vec<String> = o
            .series
            .iter()
            .map(|p| {
                let v = if value == 0 { p.accepted_per_s } else { p.e2e_per_s };
                format!(
                    "{:.1},{:.1}",
                    PLOT_LEFT + PLOT_WIDTH * p.t / t_max,
                    bottom - PLOT_HEIGHT * (v / y_max).min(1.0)
                )
            })
            .collect();
        let _ = writeln!(
            s,
            r#"<polyline fill="none" stroke="{colour}" stroke-width="1.5" points="{}"/>"#,
            points.join(" ")
        );
    }
}

fn latencies(s: &mut String, o: &Outcome, top: f64) {
    let bars = [
        ("acc p50", o.accept_p50_ms, ACCEPTED),
        ("acc p99", o.accept_p99_ms, ACCEPTED),
        ("acc p99.9", o.accept_p999_ms, ACCEPTED),
        ("e2e p50", o.e2e_p50_ms, E2E),
        ("e2e p99", o.e2e_p99_ms, E2E),
    ];
    // A log scale: latencies span from a millisecond to seconds.
    let max = bars.iter().map(|b| b.1).fold(1.0, f64::max);
    let scale = |v: f64| (1.0 + v).log10() / (1.0 + max).log10();
    let slot = BARS_WIDTH / bars.len() as f64;
    let bottom = top + PLOT_HEIGHT;
    let _ = writeln!(
        s,
        r##"<line x1="{BARS_LEFT}" x2="{}" y1="{bottom}" y2="{bottom}" stroke="#999"/>"##,
        BARS_LEFT + BARS_WIDTH
    );
    for (k, (label, value, colour)) in bars.iter().enumerate() {
        let h = (PLOT_HEIGHT - 14.0) * scale(*value);
        let x = BARS_LEFT + slot * k as f64 + 6.0;
        let _ = writeln!(
            s,
            r#"<rect x="{x:.1}" y="{:.1}" width="{:.1}" height="{h:.1}" fill="{colour}"/><text x="{:.1}" y="{:.1}" text-anchor="middle">{value:.1}</text><text x="{:.1}" y="{:.1}" text-anchor="middle">{label}</text>"#,
            bottom - h,
            slot - 12.0,
            x + (slot - 12.0) / 2.0,
            bottom - h - 3.0,
            x + (slot - 12.0) / 2.0,
            bottom + 14.0
        );
    }
}

/// A round axis maximum above `v`.
fn nice(v: f64) -> f64 {
    let magnitude = 10f64.powf(v.log10().floor());
    [1.0, 2.0, 2.5, 5.0, 10.0].iter().map(|m| m * magnitude).find(|&m| m >= v).unwrap_or(v)
}

fn esc(text: &str) -> String {
    text.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;")
}
