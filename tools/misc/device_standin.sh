#!/usr/bin/env bash
# Copyright (c) mmupv2 contributors. Licensed under the Apache License 2.0.
#
# A stand-in, on the development machine, for the lent GPU machine's system
# Python: CPython 3.12 with the packages that machine has preinstalled and
# that mmupv2 touches (torch 2.11 and torchvision 0.26, numpy 2, opencv
# headless, scipy, matplotlib, timm, transformers 5 / tokenizers 0.23 /
# huggingface-hub 1, pytest, ...; see /work/.library/device/KINDS.md and
# tools/misc/device_packages.txt). `make device-rehearsal` runs
# tools/misc/device_run.sh with it, and tools/misc/device_bundle.sh builds
# the bundle's prebuilt mmcv wheel against its torch.
#
#   bash tools/misc/device_standin.sh [DIR]     # default DIR=.device_standin
#
# Created once (a stamp file marks a finished stand-in), about 4 GiB:
# PyPI's torch for Linux x86_64 is its CUDA build (about 500 MiB), which
# imports only with NVIDIA's libraries installed beside it; they are taken
# from a local package index when one has them (STANDIN_NVIDIA_INDEX,
# default /opt/pypi-more/files), else from PyPI at torch's own pins. No
# GPU is needed: torch.cuda.is_available() is False on this machine.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
DIR=${1:-$ROOT/.device_standin}
PY312=${PY312:-}
TORCH_PIN=${STANDIN_TORCH:-torch==2.11.0}
TORCHVISION_PIN=${STANDIN_TORCHVISION:-torchvision==0.26.0}
NVIDIA_INDEX=${STANDIN_NVIDIA_INDEX:-/opt/pypi-more/files /opt/pypi/files}
STAMP="$DIR/.standin-complete"

log() { printf '[device_standin] %s\n' "$*"; }

if [ -f "$STAMP" ]; then
    log "stand-in ready: $DIR"
    exit 0
fi
if [ -z "$PY312" ]; then
    for candidate in /root/.pyenv/versions/3.12*/bin/python3.12 python3.12; do
        if "$candidate" -c 'import sys; assert sys.version_info[:2] == (3, 12)' \
                >/dev/null 2>&1; then
            PY312=$(command -v "$candidate"); break
        fi
    done
fi
[ -n "$PY312" ] || { log "no python3.12 found; set PY312"; exit 1; }
if [ ! -x "$DIR/bin/python" ]; then
    log "creating $DIR with $PY312"
    "$PY312" -m venv "$DIR"
fi
PIP=("$DIR/bin/python" -m pip --disable-pip-version-check -q)
"${PIP[@]}" install -U pip

# torch without its CUDA dependencies, then the CUDA libraries it loads at
# import (no GPU needed), then the rest with ordinary resolution, except
# timm: a resolution that touches torch would fetch torch's pinned CUDA
# packages (cuda-toolkit, cuDNN, NCCL: gigabytes).
NVIDIA=(nvidia-cublas nvidia-cuda-cupti nvidia-cuda-nvrtc nvidia-cuda-runtime
        nvidia-cudnn-cu13 nvidia-cufft nvidia-cufile nvidia-curand
        nvidia-cusolver nvidia-cusparse nvidia-cusparselt-cu13
        nvidia-nccl-cu13 nvidia-nvjitlink nvidia-nvshmem-cu13 nvidia-nvtx)
local_nvidia() {  # local_nvidia -> 0 when the folders hold every library
    local name found
    for name in "${NVIDIA[@]}"; do
        found=0
        for d in $NVIDIA_INDEX; do
            ls "$d/${name//-/_}"-*.whl >/dev/null 2>&1 && found=1
        done
        [ "$found" = 1 ] || return 1
    done
}
log "installing $TORCH_PIN and $TORCHVISION_PIN (CUDA builds, ~500 MiB)"
"${PIP[@]}" install --no-deps "$TORCH_PIN" "$TORCHVISION_PIN"
if local_nvidia; then
    log "installing NVIDIA's libraries from $NVIDIA_INDEX"
    LINKS=(); for d in $NVIDIA_INDEX; do LINKS+=(--find-links "$d"); done
    "${PIP[@]}" install --no-deps --no-index "${LINKS[@]}" "${NVIDIA[@]}"
else
    log "installing NVIDIA's libraries from the package index (several GiB)"
    "${PIP[@]}" install --no-deps "${NVIDIA[@]}"
fi

log "installing the rest of the device's packages"
"${PIP[@]}" install "numpy>=2,<3" "setuptools<82" wheel sympy networkx \
    jinja2 fsspec filelock typing-extensions pillow pyyaml packaging regex \
    requests tqdm safetensors rich "huggingface-hub>=1" "transformers>=5" \
    "tokenizers>=0.22" opencv-python-headless scipy matplotlib scikit-image \
    einops click markdown six zipp pytest ninja psutil
"${PIP[@]}" install --no-deps timm
"$DIR/bin/python" -c "import torch, torchvision, numpy, cv2, transformers; \
print('torch', torch.__version__, 'cuda available', torch.cuda.is_available(), \
'numpy', numpy.__version__, 'transformers', transformers.__version__)"
"${PIP[@]}" freeze > "$DIR/pip-freeze.txt"
touch "$STAMP"
log "stand-in ready: $DIR ($(du -sh "$DIR" | cut -f1))"
