//! Simulation speed of the small engine core alone on the rust-hdl backend, as `rdbe bench`
//! measures it (`sim_cycles_per_s_rtl_core`, issue 6's "full engine core" figure):
//! `cargo run --release -p rdbe-sim --example rtl_speed [runs] [tuples]` (default 3 runs of
//! 2,000 tuples, the bench's PASS-1). Single thread; also a workload for `perf` or
//! `valgrind --tool=callgrind`.
use rdbe_sim::engine::pass1_engine_core;

fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let runs: usize = args.next().map(|s| s.parse()).transpose()?.unwrap_or(3);
    let tuples: usize = args.next().map(|s| s.parse()).transpose()?.unwrap_or(2_000);
    for run in 1..=runs {
        let (cycles, seconds, passes) = pass1_engine_core(tuples)?;
        println!(
            "run {run}: {cycles} cycles in {seconds:.3} s: {:.0} cycles/s, {:.2} passes a cycle",
            cycles as f64 / seconds,
            passes as f64 / cycles as f64
        );
    }
    Ok(())
}
