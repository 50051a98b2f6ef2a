//! `rdbe bench --paper`'s plumbing on one small case-1 sort: the control program's SORT on
//! the Delta RDBE top (RTL, `delta1984`) reports case 1, sorts correctly (the bench checks
//! it), and its modelled time and its engine time stay within a factor of 2 of §6's
//! formula. The full table (cases 1–3) is measured by `rdbe bench --paper` and recorded in
//! docs/PERFORMANCE.md.
use rdbe_sim::bench::{paper_estimate, paper_sort, PAPER_TUPLE_BYTES};

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
    let r = paper_sort(n, 7).expect("SORT through the control program");
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
