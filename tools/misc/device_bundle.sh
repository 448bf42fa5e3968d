#!/usr/bin/env bash
# Copyright (c) mmupv2 contributors. Licensed under the Apache License 2.0.
#
# Fill OUT_DIR with everything mmupv2 needs on a GPU machine that has its
# own CUDA torch but no package index (the lent machine: CPython 3.12,
# torch 2.11, no network), then print its size. Run on the development
# machine; carry OUT_DIR over and run tools/misc/device_run.sh there
# (docs/gpu.md).
#
#   bash tools/misc/device_bundle.sh OUT_DIR [--dry-run] [--no-mmcv-wheel]
#                                            [--cuda-arch 9.0|none]
#
#   1. tools/misc/device_bundle.py: the wheels of
#      tools/misc/device_requirements.txt for CPython 3.12 manylinux x86_64,
#      the mmcv 2.1.0 sdist patched to C++20, the MiniLM config + tokenizer
#      (no weights), MANIFEST.json, and the check that every Requires-Dist
#      is met by the bundle or the machine (tools/misc/device_packages.txt).
#   2. a prebuilt mmcv 2.1.0 wheel with CPU ops for the machine's torch
#      (OUT_DIR/mmcv/torch<version>-cp312/), built with the stand-in of the
#      machine's Python (tools/misc/device_standin.sh: CPython 3.12 + PyPI's
#      torch 2.11, created once) and cached like setup_env.sh's wheels
#      (~/.cache/mmupv2/wheels/torch<version>-cpu-cp312). It lets the
#      machine run everything at once -- deformable attention on the
#      PyTorch path -- while it builds the CUDA kernel, and is what it
#      keeps if that build runs out of time. --no-mmcv-wheel skips it (the
#      machine then builds the CPU ops too, within its budget).
#   3. (--cuda-arch, default 9.0: the lent H200's) the same wheel with the
#      deformable-attention CUDA kernel compiled for that architecture
#      (OUT_DIR/mmcv/torch<version>-cp312-sm90/; tools/misc/mmcv_sdist.py
#      --cuda-ops msda), with nvcc from NVIDIA's pip packages at torch's CUDA
#      version (device_lib.sh: pip_cuda_home; no GPU needed). A machine with
#      that GPU installs it and builds nothing; any other builds the kernel
#      itself. --cuda-arch none skips it.
#   4. the manifest check again, and the size (the carry limit is 64 MiB,
#      working tree included: the script fails above 85% of it).
#
# Environment: BUNDLE_PYTHON (runs step 1; default .venv/bin/python, it
# needs pip and packaging), DEVICE_STANDIN (default .device_standin),
# MMUPV2_WHEEL_CACHE, MAX_JOBS (compile jobs for step 2).
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
# shellcheck source=device_lib.sh
source "$ROOT/tools/misc/device_lib.sh"
DEVICE_LOG_TAG=device_bundle

usage() { echo "usage: $0 OUT_DIR [--dry-run] [--no-mmcv-wheel] [--cuda-arch 9.0|none]" >&2; exit 2; }
OUT="" DRY=0 MMCV_WHEEL=1 CUDA_ARCH=9.0
while [ $# -gt 0 ]; do
    case "$1" in
        --dry-run) DRY=1 ;;
        --no-mmcv-wheel) MMCV_WHEEL=0 ;;
        --cuda-arch) [ $# -ge 2 ] || usage; CUDA_ARCH=$2; shift ;;
        -h|--help) usage ;;
        -*) echo "unknown option $1" >&2; usage ;;
        *) [ -z "$OUT" ] || usage; OUT=$1 ;;
    esac
    shift
done
[[ "$CUDA_ARCH" =~ ^([0-9]+\.[0-9]+|none)$ ]] || { echo "--cuda-arch: X.Y or none, got '$CUDA_ARCH'" >&2; exit 2; }
[ "$MMCV_WHEEL" = 1 ] || CUDA_ARCH=none
[ -n "$OUT" ] || usage
PY=${BUNDLE_PYTHON:-$ROOT/.venv/bin/python}
[ -x "$PY" ] || PY=python3
STANDIN=${DEVICE_STANDIN:-$ROOT/.device_standin}
CACHE_ROOT=${MMUPV2_WHEEL_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/mmupv2/wheels}

if [ "$DRY" = 1 ]; then
    "$PY" "$ROOT/tools/misc/device_bundle.py" "$OUT" --dry-run
    if [ "$MMCV_WHEEL" = 1 ]; then
        echo "would build: mmcv 2.1.0 with CPU ops for the stand-in's torch" \
             "($STANDIN, tools/misc/device_standin.sh), cached in $CACHE_ROOT," \
             "copied to $OUT/mmcv/<torch tag>/"
    else
        echo "would build: no prebuilt mmcv wheel (--no-mmcv-wheel)"
    fi
    if [ "$CUDA_ARCH" != none ]; then
        echo "would build: mmcv 2.1.0 with the deformable-attention CUDA kernel" \
             "for sm_${CUDA_ARCH/./} (nvcc from NVIDIA's pip packages), copied" \
             "to $OUT/mmcv/<torch tag>-sm${CUDA_ARCH/./}/"
    fi
    exit 0
fi

mkdir -p "$OUT"
status=0
"$PY" "$ROOT/tools/misc/device_bundle.py" "$OUT" || status=$?
[ "$status" = 0 ] || dlog "step 1 reported problems (status $status)"

# prebuilt_mmcv OPS CACHE_DIR DEST_DIR [env...]: build once (cached), copy
prebuilt_mmcv() {
    local ops=$1 cache=$2 dest=$3 wheel
    shift 3
    wheel=$(ls "$cache"/mmcv-2.1.0-*.whl 2>/dev/null | head -n 1 || true)
    if [ -z "$wheel" ]; then
        dlog "building mmcv 2.1.0 ($ops) for $TAG into $cache (once; MAX_JOBS=${MAX_JOBS:-$(nproc)})"
        [ -x "$BUILD/venv/bin/python" ] || {
            overlay_venv "$STANDIN/bin/python" "$BUILD/venv"
            "$BUILD/venv/bin/python" -m pip install -q --disable-pip-version-check \
                --no-index --no-deps "$OUT"/wheels/setuptools-*.whl
        }
        if ! env "$@" bash -c 'source "$0"; build_mmcv "$@"' \
                "$ROOT/tools/misc/device_lib.sh" "$BUILD/venv/bin/python" \
                "$OUT/mmcv/mmcv-2.1.0.tar.gz" "$ops" "$cache" 0 "$BUILD/build-$ops.log"; then
            tail -n 40 "$BUILD/build-$ops.log"
            dlog "mmcv build ($ops) failed"; exit 1
        fi
        wheel=$(ls "$cache"/mmcv-2.1.0-*.whl | head -n 1)
    fi
    rm -rf "$dest"; mkdir -p "$dest"
    cp "$wheel" "$dest/"
    dlog "prebuilt mmcv ($ops): $dest/$(basename "$wheel") ($(du -h "$wheel" | cut -f1))"
}

if [ "$MMCV_WHEEL" = 1 ]; then
    bash "$ROOT/tools/misc/device_standin.sh" "$STANDIN"
    TAG=$(mmcv_torch_tag "$STANDIN/bin/python")          # torch2.11.0-cp312
    BUILD=$(mktemp -d)
    trap 'rm -rf "$BUILD"' EXIT
    rm -rf "$OUT/mmcv"/torch*
    # torch2.11.0-cpu-cp312, as setup_env.sh names its cache
    prebuilt_mmcv cpu "$CACHE_ROOT/${TAG%-cp*}-cpu-${TAG##*-}" "$OUT/mmcv/$TAG"
    if [ "$CUDA_ARCH" != none ]; then
        SM=sm${CUDA_ARCH/./}
        CUDA_CACHE="$CACHE_ROOT/${TAG%-cp*}-cuda-$SM-${TAG##*-}"
        CUDA_ENV=(TORCH_CUDA_ARCH_LIST="$CUDA_ARCH")
        if ! ls "$CUDA_CACHE"/mmcv-2.1.0-*.whl >/dev/null 2>&1; then
            CUDA_HOME_DIR=$(pip_cuda_home "$STANDIN/bin/python" "$CACHE_ROOT/cuda-toolkit")
            CUDA_ENV+=(CUDA_HOME="$CUDA_HOME_DIR" PATH="$CUDA_HOME_DIR/bin:$PATH")
        fi
        prebuilt_mmcv msda "$CUDA_CACHE" "$OUT/mmcv/$TAG-$SM" "${CUDA_ENV[@]}"
    fi
fi

"$PY" "$ROOT/tools/misc/device_bundle.py" "$OUT" --check-only
