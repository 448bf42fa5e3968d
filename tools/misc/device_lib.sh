# Copyright (c) mmupv2 contributors. Licensed under the Apache License 2.0.
# Shell functions shared by tools/misc/device_bundle.sh and
# tools/misc/device_run.sh (sourced, not run).

# the processors this process may use (nproc alone obeys OMP_NUM_THREADS)
cpus() { env -u OMP_NUM_THREADS -u OMP_THREAD_LIMIT nproc; }

dlog() { printf '[%s] %s\n' "${DEVICE_LOG_TAG:-device}" "$*"; }

# overlay_venv PARENT_PYTHON VENV
#   A venv on top of PARENT_PYTHON's packages. `python -m venv
#   --system-site-packages` from a Python that is itself a venv (the lent
#   machine's /opt/torch/.venv/bin/python3) would see the *base*
#   interpreter's site-packages, not the parent venv's, where torch is; so
#   the parent's site-packages are added with a .pth file, after the new
#   venv's own (what is installed in VENV shadows the parent's copy). pip
#   is the parent's (created --without-pip: no ensurepip needed); it
#   installs into VENV and leaves the parent's packages alone.
overlay_venv() {
    local parent=$1 venv=$2
    if [ ! -x "$venv/bin/python" ]; then
        "$parent" -m venv --without-pip --system-site-packages "$venv"
    fi
    local site
    site=$("$venv/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
    "$parent" - > "$site/_device_parent.pth" <<'EOF'
import site, sys, sysconfig
paths = [sysconfig.get_paths()['purelib'], sysconfig.get_paths()['platlib']]
paths += site.getsitepackages() if hasattr(site, 'getsitepackages') else []
seen = []
for p in paths:
    if p not in seen:
        seen.append(p)
print('\n'.join(seen))
EOF
}

# mmcv_torch_tag PYTHON -> e.g. torch2.11.0-cp312 (what a prebuilt mmcv
# wheel must match: its _ext links against this torch's C++ library)
mmcv_torch_tag() {
    "$1" -c 'import sys, torch; v = torch.__version__.split("+")[0]; print("torch%s-cp%d%d" % (v, *sys.version_info[:2]))'
}

# build_mmcv PYTHON SDIST_TGZ OPS OUT_DIR TIMEOUT_S LOG
#   Build an mmcv 2.1.0 wheel with ops from the sdist into OUT_DIR, within
#   TIMEOUT_S seconds (0: no limit). OPS: cpu (CPU ops only), msda (CPU ops
#   + the CUDA deformable-attention kernel, tools/misc/mmcv_sdist.py) or
#   all (every CUDA op). Without debug information (CFLAGS=-g0) and
#   stripped (LDFLAGS=-s): the CPU-ops library is 2 MiB instead of 80 MiB.
#   Returns timeout(1)'s status: 124 when the time ran out.
build_mmcv() {
    local py=$1 sdist=$2 ops=$3 out=$4 limit=$5 log=$6
    local here work
    here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
    work=$(mktemp -d)
    tar xzf "$sdist" -C "$work"
    local src
    src=$(ls -d "$work"/mmcv-*/ | head -n 1)
    local cuda_ops=all force=0
    case "$ops" in
        cpu) force=0 ;;
        msda) force=1; cuda_ops=msda ;;
        all) force=1 ;;
        *) dlog "build_mmcv: OPS must be cpu, msda or all, got '$ops'"; return 2 ;;
    esac
    "$py" "$here/mmcv_sdist.py" "$src" --cxx20 --cuda-ops "$cuda_ops" >>"$log" 2>&1
    mkdir -p "$out"
    local cmd=(env MMCV_WITH_OPS=1 FORCE_CUDA=$force MAX_JOBS="${MAX_JOBS:-$(cpus)}"
               CFLAGS="${CFLAGS:-} -g0" CXXFLAGS="${CXXFLAGS:-} -g0"
               LDFLAGS="${LDFLAGS:-} -s"
               "$py" -m pip wheel --no-index --no-build-isolation --no-deps
               --disable-pip-version-check -w "$out" "$src")
    [ "$force" = 0 ] && cmd=(env CUDA_VISIBLE_DEVICES= "${cmd[@]:1}")
    local status=0
    if [ "${limit:-0}" -gt 0 ]; then
        timeout --kill-after=15 "$limit" "${cmd[@]}" >>"$log" 2>&1 || status=$?
    else
        "${cmd[@]}" >>"$log" 2>&1 || status=$?
    fi
    rm -rf "$work"
    return "$status"
}

# pip_cuda_home PYTHON DIR
#   A CUDA_HOME for building CUDA extensions on a machine without the CUDA
#   toolkit, from NVIDIA's pip packages (nvcc, its front-end headers, the
#   runtime), at the CUDA version PYTHON's torch was built with, plus the
#   library headers torch's own CUDA packages brought (cuBLAS, cuSPARSE,
#   ...) in PYTHON's site-packages. Echoes DIR/home. No GPU needed:
#   nvcc compiles for the architectures TORCH_CUDA_ARCH_LIST names.
pip_cuda_home() {
    local py=$1 dir=$2 cuda
    cuda=$("$py" -c 'import torch; print(torch.version.cuda or "")')
    [ -n "$cuda" ] || { dlog "pip_cuda_home: $py's torch has no CUDA" >&2; return 1; }
    if [ ! -x "$dir/home/bin/nvcc" ]; then
        "$py" -m pip install -q --disable-pip-version-check --no-deps \
            --target "$dir/site" "nvidia-cuda-nvcc==$cuda.*" \
            "nvidia-cuda-crt==$cuda.*" "nvidia-cuda-cccl==$cuda.*" \
            "nvidia-nvvm==$cuda.*" "nvidia-cuda-runtime==$cuda.*" >&2 || return 1
        local tk site_nv home=$dir/home d f
        tk=$(ls -d "$dir"/site/nvidia/cu* | head -n 1)
        site_nv=$("$py" -c 'import os, nvidia; print(os.path.dirname(nvidia.__path__[0]))')/nvidia/$(basename "$tk")
        rm -rf "$home"; mkdir -p "$home/include" "$home/lib64"
        ln -s "$tk/bin" "$home/bin"; ln -s "$tk/nvvm" "$home/nvvm"
        for d in "$tk/include" "$site_nv/include"; do
            for f in "$d"/*; do [ -e "$home/include/${f##*/}" ] || ln -s "$f" "$home/include/"; done
        done
        for d in "$tk/lib" "$site_nv/lib"; do
            for f in "$d"/*; do [ -e "$home/lib64/${f##*/}" ] || ln -s "$f" "$home/lib64/"; done
        done
        ln -sf "$(ls "$tk"/lib/libcudart.so.* | head -n 1)" "$home/lib64/libcudart.so"
    fi
    echo "$dir/home"
}
