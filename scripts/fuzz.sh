#!/usr/bin/env bash
# Runs every cargo-fuzz target of fuzz/ (or the ones named) for a bounded time (default 60 s
# each) and reports the ones that found something. Usage: scripts/fuzz.sh [SECONDS] [TARGET…] Needs cargo-fuzz (`cargo install cargo-fuzz`); runs on stable Rust
# with `--sanitizer none`. Findings land in fuzz/artifacts/<target>/: turn each into a regression
# test in the parser's crate, then commit it.
set -uo pipefail
cd "$(dirname "$0")/../fuzz"
seconds="${1:-60}"
shift || true
command -v cargo-fuzz >/dev/null || { echo "cargo-fuzz is missing: cargo install cargo-fuzz" >&2; exit 2; }
cargo fuzz build -s none || exit 1
failed=()
targets=("$@")
[ ${#targets[@]} -gt 0 ] || mapfile -t targets < <(cargo fuzz list)
for target in "${targets[@]}"; do
  mkdir -p "corpus/$target"
  if cargo fuzz run -s none "$target" "corpus/$target" -- -max_total_time="$seconds" -rss_limit_mb=1024 >"/tmp/fuzz-$target.log" 2>&1; then
    echo "ok      $target ($(grep -o 'Done [0-9]* runs' "/tmp/fuzz-$target.log" | tail -1))"
  else
    echo "FINDING $target: see /tmp/fuzz-$target.log and fuzz/artifacts/$target/"
    failed+=("$target")
  fi
done
[ ${#failed[@]} -eq 0 ] || { echo "findings in: ${failed[*]}"; exit 1; }
