#!/usr/bin/env bash
# Copyright (c) mmupv2 contributors. Licensed under the Apache License 2.0.
#
# Create (if missing) and fill the project's virtual environment.
#
#   bash tools/misc/setup_env.sh [VENV]        # default VENV=.venv
#
# Steps, each skipped when already done (the script is idempotent):
#   1. python3.11 -m venv VENV
#   2. build tools (setuptools >=77,<81 so mmcv's setup.py finds pkg_resources)
#   3. torch + torchvision (pins in requirements/runtime.txt)
#   4. mmcv 2.1.0 *with ops*, built from its PyPI sdist. mmcv's setup.py forces
#      -std=c++17 but torch 2.14's headers need C++20, so the sdist is patched
#      before the build. The built wheel is kept in MMUPV2_WHEEL_CACHE
#      (default ~/.cache/mmupv2/wheels/<torch>-<cpu|cuda>) so later installs
#      take seconds. FORCE_CUDA=1 builds the CUDA ops on a GPU machine.
#   5. the rest of requirements/runtime.txt and tests.txt, then mmupv2 itself
#      in editable mode.
#   6. a Java runtime for pycocoevalcap, from Debian's packages, if `java` is
#      missing (needs apt-get and root; otherwise a warning).
set -euo pipefail

VENV=${1:-.venv}
PYTHON_BIN=${PYTHON_BIN:-python3.11}
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cd "$ROOT"

log() { printf '[setup_env] %s\n' "$*"; }

if [ ! -x "$VENV/bin/python" ]; then
    log "creating $VENV with $PYTHON_BIN"
    "$PYTHON_BIN" -m venv "$VENV"
fi
PY="$ROOT/$VENV/bin/python"
[ -x "$PY" ] || PY="$VENV/bin/python"
PIP=("$PY" -m pip --disable-pip-version-check)

have() {  # have REQUIREMENT -> 0 when the installed version satisfies it
    "$PY" - "$1" <<'EOF' 2>/dev/null
import sys
from importlib.metadata import version
from packaging.requirements import Requirement
req = Requirement(sys.argv[1])
sys.exit(0 if req.specifier.contains(version(req.name), prereleases=True) else 1)
EOF
}

all_satisfied() {  # all_satisfied FILE... -> 0 when every pin is installed
    local line
    for file in "$@"; do
        while IFS= read -r line; do
            line=${line%%#*}; line=$(echo "$line" | xargs)
            [ -z "$line" ] && continue
            have "$line" || return 1
        done < "$file"
    done
}

# 1-2. build tools
if ! all_satisfied requirements/build.txt 2>/dev/null; then
    log "installing build tools"
    "${PIP[@]}" install -q -U pip
    "${PIP[@]}" install -q -r requirements/build.txt
fi

# 3. torch first, with numpy < 2 (torch alone would pull numpy 2)
if ! have "torch==2.14.1" || ! have "torchvision==0.29.1" || ! have "numpy<2"; then
    log "installing torch / torchvision / numpy"
    "${PIP[@]}" install -q "numpy>=1.24,<2" \
        "$(grep '^torch==' requirements/runtime.txt)" \
        "$(grep '^torchvision==' requirements/runtime.txt)"
fi

# 4. mmcv with ops
mmcv_has_ops() {
    "$PY" -c "import mmcv, mmcv.ops; from mmcv.utils import ext_loader; \
ext_loader.load_ext('_ext', ['ms_deform_attn_forward'])" >/dev/null 2>&1
}
if ! have "mmcv==2.1.0" || ! mmcv_has_ops; then
    TORCH_VER=$("$PY" -c "import torch; print(torch.__version__.split('+')[0])")
    FLAVOUR=cpu; [ "${FORCE_CUDA:-0}" = "1" ] && FLAVOUR=cuda
    PYTAG=$("$PY" -c "import sys; print(f'cp{sys.version_info[0]}{sys.version_info[1]}')")
    CACHE=${MMUPV2_WHEEL_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/mmupv2/wheels}
    CACHE="$CACHE/torch${TORCH_VER}-${FLAVOUR}-${PYTAG}"
    mkdir -p "$CACHE"
    WHEEL=$(ls "$CACHE"/mmcv-2.1.0-*.whl 2>/dev/null | head -n 1 || true)
    if [ -z "$WHEEL" ]; then
        log "building mmcv 2.1.0 with ops (${FLAVOUR}); ~10 min on 2 cores, once"
        WORK=$(mktemp -d)
        trap 'rm -rf "$WORK"' EXIT
        "${PIP[@]}" download -q --no-binary=:all: --no-deps --no-build-isolation \
            mmcv==2.1.0 -d "$WORK"
        tar xzf "$WORK"/mmcv-2.1.0.tar.gz -C "$WORK"
        # torch >= 2.14 headers use C++20 features.
        sed -i 's/c++17/c++20/g; s/c++14/c++20/g' "$WORK"/mmcv-2.1.0/setup.py
        MMCV_WITH_OPS=1 MAX_JOBS=${MAX_JOBS:-$(nproc)} \
            "${PIP[@]}" wheel -q --no-build-isolation --no-deps \
            -w "$WORK/dist" "$WORK"/mmcv-2.1.0
        cp "$WORK"/dist/mmcv-2.1.0-*.whl "$CACHE"/
        WHEEL=$(ls "$CACHE"/mmcv-2.1.0-*.whl | head -n 1)
    else
        log "using cached mmcv wheel $WHEEL"
    fi
    "${PIP[@]}" install -q --no-deps --force-reinstall "$WHEEL"
    # mmcv's own runtime dependencies (it imports mmengine and cv2)
    "${PIP[@]}" install -q addict packaging Pillow pyyaml yapf regex \
        "$(grep '^mmengine==' requirements/runtime.txt)" \
        "$(grep '^opencv-python==' requirements/runtime.txt)"
    mmcv_has_ops || { log "mmcv installed but its ops do not load"; exit 1; }
fi

# 5. everything else, then mmupv2 itself
if ! all_satisfied requirements/runtime.txt requirements/tests.txt; then
    log "installing requirements/runtime.txt and requirements/tests.txt"
    "${PIP[@]}" install -q -r requirements/runtime.txt -r requirements/tests.txt \
        -c requirements/mmcv.txt
fi
if ! have "mmupv2"; then
    log "installing mmupv2 (editable)"
    "${PIP[@]}" install -q --no-deps --no-build-isolation -e .
fi

# 6. Java for pycocoevalcap's tokenizer and METEOR/SPICE
if ! command -v java >/dev/null 2>&1; then
    if command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = "0" ]; then
        log "installing a headless Java runtime (pycocoevalcap needs it)"
        apt-get update -qq && DEBIAN_FRONTEND=noninteractive \
            apt-get install -y -qq default-jre-headless >/dev/null
    else
        log "WARNING: no 'java' found; caption metrics (pycocoevalcap) will fail"
    fi
fi
log "environment ready: $VENV"
