//! `rdbe bench --paper --plot FILE`: the §6 reproduction drawn as an SVG (plotters' SVG
//! backend; text stays `<text>` elements, so no fonts are needed): sort time against N for
//! L = 16 bytes, the paper's formula beside what the simulation gives, total time and the
//! engine-core part, with the case boundaries (NL/C = 1, 2, 4, 8) marked.
use crate::bench::{paper_c_bytes, paper_estimate, PaperSort};
use anyhow::{anyhow, ensure, Result};
use plotters::prelude::*;
use std::path::Path;

/// Legend of the formula's total time T.
pub const LABEL_PAPER_TOTAL: &str = "§6 formula T (engine term + CPU term)";
/// Legend of the simulated total time.
pub const LABEL_SIM_TOTAL: &str = "simulated: cycles x 220 ns + the §6 CPU term";
/// Legend of the formula's engine-core term.
pub const LABEL_PAPER_ENGINE: &str = "§6 engine-core term";
/// Legend of the simulated engine-core time.
pub const LABEL_SIM_ENGINE: &str = "simulated engine core: cycles x 220 ns";

fn err<E: std::fmt::Display>(e: E) -> anyhow::Error {
    anyhow!("drawing the plot: {e}")
}

/// One polyline (plotters' `LineSeries` needs a feature the workspace leaves off).
fn line<S: Into<ShapeStyle>>(
    points: impl IntoIterator<Item = (f64, f64)>,
    style: S,
) -> std::iter::Once<PathElement<(f64, f64)>> {
    std::iter::once(PathElement::new(
        points.into_iter().collect::<Vec<_>>(),
        style,
    ))
}

/// A curve's legend mark: a short line in its colour.
fn legend_mark(color: RGBColor) -> impl Fn((i32, i32)) -> PathElement<(i32, i32)> {
    move |(x, y)| PathElement::new([(x, y), (x + 20, y)], color.stroke_width(2))
}

/// The SVG text of the plot of `rows` (every row must have the same L).
pub fn paper_plot_svg(rows: &[PaperSort]) -> Result<String> {
    ensure!(!rows.is_empty(), "nothing to plot: no measured sorts");
    let l = rows[0].l_bytes;
    ensure!(
        rows.iter().all(|r| r.l_bytes == l && r.n > 0),
        "every row of the plot needs the same tuple length and N > 0"
    );
    let c_tuples = paper_c_bytes(l) / l;
    let n_lo = rows.iter().map(|r| r.n).min().unwrap_or(1) as f64;
    let n_hi = rows.iter().map(|r| r.n).max().unwrap_or(1) as f64;
    let (x_lo, x_hi) = (n_lo / 1.3, n_hi * 1.3);
    let mut t_lo = f64::INFINITY;
    let mut t_hi: f64 = 0.0;
    for r in rows {
        for t in [
            r.modelled_ms,
            r.core_ms(),
            r.estimate.total_ms(),
            r.estimate.engine_ms,
        ] {
            t_lo = t_lo.min(t);
            t_hi = t_hi.max(t);
        }
    }
    ensure!(t_lo > 0.0, "a time of 0 ms cannot go on a log scale");
    let (y_lo, y_hi) = (t_lo / 1.5, t_hi * 2.0);

    // The formula, sampled densely and cut where its case (or i) changes, so its jumps show.
    let samples = 400;
    let mut formula: Vec<Vec<(f64, f64, f64)>> = vec![];
    let mut last_case = None;
    for s in 0..=samples {
        let n = (x_lo.ln() + (x_hi.ln() - x_lo.ln()) * s as f64 / samples as f64)
            .exp()
            .round()
            .max(1.0);
        let e = paper_estimate(n as usize, l);
        if last_case != Some((e.case, e.i)) {
            formula.push(vec![]);
            last_case = Some((e.case, e.i));
        }
        if let Some(seg) = formula.last_mut() {
            seg.push((n, e.total_ms(), e.engine_ms));
        }
    }
    let mut sim: Vec<&PaperSort> = rows.iter().collect();
    sim.sort_by_key(|r| r.n);

    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (1000, 640)).into_drawing_area();
        root.fill(&WHITE).map_err(err)?;
        let mut chart = ChartBuilder::on(&root)
            .caption(
                format!(
                    "SORT of N tuples of L = {l} bytes on the delta1984 profile (C = {c_tuples} tuples)"
                ),
                ("sans-serif", 20),
            )
            .margin(15)
            .x_label_area_size(45)
            .y_label_area_size(70)
            .build_cartesian_2d((x_lo..x_hi).log_scale(), (y_lo..y_hi).log_scale())
            .map_err(err)?;
        chart
            .configure_mesh()
            .x_desc("N (tuples)")
            .y_desc("time (ms)")
            .x_label_formatter(&|x| format!("{x:.0}"))
            .y_label_formatter(&|y| format!("{y:.0}"))
            .draw()
            .map_err(err)?;

        // Case boundaries: NL/C = 1, 2, 4, 8, ...
        let grey = RGBColor(150, 150, 150);
        let mut b = 1usize;
        while ((b * c_tuples) as f64) < x_hi {
            let x = (b * c_tuples) as f64;
            if x > x_lo {
                chart
                    .draw_series(line([(x, y_lo), (x, y_hi)], grey.stroke_width(1)))
                    .map_err(err)?;
                let text = if b == 1 {
                    "NL/C = 1".to_string()
                } else {
                    format!("{b}")
                };
                chart
                    .draw_series(std::iter::once(Text::new(
                        text,
                        (x * 1.02, y_hi / 1.15),
                        ("sans-serif", 13).into_font().color(&grey),
                    )))
                    .map_err(err)?;
            }
            // The region right of the boundary, named at the foot of the plot.
            let region = match b {
                1 => "case 2".to_string(),
                2 => "case 3, i = 1".to_string(),
                _ => format!("i = {}", b.trailing_zeros()),
            };
            let label_at = x * 1.04;
            if label_at > x_lo && label_at * 1.3 < x_hi {
                chart
                    .draw_series(std::iter::once(Text::new(
                        region,
                        (label_at, y_lo * 1.15),
                        ("sans-serif", 13).into_font().color(&grey),
                    )))
                    .map_err(err)?;
            }
            b *= 2;
        }
        if (c_tuples as f64) > x_lo * 1.5 {
            chart
                .draw_series(std::iter::once(Text::new(
                    "case 1",
                    (x_lo * 1.1, y_lo * 1.15),
                    ("sans-serif", 13).into_font().color(&grey),
                )))
                .map_err(err)?;
        }

        let red = RGBColor(200, 30, 30);
        let pink = RGBColor(240, 150, 150);
        let blue = RGBColor(20, 60, 200);
        let light_blue = RGBColor(110, 170, 240);
        for (k, seg) in formula.iter().enumerate() {
            let total = chart
                .draw_series(line(
                    seg.iter().map(|&(n, t, _)| (n, t)),
                    red.stroke_width(2),
                ))
                .map_err(err)?;
            if k == 0 {
                total.label(LABEL_PAPER_TOTAL).legend(legend_mark(red));
            }
            let engine = chart
                .draw_series(line(
                    seg.iter().map(|&(n, _, e)| (n, e)),
                    pink.stroke_width(2),
                ))
                .map_err(err)?;
            if k == 0 {
                engine.label(LABEL_PAPER_ENGINE).legend(legend_mark(pink));
            }
        }
        chart
            .draw_series(line(
                sim.iter().map(|r| (r.n as f64, r.modelled_ms)),
                blue.stroke_width(2),
            ))
            .map_err(err)?
            .label(LABEL_SIM_TOTAL)
            .legend(legend_mark(blue));
        chart
            .draw_series(
                sim.iter()
                    .map(|r| Circle::new((r.n as f64, r.modelled_ms), 4, blue.filled())),
            )
            .map_err(err)?;
        chart
            .draw_series(line(
                sim.iter().map(|r| (r.n as f64, r.core_ms())),
                light_blue.stroke_width(2),
            ))
            .map_err(err)?
            .label(LABEL_SIM_ENGINE)
            .legend(legend_mark(light_blue));
        chart
            .draw_series(
                sim.iter().map(|r| {
                    TriangleMarker::new((r.n as f64, r.core_ms()), 5, light_blue.filled())
                }),
            )
            .map_err(err)?;
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::UpperLeft)
            .background_style(WHITE.mix(0.85))
            .border_style(BLACK)
            .label_font(("sans-serif", 14))
            .draw()
            .map_err(err)?;
        root.present().map_err(err)?;
    }
    Ok(svg)
}

/// Write the plot of `rows` to `path`.
pub fn write_paper_plot(rows: &[PaperSort], path: &Path) -> Result<()> {
    let svg = paper_plot_svg(rows)?;
    std::fs::write(path, svg).map_err(|e| anyhow!("writing {}: {e}", path.display()))
}
