# Copyright (c) mmupv2 contributors. Licensed under the Apache License 2.0.
"""Patch an unpacked mmcv 2.1.0 source tree before building it.

    python tools/misc/mmcv_sdist.py SRC [--cxx20] [--cuda-ops msda|all]

``--cxx20``: raise the C++ standard of ``setup.py`` to C++20 (what
``tools/misc/setup_env.sh`` does with ``sed``: recent torch headers need it).

``--cuda-ops msda``: a CUDA build that compiles every CPU op but only the
multi-scale deformable attention kernel for the GPU -- the one CUDA op
mmupv2 and mmdet's DINO call -- so that the lent GPU machine builds it in
about two minutes instead of the whole library's 58 CUDA files. How:

- ``setup.py``'s CUDA branch compiles ``pytorch/*.cpp``, ``pytorch/cpu/*.cpp``,
  ``pytorch/cuda/ms_deform_attn_cuda.cu`` and ``pytorch/cuda/cudabind.cpp``,
  and defines ``MMCV_WITH_CUDA`` for the CUDA file only (``nvcc`` flags), so
  the other ops' C++ front ends compile as in a CPU build ("not compiled
  with GPU support" on a CUDA tensor) and reference no missing kernel;
- ``cudabind.cpp`` keeps its includes and the ms_deform_attn registrations
  (``REGISTER_DEVICE_IMPL(ms_deform_attn_impl_*, CUDA, ...)``), and
  ``#define MMCV_WITH_CUDA``;
- ``info.cpp`` gets ``#define MMCV_WITH_CUDA`` so that
  ``mmcv.ops.get_compiling_cuda_version()`` reports the CUDA version
  (mmupv2 chooses the compiled kernel by it:
  ``mmupv2/models/layers/ms_deform_attn.py``).

``--cuda-ops all`` (or no flag) leaves the op list as mmcv has it.
"""
import argparse
import os.path as osp
import re
import sys

_IN = ' ' * 12  # the indent of setup.py's CUDA branch
_SRC = "'./mmcv/ops/csrc/pytorch/"


def _lines(*lines: str) -> str:
    return ''.join(_IN + line + '\n' for line in lines)


CUDA_GLOBS = _lines(f'op_files = glob.glob({_SRC}*.cpp\') + \\',
                    f'    glob.glob({_SRC}cpu/*.cpp\') + \\',
                    f'    glob.glob({_SRC}cuda/*.cu\') + \\',
                    f'    glob.glob({_SRC}cuda/*.cpp\')')
MSDA_GLOBS = _lines(f'op_files = glob.glob({_SRC}*.cpp\') + \\',
                    f'    glob.glob({_SRC}cpu/*.cpp\') + \\',
                    f'    [{_SRC}cuda/ms_deform_attn_cuda.cu\',',
                    f'     {_SRC}cuda/cudabind.cpp\']')
CUDA_MACRO = _lines("define_macros += [('MMCV_WITH_CUDA', None)]")
CUDA_ARGS = _lines("extra_compile_args['nvcc'] = [cuda_args] if cuda_args "
                   'else []')
MSDA_ARGS = _lines("extra_compile_args['nvcc'] = ([cuda_args] if cuda_args "
                   "else []) + ['-DMMCV_WITH_CUDA']")
DEFINE = '#define MMCV_WITH_CUDA  // mmupv2: tools/misc/mmcv_sdist.py\n'
PATCH_MARK = '# mmupv2: --cuda-ops msda'


class PatchError(RuntimeError):
    """The source tree is not the mmcv 2.1.0 this script knows."""


def raise_cxx_standard(setup_py: str) -> str:
    """``setup.py`` with every ``c++14`` / ``c++17`` flag made ``c++20``."""
    return re.sub(r'c\+\+1[47]', 'c++20', setup_py)


def _replace_once(text: str, old: str, new: str, what: str) -> str:
    if text.count(old) != 1:
        raise PatchError(f'mmcv setup.py: expected one {what}, found '
                         f'{text.count(old)}; is this mmcv 2.1.0?')
    return text.replace(old, new)


def msda_only_setup(setup_py: str) -> str:
    """``setup.py`` whose CUDA build compiles only the ms_deform_attn
    kernel (see the module docstring)."""
    if PATCH_MARK in setup_py:
        return setup_py
    cuda_branch = setup_py.find(CUDA_GLOBS)
    macro = setup_py.rfind(CUDA_MACRO, 0, max(cuda_branch, 0))
    if cuda_branch < 0 or macro < 0:
        raise PatchError("mmcv setup.py: no CUDA branch as in mmcv 2.1.0 "
                         "(its source list and MMCV_WITH_CUDA macro)")
    setup_py = (setup_py[:macro] + _IN + 'pass  ' + PATCH_MARK + '\n' +
                setup_py[macro + len(CUDA_MACRO):])
    setup_py = _replace_once(setup_py, CUDA_ARGS, MSDA_ARGS,
                             "CUDA branch's nvcc arguments")
    return _replace_once(setup_py, CUDA_GLOBS, MSDA_GLOBS,
                         "CUDA branch's source list")


def msda_only_cudabind(cudabind: str) -> str:
    """``cudabind.cpp`` with the includes and the ms_deform_attn block
    only."""
    if DEFINE in cudabind:
        return cudabind
    start = cudabind.find('Tensor ms_deform_attn_cuda_forward(')
    end_marker = 'REGISTER_DEVICE_IMPL(ms_deform_attn_impl_backward, CUDA,'
    end = cudabind.find(end_marker)
    if start < 0 or end < 0:
        raise PatchError('mmcv cudabind.cpp: no ms_deform_attn block')
    end = cudabind.index(';', end) + 1
    includes = ''.join(line + '\n' for line in cudabind.splitlines()
                       if line.startswith('#include'))
    return DEFINE + includes + '\n' + cudabind[start:end] + '\n'


def with_cuda_define(source: str) -> str:
    """A C++ file with ``MMCV_WITH_CUDA`` defined at its top."""
    return source if DEFINE in source else DEFINE + source


def _rewrite(path: str, fn) -> None:
    with open(path) as f:
        text = f.read()
    with open(path, 'w') as f:
        f.write(fn(text))


def patch_tree(src: str, cxx20: bool = True, cuda_ops: str = 'all') -> None:
    """Patch the unpacked mmcv source tree ``src`` in place (idempotent)."""
    if cuda_ops not in ('all', 'msda'):
        raise ValueError(f"cuda_ops must be 'all' or 'msda', got "
                         f'{cuda_ops!r}')
    setup_py = osp.join(src, 'setup.py')
    if not osp.isfile(setup_py):
        raise FileNotFoundError(f'{src}: no setup.py (an unpacked mmcv '
                                'sdist is expected)')
    if cxx20:
        _rewrite(setup_py, raise_cxx_standard)
    if cuda_ops == 'msda':
        csrc = osp.join(src, 'mmcv', 'ops', 'csrc', 'pytorch')
        _rewrite(setup_py, msda_only_setup)
        _rewrite(osp.join(csrc, 'cuda', 'cudabind.cpp'), msda_only_cudabind)
        _rewrite(osp.join(csrc, 'info.cpp'), with_cuda_define)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('src', help='unpacked mmcv-2.1.0 folder')
    parser.add_argument('--cxx20', action='store_true',
                        help='raise the C++ standard to C++20')
    parser.add_argument('--cuda-ops', choices=('all', 'msda'), default='all')
    args = parser.parse_args(argv)
    patch_tree(args.src, args.cxx20, args.cuda_ops)
    print(f'[mmcv_sdist] patched {args.src} (c++20: {args.cxx20}, CUDA ops: '
          f'{args.cuda_ops})')
    return 0


if __name__ == '__main__':
    sys.exit(main())
