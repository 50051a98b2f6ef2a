//! Digital waveform pictures (SVG) of VCD traces, for reading a trace without GTKWave.
//!
//! [Waves::load] reads chosen signals of a VCD file (the `vcd` crate parses it);
//! [Waves::render_svg] draws them with plotters' SVG backend: one row per signal, 1-bit
//! signals as high/low lines, wider ones as bus lanes with the value in hex written inside
//! each stable segment that is wide enough, signal names on the left and a time axis in
//! clock cycles. Text is written as SVG `<text>` elements, so no font is needed to draw.
//!
//! Time: the simulation harness (`rdbe_rtl::harness`) writes [UNITS_PER_CYCLE] VCD time
//! units per clock cycle: cycle `n` spans units `10n..10n+10`, its inputs are set at `10n`
//! and its rising edge is at `10n + 5`. The axis marks each rising edge with its cycle.
//!
//! Signal names: a VCD variable's name is its scope path and reference joined with dots
//! (`uut.data_in.valid`; rust-hdl writes struct fields as `word$data`). A requested name
//! selects the variable whose name equals it or ends with `.` + it; it is an error when
//! none or several do (an exact match wins over longer names ending with it).
use anyhow::{anyhow, bail, Context, Result};
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};
use std::collections::HashMap;
use std::fs::File;
use std::io::BufReader;
use std::ops::Range;
use std::path::{Path, PathBuf};

/// VCD time units per clock cycle written by the simulation harness.
pub const UNITS_PER_CYCLE: u64 = 10;

/// The top-level tuple-stream ports of a traced engine block (engine core or RDBE top):
/// what `rdbe demo` draws.
pub const STREAM_PORTS: &[&str] = &[
    "uut.data_in.valid",
    "uut.data_in.ready",
    "uut.data_in.word$data",
    "uut.data_in.word$last",
    "uut.data_in.word$eos",
    "uut.data_in.word$dup",
    "uut.data_out.valid",
    "uut.data_out.ready",
    "uut.data_out.word$data",
    "uut.data_out.word$last",
    "uut.data_out.word$eos",
    "uut.data_out.word$dup",
];

/// Cycles in each panel of [render_stream_ports].
pub const PORT_PANEL_CYCLES: u64 = 80;

/// One traced signal.
#[derive(Clone, Debug)]
pub struct Wave {
    /// The name it was requested by (drawn on the left).
    pub label: String,
    /// Its full hierarchical name in the VCD.
    pub name: String,
    pub width: u32,
    /// `(time, bits)`, time ascending, each value different from the one before; bits are
    /// most significant first, exactly `width` of `0`, `1`, `x`, `z`.
    pub changes: Vec<(u64, String)>,
}

impl Wave {
    /// The value at `time` (the last change at or before it), `None` before the first.
    pub fn at(&self, time: u64) -> Option<&str> {
        let i = self.changes.partition_point(|(t, _)| *t <= time);
        (i > 0).then(|| self.changes[i - 1].1.as_str())
    }

    /// The value the rising edge of `cycle` samples (the one just before it), as a number;
    /// `None` if unknown (x/z, not yet dumped) or wider than 128 bits.
    pub fn sampled(&self, cycle: u64) -> Option<u128> {
        let bits = self.at(cycle * UNITS_PER_CYCLE + UNITS_PER_CYCLE / 2 - 1)?;
        if bits.len() > 128 {
            return None;
        }
        u128::from_str_radix(bits, 2).ok()
    }
}

/// Chosen signals of one VCD file.
#[derive(Clone, Debug)]
pub struct Waves {
    pub waves: Vec<Wave>,
    /// The last timestamp of the file.
    pub end_time: u64,
}

/// A window of a picture: the cycles `cycles` (start inclusive, end exclusive) under a
/// caption (may be empty).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Panel {
    pub caption: String,
    pub cycles: Range<u64>,
}

/// Draw `signals` of the VCD file `vcd` over the clock cycles `cycles` into the SVG file
/// `out`, written under a temporary name and renamed, so a failure leaves no file.
pub fn render_svg(vcd: &Path, signals: &[&str], cycles: Range<u64>, out: &Path) -> Result<()> {
    let panel = Panel {
        caption: String::new(),
        cycles,
    };
    Waves::load(vcd, signals)?.render_svg(&[panel], out)
}

/// Draw the top-level stream ports ([STREAM_PORTS]) of a traced engine block into `out`:
/// one panel from just before the first data word goes in and, if later, one from just
/// before the first result word comes out (an end-of-stream beat alone does not count).
/// Returns the panels drawn.
pub fn render_stream_ports(vcd: &Path, out: &Path) -> Result<Vec<Panel>> {
    let waves = Waves::load(vcd, STREAM_PORTS)?;
    let first_in =
        waves.first_cycle_where(0, &[("uut.data_in.valid", 1), ("uut.data_in.word$eos", 0)]);
    let first_out = waves.first_cycle_where(
        0,
        &[("uut.data_out.valid", 1), ("uut.data_out.word$eos", 0)],
    );
    let window =
        |at: u64, lead: u64| at.saturating_sub(lead)..at.saturating_sub(lead) + PORT_PANEL_CYCLES;
    let mut panels: Vec<Panel> = vec![];
    if let Some(c) = first_in {
        panels.push(Panel {
            caption: "first words into data_in".into(),
            cycles: window(c, 4),
        });
    }
    if let Some(c) = first_out {
        let cycles = window(c, 8);
        match panels.last_mut() {
            Some(p) if cycles.start <= p.cycles.end => {
                p.cycles.end = p.cycles.end.max(cycles.end);
                p.caption = "first words into data_in and out of data_out".into();
            }
            _ => panels.push(Panel {
                caption: "first result words out of data_out".into(),
                cycles,
            }),
        }
    }
    if panels.is_empty() {
        panels.push(Panel {
            caption: "no data word on either stream: the first cycles".into(),
            cycles: 0..PORT_PANEL_CYCLES,
        });
    }
    waves.render_svg(&panels, out)?;
    Ok(panels)
}

/// Every variable of a VCD header: full dotted name, width, id code.
fn variables(items: &[vcd::ScopeItem], scope: &str, found: &mut Vec<(String, u32, vcd::IdCode)>) {
    for item in items {
        match item {
            vcd::ScopeItem::Scope(s) => {
                variables(&s.children, &join(scope, &s.identifier), found);
            }
            vcd::ScopeItem::Var(v) => {
                let mut name = join(scope, &v.reference);
                if let Some(index) = v.index {
                    name.push_str(&index.to_string());
                }
                found.push((name, v.size, v.code));
            }
        }
    }
}

fn join(scope: &str, name: &str) -> String {
    if scope.is_empty() {
        name.to_string()
    } else {
        format!("{scope}.{name}")
    }
}

/// The variable `wanted` names (see the module documentation).
fn resolve<'a>(
    vcd: &Path,
    wanted: &str,
    all: &'a [(String, u32, vcd::IdCode)],
) -> Result<&'a (String, u32, vcd::IdCode)> {
    let suffix = format!(".{wanted}");
    if let Some(exact) = all.iter().find(|v| v.0 == wanted) {
        return Ok(exact);
    }
    let matches: Vec<_> = all.iter().filter(|v| v.0.ends_with(&suffix)).collect();
    match matches.len() {
        1 => Ok(matches[0]),
        0 => {
            // Candidates: names ending like the request's last part, else containing it,
            // else the first names of the file.
            let last = wanted.rsplit('.').next().unwrap_or(wanted);
            let mut near: Vec<&str> = all
                .iter()
                .filter(|v| v.0.rsplit('.').next() == Some(last))
                .map(|v| v.0.as_str())
                .collect();
            if near.is_empty() {
                near = all
                    .iter()
                    .filter(|v| v.0.contains(last))
                    .map(|v| v.0.as_str())
                    .collect();
            }
            if near.is_empty() {
                near = all.iter().map(|v| v.0.as_str()).collect();
            }
            bail!(
                "no signal `{wanted}` in {}; candidates: {}",
                vcd.display(),
                few(&near)
            )
        }
        n => bail!(
            "signal `{wanted}` is ambiguous in {}: {n} signals end with it: {}",
            vcd.display(),
            few(&matches.iter().map(|v| v.0.as_str()).collect::<Vec<_>>())
        ),
    }
}

fn few(names: &[&str]) -> String {
    const SHOWN: usize = 8;
    let mut s = names
        .iter()
        .take(SHOWN)
        .copied()
        .collect::<Vec<_>>()
        .join(", ");
    if names.len() > SHOWN {
        s.push_str(&format!(", … ({} in all)", names.len()));
    }
    s
}

/// `values`, most significant first, as exactly `width` bits (VCD left-extends a short
/// vector with 0, or with x/z when its first bit is x/z).
fn bits(values: &[vcd::Value], width: u32) -> String {
    let char_of = |v: &vcd::Value| match v {
        vcd::Value::V0 => '0',
        vcd::Value::V1 => '1',
        vcd::Value::X => 'x',
        vcd::Value::Z => 'z',
    };
    let width = width.max(1) as usize;
    let s: String = values.iter().map(char_of).collect();
    if s.len() >= width {
        return s[s.len() - width..].to_string();
    }
    let fill = s
        .chars()
        .next()
        .filter(|c| matches!(c, 'x' | 'z'))
        .unwrap_or('0');
    std::iter::repeat_n(fill, width - s.len())
        .chain(s.chars())
        .collect()
}

impl Waves {
    /// Read the signals `signals` (matched as the module documentation says) of `vcd`.
    pub fn load(vcd: &Path, signals: &[&str]) -> Result<Waves> {
        let file = File::open(vcd).with_context(|| format!("opening {}", vcd.display()))?;
        let mut parser = vcd::Parser::new(BufReader::new(file));
        let header = parser
            .parse_header()
            .with_context(|| format!("reading the VCD header of {}", vcd.display()))?;
        let mut all = vec![];
        variables(&header.items, "", &mut all);
        let mut waves = vec![];
        let mut by_code: HashMap<vcd::IdCode, Vec<usize>> = HashMap::new();
        for (i, wanted) in signals.iter().enumerate() {
            let (name, width, code) = resolve(vcd, wanted, &all)?;
            waves.push(Wave {
                label: wanted.to_string(),
                name: name.clone(),
                width: *width,
                changes: vec![],
            });
            by_code.entry(*code).or_default().push(i);
        }
        let mut time = 0;
        let mut end_time = 0;
        for command in parser {
            let command = command.with_context(|| format!("reading {}", vcd.display()))?;
            let (code, values) = match command {
                vcd::Command::Timestamp(t) => {
                    time = t;
                    end_time = end_time.max(t);
                    continue;
                }
                vcd::Command::ChangeScalar(code, v) => (code, vec![v]),
                vcd::Command::ChangeVector(code, v) => (code, v),
                _ => continue,
            };
            for &i in by_code.get(&code).map(Vec::as_slice).unwrap_or(&[]) {
                let wave = &mut waves[i];
                let value = bits(&values, wave.width);
                match wave.changes.last_mut() {
                    Some((t, v)) if *t == time => *v = value,
                    Some((_, v)) if *v == value => {}
                    _ => wave.changes.push((time, value)),
                }
            }
        }
        // Two changes at one time may have restored the value before them.
        for wave in &mut waves {
            wave.changes.dedup_by(|later, earlier| later.1 == earlier.1);
        }
        Ok(Waves { waves, end_time })
    }

    /// The signal requested as `label`.
    pub fn get(&self, label: &str) -> Option<&Wave> {
        self.waves.iter().find(|w| w.label == label)
    }

    /// Cycles the trace covers (a last, partial cycle counts).
    pub fn end_cycle(&self) -> u64 {
        self.end_time.div_ceil(UNITS_PER_CYCLE)
    }

    /// The first cycle from `from` on whose rising edge samples every `(label, value)` of
    /// `when`; `None` if there is none (or a label was not loaded).
    pub fn first_cycle_where(&self, from: u64, when: &[(&str, u128)]) -> Option<u64> {
        let waves: Vec<(&Wave, u128)> = when
            .iter()
            .map(|(label, v)| self.get(label).map(|w| (w, *v)))
            .collect::<Option<_>>()?;
        (from..self.end_cycle()).find(|&c| waves.iter().all(|(w, v)| w.sampled(c) == Some(*v)))
    }

    /// Draw every loaded signal, one panel per window, into the SVG file `out` (written
    /// under a temporary name and renamed, so a failure leaves no file).
    pub fn render_svg(&self, panels: &[Panel], out: &Path) -> Result<()> {
        if self.waves.is_empty() {
            bail!("no signal to draw into {}", out.display());
        }
        let end = self.end_cycle();
        let mut windows = vec![];
        for p in panels {
            if p.cycles.start >= p.cycles.end {
                bail!(
                    "empty window of cycles {:?} for {}",
                    p.cycles,
                    out.display()
                );
            }
            if p.cycles.end - p.cycles.start > MAX_CYCLES {
                bail!(
                    "window of cycles {:?} is too wide to draw: at most {MAX_CYCLES} cycles",
                    p.cycles
                );
            }
            if p.cycles.start >= end {
                bail!(
                    "window of cycles {:?} starts after the trace ends (cycle {end})",
                    p.cycles
                );
            }
            windows.push(Panel {
                caption: p.caption.clone(),
                cycles: p.cycles.start..p.cycles.end.min(end),
            });
        }
        if windows.is_empty() {
            bail!("no window to draw into {}", out.display());
        }
        let mut partial = out.as_os_str().to_owned();
        partial.push(".partial");
        let partial = PathBuf::from(partial);
        let drawn = self.draw(&windows, &partial);
        if let Err(e) = drawn {
            let _ = std::fs::remove_file(&partial);
            return Err(e.context(format!("drawing {}", out.display())));
        }
        if let Err(e) = std::fs::rename(&partial, out) {
            let _ = std::fs::remove_file(&partial);
            return Err(e)
                .with_context(|| format!("renaming {} to {}", partial.display(), out.display()));
        }
        Ok(())
    }

    fn draw(&self, panels: &[Panel], path: &Path) -> Result<()> {
        let layout = Layout::new(self, panels);
        let root =
            SVGBackend::new(path, (layout.width as u32, layout.height as u32)).into_drawing_area();
        let fail = |e: DrawingAreaErrorKind<_>| anyhow!("{e}");
        root.fill(&WHITE).map_err(fail)?;
        let mut top = MARGIN;
        for panel in panels {
            top = self.draw_panel(&root, &layout, panel, top).map_err(fail)? + PANEL_GAP;
        }
        root.present().map_err(fail)?;
        Ok(())
    }

    /// Draw one panel from `top` down; returns its bottom.
    fn draw_panel<DB: DrawingBackend>(
        &self,
        area: &DrawingArea<DB, plotters::coord::Shift>,
        layout: &Layout,
        panel: &Panel,
        top: i32,
    ) -> Result<i32, DrawingAreaErrorKind<DB::ErrorType>> {
        let t0 = panel.cycles.start * UNITS_PER_CYCLE;
        let t1 = panel.cycles.end * UNITS_PER_CYCLE;
        let left = layout.plot_left;
        let x_of = |t: u64| {
            left + ((t - t0) as f64 * PX_PER_CYCLE as f64 / UNITS_PER_CYCLE as f64).round() as i32
        };
        let right = x_of(t1);
        let text = |h: HPos| text_style(BLACK, h);
        // Caption and axis.
        let caption = if panel.caption.is_empty() {
            format!("cycles {}..{}", panel.cycles.start, panel.cycles.end)
        } else {
            format!(
                "{} (cycles {}..{})",
                panel.caption, panel.cycles.start, panel.cycles.end
            )
        };
        area.draw(&Text::new(
            caption,
            (MARGIN, top + CAPTION_H / 2),
            text(HPos::Left),
        ))?;
        let axis_y = top + CAPTION_H + AXIS_H - 4;
        let rows_top = top + CAPTION_H + AXIS_H;
        let rows_bottom = rows_top + ROW_H * self.waves.len() as i32;
        area.draw(&Text::new("cycle", (MARGIN, axis_y - 8), text(HPos::Left)))?;
        area.draw(&PathElement::new(
            vec![(left, axis_y), (right, axis_y)],
            BLACK,
        ))?;
        let label_every = if PX_PER_CYCLE >= 24 { 5 } else { 10 };
        for c in panel.cycles.clone() {
            let x = x_of(c * UNITS_PER_CYCLE + UNITS_PER_CYCLE / 2);
            if x > right {
                break;
            }
            let major = c % label_every == 0;
            let grid = if major { GRID_MAJOR } else { GRID };
            area.draw(&PathElement::new(
                vec![(x, rows_top), (x, rows_bottom)],
                grid,
            ))?;
            area.draw(&PathElement::new(
                vec![(x, axis_y - if major { 5 } else { 2 }), (x, axis_y)],
                BLACK,
            ))?;
            if major {
                area.draw(&Text::new(
                    c.to_string(),
                    (x, axis_y - 12),
                    text(HPos::Center),
                ))?;
            }
        }
        // One row per signal.
        for (row, wave) in self.waves.iter().enumerate() {
            let y = rows_top + ROW_H * row as i32;
            let (hi, lo) = (y + (ROW_H - LANE_H) / 2, y + (ROW_H + LANE_H) / 2);
            let mid = (hi + lo) / 2;
            area.draw(&Text::new(
                wave.label.clone(),
                (MARGIN, mid),
                text(HPos::Left),
            ))?;
            // Stable segments within the window: (start, end, bits or None if not dumped).
            let mut segments: Vec<(u64, u64, Option<&str>)> = vec![(t0, t1, wave.at(t0))];
            for (t, v) in wave.changes.iter().filter(|(t, _)| *t > t0 && *t < t1) {
                segments.last_mut().expect("one segment").1 = *t;
                segments.push((*t, t1, Some(v.as_str())));
            }
            for &(s, e, value) in &segments {
                let (x0, x1) = (x_of(s), x_of(e));
                let value = value.unwrap_or("x");
                if wave.width == 1 {
                    match value {
                        "1" => {
                            area.draw(&Rectangle::new([(x0, hi), (x1, lo)], HIGH_FILL.filled()))?;
                            area.draw(&PathElement::new(
                                vec![(x0, hi), (x1, hi)],
                                LINE.stroke_width(2),
                            ))?;
                        }
                        "0" => {
                            area.draw(&PathElement::new(
                                vec![(x0, lo), (x1, lo)],
                                LINE.stroke_width(2),
                            ))?;
                        }
                        _ => {
                            area.draw(&Rectangle::new(
                                [(x0, hi), (x1, lo)],
                                UNKNOWN_FILL.filled(),
                            ))?;
                            area.draw(&PathElement::new(
                                vec![(x0, mid), (x1, mid)],
                                UNKNOWN.stroke_width(2),
                            ))?;
                        }
                    }
                    if s > t0 {
                        area.draw(&PathElement::new(
                            vec![(x0, hi), (x0, lo)],
                            LINE.stroke_width(2),
                        ))?;
                    }
                } else {
                    let known = !value.contains(['x', 'z']) && value.len() == wave.width as usize;
                    let slant = 3.min((x1 - x0) / 2);
                    let (l, r) = (
                        x0 + if s > t0 { slant } else { 0 },
                        x1 - if e < t1 { slant } else { 0 },
                    );
                    let outline = vec![
                        (x0, mid),
                        (l, hi),
                        (r, hi),
                        (x1, mid),
                        (r, lo),
                        (l, lo),
                        (x0, mid),
                    ];
                    let (fill, line) = if known {
                        (BUS_FILL, LINE)
                    } else {
                        (UNKNOWN_FILL, UNKNOWN)
                    };
                    area.draw(&Polygon::new(outline.clone(), fill.filled()))?;
                    area.draw(&PathElement::new(outline, line.stroke_width(1)))?;
                    if let Some(label) = fitting_hex(value, (r - l - 2).max(0)) {
                        area.draw(&Text::new(label, ((x0 + x1) / 2, mid), text(HPos::Center)))?;
                    }
                }
            }
        }
        Ok(rows_bottom)
    }
}

/// The widest window drawn, in cycles.
pub const MAX_CYCLES: u64 = 4000;
const MARGIN: i32 = 10;
const PANEL_GAP: i32 = 24;
const CAPTION_H: i32 = 20;
const AXIS_H: i32 = 26;
const ROW_H: i32 = 28;
const LANE_H: i32 = 18;
/// Wide enough for four hex digits (a 16-bit word) in a one-cycle segment.
const PX_PER_CYCLE: i32 = 36;
/// The font size in SVG pixels, and the width of one monospace character.
const FONT_PX: f64 = 11.0;
const CHAR_PX: f64 = 0.6 * FONT_PX;
const LINE: RGBColor = RGBColor(20, 90, 40);
const HIGH_FILL: RGBColor = RGBColor(215, 240, 215);
const BUS_FILL: RGBColor = RGBColor(225, 236, 250);
const UNKNOWN: RGBColor = RGBColor(200, 30, 30);
const UNKNOWN_FILL: RGBColor = RGBColor(250, 215, 215);
const GRID: RGBColor = RGBColor(236, 236, 236);
const GRID_MAJOR: RGBColor = RGBColor(200, 200, 200);

fn text_style(color: RGBColor, h: HPos) -> TextStyle<'static> {
    // plotters' SVG backend writes font-size = size / 1.24.
    ("monospace", FONT_PX * 1.24)
        .into_font()
        .color(&color)
        .pos(Pos::new(h, VPos::Center))
}

fn text_px(s: &str) -> i32 {
    (s.chars().count() as f64 * CHAR_PX).ceil() as i32
}

/// `bits` in hex (full width, else without leading zeros) if that fits in `room` pixels.
fn fitting_hex(bits: &str, room: i32) -> Option<String> {
    let full = hex(bits);
    if text_px(&full) <= room {
        return Some(full);
    }
    let short = full.trim_start_matches('0');
    let short = if short.is_empty() { "0" } else { short };
    (text_px(short) <= room).then(|| short.to_string())
}

/// Bits, most significant first, as hex digits: `x` (or `z`) for a digit with such a bit.
pub fn hex(bits: &str) -> String {
    let pad = (4 - bits.len() % 4) % 4;
    let padded: Vec<char> = std::iter::repeat_n('0', pad).chain(bits.chars()).collect();
    padded
        .chunks(4)
        .map(|d| {
            if let Some(&c) = d.iter().find(|c| matches!(c, 'x' | 'z')) {
                return c;
            }
            let v = d.iter().fold(0, |acc, &c| acc * 2 + u32::from(c == '1'));
            char::from_digit(v, 16).expect("a hex digit")
        })
        .collect()
}

/// Sizes of a picture.
struct Layout {
    plot_left: i32,
    width: i32,
    height: i32,
}

impl Layout {
    fn new(waves: &Waves, panels: &[Panel]) -> Layout {
        let label = waves
            .waves
            .iter()
            .map(|w| text_px(&w.label))
            .max()
            .unwrap_or(0);
        let plot_left = MARGIN + label.max(text_px("cycle")) + 12;
        let cycles = panels
            .iter()
            .map(|p| p.cycles.end - p.cycles.start)
            .max()
            .unwrap_or(1);
        let captions = panels
            .iter()
            .map(|p| text_px(&p.caption) + text_px(" (cycles 0000000..0000000)"))
            .max()
            .unwrap_or(0);
        let width = (plot_left + PX_PER_CYCLE * cycles as i32).max(MARGIN + captions) + MARGIN;
        let panel_h = CAPTION_H + AXIS_H + ROW_H * waves.waves.len() as i32;
        let height =
            MARGIN * 2 + panel_h * panels.len() as i32 + PANEL_GAP * (panels.len() as i32 - 1);
        Layout {
            plot_left,
            width,
            height,
        }
    }
}
