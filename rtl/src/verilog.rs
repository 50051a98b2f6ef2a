//! Verilog export and the checks every exported module must pass: yosys' `read; hierarchy;
//! proc` (rust-hdl's `yosys_validate`), `verilator --lint-only -Wall` with the waivers in
//! `rtl/verilator_waivers.vlt` (each one justified there), and Icarus Verilog's `-g2005`
//! compile.
use anyhow::{bail, Context, Result};
use rust_hdl::prelude::*;
use std::path::{Path, PathBuf};
use std::process::Command;

/// Connect a block and generate its Verilog (top module named `top`).
pub fn export<B: Block>(mut uut: B) -> String {
    uut.connect_all();
    generate_verilog(&uut)
}

/// [export] of `B::default()`, built in a frame of its own: the engine's blocks take
/// hundreds of kilobytes each (the Delta engine core 300 KB), and several built in one
/// caller's frame overflowed a test thread's 2 MB stack.
#[inline(never)]
pub fn export_default<B: Block + Default>() -> String {
    export(B::default())
}

/// Rename the generated `top` module so several modules can live in one design.
pub fn rename_top(verilog: &str, name: &str) -> String {
    verilog.replacen("module top(", &format!("module {name}("), 1)
}

/// The waiver file shipped with the crate.
pub fn waiver_file() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("verilator_waivers.vlt")
}

fn scratch_dir(name: &str) -> Result<PathBuf> {
    let dir = std::env::temp_dir().join(format!("rdbe_lint_{name}_{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    Ok(dir)
}

/// Run `verilator --lint-only -Wall` on a module whose top is `top`.
pub fn verilator_lint(name: &str, verilog: &str) -> Result<()> {
    let dir = scratch_dir(name)?;
    let file = dir.join("top.v");
    std::fs::write(&file, verilog)?;
    let out = Command::new("verilator")
        .arg("--lint-only")
        .arg("-Wall")
        .arg("--top-module")
        .arg("top")
        .arg(waiver_file())
        .arg(&file)
        .output()
        .context("running verilator (apt-get install verilator)")?;
    if !out.status.success() {
        bail!(
            "verilator lint of {name} failed (kept in {}):\n{}",
            dir.display(),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}

/// Compile a module whose top is `top` with Icarus Verilog as plain Verilog-2005
/// (`iverilog -g2005`): the exported Verilog needs no SystemVerilog.
pub fn icarus_compile(name: &str, verilog: &str) -> Result<()> {
    let dir = scratch_dir(&format!("{name}_icarus"))?;
    let file = dir.join("top.v");
    std::fs::write(&file, verilog)?;
    let out = Command::new("iverilog")
        .current_dir(&dir)
        .args(["-g2005", "-Wall", "-s", "top", "-o", "top.vvp", "top.v"])
        .output()
        .context("running iverilog (apt-get install iverilog)")?;
    if !out.status.success() {
        bail!(
            "iverilog -g2005 of {name} failed (kept in {}):\n{}",
            dir.display(),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}

/// The three checks: yosys parse/elaborate, Verilator lint, Icarus `-g2005` compile.
pub fn check_module(name: &str, verilog: &str) -> Result<()> {
    yosys_validate(&format!("rdbe_{name}_{}", std::process::id()), verilog)
        .map_err(|e| anyhow::anyhow!("yosys_validate({name}): {e:?}"))?;
    verilator_lint(name, verilog)?;
    icarus_compile(name, verilog)
}
