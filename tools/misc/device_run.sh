#!/usr/bin/env bash
# Copyright (c) mmupv2 contributors. Licensed under the Apache License 2.0.
#
# On a GPU machine without internet: install the bundle that
# tools/misc/device_bundle.sh made, build mmcv's CUDA kernel for this GPU,
# run the CUDA tests and the GPU benchmarks, all within a time budget, and
# leave the results in $OUT (docs/gpu.md).
#
#   bash tools/misc/device_run.sh BUNDLE [--dry-run]
#
# Phases (each one's status and time go to $OUT/summary.md):
#   env        Python, torch, the GPU (nvidia-smi)            -> env.txt
#   install    a venv over the machine's Python (its CUDA torch stays in
#              use; tools/misc/device_lib.sh: overlay_venv), the bundle's
#              wheels with `pip --no-index --no-deps`, the prebuilt mmcv
#              (CPU ops) if it was built for this torch, mmupv2 from the
#              working tree (a .pth file)
#   check      tools/misc/device_check.py: versions, imports, mmcv's ops
#   mmcv_cuda  GPU only: the bundle's prebuilt CUDA mmcv when it was built
#              for this torch and this GPU's architecture (device_bundle.sh
#              --cuda-arch; checked by running the kernel once), else
#              mmcv 2.1.0 built from the bundle's sdist for this
#              GPU alone (TORCH_CUDA_ARCH_LIST from the device's capability,
#              FORCE_CUDA=1, MAX_JOBS = its processors); by default every CPU op but
#              only the deformable-attention CUDA kernel (MMCV_CUDA_OPS=msda;
#              `all` builds every CUDA op, minutes longer). It gets a
#              deadline; if it does not finish, the run says so and goes on
#              with the PyTorch deformable-attention path    -> mmcv_build.log
#              (no prebuilt mmcv for this torch and no GPU: the CPU ops are
#              built here instead, within the same deadline)
#   tests      pytest -m gpu: tests/test_cuda/, the mmcv kernel test and the
#              AMP MT-AdamW tests                            -> pytest.log
#   bench      GPU: tools/analysis_tools/benchmark_gpu.py    -> benchmark_gpu.json,
#              benchmark.md (docs/benchmark.md with its "GPU" section)
#              no GPU: the same script with --smoke on the CPU -> benchmark_smoke.json
# Without a GPU every CUDA step prints "no GPU: skipped" and the run
# succeeds when the CPU checks pass.
#
# Environment:
#   DEVICE_BUDGET_S   total seconds (default 540: inside the lent machine's
#                     600 s per command; 0 = no limit)
#   MMCV_BUILD_S      most seconds for the mmcv build (default 240; no limit
#                     when DEVICE_BUDGET_S=0)
#   MMCV_MIN_BUILD_S  no build with less time than this (default 60)
#   TESTS_S           most seconds for the CUDA tests (default 120; no limit
#                     when DEVICE_BUDGET_S=0)
#   BENCH_MIN_S       seconds kept for the benchmarks (default 150)
#   MMCV_CUDA_OPS     msda (default) or all
#   MMCV_PREBUILT_CUDA  0: build even when the bundle has a matching wheel
#   DEVICE_PYTHON     the machine's Python with torch (default python3)
#   DEVICE_VENV       the venv (default /tmp/mmupv2-device-venv)
#   OUT               results (default work_dirs/device_out); at most 8 files
#   BENCH_ARGS        extra arguments for benchmark_gpu.py
set -uo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
# shellcheck source=device_lib.sh
source "$ROOT/tools/misc/device_lib.sh"
DEVICE_LOG_TAG=device_run

usage() { echo "usage: $0 BUNDLE [--dry-run]" >&2; exit 2; }
BUNDLE="" DRY=0
for arg in "$@"; do
    case "$arg" in
        --dry-run) DRY=1 ;;
        -h|--help) usage ;;
        -*) echo "unknown option $arg" >&2; usage ;;
        *) [ -z "$BUNDLE" ] || usage; BUNDLE=$arg ;;
    esac
done
[ -n "$BUNDLE" ] || usage

is_int() { [[ "$1" =~ ^[0-9]+$ ]]; }
BUDGET=${DEVICE_BUDGET_S:-540}
if [ -z "${MMCV_BUILD_S:-}" ]; then
    MMCV_BUILD_S=240
    [ "$BUDGET" = 0 ] && MMCV_BUILD_S=0
fi
MMCV_MIN_BUILD_S=${MMCV_MIN_BUILD_S:-60}
if [ -z "${TESTS_S:-}" ]; then
    TESTS_S=120
    [ "$BUDGET" = 0 ] && TESTS_S=0
fi
BENCH_MIN_S=${BENCH_MIN_S:-150}
for var in BUDGET MMCV_BUILD_S MMCV_MIN_BUILD_S TESTS_S BENCH_MIN_S; do
    is_int "${!var}" || { echo "$var must be a whole number of seconds, got '${!var}'" >&2; exit 2; }
done
MMCV_CUDA_OPS=${MMCV_CUDA_OPS:-msda}
case "$MMCV_CUDA_OPS" in msda|all) ;; *) echo "MMCV_CUDA_OPS must be msda or all" >&2; exit 2 ;; esac
PARENT=${DEVICE_PYTHON:-python3}
VENV=${DEVICE_VENV:-/tmp/mmupv2-device-venv}
OUT=${OUT:-$ROOT/work_dirs/device_out}

# ------------------------------------------------------------ the budget
START=$(date +%s)
elapsed() { echo $(( $(date +%s) - START )); }
left() {  # seconds left of the budget (a large number without one)
    if [ "$BUDGET" -eq 0 ]; then echo 1000000; else echo $(( BUDGET - $(elapsed) )); fi
}
allot() {  # allot WANT RESERVE -> min(WANT, left - RESERVE); WANT 0: all of it
    local want=$1 reserve=$2 l
    l=$(( $(left) - reserve ))
    [ "$l" -lt 0 ] && l=0
    if [ "$want" -gt 0 ] && [ "$want" -lt "$l" ]; then echo "$want"; else echo "$l"; fi
}
limited() {  # limited SECONDS CMD...: CMD under timeout(1); 124 without running it when under 5 s are left (timeout 0 would mean no limit)
    local limit=$1
    shift
    if [ "$limit" -lt 5 ]; then
        echo "out of time: not running $1"
        return 124
    fi
    timeout --kill-after=10 "$limit" "$@"
}
build_allot() { allot "$MMCV_BUILD_S" $(( TESTS_S + BENCH_MIN_S )); }
tests_allot() { allot "$TESTS_S" "$BENCH_MIN_S"; }
bench_allot() { allot 0 10; }

plan() {
    echo "bundle: $BUNDLE"
    echo "budget: ${BUDGET}s (DEVICE_BUDGET_S; 0 = none)"
    local b
    b=$(build_allot)
    if [ "$BUDGET" -eq 0 ]; then
        echo "mmcv CUDA build: no time limit (MMCV_CUDA_OPS=$MMCV_CUDA_OPS)"
    elif [ "$b" -lt "$MMCV_MIN_BUILD_S" ]; then
        echo "mmcv CUDA build: skipped on a GPU (${b}s left for it < MMCV_MIN_BUILD_S=${MMCV_MIN_BUILD_S}s)"
    else
        echo "mmcv CUDA build: up to ${b}s (MMCV_CUDA_OPS=$MMCV_CUDA_OPS)"
    fi
    if [ "$BUDGET" -eq 0 ]; then
        echo "CUDA tests: no time limit"
    else
        echo "CUDA tests: up to $(tests_allot)s"
    fi
    echo "GPU benchmarks: the rest (at least ${BENCH_MIN_S}s kept for them)"
    echo "venv: $VENV over $PARENT; results: $OUT"
}

if [ "$DRY" = 1 ]; then
    plan
    exit 0
fi
[ -d "$BUNDLE/wheels" ] || { echo "$BUNDLE: no wheels/ (make it with tools/misc/device_bundle.sh)" >&2; exit 2; }
BUNDLE=$(cd "$BUNDLE" && pwd)
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)
exec > >(tee -a "$OUT/device_run.log") 2>&1
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT

SUMMARY=()
FAILED=0
record() {  # record PHASE STATUS SECONDS NOTE
    SUMMARY+=("| $1 | $2 | $3 | $4 |")
    dlog "$1: $2 (${3}s) $4"
    case "$2" in failed*) FAILED=1 ;; esac
}
write_summary() {
    {
        echo "# device_run.sh $(date -u +%FT%TZ)"
        echo
        echo "GPU: ${GPU_NAME:-none}; budget ${BUDGET}s; total $(elapsed)s"
        echo
        echo "| phase | status | seconds | note |"
        echo "|---|---|---|---|"
        printf '%s\n' "${SUMMARY[@]}"
    } > "$OUT/summary.md"
}
trap 'write_summary; rm -rf "$WORK"' EXIT

plan
# ------------------------------------------------------------ env
t0=$(elapsed)
{
    echo "date: $(date -u +%FT%TZ)"
    echo "host: $(uname -a)"
    echo "cpus: $(cpus)"
    echo "python: $PARENT ($("$PARENT" -c 'import sys; print(sys.version.split()[0], sys.prefix)'))"
    "$PARENT" - <<'EOF'
import torch
print('torch', torch.__version__, 'CUDA', torch.version.cuda)
if torch.cuda.is_available():
    p = torch.cuda.get_device_properties(0)
    print('gpu', torch.cuda.get_device_name(0), 'capability',
          '%d.%d' % torch.cuda.get_device_capability(0),
          'memory %.1f GiB' % (p.total_memory / 2**30),
          'SMs', p.multi_processor_count)
else:
    print('gpu none')
EOF
    command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi 2>&1 | head -n 20
    command -v nvcc >/dev/null 2>&1 && nvcc --version 2>&1 | tail -n 2
} > "$OUT/env.txt" 2>&1
cat "$OUT/env.txt"
GPU_NAME=$(sed -n 's/^gpu \(.*\) capability.*/\1/p' "$OUT/env.txt")
GPU_ARCH=$(sed -n 's/.* capability \([0-9.]*\) .*/\1/p' "$OUT/env.txt")
HAS_GPU=0; [ -n "$GPU_NAME" ] && HAS_GPU=1
record env ok $(( $(elapsed) - t0 )) "${GPU_NAME:-no GPU}"

# ------------------------------------------------------------ install
t0=$(elapsed)
VPY="$VENV/bin/python"
PIP=("$VPY" -m pip -q --disable-pip-version-check)
install_note=""
if overlay_venv "$PARENT" "$VENV" \
    && "${PIP[@]}" install --no-index --no-deps "$BUNDLE"/wheels/*.whl; then
    site=$("$VPY" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
    echo "$ROOT" > "$site/_mmupv2_repo.pth"
    TAG=$(mmcv_torch_tag "$VPY")
    PREBUILT=$(ls "$BUNDLE/mmcv/$TAG"/mmcv-2.1.0-*.whl 2>/dev/null | head -n 1)
    MMCV_READY=0
    mmcv_ops_load() {
        "$VPY" -c "from mmcv.utils import ext_loader; ext_loader.load_ext('_ext', ['ms_deform_attn_forward'])" >/dev/null 2>&1
    }
    if [ -n "$PREBUILT" ]; then
        "${PIP[@]}" install --no-index --no-deps --force-reinstall "$PREBUILT"
        if mmcv_ops_load; then
            MMCV_READY=1; install_note="prebuilt mmcv ($TAG, CPU ops)"
        else
            install_note="prebuilt mmcv for $TAG does not load here"
        fi
    else
        install_note="no prebuilt mmcv for $TAG in the bundle"
    fi
    "${PIP[@]}" check 2>&1 | grep -v -i "opencv-python" || true
    record install ok $(( $(elapsed) - t0 )) "$install_note"
else
    record install "failed" $(( $(elapsed) - t0 )) "pip could not install the bundle"
    exit 1
fi

# ------------------------------------------------------------ mmcv
t0=$(elapsed)
build_and_install() {  # build_and_install OPS -> 0 installed, 124 out of time, else failed
    local ops=$1 limit status=0 wheel
    limit=$(build_allot)
    if [ "$limit" -lt "$MMCV_MIN_BUILD_S" ]; then
        echo "only ${limit}s left for the build (< ${MMCV_MIN_BUILD_S}s)"
        return 124
    fi
    dlog "building mmcv ($ops) with a deadline of ${limit}s, MAX_JOBS=$(cpus)"
    MAX_JOBS=$(cpus) TORCH_CUDA_ARCH_LIST="${GPU_ARCH}" \
        build_mmcv "$VPY" "$BUNDLE/mmcv/mmcv-2.1.0.tar.gz" "$ops" \
        "$WORK/mmcv-$ops" "$limit" "$OUT/mmcv_build.log" || status=$?
    [ "$status" = 0 ] || return "$status"
    wheel=$(ls "$WORK/mmcv-$ops"/mmcv-2.1.0-*.whl | head -n 1)
    "${PIP[@]}" install --no-index --no-deps --force-reinstall "$wheel" || return 1
}
cuda_kernel_runs() {  # the installed mmcv has a working CUDA kernel here
    "$VPY" - <<'EOF' >/dev/null 2>&1
import torch
from mmcv.ops import get_compiling_cuda_version
from mmcv.ops.multi_scale_deform_attn import MultiScaleDeformableAttnFunction
assert get_compiling_cuda_version() != 'not available'
out = MultiScaleDeformableAttnFunction.apply(
    torch.rand(1, 4, 1, 2, device='cuda'), torch.tensor([[2, 2]], device='cuda'),
    torch.tensor([0], device='cuda'), torch.rand(1, 1, 1, 1, 1, 2, device='cuda'),
    torch.ones(1, 1, 1, 1, 1, device='cuda'), 64)
torch.cuda.synchronize()
assert torch.isfinite(out).all()
EOF
}
SM=sm${GPU_ARCH/./}
CUDA_PREBUILT=""
[ "$HAS_GPU" = 1 ] && CUDA_PREBUILT=$(ls "$BUNDLE/mmcv/$TAG-$SM"/mmcv-2.1.0-*.whl 2>/dev/null | head -n 1)
if [ "$HAS_GPU" = 1 ] && [ -n "$CUDA_PREBUILT" ] && [ "${MMCV_PREBUILT_CUDA:-1}" = 1 ] \
        && "${PIP[@]}" install --no-index --no-deps --force-reinstall "$CUDA_PREBUILT" \
        && cuda_kernel_runs; then
    record mmcv_cuda ok $(( $(elapsed) - t0 )) "prebuilt CUDA kernel for $SM ($TAG), no build"
elif [ "$HAS_GPU" = 1 ]; then
    [ -n "$CUDA_PREBUILT" ] && echo "the prebuilt CUDA mmcv ($CUDA_PREBUILT) is not used here; building"
    status=0
    build_and_install "$MMCV_CUDA_OPS" || status=$?
    if [ "$status" = 0 ] && cuda_kernel_runs; then
        record mmcv_cuda ok $(( $(elapsed) - t0 )) "CUDA kernel built for $SM ($MMCV_CUDA_OPS)"
    elif [ "$status" = 124 ]; then
        [ -n "$PREBUILT" ] && [ "$MMCV_READY" = 1 ] && "${PIP[@]}" install --no-index --no-deps --force-reinstall "$PREBUILT"
        record mmcv_cuda "out of time" $(( $(elapsed) - t0 )) "the mmcv build did not finish in time: deformable attention runs on the PyTorch path"
    else
        tail -n 30 "$OUT/mmcv_build.log"
        [ -n "$PREBUILT" ] && [ "$MMCV_READY" = 1 ] && "${PIP[@]}" install --no-index --no-deps --force-reinstall "$PREBUILT"
        record mmcv_cuda "failed (status $status)" $(( $(elapsed) - t0 )) "see mmcv_build.log; deformable attention on the PyTorch path"
    fi
else
    echo "no GPU: skipped (mmcv CUDA build)"
    if [ "$MMCV_READY" = 0 ]; then
        status=0
        build_and_install cpu || status=$?
        if [ "$status" = 0 ]; then
            record mmcv_cpu ok $(( $(elapsed) - t0 )) "built the CPU ops here"
        else
            record mmcv_cpu "failed (status $status)" $(( $(elapsed) - t0 )) "no mmcv ops: see mmcv_build.log"
        fi
    else
        record mmcv_cuda "no GPU: skipped" 0 ""
    fi
fi

# ------------------------------------------------------------ CPU checks
t0=$(elapsed)
if limited "$(allot 120 "$BENCH_MIN_S")" "$VPY" "$ROOT/tools/misc/device_check.py" \
        --requirements "$ROOT/tools/misc/device_requirements.txt"; then
    record check ok $(( $(elapsed) - t0 )) "versions, imports, mmcv ops"
else
    record check "failed" $(( $(elapsed) - t0 )) "see device_run.log"
fi

# ------------------------------------------------------------ CUDA tests
t0=$(elapsed)
cd "$ROOT"
TEST_FILES=(tests/test_cuda tests/test_models/test_layers/test_ms_deform_attn.py
            tests/test_engine/test_optimizers/test_mt_adamw_amp.py)
status=0
limited "$(tests_allot)" "$VPY" -m pytest -q -p no:cacheprovider \
    -m gpu -rs "${TEST_FILES[@]}" > "$OUT/pytest.log" 2>&1 || status=$?
tail -n 25 "$OUT/pytest.log"
last=$(grep -E '(passed|failed|skipped|deselected|error)' "$OUT/pytest.log" | tail -n 1)
if [ "$HAS_GPU" = 0 ]; then
    echo "no GPU: skipped (CUDA tests: $last)"
    if [ "$status" = 0 ] || [ "$status" = 5 ]; then
        record tests "no GPU: skipped" $(( $(elapsed) - t0 )) "$last"
    else
        record tests "failed (status $status)" $(( $(elapsed) - t0 )) "$last"
    fi
elif [ "$status" = 0 ]; then
    record tests ok $(( $(elapsed) - t0 )) "$last"
elif [ "$status" = 124 ]; then
    record tests "failed (out of time)" $(( $(elapsed) - t0 )) "$last"
else
    record tests "failed (status $status)" $(( $(elapsed) - t0 )) "$last"
fi

# ------------------------------------------------------------ benchmarks
t0=$(elapsed)
limit=$(bench_allot)
status=0
# shellcheck disable=SC2086
if [ "$HAS_GPU" = 1 ]; then
    cp "$ROOT/docs/benchmark.md" "$OUT/benchmark.md"
    PYTHONUNBUFFERED=1 limited "$limit" "$VPY" \
        "$ROOT/tools/analysis_tools/benchmark_gpu.py" --device cuda \
        --minilm "$BUNDLE/minilm" --time-limit "$(( limit - 15 ))" \
        --json "$OUT/benchmark_gpu.json" --write "$OUT/benchmark.md" \
        ${BENCH_ARGS:-} || status=$?
    name=GPU
else
    echo "no GPU: skipped (GPU benchmarks); the same script with --smoke on the CPU"
    PYTHONUNBUFFERED=1 limited "$limit" "$VPY" \
        "$ROOT/tools/analysis_tools/benchmark_gpu.py" --smoke \
        --minilm "$BUNDLE/minilm" --json "$OUT/benchmark_smoke.json" \
        ${BENCH_ARGS:-} || status=$?
    name=smoke
fi
if [ "$status" = 0 ]; then
    record bench ok $(( $(elapsed) - t0 )) "$name"
else
    record bench "failed (status $status)" $(( $(elapsed) - t0 )) "$name; partial results in the JSON"
fi

write_summary
cat "$OUT/summary.md"
if [ "$FAILED" = 0 ]; then dlog "done in $(elapsed)s"; else dlog "FAILED (see $OUT/summary.md)"; fi
exit "$FAILED"
