//! `rdbe bench`'s plumbing, kept small (no timed assertions):
//! * `--paper` on one small case-1 sort: the control program's SORT on the Delta RDBE top
//!   (RTL, `delta1984`) reports case 1, sorts correctly (the bench checks it), and its
//!   modelled time and its engine time stay within a factor of 2 of §6's formula. The full
//!   table (cases 1–3) is measured by `rdbe bench --paper` and recorded in
//!   docs/PERFORMANCE.md.
//! * `--plot`: the SVG is well formed and holds both curves.
//! * `--baselines` on tiny relations: SQLite, Rust's sorts and the engine (RTL) give the same
//!   result, and the engine's time is its simulated cycles over the recorded Fmax.
use rdbe_sim::baseline::{recorded_fmax, run_workload, Workload, RECORDED_FMAX};
use rdbe_sim::bench::{paper_estimate, paper_sizes, paper_sort, PaperSort, PAPER_TUPLE_BYTES};
use rdbe_sim::bench_plot::{paper_plot_svg, LABEL_PAPER_TOTAL, LABEL_SIM_TOTAL};
use rdbe_sim::sort_job::{Backend, EngineConfig};

#[test]
fn formula_cases_follow_nl_over_c() {
    // L = 16 bytes: C = 65536 bytes = 4096 tuples.
    let e = |n| paper_estimate(n, PAPER_TUPLE_BYTES);
    assert_eq!((e(4096).case, e(4097).case), (1, 2));
    assert_eq!((e(8192).case, e(8193).case, e(8193).i), (2, 3, 1));
    assert_eq!((e(16384).i, e(16385).i, e(32768).i), (1, 2, 2));
    // Case 1: NL/1500 + 12 ms.
    assert!((e(4096).total_ms() - (65536.0 / 1500.0 + 12.0)).abs() < 1e-9);
    // Case 3, i = 1, NL/C = 4: 4·NL/3000 + 10·2·4 + 10 ms.
    assert!((e(16384).total_ms() - (4.0 * 262144.0 / 3000.0 + 90.0)).abs() < 1e-9);
}

#[test]
fn a_small_case_1_sort_on_the_1984_machine_is_near_the_formula() {
    let n = 256;
    let r = paper_sort(n, 7, Backend::Rtl).expect("SORT through the control program");
    assert_eq!(r.sort_case, Some((1, 1)), "the control program's case");
    assert_eq!(r.estimate.case, 1, "§6's case");
    assert!(r.cycles > 0 && r.modelled_ms > 0.0);
    // Each 16-bit word crosses an HM adapter paced to one word per 3 cycles, once in and
    // once out, and a sorter emits nothing before its last input: at least 2·3·N·L/2 cycles.
    let words = (n * PAPER_TUPLE_BYTES / 2) as u64;
    assert!(r.cycles >= 2 * 3 * words, "{} cycles", r.cycles);
    let within_2 = |a: f64, b: f64| a / b <= 2.0 && b / a <= 2.0;
    assert!(
        within_2(r.modelled_ms, r.estimate.total_ms()),
        "modelled {} ms, §6 {} ms",
        r.modelled_ms,
        r.estimate.total_ms()
    );
    assert!(
        within_2(r.core_ms(), r.estimate.engine_ms),
        "engine {} ms, §6's engine term {} ms",
        r.core_ms(),
        r.estimate.engine_ms
    );
}

#[test]
fn the_sweep_covers_all_three_cases_up_to_nl_over_c_16() {
    let sizes = paper_sizes(false);
    let cases: Vec<(u8, u32)> = sizes
        .iter()
        .map(|&n| {
            let e = paper_estimate(n, PAPER_TUPLE_BYTES);
            (e.case, e.i)
        })
        .collect();
    for want in [(1, 0), (2, 0), (3, 1), (3, 2), (3, 3)] {
        assert!(
            cases.contains(&want),
            "no point in case {want:?}: {sizes:?}"
        );
    }
    assert_eq!(sizes.first(), Some(&410), "NL/C = 0.1");
    assert_eq!(sizes.last(), Some(&65536), "NL/C = 16");
}

/// Checks that `svg` is well formed as far as tags go: every element closed, in order.
fn check_tags(svg: &str) -> usize {
    let mut stack: Vec<String> = vec![];
    let mut elements = 0;
    let mut rest = svg;
    while let Some(start) = rest.find('<') {
        let end = rest[start..].find('>').expect("an unclosed tag") + start;
        let tag = &rest[start + 1..end];
        rest = &rest[end + 1..];
        if tag.starts_with('?') || tag.starts_with('!') {
            continue;
        }
        if let Some(name) = tag.strip_prefix('/') {
            assert_eq!(
                stack.pop().as_deref(),
                Some(name.trim()),
                "mismatched </{name}>"
            );
        } else {
            elements += 1;
            let name = tag
                .split_whitespace()
                .next()
                .unwrap_or("")
                .trim_end_matches('/');
            if !tag.ends_with('/') {
                stack.push(name.to_string());
            }
        }
    }
    assert!(stack.is_empty(), "unclosed elements: {stack:?}");
    elements
}

#[test]
fn the_plot_is_an_svg_with_both_curves() {
    // Rows as the sweep makes them, with made-up cycle counts (the plot only draws them).
    let rows: Vec<PaperSort> = [1024usize, 4096, 6144, 12288, 32768]
        .iter()
        .map(|&n| PaperSort {
            n,
            l_bytes: PAPER_TUPLE_BYTES,
            backend: Backend::Verilator,
            sort_case: None,
            cycles: 60 * n as u64,
            step_cycles: vec![60 * n as u64],
            modelled_ms: 60.0 * n as f64 * 220e-6 + 12.0,
            estimate: paper_estimate(n, PAPER_TUPLE_BYTES),
            wall_s: 0.0,
        })
        .collect();
    let svg = paper_plot_svg(&rows).expect("the plot");
    assert!(svg.trim_start().starts_with("<svg") || svg.starts_with("<?xml"));
    assert!(svg.trim_end().ends_with("</svg>"));
    assert!(check_tags(&svg) > 20);
    for label in [LABEL_PAPER_TOTAL, LABEL_SIM_TOTAL] {
        assert!(svg.contains(label), "legend '{label}' missing");
    }
    // The formula's segments (one per case and i: 4 here, each total and engine term), the
    // two simulated curves, the case boundaries and the legend's lines.
    let lines = svg.matches("<polyline").count();
    assert!(lines >= 4 * 2 + 2, "{lines} polylines");
    // One marker per simulated point.
    assert!(svg.matches("<circle").count() >= rows.len());
    assert!(paper_plot_svg(&[]).is_err());
}

#[test]
fn baselines_agree_on_a_tiny_sort_and_join() {
    assert_eq!(RECORDED_FMAX.len(), 2);
    for workload in [Workload::Sort { n: 48 }, Workload::JoinEq { n: 24 }] {
        let row = run_workload(workload, &[EngineConfig::Small], Backend::Rtl, 5)
            .expect("SQLite, Rust and the engine give the same result");
        assert_eq!(row.result_tuples, workload.n());
        let e = &row.engines[0];
        assert_eq!(e.fmax, *recorded_fmax(EngineConfig::Small));
        assert!(e.cycles > 0 && e.steps > 0);
        let expect = e.cycles as f64 / (e.fmax.mhz * 1e6);
        assert!((e.seconds_at_fmax() - expect).abs() < 1e-12);
        assert!(row.sqlite_query_s > 0.0 && row.rust_sort_s > 0.0);
    }
}
