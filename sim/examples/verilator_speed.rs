//! Simulation speed of the Verilated small RDBE top, as `rdbe bench` measures it
//! (`sim_cycles_per_s_verilator`): `cargo run --release -p rdbe-sim --example
//! verilator_speed [runs] [tuples]` (default 3 runs of 200,000 tuples). The model is built
//! on first use (in the default cache, `$RDBE_CACHE_DIR` if set); the build is not timed.
use rdbe_sim::sort_job::EngineConfig;
use rdbe_sim::verilator_backend::measure_cycles_per_second;

fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let runs: usize = args.next().map(|s| s.parse()).transpose()?.unwrap_or(3);
    let tuples: usize = args
        .next()
        .map(|s| s.parse())
        .transpose()?
        .unwrap_or(200_000);
    for run in 1..=runs {
        let (cycles, seconds) = measure_cycles_per_second(EngineConfig::Small, tuples)?;
        println!(
            "run {run}: {cycles} cycles in {seconds:.3} s: {:.0} cycles/s",
            cycles as f64 / seconds
        );
    }
    Ok(())
}
