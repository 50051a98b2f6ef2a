//! Co-simulation of exported Verilog against the rust-hdl simulation.
//!
//! The same beats and the same per-cycle handshake plan ([Schedule]) go through the
//! rust-hdl simulation ([Harness::run_scheduled]) and through the exported Verilog in Icarus
//! Verilog (and Verilator, when `verilator --binary` is available). The outputs are
//! compared beat for beat *and cycle for cycle*; a mismatch names the first differing beat.
//!
//! The generated testbench does per cycle what the harness does: drive the source's beat
//! and the sink's ready, let the combinational logic settle, sample both handshakes, then
//! a rising and a falling clock edge.
use crate::harness::{Harness, Schedule, StreamBlock};
use crate::tuple_stream::{Beat, TupleWord};
use anyhow::{bail, ensure, Context, Result};
use rust_hdl::prelude::*;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;
use wait_timeout::ChildExt;

/// One beat leaving the design, with the cycle it left in.
pub type TimedBeat = (u64, Beat);

/// A stimulus for a module with ports `clock`, `data_in`, `data_out` (module name `top`),
/// and for an RDBE top (`rdbe_top`) also its register bus and `hm_stop`.
#[derive(Clone)]
pub struct CosimCase {
    pub name: String,
    pub verilog: String,
    /// Static configuration inputs: (port name, value), up to 128 bits wide.
    pub statics: Vec<(String, u128)>,
    pub beats: Vec<Beat>,
    /// Streams that follow the first one (after its end-of-stream beat has left), each with
    /// its own static values (the same ports as `statics`).
    pub more_phases: Vec<CosimPhase>,
    pub schedule: Schedule,
    /// For an RDBE top: the register writes (address, data) made before each phase's
    /// stream, one per clock cycle, as `rdbe_top::write_register` makes them (those
    /// cycles take no step of the schedule). Empty: the design has no register bus.
    pub bus_writes: Vec<Vec<(u8, u16)>>,
    /// Status outputs (port name, width up to 64 bits) sampled after each phase's
    /// end-of-stream beat has left, compared like the beats. Empty: streams only.
    pub status_ports: Vec<(String, usize)>,
}

/// What a simulation of a [CosimCase] produced: the timed output beats (also reachable
/// through `Deref`) and, per phase, the values of [CosimCase::status_ports].
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SimOutput {
    pub beats: Vec<TimedBeat>,
    pub status: Vec<Vec<u64>>,
}

impl std::ops::Deref for SimOutput {
    type Target = [TimedBeat];
    fn deref(&self) -> &[TimedBeat] {
        &self.beats
    }
}

/// One further stream of a [CosimCase].
#[derive(Clone)]
pub struct CosimPhase {
    pub statics: Vec<(String, u128)>,
    pub beats: Vec<Beat>,
}

/// One phase as [CosimCase::phases] lists it: its static inputs and its beats.
type PhaseView<'a> = (&'a [(String, u128)], &'a [Beat]);

impl CosimCase {
    fn phases(&self) -> Vec<PhaseView<'_>> {
        let mut v: Vec<PhaseView<'_>> = vec![(self.statics.as_slice(), self.beats.as_slice())];
        for p in &self.more_phases {
            v.push((p.statics.as_slice(), p.beats.as_slice()));
        }
        v
    }
}

/// A beat as the 22-bit packed `TupleWord` on the Verilog ports (data 15:0, parity 17:16,
/// null 18, dup 19, last 20, eos 21).
pub fn pack(b: &Beat) -> u32 {
    let w: TupleWord = (*b).into();
    let bits: Bits<22> = w.into();
    bits.index() as u32
}

/// The beat of a packed 22-bit `TupleWord` ([pack]'s inverse).
pub fn unpack(v: u32) -> Beat {
    Beat {
        data: v as u16,
        parity: ((v >> 16) & 3) as u8,
        null: (v >> 18) & 1 == 1,
        dup: (v >> 19) & 1 == 1,
        last: (v >> 20) & 1 == 1,
        eos: (v >> 21) & 1 == 1,
    }
}

fn testbench(case: &CosimCase) -> String {
    let phases = case.phases();
    let nb: usize = phases.iter().map(|(_, b)| b.len()).sum();
    let nc = case.schedule.offer.len();
    let mut statics_decl = String::new();
    let mut statics_conn = String::new();
    for (port, value) in &case.statics {
        let _ = writeln!(statics_decl, "    reg [127:0] cfg_{port} = 128'h{value:x};");
        let _ = write!(statics_conn, ", .{port}(cfg_{port})");
    }
    let bus = !case.bus_writes.is_empty();
    let mut do_writes = String::new();
    for (i, writes) in case.bus_writes.iter().enumerate() {
        let _ = write!(do_writes, "            {i}: begin");
        for (a, d) in writes {
            let _ = write!(do_writes, " bus_write(8'h{a:02x}, 16'h{d:04x});");
        }
        let _ = writeln!(do_writes, " end");
    }
    let mut status_decl = String::new();
    let mut status_conn = String::new();
    let mut status_write = String::new();
    for (i, (port, width)) in case.status_ports.iter().enumerate() {
        let _ = writeln!(status_decl, "    wire [{}:0] status_{i};", width - 1);
        let _ = write!(status_conn, ", .{port}(status_{i})");
        let _ = writeln!(
            status_write,
            "                $fdisplay(f, \"S %0d %0d %h\", phase, {i}, status_{i});"
        );
    }
    let (bus_decl, bus_conn) = if bus {
        (
            "    reg [7:0] reg_address = 0;\n    reg [15:0] reg_write_data = 0;\n    reg reg_write = 0;\n    wire [15:0] reg_read_data;\n    wire hm_stop;\n",
            ", .reg_address(reg_address), .reg_write_data(reg_write_data), .reg_write(reg_write), .reg_read_data(reg_read_data), .hm_stop(hm_stop)",
        )
    } else {
        ("    wire hm_stop = 1'b0;\n", "")
    };
    let mut set_phase = String::new();
    let mut phase_end = String::new();
    let mut end = 0;
    for (i, (statics, beats)) in phases.iter().enumerate() {
        end += beats.len();
        let _ = writeln!(phase_end, "            {i}: phase_end = {end};");
        let _ = write!(set_phase, "            {i}: begin");
        for (port, value) in statics.iter() {
            let _ = write!(set_phase, " cfg_{port} = 128'h{value:x};");
        }
        let _ = writeln!(set_phase, " end");
    }
    format!(
        r#"`timescale 1ns/1ps
module tb;
    reg clock = 0;
    reg [21:0] in_word = 0;
    reg in_valid = 0;
    wire in_ready;
    wire [21:0] out_word;
    wire out_valid;
    reg out_ready = 0;
    reg [21:0] beats [0:{last_beat}];
    reg [1:0] plan [0:{last_cycle}];
    integer next_in = 0;
    integer cycle = 0;
    integer phase = 0;
    integer f;
    reg in_fire;
    reg out_fire;
    reg [21:0] out_sample;
    reg done = 0;
    reg stopped = 0;
{statics_decl}{bus_decl}{status_decl}
    top dut(.clock(clock), .data_in$word(in_word), .data_in$valid(in_valid), .data_in$ready(in_ready),
            .data_out$word(out_word), .data_out$valid(out_valid), .data_out$ready(out_ready){statics_conn}{bus_conn}{status_conn});

    function integer phase_end(input integer p);
        case (p)
{phase_end}            default: phase_end = 0;
        endcase
    endfunction

    task set_phase(input integer p);
        case (p)
{set_phase}            default: ;
        endcase
    endtask

{bus_tasks}
    initial begin
        $readmemh("beats.hex", beats);
        $readmemb("plan.bin", plan);
        f = $fopen("out.txt", "w");
        do_writes(0);
        while (!done && cycle < {nc}) begin
            in_valid = !stopped && (next_in < phase_end(phase)) && plan[cycle][1];
            in_word = (next_in < {nb}) ? beats[next_in] : 22'd0;
            out_ready = plan[cycle][0];
            #1;
            in_fire = in_valid && in_ready;
            out_fire = out_valid && out_ready;
            out_sample = out_word;
            // The design ended this transfer (HM adapter IN's cut): offer no more of it.
            if (hm_stop) stopped = 1;
            #4 clock = 1;
            #5 clock = 0;
            if (in_fire) next_in = next_in + 1;
            if (out_fire) begin
                $fdisplay(f, "%0d %h", cycle, out_sample);
                if (out_sample[21]) begin
{status_write}                    phase = phase + 1;
                    if (phase == {np}) done = 1;
                    else begin
                        // A cut phase leaves beats untaken: the next starts at its own.
                        next_in = phase_end(phase - 1);
                        stopped = 0;
                        do_writes(phase);
                        set_phase(phase);
                    end
                end
            end
            cycle = cycle + 1;
        end
        $fclose(f);
        $finish;
    end
endmodule
"#,
        bus_tasks = if bus {
            format!(
                r#"    // One register write: one clock cycle with the streams idle (no schedule step).
    task bus_write(input [7:0] a, input [15:0] d);
        begin
            in_valid = 0;
            out_ready = 0;
            reg_address = a;
            reg_write_data = d;
            reg_write = 1;
            #5 clock = 1;
            #5 clock = 0;
            reg_write_data = 0;
            reg_write = 0;
        end
    endtask

    task do_writes(input integer p);
        case (p)
{do_writes}            default: ;
        endcase
    endtask
"#
            )
        } else {
            "    task do_writes(input integer p);\n        begin end\n    endtask\n".to_string()
        },
        last_beat = nb.max(1) - 1,
        last_cycle = nc.max(1) - 1,
        np = phases.len(),
    )
}

fn write_inputs(dir: &Path, case: &CosimCase) -> Result<()> {
    std::fs::create_dir_all(dir)?;
    std::fs::write(dir.join("top.v"), &case.verilog)?;
    std::fs::write(dir.join("tb.v"), testbench(case))?;
    let hex: String = case
        .phases()
        .iter()
        .flat_map(|(_, beats)| beats.iter())
        .map(|b| format!("{:06x}\n", pack(b)))
        .collect();
    std::fs::write(dir.join("beats.hex"), hex)?;
    let plan: String = case
        .schedule
        .offer
        .iter()
        .zip(&case.schedule.take)
        .map(|(o, t)| format!("{}{}\n", *o as u8, *t as u8))
        .collect();
    std::fs::write(dir.join("plan.bin"), plan)?;
    Ok(())
}

fn read_output(dir: &Path) -> Result<SimOutput> {
    let text =
        std::fs::read_to_string(dir.join("out.txt")).context("reading the simulator's out.txt")?;
    let mut out = SimOutput::default();
    for l in text.lines() {
        let mut it = l.split_whitespace();
        let first = it.next().context("empty line in out.txt")?;
        if first == "S" {
            // A status port's value at the end of a phase: S <phase> <port> <hex>.
            let phase: usize = it.next().context("phase")?.parse()?;
            let port: usize = it.next().context("port")?.parse()?;
            let value =
                u64::from_str_radix(it.next().context("value")?, 16).with_context(|| {
                    format!("status value in line '{l}' (X or Z in the Verilog output?)")
                })?;
            if out.status.len() <= phase {
                out.status.resize(phase + 1, vec![]);
            }
            ensure!(
                out.status[phase].len() == port,
                "status line out of order: '{l}'"
            );
            out.status[phase].push(value);
            continue;
        }
        let cycle: u64 = first.parse()?;
        let word = u32::from_str_radix(it.next().context("word")?, 16).with_context(|| {
            format!("output word in line '{l}' (X or Z in the Verilog output?)")
        })?;
        out.beats.push((cycle, unpack(word)));
    }
    Ok(out)
}

fn scratch(case: &CosimCase, tool: &str) -> PathBuf {
    std::env::temp_dir().join(format!(
        "rdbe_cosim_{}_{tool}_{}",
        case.name,
        std::process::id()
    ))
}

/// Remove a simulator's scratch directory, unless `RDBE_COSIM_KEEP` is set (to look at
/// the generated testbench or add `$display`s when a co-simulation differs).
fn clean_up(dir: &Path) {
    if std::env::var_os("RDBE_COSIM_KEEP").is_none() {
        let _ = std::fs::remove_dir_all(dir);
    }
}

fn run(cmd: &mut Command, what: &str) -> Result<()> {
    let out = cmd.output().with_context(|| format!("running {what}"))?;
    if !out.status.success() {
        bail!(
            "{what} failed:\n{}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(())
}

/// The longest a simulator may run one case: every case finishes in well under a minute
/// on one core (its testbench stops at a cycle limit), so a simulation still running after
/// this never advances its time: a combinational loop in the Verilog that does not settle
/// (an event-driven simulator wakes a block again for every write to a signal that flows
/// back into it). Without the limit such a test hangs the suite.
const SIMULATION_TIME_LIMIT: std::time::Duration = std::time::Duration::from_secs(600);

/// Run a simulation in `dir` (its output in `dir/stdout.txt`, `dir/stderr.txt`), killed
/// after [SIMULATION_TIME_LIMIT].
fn run_simulation(cmd: &mut Command, dir: &Path, what: &str) -> Result<()> {
    run_within(cmd, dir, what, SIMULATION_TIME_LIMIT)
}

/// [run_simulation] with its time limit given.
fn run_within(cmd: &mut Command, dir: &Path, what: &str, limit: std::time::Duration) -> Result<()> {
    let stdout = std::fs::File::create(dir.join("stdout.txt"))?;
    let stderr = std::fs::File::create(dir.join("stderr.txt"))?;
    let mut child = cmd
        .stdout(stdout)
        .stderr(stderr)
        .spawn()
        .with_context(|| format!("running {what}"))?;
    let status = match child
        .wait_timeout(limit)
        .with_context(|| format!("waiting for {what}"))?
    {
        Some(status) => status,
        None => {
            let _ = child.kill();
            let _ = child.wait();
            bail!(
                "{what} in {} did not finish in {} s: a combinational loop in the Verilog that \
                 never settles? (RDBE_COSIM_KEEP=1 keeps the directory)",
                dir.display(),
                limit.as_secs_f64()
            );
        }
    };
    if !status.success() {
        bail!(
            "{what} failed:\n{}\n{}",
            std::fs::read_to_string(dir.join("stdout.txt")).unwrap_or_default(),
            std::fs::read_to_string(dir.join("stderr.txt")).unwrap_or_default()
        );
    }
    Ok(())
}

#[test]
fn a_simulation_that_never_finishes_is_killed_with_a_message() {
    let dir = std::env::temp_dir().join(format!("rdbe_cosim_limit_{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let started = std::time::Instant::now();
    let err = run_within(
        Command::new("sleep").arg("30"),
        &dir,
        "a hung simulator",
        std::time::Duration::from_millis(200),
    )
    .unwrap_err()
    .to_string();
    assert!(
        started.elapsed() < std::time::Duration::from_secs(10),
        "not killed"
    );
    assert!(
        err.contains("a hung simulator") && err.contains("did not finish"),
        "{err}"
    );
    // A simulator that ends in time, and one that fails, as before.
    run_within(
        &mut Command::new("true"),
        &dir,
        "ok",
        std::time::Duration::from_secs(10),
    )
    .unwrap();
    let err = run_within(
        &mut Command::new("false"),
        &dir,
        "bad",
        std::time::Duration::from_secs(10),
    )
    .unwrap_err()
    .to_string();
    assert!(err.contains("bad failed"), "{err}");
    let _ = std::fs::remove_dir_all(&dir);
}

/// Run the Icarus simulation compiled into `dir/sim.vvp` and read what it wrote.
fn run_vvp(dir: &Path) -> Result<SimOutput> {
    run_simulation(
        Command::new("vvp").current_dir(dir).args(["-n", "sim.vvp"]),
        dir,
        "vvp",
    )?;
    read_output(dir)
}

/// Simulate the case's Verilog in Icarus Verilog (`iverilog -g2005`).
pub fn run_icarus(case: &CosimCase) -> Result<SimOutput> {
    let dir = scratch(case, "icarus");
    write_inputs(&dir, case)?;
    run(
        Command::new("iverilog")
            .current_dir(&dir)
            .args(["-g2005", "-o", "sim.vvp", "tb.v", "top.v"]),
        "iverilog (apt-get install iverilog)",
    )?;
    let out = run_vvp(&dir)?;
    clean_up(&dir);
    Ok(out)
}

/// Yosys' data directory (`yosys-config --datdir`, which needs the yosys-dev package): the
/// `share/yosys` beside the `bin/` that holds `yosys`.
fn yosys_datdir() -> Result<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    let yosys = std::env::split_paths(&path)
        .map(|d| d.join("yosys"))
        .find(|p| p.is_file())
        .context("yosys is not on PATH (apt-get install yosys)")?;
    let yosys = std::fs::canonicalize(&yosys).unwrap_or(yosys);
    let datdir = yosys
        .parent()
        .and_then(Path::parent)
        .map(|p| p.join("share").join("yosys"))
        .context("yosys' data directory")?;
    ensure!(
        datdir.join("ice40").join("cells_sim.v").is_file(),
        "no ice40/cells_sim.v in {} (yosys' data directory)",
        datdir.display()
    );
    Ok(datdir)
}

/// Gate-level simulation: synthesise the case's Verilog for the iCE40 (`synth_ice40`, as
/// `rdbe synth` does, never `-retime`), write the netlist of `SB_LUT4`, `SB_CARRY`,
/// `SB_DFF*` and `SB_RAM40_4K` cells, and simulate it in Icarus with yosys' models of those
/// cells (`ice40/cells_sim.v`). Returns the outputs and the netlist's cell count.
pub fn run_icarus_gate_level(case: &CosimCase) -> Result<(SimOutput, usize)> {
    let dir = scratch(case, "gates");
    write_inputs(&dir, case)?;
    let cells = yosys_datdir()?.join("ice40").join("cells_sim.v");
    run(
        Command::new("yosys").current_dir(&dir).args([
            "-q",
            "-p",
            "read_verilog -DSYNTHESIS top.v; synth_ice40 -top top; \
             tee -q -o stat.txt stat; write_verilog -noattr gates.v",
        ]),
        "yosys synth_ice40",
    )?;
    // The iCE40's block RAMs power up zeroed (the bitstream holds every block's contents;
    // nextpnr-ice40 writes an undefined bit as 0), but yosys leaves the INIT parameters of a memory
    // without initial contents undefined, which the cell model would read as X: a word read
    // before it is first written (and masked by the logic, as in the rust-hdl simulation,
    // whose memories are zeroed too) would spread X where no gate would on the FPGA.
    let gates = std::fs::read_to_string(dir.join("gates.v"))?;
    let undefined_init = format!("256'h{})", "x".repeat(64));
    std::fs::write(
        dir.join("gates.v"),
        gates.replace(&undefined_init, "256'h0)"),
    )?;
    let stat = std::fs::read_to_string(dir.join("stat.txt"))?;
    let cell_count = stat
        .lines()
        .find_map(|l| l.trim().strip_prefix("Number of cells:"))
        .and_then(|n| n.trim().parse().ok())
        .context("yosys stat: no cell count")?;
    run(
        // The cell models need SystemVerilog (`-g2012`); Icarus 11 cannot parse their
        // default port values, which the netlist does not need (yosys connects every pin).
        Command::new("iverilog").current_dir(&dir).args([
            "-g2012",
            "-DNO_ICE40_DEFAULT_ASSIGNMENTS",
            "-o",
            "sim.vvp",
            "tb.v",
            "gates.v",
            cells.to_str().context("cells_sim.v path")?,
        ]),
        "iverilog of the gate-level netlist",
    )?;
    let out = run_vvp(&dir)?;
    clean_up(&dir);
    Ok((out, cell_count))
}

/// Simulate the case's Verilog in Verilator (`--binary --timing`). Verilator 5.006's timing
/// mode mis-clocks rust-hdl's hierarchy, so yosys flattens the design first.
pub fn run_verilator(case: &CosimCase) -> Result<SimOutput> {
    let dir = scratch(case, "verilator");
    write_inputs(&dir, case)?;
    run(
        Command::new("yosys").current_dir(&dir).args([
            "-q",
            "-p",
            "read_verilog top.v; hierarchy -top top; proc; flatten; opt_clean; write_verilog -noattr flat.v",
        ]),
        "yosys flatten",
    )?;
    run(
        Command::new("verilator").current_dir(&dir).args([
            "--binary",
            "--timing",
            "-Wno-fatal",
            "-Wno-lint",
            "-Wno-style",
            // A co-simulation runs for a moment: compile the model unoptimised (the C++
            // compile is most of a co-simulation's time; -O0 halves it).
            "-MAKEFLAGS",
            "OPT_FAST=-O0",
            "-MAKEFLAGS",
            "OPT_SLOW=-O0",
            "-MAKEFLAGS",
            "OPT_GLOBAL=-O0",
            "--top-module",
            "tb",
            "-o",
            "sim",
            "tb.v",
            "flat.v",
        ]),
        "verilator (apt-get install verilator)",
    )?;
    run_simulation(
        Command::new(dir.join("obj_dir").join("sim")).current_dir(&dir),
        &dir,
        "verilated simulation",
    )?;
    let out = read_output(&dir)?;
    clean_up(&dir);
    Ok(out)
}

/// Run the case through the rust-hdl simulation with the same schedule.
pub fn run_rust<B: StreamBlock>(
    uut: B,
    configure: impl FnOnce(&mut B),
    case: &CosimCase,
) -> SimOutput {
    let mut configure = Some(configure);
    run_rust_phases(
        uut,
        |b, _| {
            if let Some(c) = configure.take() {
                c(b)
            }
        },
        case,
    )
}

/// As [run_rust] for a case with several streams: `configure(block, phase)` sets the
/// static inputs before each stream.
pub fn run_rust_phases<B: StreamBlock>(
    uut: B,
    configure: impl FnMut(&mut B, usize),
    case: &CosimCase,
) -> SimOutput {
    run_rust_with_status(uut, configure, |_| vec![], case)
}

/// As [run_rust_phases]; after each phase's end-of-stream beat, `status(block)` gives the
/// values of the case's [CosimCase::status_ports], in their order.
pub fn run_rust_with_status<B: StreamBlock>(
    uut: B,
    mut configure: impl FnMut(&mut B, usize),
    status: impl Fn(&B) -> Vec<u64>,
    case: &CosimCase,
) -> SimOutput {
    let mut h = Harness::new(uut);
    let mut out = SimOutput::default();
    let mut start = 0;
    for (i, (_, beats)) in case.phases().iter().enumerate() {
        configure(&mut h.uut, i);
        let run = h.run_scheduled_from(beats, &case.schedule, start);
        start = run.cycles;
        out.beats
            .extend(run.output_cycles.into_iter().zip(run.output));
        let values = status(&h.uut);
        if !values.is_empty() {
            out.status.push(values);
        }
    }
    out
}

/// As [run_rust_phases] for an RDBE top: before each phase's stream, its register writes
/// ([CosimCase::bus_writes]), one per clock cycle; the source stops offering a stream the
/// top cuts (`hm_stop`), as the Verilog testbench does.
pub fn run_rust_bus<B: crate::rdbe_top::RdbeTop>(uut: B, case: &CosimCase) -> SimOutput {
    let mut h = Harness::new(uut);
    let mut out = SimOutput::default();
    let mut start = 0;
    for (i, (_, beats)) in case.phases().iter().enumerate() {
        for &(address, data) in case.bus_writes.get(i).into_iter().flatten() {
            crate::rdbe_top::write_register(&mut h, address, data);
        }
        let run = h.run_scheduled_from(beats, &case.schedule, start);
        start = run.cycles;
        out.beats
            .extend(run.output_cycles.into_iter().zip(run.output));
    }
    out
}

/// A packed port value (up to 128 bits) as the testbench drives it.
pub fn packed<const N: usize>(bits: Bits<N>) -> u128 {
    assert!(N <= 128);
    (0..N)
        .filter(|&i| bits.get_bit(i))
        .fold(0u128, |v, i| v | 1 << i)
}

/// The static ports of a sort pipeline for `s`.
pub fn pipeline_statics(s: &crate::sort_pipeline::PipelineSettings) -> Vec<(String, u128)> {
    let settings: Bits<61> = s.port().into();
    vec![("settings".into(), packed(settings)), ("clear".into(), 0)]
}

/// Compare two simulations' outputs, beats then status; the error names the first
/// difference.
pub fn compare(reference: &SimOutput, other: &SimOutput, tool: &str) -> Result<()> {
    compare_beats(&reference.beats, &other.beats, tool)?;
    ensure!(
        reference.status == other.status,
        "{tool} differs from rust-hdl in the status ports at the end of a phase: rust-hdl \
         {:?}, {tool} {:?}",
        reference.status,
        other.status
    );
    Ok(())
}

/// Compare two timed beat lists; the error names the first difference.
pub fn compare_beats(reference: &[TimedBeat], other: &[TimedBeat], tool: &str) -> Result<()> {
    for (i, (r, o)) in reference.iter().zip(other).enumerate() {
        ensure!(
            r == o,
            "{tool} differs from rust-hdl at output beat {i}: rust-hdl {r:?}, {tool} {o:?}"
        );
    }
    ensure!(
        reference.len() == other.len(),
        "{tool} produced {} beats, rust-hdl {}",
        other.len(),
        reference.len()
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::harness::{random_relation, Pacing, RelationShape};
    use crate::sort_pipeline::{PipelineSettings, SmallSortPipeline, SortPipelineTop};
    use crate::sorter::{SmallSorter, SortSettings};
    use crate::sorting_cell::SortingCell;
    use crate::tuple_stream::compact_beats;
    use crate::tuple_stream::to_beats;
    use crate::verilog::export;
    use rand::SeedableRng;
    use rand_chacha::ChaCha8Rng;

    fn relation(seed: u64, tuples: usize, tuple_words: usize, key_words: usize) -> Vec<Beat> {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let shape = RelationShape {
            tuples,
            tuple_words,
            key_words,
            null_probability: 0.15,
            key_domain: 6,
        };
        to_beats(&random_relation(&mut rng, shape))
    }

    #[test]
    fn sorting_cell_verilog_matches_rust_hdl_cycle_for_cycle() {
        let beats = relation(1, 37, 3, 2);
        let settings = [
            ("tuple_words", 3),
            ("key_words", 2),
            ("descending", 1),
            ("sort_enable", 1),
            ("run_in", 2),
            ("run_limit", 0),
        ];
        let case = CosimCase {
            name: "sorting_cell".into(),
            verilog: export(SortingCell::<3, 4>::default()),
            statics: settings.iter().map(|(p, v)| (p.to_string(), *v)).collect(),
            beats,
            more_phases: vec![],
            bus_writes: vec![],
            status_ports: vec![],
            schedule: Schedule::from_pacing(
                Pacing {
                    source_duty: 0.7,
                    sink_duty: 0.6,
                    seed: 5,
                },
                5000,
            ),
        };
        let reference = run_rust(
            SortingCell::<3, 4>::default(),
            |c| {
                c.tuple_words.next = 3.into();
                c.key_words.next = 2.into();
                c.descending.next = true;
                c.sort_enable.next = true;
                c.run_in.next = 2.into();
                c.run_limit.next = 0.into();
            },
            &case,
        );
        assert!(reference.last().unwrap().1.eos);
        compare(&reference, &run_icarus(&case).unwrap(), "icarus").unwrap();
        compare(&reference, &run_verilator(&case).unwrap(), "verilator").unwrap();
    }

    #[test]
    fn small_sorter_verilog_matches_rust_hdl_cycle_for_cycle() {
        let beats = relation(2, 45, 2, 1);
        let s = SortSettings {
            tuple_words: 2,
            key_words: 1,
            descending: false,
            sort_enable: true,
            tuples_hint: 0,
        };
        let case = CosimCase {
            name: "small_sorter".into(),
            verilog: export(SmallSorter::default()),
            statics: vec![
                ("tuple_words".into(), 2),
                ("key_words".into(), 1),
                ("descending".into(), 0),
                ("sort_enable".into(), 1),
                ("tuples_hint".into(), 0),
            ],
            beats,
            more_phases: vec![],
            bus_writes: vec![],
            status_ports: vec![],
            schedule: Schedule::from_pacing(
                Pacing {
                    source_duty: 0.8,
                    sink_duty: 0.8,
                    seed: 6,
                },
                8000,
            ),
        };
        let reference = run_rust(SmallSorter::default(), |m| m.apply(&s), &case);
        compare(&reference, &run_icarus(&case).unwrap(), "icarus").unwrap();
        compare(&reference, &run_verilator(&case).unwrap(), "verilator").unwrap();
    }

    #[test]
    fn small_sort_pipeline_verilog_matches_rust_hdl_cycle_for_cycle() {
        use crate::in_module::{InConfig, KeyType};
        let mut rng = ChaCha8Rng::seed_from_u64(3);
        let s = PipelineSettings {
            input: InConfig {
                tuple_words: 5,
                key_offset: 2,
                key_words: 2,
                key_type: KeyType::Float,
                key_null_bit: Some(1),
            },
            descending: false,
            sort_enable: true,
            tuples_hint: 0,
        };
        let tuples: Vec<Vec<u16>> = (0..30)
            .map(|_| {
                (0..5)
                    .map(|i| {
                        if i == 0 {
                            [0, 2][rand::Rng::gen_range(&mut rng, 0..2)]
                        } else {
                            rand::Rng::gen(&mut rng)
                        }
                    })
                    .collect()
            })
            .collect();
        let beats = compact_beats(&tuples);
        let case = CosimCase {
            name: "small_sort_pipeline".into(),
            verilog: export(SmallSortPipeline::default()),
            statics: pipeline_statics(&s),
            beats,
            more_phases: vec![],
            bus_writes: vec![],
            status_ports: vec![],
            schedule: Schedule::from_pacing(
                Pacing {
                    source_duty: 0.9,
                    sink_duty: 0.7,
                    seed: 7,
                },
                8000,
            ),
        };
        let reference = run_rust(SmallSortPipeline::default(), |m| m.apply(&s), &case);
        assert!(reference.len() > 100);
        compare(&reference, &run_icarus(&case).unwrap(), "icarus").unwrap();
        compare(&reference, &run_verilator(&case).unwrap(), "verilator").unwrap();
    }
}

#[cfg(test)]
mod merger_tests {
    use super::*;
    use crate::harness::Pacing;
    use crate::in_module::KeyType;
    use crate::merger::{
        random_sorted_operand, MergerCommand, MergerConfig, MergerSettings, MergerSmall,
    };
    use crate::operation_part::CommandSettings;
    use crate::output_control_part::{OutputFormat, OutputSettings, SideFormat};
    use crate::tuple_stream::to_beats;
    use crate::verilog::export;
    use rand::SeedableRng;
    use rand_chacha::ChaCha8Rng;

    /// The static ports of the merger's output control part.
    pub(super) fn output_statics(c: &MergerConfig) -> Vec<(String, u128)> {
        let u: Bits<71> = OutputFormat::into(c.output.u.to_bits());
        let l: Bits<71> = OutputFormat::into(c.output.l.to_bits());
        [
            ("u_format", packed(u)),
            ("l_format", packed(l)),
            ("new_tid", c.output.new_tid as u128),
            ("tid_base", c.output.tid_base as u128),
            ("clear", 0),
        ]
        .iter()
        .map(|(p, v)| (p.to_string(), *v))
        .collect()
    }

    /// The merger's static ports for one command.
    fn statics(c: &MergerConfig) -> Vec<(String, u128)> {
        let settings: Bits<51> = CommandSettings::into(c.command_settings());
        let mut v = vec![("settings".to_string(), packed(settings))];
        v.extend(output_statics(c));
        v
    }

    #[test]
    fn small_merger_verilog_matches_rust_hdl_over_a_command_sequence() {
        let mut rng = ChaCha8Rng::seed_from_u64(21);
        let u = random_sorted_operand(&mut rng, 14, 1, false);
        let l = random_sorted_operand(&mut rng, 18, 1, false);
        let format = SideFormat {
            tuple_words: 4,
            key_offset: 2,
            key_words: 1,
            key_type: KeyType::Signed,
            first_word: 1,
            end_word: 4,
            first_field: 0,
            fields: 3,
        };
        let base = MergerConfig {
            command: MergerCommand::Load,
            delete: false,
            settings: MergerSettings {
                key_words: 1,
                descending: false,
                second_offset: 1,
                second_null_bit: Some(2),
                second_type: KeyType::Unsigned,
                u_partial: false,
            },
            tuple_words: 4,
            output: OutputSettings {
                u: format,
                l: format,
                new_tid: true,
                tid_base: 0x1234_0000,
            },
        };
        let with = |command, delete| MergerConfig {
            command,
            delete,
            ..base
        };
        // LOAD, then commands that read U, delete mode, and last COMPARE ATTRIBUTES (which
        // overwrites U-memory).
        let steps = [
            (with(MergerCommand::Load, false), &u),
            (with(MergerCommand::JoinEq, false), &l),
            (with(MergerCommand::SortEx, false), &l),
            (with(MergerCommand::UnqEx, false), &l),
            (with(MergerCommand::JoinLt, false), &l),
            (with(MergerCommand::RestNe, true), &l),
            (with(MergerCommand::Pass2, false), &l),
            (with(MergerCommand::CompLt, false), &l),
        ];
        let case = CosimCase {
            name: "small_merger".into(),
            verilog: export(MergerSmall::default()),
            statics: statics(&steps[0].0),
            beats: to_beats(steps[0].1),
            more_phases: steps[1..]
                .iter()
                .map(|(c, t)| CosimPhase {
                    statics: statics(c),
                    beats: to_beats(t),
                })
                .collect(),
            bus_writes: vec![],
            status_ports: vec![],
            schedule: Schedule::from_pacing(
                Pacing {
                    source_duty: 0.8,
                    sink_duty: 0.7,
                    seed: 13,
                },
                40_000,
            ),
        };
        let reference = run_rust_phases(
            MergerSmall::default(),
            |m, i| steps[i].0.apply(m).unwrap(),
            &case,
        );
        assert_eq!(reference.iter().filter(|(_, b)| b.eos).count(), steps.len());
        assert!(reference.len() > 400, "{} beats", reference.len());
        // The rust-hdl run itself, DP included, is the model's, command by command.
        let beats: Vec<Beat> = reference.iter().map(|(_, b)| *b).collect();
        let mut phases = beats.split_inclusive(|b| b.eos);
        for (c, l) in steps.iter() {
            let phase = phases.next().unwrap();
            assert!(crate::tuple_stream::dp_constant_per_tuple(phase));
            assert_eq!(
                crate::tuple_stream::split_tuples_with_dup(phase),
                c.model_with_dup(&u, l).unwrap(),
                "{}",
                c.command.name()
            );
        }
        compare(&reference, &run_icarus(&case).unwrap(), "icarus").unwrap();
        compare(&reference, &run_verilator(&case).unwrap(), "verilator").unwrap();
    }
}

#[cfg(test)]
mod engine_core_tests {
    use super::merger_tests::output_statics;
    use super::*;
    use crate::engine_core::{EngineCoreTop, SmallEngineCore};
    use crate::harness::Pacing;
    use crate::in_module::{InConfig, KeyType};
    use crate::merger::{MergerCommand, MergerConfig, MergerSettings};
    use crate::operation_part::CommandSettings;
    use crate::output_control_part::{OutputSettings, SideFormat};
    use crate::sort_pipeline::PipelineSettings;
    use crate::tuple_stream::compact_beats;
    use crate::verilog::export;
    use rand::{Rng, SeedableRng};
    use rand_chacha::ChaCha8Rng;

    fn statics(sort: &PipelineSettings, c: &MergerConfig) -> Vec<(String, u128)> {
        let merge_bits: Bits<51> = CommandSettings::into(c.command_settings());
        let mut v = vec![
            ("sort_settings".to_string(), pipeline_statics(sort)[0].1),
            ("merge_settings".to_string(), packed(merge_bits)),
        ];
        v.extend(output_statics(c));
        // The fault injectors (test equipment) off, as a synthesis top ties them.
        for port in [
            "fault_site",
            "fault_kind",
            "fault_target",
            "fault_line",
            "fault_restart",
        ] {
            v.push((port.to_string(), 0));
        }
        v
    }

    fn random_compact(rng: &mut ChaCha8Rng, n: usize) -> Vec<Beat> {
        let tuples: Vec<Vec<u16>> = (0..n)
            .map(|i| {
                vec![
                    (rng.gen_bool(0.15) as u16) << 1,
                    rng.gen(),
                    rng.gen_range(0..5u16),
                    i as u16,
                ]
            })
            .collect();
        compact_beats(&tuples)
    }

    /// The engine core's status outputs, compared at the end of every command.
    const CORE_STATUS: [(&str, usize); 13] = [
        ("capacity_tuples", 16),
        ("parity_error", 1),
        ("framing_error", 1),
        ("sort_error", 1),
        ("violations", 16),
        ("command_error", 1),
        ("u_overflow", 1),
        ("l_overflow", 1),
        ("u_tuples", 16),
        ("l_taken", 32),
        ("link_error", 1),
        ("streams_in", 5),
        ("streams_merged", 5),
    ];

    fn core_status<B: EngineCoreTop>(core: &B) -> Vec<u64> {
        let s = core.status();
        vec![
            s.capacity_tuples as u64,
            s.parity_error as u64,
            s.framing_error as u64,
            s.sort_error as u64,
            s.violations as u64,
            s.command_error as u64,
            s.u_overflow as u64,
            s.l_overflow as u64,
            s.u_tuples as u64,
            s.l_taken as u64,
            s.link_error as u64,
            s.streams_in as u64,
            s.streams_merged as u64,
        ]
    }

    /// LOAD then JOIN-EQ on the small engine core, the stimulus of the RTL and the
    /// gate-level co-simulations; with the rust-hdl simulation's output.
    fn load_then_join() -> (CosimCase, SimOutput) {
        load_then_join_on::<SmallEngineCore>("small_engine_core")
    }

    /// LOAD, JOIN-EQ, then a SORT-EX with an L key that breaks the order (the sorter sorts,
    /// so the order holds) and a word with bad parity, on any engine core.
    fn load_then_join_on<B: EngineCoreTop + Default + Block>(name: &str) -> (CosimCase, SimOutput) {
        let mut rng = ChaCha8Rng::seed_from_u64(31);
        let input = InConfig {
            tuple_words: 4,
            key_offset: 2,
            key_words: 1,
            key_type: KeyType::Unsigned,
            key_null_bit: Some(1),
        };
        let sort = PipelineSettings {
            input: input.clone(),
            descending: false,
            sort_enable: true,
            tuples_hint: 0,
        };
        let join = MergerConfig {
            command: MergerCommand::JoinEq,
            delete: false,
            settings: MergerSettings::ascending(1),
            tuple_words: 4,
            output: OutputSettings::both(SideFormat::whole(&input, 3)),
        };
        let load = MergerConfig {
            command: MergerCommand::Load,
            ..join
        };
        let sort_ex = MergerConfig {
            command: MergerCommand::SortEx,
            ..join
        };
        let steps = [load, join, sort_ex];
        let mut bad_parity = random_compact(&mut rng, 16);
        bad_parity[9].parity ^= 1;
        let case = CosimCase {
            name: name.into(),
            verilog: export(B::default()),
            statics: statics(&sort, &load),
            beats: random_compact(&mut rng, 20),
            more_phases: vec![
                CosimPhase {
                    statics: statics(&sort, &join),
                    beats: random_compact(&mut rng, 24),
                },
                CosimPhase {
                    statics: statics(&sort, &sort_ex),
                    beats: bad_parity,
                },
            ],
            bus_writes: vec![],
            status_ports: CORE_STATUS
                .iter()
                .map(|(p, w)| (p.to_string(), *w))
                .collect(),
            schedule: Schedule::from_pacing(
                Pacing {
                    source_duty: 0.8,
                    sink_duty: 0.8,
                    seed: 17,
                },
                20_000,
            ),
        };
        let reference = run_rust_with_status(
            B::default(),
            |m, i| m.apply(&sort, &steps[i]).unwrap(),
            core_status,
            &case,
        );
        assert!(reference.len() > 40, "{} beats", reference.len());
        let last = reference.status.last().unwrap();
        assert_eq!(last[1], 1, "the bad parity word is seen: {last:?}");
        assert!(reference.status[1][8] > 0, "U holds the LOADed tuples");
        (case, reference)
    }

    /// The paper-size engine core (12 cells, 32K-word merger memories split into lanes).
    #[test]
    fn delta_engine_core_verilog_matches_rust_hdl_load_join_sort_ex() {
        let (case, reference) =
            load_then_join_on::<crate::engine_core::DeltaEngineCore>("delta_engine_core");
        compare(&reference, &run_icarus(&case).unwrap(), "icarus").unwrap();
        compare(&reference, &run_verilator(&case).unwrap(), "verilator").unwrap();
    }

    #[test]
    fn small_engine_core_verilog_matches_rust_hdl_load_then_join() {
        let (case, reference) = load_then_join();
        compare(&reference, &run_icarus(&case).unwrap(), "icarus").unwrap();
        compare(&reference, &run_verilator(&case).unwrap(), "verilator").unwrap();
    }

    /// The netlist `synth_ice40` makes of the small engine core (LUTs, carries, flip-flops
    /// with their initial values, block RAMs) behaves as the rust-hdl simulation, cycle for
    /// cycle.
    #[test]
    fn small_engine_core_ice40_netlist_matches_rust_hdl_load_then_join() {
        let (case, reference) = load_then_join();
        let (gates, cells) = run_icarus_gate_level(&case).unwrap();
        assert!(cells > 1000, "{cells} cells: not the whole engine core");
        compare(&reference, &gates, "icarus, iCE40 netlist").unwrap();
    }
}

#[cfg(test)]
mod delta_tests {
    use super::*;
    use crate::harness::Pacing;
    use crate::in_module::{InConfig, KeyType};
    use crate::sort_pipeline::{DeltaSortPipeline, PipelineSettings, SortPipelineTop};
    use crate::tuple_stream::compact_beats;
    use crate::verilog::export;
    use rand::{Rng, SeedableRng};
    use rand_chacha::ChaCha8Rng;

    #[test]
    fn delta_sort_pipeline_verilog_matches_rust_hdl_cycle_for_cycle() {
        // The paper-size engine front half: 12 cells, 2048-word IN buffer, 4096-word ring.
        let mut rng = ChaCha8Rng::seed_from_u64(12);
        let s = PipelineSettings {
            input: InConfig {
                tuple_words: 4,
                key_offset: 1,
                key_words: 2,
                key_type: KeyType::Signed,
                key_null_bit: Some(0),
            },
            descending: true,
            sort_enable: true,
            tuples_hint: 40,
        };
        let tuples: Vec<Vec<u16>> = (0..40)
            .map(|_| {
                (0..4)
                    .map(|i| {
                        if i == 0 {
                            [0, 1][rng.gen_range(0..2)]
                        } else {
                            rng.gen_range(0..5)
                        }
                    })
                    .collect()
            })
            .collect();
        let beats = compact_beats(&tuples);
        let case = CosimCase {
            name: "delta_sort_pipeline".into(),
            verilog: export(DeltaSortPipeline::default()),
            statics: pipeline_statics(&s),
            beats,
            more_phases: vec![],
            bus_writes: vec![],
            status_ports: vec![],
            schedule: Schedule::from_pacing(
                Pacing {
                    source_duty: 0.8,
                    sink_duty: 0.8,
                    seed: 9,
                },
                6000,
            ),
        };
        let reference = run_rust(DeltaSortPipeline::default(), |m| m.apply(&s), &case);
        assert_eq!(reference.len(), 40 * 4 + 1);
        let t0 = std::time::Instant::now();
        compare(&reference, &run_icarus(&case).unwrap(), "icarus").unwrap();
        eprintln!("icarus {:.1} s", t0.elapsed().as_secs_f64());
        let t0 = std::time::Instant::now();
        compare(&reference, &run_verilator(&case).unwrap(), "verilator").unwrap();
        eprintln!("verilator {:.1} s", t0.elapsed().as_secs_f64());
    }
}

#[cfg(test)]
mod rdbe_tests {
    use super::*;
    use crate::engine_core::tests::{relation, sorted_run};
    use crate::fault_injector::{Fault, FaultKind, FaultSite, StreamFault};
    use crate::harness::Pacing;
    use crate::in_module::{InConfig, KeyType};
    use crate::merger::{MergerCommand, MergerConfig, MergerSettings};
    use crate::output_control_part::{OutputSettings, SideFormat};
    use crate::rdbe_top::{register_writes, HmSettings, SmallRdbe, REG_CONTROL};
    use crate::sort_pipeline::PipelineSettings;
    use crate::tuple_stream::compact_beats;
    use crate::verilog::export;
    use rand::SeedableRng;
    use rand_chacha::ChaCha8Rng;

    #[test]
    fn small_rdbe_verilog_matches_rust_hdl_through_the_register_bus() {
        // Everything set up through the register bus: a clear, LOAD of a sorted chunk, a
        // partial SORT-EX whose input the top cuts (hm_stop), then a sorting PASS-1 with
        // the HM adapters paced to one word every three cycles and the diagnostic parity
        // fault on (the core flags it; the data still flows).
        let mut rng = ChaCha8Rng::seed_from_u64(33);
        let input = InConfig {
            tuple_words: 4,
            key_offset: 2,
            key_words: 1,
            key_type: KeyType::Signed,
            key_null_bit: Some(1),
        };
        let sort = |sort_enable| PipelineSettings {
            input: input.clone(),
            descending: false,
            sort_enable,
            tuples_hint: 0,
        };
        let pass = MergerConfig {
            command: MergerCommand::Pass1,
            delete: false,
            settings: MergerSettings::ascending(1),
            tuple_words: 4,
            output: OutputSettings::both(SideFormat::whole(&input, 3)),
        };
        let load = MergerConfig {
            command: MergerCommand::Load,
            ..pass
        };
        let partial = MergerConfig {
            command: MergerCommand::SortEx,
            settings: MergerSettings {
                u_partial: true,
                ..pass.settings
            },
            ..pass
        };
        let full = HmSettings::default();
        let paced = HmSettings {
            pace: 3,
            parity_fault: Some(5),
        };
        let mut clear_then_load = vec![(REG_CONTROL, 1), (0x7f, 0)];
        clear_then_load.extend(register_writes(&sort(false), &load, full).unwrap());
        let case = CosimCase {
            name: "small_rdbe".into(),
            verilog: export(SmallRdbe::default()),
            statics: vec![],
            beats: compact_beats(&sorted_run(&mut rng, 10)),
            more_phases: vec![
                CosimPhase {
                    statics: vec![],
                    beats: compact_beats(&sorted_run(&mut rng, 120)),
                },
                CosimPhase {
                    statics: vec![],
                    beats: compact_beats(&relation(&mut rng, 20)),
                },
            ],
            bus_writes: vec![
                clear_then_load,
                register_writes(&sort(false), &partial, full).unwrap(),
                // ... and the fault injector between the sort pipeline and the merger
                // flips data line 3 of beat 6 (test equipment, issue 7).
                {
                    let mut w = register_writes(&sort(true), &pass, paced).unwrap();
                    w.extend(crate::rdbe_top::inject_writes(Some(StreamFault {
                        site: FaultSite::Sorted,
                        fault: Fault {
                            kind: FaultKind::FlipData,
                            target: 6,
                            line: 3,
                        },
                    })));
                    w
                },
            ],
            status_ports: vec![],
            schedule: Schedule::from_pacing(
                Pacing {
                    source_duty: 0.9,
                    sink_duty: 0.8,
                    seed: 19,
                },
                20_000,
            ),
        };
        let reference = run_rust_bus(SmallRdbe::default(), &case);
        let ends = reference.iter().filter(|(_, b)| b.eos).count();
        assert_eq!(ends, 3, "three streams");
        // The injected fault shows in the third stream (and only there).
        let mut fault_free = case.clone();
        let armed = fault_free.bus_writes[2].len();
        fault_free.bus_writes[2].truncate(armed - 3);
        let beats = |r: &[(u64, Beat)]| r.iter().map(|(_, b)| *b).collect::<Vec<_>>();
        let clean = beats(&run_rust_bus(SmallRdbe::default(), &fault_free));
        let faulty = beats(&reference);
        assert_eq!(clean.len(), faulty.len());
        let differ: Vec<usize> = (0..clean.len())
            .filter(|&i| clean[i] != faulty[i])
            .collect();
        assert_eq!(differ.len(), 1, "one output word differs: {differ:?}");
        assert_eq!(clean[differ[0]].data ^ faulty[differ[0]].data, 1 << 3);
        // The partial SORT-EX's output ends well before its 120 input tuples were needed.
        let second: Vec<_> = reference
            .iter()
            .skip_while(|(_, b)| !b.eos)
            .skip(1)
            .take_while(|(_, b)| !b.eos)
            .collect();
        assert!(
            !second.is_empty() && second.len() < 4 * 100,
            "{} words",
            second.len()
        );
        compare(&reference, &run_icarus(&case).unwrap(), "icarus").unwrap();
        compare(&reference, &run_verilator(&case).unwrap(), "verilator").unwrap();
    }
}

#[cfg(test)]
mod sorting_checker_tests {
    use super::*;
    use crate::harness::{random_relation, Pacing, RelationShape};
    use crate::sorting_checker::{CheckerConfig, SortingChecker};
    use crate::tuple_stream::to_beats;
    use crate::verilog::export;
    use rand::SeedableRng;
    use rand_chacha::ChaCha8Rng;

    /// Three streams through the sorting checker alone: sorted (DP marks the duplicates),
    /// unsorted (violations counted, tuples unchanged), and one with a bad parity word;
    /// `sort_error`, `violations` and `parity_error` compared after each.
    fn three_streams<const A: usize, const P: usize>(name: &str)
    where
        SortingChecker<A, P>: Default,
    {
        let mut rng = ChaCha8Rng::seed_from_u64(41);
        let cfg = CheckerConfig {
            tuple_words: 3,
            key_words: 2,
            descending: false,
        };
        let shape = RelationShape {
            tuples: 40,
            tuple_words: 3,
            key_words: 2,
            null_probability: 0.1,
            key_domain: 4,
        };
        let mut sorted = random_relation(&mut rng, shape);
        sorted.sort_by(|a, b| crate::sorting_cell::model::sort_order(a, b, 2, false));
        let unsorted = random_relation(&mut rng, shape);
        let mut bad = to_beats(&sorted);
        bad[7].parity ^= 2;
        let statics = vec![
            ("tuple_words".to_string(), 3),
            ("key_words".to_string(), 2),
            ("descending".to_string(), 0),
            ("clear".to_string(), 0),
        ];
        let case = CosimCase {
            name: name.into(),
            verilog: export(SortingChecker::<A, P>::default()),
            statics: statics.clone(),
            beats: to_beats(&sorted),
            more_phases: [to_beats(&unsorted), bad]
                .into_iter()
                .map(|beats| CosimPhase {
                    statics: statics.clone(),
                    beats,
                })
                .collect(),
            bus_writes: vec![],
            status_ports: vec![
                ("sort_error".into(), 1),
                ("violations".into(), 16),
                ("parity_error".into(), 1),
            ],
            schedule: Schedule::from_pacing(
                Pacing {
                    source_duty: 0.85,
                    sink_duty: 0.75,
                    seed: 23,
                },
                4000,
            ),
        };
        let reference = run_rust_with_status(
            SortingChecker::<A, P>::default(),
            |m, _| cfg.apply(m).unwrap(),
            |m| {
                vec![
                    m.sort_error.val() as u64,
                    m.violations.val().index() as u64,
                    m.parity_error.val() as u64,
                ]
            },
            &case,
        );
        assert_eq!(reference.status[0], vec![0, 0, 0], "the sorted stream");
        assert!(
            reference.status[1][1] > 0,
            "violations: {:?}",
            reference.status
        );
        assert_eq!(reference.status[2][2], 1, "the bad parity word");
        assert!(
            reference.iter().any(|(_, b)| b.dup),
            "DP marks duplicate keys"
        );
        compare(&reference, &run_icarus(&case).unwrap(), "icarus").unwrap();
        compare(&reference, &run_verilator(&case).unwrap(), "verilator").unwrap();
    }

    #[test]
    fn small_sorting_checker_verilog_matches_rust_hdl_with_its_flags() {
        // SortingCheckerSmall
        three_streams::<8, 9>("small_sorting_checker");
    }

    #[test]
    fn delta_sorting_checker_verilog_matches_rust_hdl_with_its_flags() {
        // SortingCheckerDelta
        three_streams::<12, 13>("delta_sorting_checker");
    }
}
