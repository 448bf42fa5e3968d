# Copyright (c) mmupv2 contributors. Licensed under the Apache License 2.0.
"""The CPU checks of ``tools/misc/device_run.sh``: is the installed bundle
what mmupv2 needs, and does it import?

    python tools/misc/device_check.py [--requirements FILE]

1. every pin of ``tools/misc/device_requirements.txt`` is the version
   Python imports (the venv's copy shadows the machine's own, e.g.
   transformers 4.51.3 over the machine's 5.x);
2. mmengine, mmcv and its compiled ops, mmdet, mmpretrain, transformers,
   timm, pycocotools and mmupv2 import, and mmupv2's modules register;
3. mmupv2's deformable attention on the CPU equals mmcv's PyTorch path
   (the CUDA kernel is compared in tests/test_cuda/);
4. it prints torch, its CUDA, the GPU and which deformable-attention kernel
   a CUDA tensor would use.

Exits non-zero on the first failed check.
"""
import argparse
import importlib
import os.path as osp
import sys
from importlib.metadata import PackageNotFoundError, distribution

HERE = osp.dirname(osp.abspath(__file__))
MODULES = ('mmengine', 'mmcv', 'mmcv.ops', 'mmdet', 'mmdet.models',
           'mmpretrain', 'transformers', 'tokenizers', 'timm', 'pycocotools',
           'shapely', 'mmupv2', 'mmupv2.models')


def pins(path: str):
    from packaging.requirements import Requirement
    with open(path) as f:
        for line in f:
            line = line.split('#', 1)[0].strip()
            if line:
                yield Requirement(line)


def check_versions(path: str) -> list:
    """Problems with the installed versions of the pins."""
    from packaging.version import Version
    problems = []
    for req in pins(path):
        try:
            dist = distribution(req.name)
        except PackageNotFoundError:
            problems.append(f'{req.name}: not installed')
            continue
        ok = req.specifier.contains(Version(dist.version), prereleases=True)
        where = osp.dirname(str(dist.locate_file('')))
        print(f'  {req.name:22s} {dist.version:12s} {"ok " if ok else "BAD"} '
              f'{where}')
        if not ok:
            problems.append(f'{req.name}: {dist.version} imported, {req} '
                            'pinned')
    return problems


def check_imports() -> list:
    problems = []
    for name in MODULES:
        try:
            importlib.import_module(name)
        except Exception as e:  # noqa: BLE001 (report any import failure)
            problems.append(f'import {name}: {type(e).__name__}: {e}')
    if problems:
        return problems
    from mmcv.utils import ext_loader
    try:
        ext_loader.load_ext('_ext', ['ms_deform_attn_forward',
                                     'ms_deform_attn_backward'])
    except (AssertionError, ImportError) as e:
        problems.append(f"mmcv's compiled ops do not load: {e}")
    from mmupv2.utils import register_all_modules
    register_all_modules()
    return problems


def check_deform_attn() -> list:
    import torch
    from mmcv.ops.multi_scale_deform_attn import (
        multi_scale_deformable_attn_pytorch,
    )

    from mmupv2.models.layers import multi_scale_deformable_attn
    torch.manual_seed(0)
    shapes = torch.tensor([[8, 6], [4, 3]])
    value = torch.rand(2, 60, 2, 4)
    loc = torch.rand(2, 5, 2, 2, 3, 2)
    weights = torch.rand(2, 5, 2, 2, 3).softmax(-1)
    ours = multi_scale_deformable_attn(value, shapes,
                                       torch.tensor([0, 48]), loc, weights)
    ref = multi_scale_deformable_attn_pytorch(value, shapes, loc, weights)
    if not torch.allclose(ours, ref, atol=1e-6):
        return ['deformable attention on the CPU differs from mmcv\'s '
                'PyTorch path']
    return []


def describe() -> None:
    import torch
    from mmcv.ops import get_compiling_cuda_version

    from mmupv2.models.layers import select_ms_deform_attn_kernel
    print(f'  torch {torch.__version__} (CUDA {torch.version.cuda}) from '
          f'{osp.dirname(torch.__file__)}')
    print(f'  mmcv compiled with CUDA: {get_compiling_cuda_version()}')
    if torch.cuda.is_available():
        print(f'  GPU: {torch.cuda.get_device_name(0)}, bf16 supported: '
              f'{torch.cuda.is_bf16_supported()}; deformable attention on '
              'CUDA uses the '
              f'{select_ms_deform_attn_kernel(torch.device("cuda"))} kernel')
    else:
        print('  GPU: none')


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--requirements',
                        default=osp.join(HERE, 'device_requirements.txt'))
    args = parser.parse_args(argv)
    for title, check in (
            ('versions', lambda: check_versions(args.requirements)),
            ('imports', check_imports),
            ('deformable attention (CPU)', check_deform_attn)):
        print(f'[device_check] {title}', flush=True)
        problems = check()
        for problem in problems:
            print(f'[device_check] FAILED: {problem}')
        if problems:
            return 1
    describe()
    print('[device_check] all CPU checks passed')
    return 0


if __name__ == '__main__':
    sys.exit(main())
