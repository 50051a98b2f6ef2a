#!/usr/bin/env bash
# Coverage-guided fuzzing of the command-script parser, the CSV loader and the expression
# compiler with cargo-fuzz (libFuzzer), on stable Rust (`-s none`: no sanitizer, which
# would need nightly).
#
#   fuzz/run.sh [SECONDS] [TARGET...]
#
# SECONDS per target (default 15); TARGETs default to all: script csv expr. Installs
# cargo-fuzz when it is missing. The seed corpus (fuzz/corpus/<target>/) is only read: the
# inputs libFuzzer finds go to fuzz/target/corpus/<target>/. A crash stops the run with a
# non-zero exit and leaves the input in fuzz/artifacts/<target>/; add it to
# fuzz/regressions/<target>/ once fixed (`cargo test -p rdbe-sim --test fuzz_corpus`
# replays those). Prints one line per target: runs, seconds, runs per second.
set -euo pipefail
seconds=${1:-15}
shift || true
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(script csv expr)
cd "$(dirname "$0")"
# Instrumented builds use other RUSTFLAGS: keep them in fuzz/target, away from the
# workspace's target directory (sharing it would rebuild both every time).
unset CARGO_TARGET_DIR

if ! command -v cargo-fuzz >/dev/null 2>&1; then
    echo "fuzz/run.sh: installing cargo-fuzz" >&2
    cargo install cargo-fuzz --locked
fi

cargo fuzz build -s none
summary=()
for t in "${targets[@]}"; do
    mkdir -p "target/corpus/$t"
    log="target/fuzz-$t.log"
    echo "fuzz/run.sh: $t for ${seconds}s" >&2
    status=0
    cargo fuzz run -s none "$t" "target/corpus/$t" "corpus/$t" -- \
        -max_total_time="$seconds" -max_len=4096 -timeout=10 -rss_limit_mb=4096 \
        -print_final_stats=1 >"$log" 2>&1 || status=$?
    if [ "$status" -ne 0 ]; then
        tail -60 "$log" >&2
        echo "fuzz/run.sh: target $t FAILED (exit $status); the input is in fuzz/artifacts/$t/" >&2
        exit 1
    fi
    runs=$(sed -n 's/^Done \([0-9]*\) runs in \([0-9]*\) second.*/\1/p' "$log" | tail -1)
    secs=$(sed -n 's/^Done \([0-9]*\) runs in \([0-9]*\) second.*/\2/p' "$log" | tail -1)
    rate=$(( ${runs:-0} / ( ${secs:-1} > 0 ? ${secs:-1} : 1 ) ))
    summary+=("$t: ${runs:-?} runs in ${secs:-?} s (${rate}/s), no crash")
done
printf '%s\n' "${summary[@]}"
