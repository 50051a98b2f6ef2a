//! Verilog export and the checks every exported module must pass: yosys' `read; hierarchy;
//! proc` (rust-hdl's `yosys_validate`) and `verilator --lint-only -Wall` with the waivers in
//! `rtl/verilator_waivers.vlt` (each one justified there).
use anyhow::{bail, Context, Result};
use rust_hdl::prelude::*;
use std::path::{Path, PathBuf};
use std::process::Command;

/// Connect a block and generate its Verilog (top module named `top`).
pub fn export<B: Block>(mut uut: B) -> String {
    uut.connect_all();
    generate_verilog(&uut)
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

/// Both checks: yosys parse/elaborate and Verilator lint.
pub fn check_module(name: &str, verilog: &str) -> Result<()> {
    yosys_validate(&format!("rdbe_{name}_{}", std::process::id()), verilog)
        .map_err(|e| anyhow::anyhow!("yosys_validate({name}): {e:?}"))?;
    verilator_lint(name, verilog)
}
