#!/usr/bin/env bash
# Copyright (c) mmupv2 contributors. Licensed under the Apache License 2.0.
#
# `make device-rehearsal`: the GPU machine's run, end to end, on this
# CPU-only machine -- so that the first lent GPU runs it the first time.
#
#   bash tools/misc/device_rehearsal.sh [DIR]     # default DIR=.device_rehearsal
#
#   1. tools/misc/device_bundle.sh DIR/bundle --cuda-arch none (a bundle
#      without the CUDA wheel, which no CPU can use; the prebuilt CPU mmcv
#      wheel comes from the cache after the first time;
#      REHEARSAL_BUNDLE_ARGS replaces the options);
#   2. tools/misc/device_run.sh DIR/bundle with the stand-in of the
#      machine's Python (tools/misc/device_standin.sh: CPython 3.12, PyPI's
#      torch 2.11, transformers 5, numpy 2, ...) and every package index
#      switched off (PIP_NO_INDEX=1, no pip configuration, no find-links;
#      Hugging Face offline): everything must install from the bundle. No
#      GPU, so every CUDA step says "no GPU: skipped"; the CPU checks and
#      the smoke benchmarks must pass;
#   3. checks the results in DIR/out (summary.md, the smoke JSON) and prints
#      the time taken.
# REHEARSAL_BUDGET_S sets device_run.sh's budget (default 0: none, this
# machine is slower than the lent one).
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
DIR=${1:-$ROOT/.device_rehearsal}
STANDIN=${DEVICE_STANDIN:-$ROOT/.device_standin}
start=$(date +%s)
log() { printf '[device_rehearsal] %s\n' "$*"; }

bash "$ROOT/tools/misc/device_standin.sh" "$STANDIN"
# shellcheck disable=SC2086
bash "$ROOT/tools/misc/device_bundle.sh" "$DIR/bundle" ${REHEARSAL_BUNDLE_ARGS---cuda-arch none}
rm -rf "$DIR/out" "$DIR/venv"
log "device_run.sh with $STANDIN/bin/python, no package index"
status=0
env -u PIP_FIND_LINKS -u PIP_EXTRA_INDEX_URL -u PIP_INDEX_URL \
    PIP_NO_INDEX=1 PIP_CONFIG_FILE=/dev/null HF_HUB_OFFLINE=1 \
    TRANSFORMERS_OFFLINE=1 CUDA_VISIBLE_DEVICES= \
    DEVICE_PYTHON="$STANDIN/bin/python" DEVICE_VENV="$DIR/venv" \
    OUT="$DIR/out" DEVICE_BUDGET_S="${REHEARSAL_BUDGET_S:-0}" \
    bash "$ROOT/tools/misc/device_run.sh" "$DIR/bundle" || status=$?

fail() { log "FAILED: $*"; exit 1; }
[ "$status" = 0 ] || fail "device_run.sh exited $status ($DIR/out/summary.md)"
grep -q 'no GPU: skipped' "$DIR/out/device_run.log" || fail "no 'no GPU: skipped' in the log"
grep -q '| check | ok |' "$DIR/out/summary.md" || fail "the CPU checks did not pass"
"$STANDIN/bin/python" - "$DIR/out/benchmark_smoke.json" <<'PY' || fail "smoke benchmarks incomplete"
import json, sys
results = json.load(open(sys.argv[1]))
missing = [s for s in ('encoder', 'train', 'demo') if not results['sections'].get(s)]
sys.exit(f'sections without results: {missing} ({results["skipped"]})' if missing else 0)
PY
ls "$DIR/out"
log "passed in $(( $(date +%s) - start ))s; bundle $(du -sh "$DIR/bundle" | cut -f1)"
