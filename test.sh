#!/usr/bin/env bash
# The whole test suite, on a fresh machine: installs the HDL tools the tests call when they
# are missing (Debian/Ubuntu, as root or with sudo), then runs every test of the workspace.
set -euo pipefail
cd "$(dirname "$0")"

missing=()
command -v yosys >/dev/null 2>&1 || missing+=(yosys)
command -v verilator >/dev/null 2>&1 || missing+=(verilator)
command -v iverilog >/dev/null 2>&1 || missing+=(iverilog)
if [ ${#missing[@]} -gt 0 ]; then
    echo "installing: ${missing[*]}"
    sudo=""
    [ "$(id -u)" -eq 0 ] || sudo="sudo"
    $sudo apt-get update -q
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -q "${missing[@]}"
fi

cargo test --workspace
