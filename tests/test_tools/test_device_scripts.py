# Copyright (c) mmupv2 contributors. Licensed under the Apache License 2.0.
"""The GPU-machine scripts without a GPU or a download: shell syntax,
argument handling, the time budget of ``device_run.sh``, the manifest check
of ``device_bundle.py``, the mmcv source patch, the overlay venv, and the
GPU benchmark's peak table and tokenizer. The whole path (download, install
from the bundle in a Python 3.12 venv without an index, CPU checks, smoke
benchmarks) is ``make device-rehearsal`` (docs/gpu.md)."""
import functools
import json
import os
import os.path as osp
import subprocess
import sys

import pytest
from packaging.requirements import Requirement

from .tool_helpers import ROOT, load_tool

MISC = osp.join(ROOT, 'tools', 'misc')
SCRIPTS = ('device_bundle.sh', 'device_run.sh', 'device_standin.sh',
           'device_lib.sh', 'device_rehearsal.sh')


def bash(script: str, *args: str, **env) -> subprocess.CompletedProcess:
    return subprocess.run(
        ['bash', osp.join(MISC, script), *args], capture_output=True,
        text=True, timeout=60, env=dict(os.environ, **env), cwd=ROOT)


@pytest.fixture(scope='module')
def bundle_tool():
    return load_tool('misc/device_bundle.py')


# ------------------------------------------------------------ shell
@pytest.mark.parametrize('script', SCRIPTS)
def test_shell_syntax(script):
    proc = subprocess.run(['bash', '-n', osp.join(MISC, script)],
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr


@pytest.mark.parametrize('budget, build', [
    ('540', 'mmcv CUDA build: up to 240s'),
    ('330', 'mmcv CUDA build: up to 60s'),
    # (~10 s left: the script's own start-up counts, on a busy machine 9)
    ('280', 'mmcv CUDA build: skipped on a GPU ('),
    ('0', 'mmcv CUDA build: no time limit'),
])
def test_run_budget_plan(budget, build):
    proc = bash('device_run.sh', 'some_bundle', '--dry-run',
                DEVICE_BUDGET_S=budget)
    assert proc.returncode == 0, proc.stderr
    assert build in proc.stdout
    assert f'budget: {budget}s' in proc.stdout


def test_run_budget_parts_are_configurable():
    proc = bash('device_run.sh', 'b', '--dry-run', DEVICE_BUDGET_S='600',
                MMCV_BUILD_S='400', TESTS_S='30', BENCH_MIN_S='100')
    assert 'mmcv CUDA build: up to 400s' in proc.stdout
    assert 'CUDA tests: up to 30s' in proc.stdout


@pytest.mark.parametrize('args, env, message', [
    ((), {}, 'usage'),
    (('a', 'b'), {}, 'usage'),
    (('a', '--bogus'), {}, 'unknown option'),
    (('a', '--dry-run'), dict(DEVICE_BUDGET_S='ten'), 'whole number'),
    (('a', '--dry-run'), dict(MMCV_CUDA_OPS='some'), 'msda or all'),
    (('missing_bundle', ), {}, 'no wheels/'),
])
def test_run_rejects_bad_arguments(args, env, message):
    proc = bash('device_run.sh', *args, **env)
    assert proc.returncode == 2
    assert message in proc.stderr


def test_bundle_dry_run_lists_what_it_fetches(bundle_tool):
    proc = bash('device_bundle.sh', 'some_out', '--dry-run',
                BUNDLE_PYTHON=sys.executable)
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    for flag in ('--python-version 3.12', '--only-binary=:all:',
                 '--no-deps', '--platform manylinux_2_28_x86_64',
                 '--platform manylinux2014_x86_64', 'mmcv==2.1.0'):
        assert flag in out
    for pin in bundle_tool.read_pins():
        assert f'wheel: {pin}' in out
    assert 'no weights' in out
    assert 'CUDA kernel for sm_90' in out  # the lent H200's, by default
    assert not osp.exists(osp.join(ROOT, 'some_out'))
    out = bash('device_bundle.sh', 'o', '--dry-run', '--cuda-arch', '8.0',
               BUNDLE_PYTHON=sys.executable).stdout
    assert 'CUDA kernel for sm_80' in out
    out = bash('device_bundle.sh', 'o', '--dry-run', '--cuda-arch', 'none',
               BUNDLE_PYTHON=sys.executable).stdout
    assert 'CUDA kernel' not in out


@pytest.mark.parametrize('args', [
    (), ('a', '--bogus'), ('a', 'b'), ('a', '--cuda-arch'),
    ('a', '--cuda-arch', 'sm90'),
])
def test_bundle_rejects_bad_arguments(args):
    assert bash('device_bundle.sh', *args).returncode == 2


# ------------------------------------------------------------ manifest
def test_pins_are_exact_and_single(bundle_tool, tmp_path):
    pins = {Requirement(str(p)).name for p in bundle_tool.read_pins()}
    for name in ('mmengine', 'mmdet', 'mmpretrain', 'transformers',
                 'tokenizers', 'pycocotools', 'terminaltables', 'addict',
                 'yapf'):
        assert name in pins
    device = bundle_tool.read_device_packages()
    assert device['torch'] == '2.11.0' and 'numpy' in device
    # nothing the machine has is bundled at the same version
    for pin in bundle_tool.read_pins():
        name = bundle_tool.canonicalize_name(pin.name)
        assert not (name in device and device[name] and
                    pin.specifier.contains(device[name])), pin
    loose = tmp_path / 'req.txt'
    loose.write_text('mmdet>=3\n')
    with pytest.raises(ValueError, match='exact pin'):
        bundle_tool.read_pins(str(loose))
    loose.write_text('a==1\nA==2\n')
    with pytest.raises(ValueError, match='pinned twice'):
        bundle_tool.read_pins(str(loose))


def _wheel(tool, name, version, *requires):
    return tool.Wheel(name, version, [Requirement(r) for r in requires],
                      f'{name}-{version}-py3-none-any.whl')


def test_manifest_check(bundle_tool):
    wheel = functools.partial(_wheel, bundle_tool)
    device = {'numpy': '2.5.2', 'opencv-python-headless': None,
              'tokenizers': '0.23.2', 'huggingface-hub': '1.33.0'}
    wheels = [
        wheel('mmengine', '0.10.7', 'numpy', 'opencv-python>=3',
              'regex; sys_platform == "win32"', 'tomli; python_version < '
              '"3.11"', 'sphinx; extra == "docs"'),
        wheel('transformers', '4.51.3', 'tokenizers<0.22,>=0.21',
              'huggingface-hub<1.0,>=0.30.0'),
        wheel('tokenizers', '0.21.4', 'huggingface-hub<1.0,>=0.16.4'),
    ]
    unmet = bundle_tool.unmet_requirements(wheels, device)
    # bundled tokenizers shadows the machine's 0.23; huggingface-hub is the
    # machine's 1.33 -> too new for both
    assert len(unmet) == 2 and all('huggingface-hub' in u for u in unmet)
    assert 'huggingface-hub 1.33.0 on the machine' in unmet[0]
    wheels.append(wheel('huggingface-hub', '0.36.2', 'pyyaml'))
    unmet = bundle_tool.unmet_requirements(wheels, device)
    assert unmet == ['huggingface-hub 0.36.2 needs pyyaml: neither bundled '
                     'nor on the machine']
    device['pyyaml'] = None
    assert bundle_tool.unmet_requirements(wheels, device) == []
    # without the opencv substitute, mmengine's opencv-python is missing
    assert bundle_tool.unmet_requirements(wheels, device, substitutes={})


def test_pin_problems(bundle_tool):
    pins = [Requirement('a==1'), Requirement('b==2')]
    wheels = [_wheel(bundle_tool, 'a', '1'), _wheel(bundle_tool, 'a', '1.1'),
              _wheel(bundle_tool, 'c', '3')]
    problems = bundle_tool.check_pins_match(wheels, pins)
    assert 'a: several wheels (keep one version)' in problems
    assert 'b==2: no wheel' in problems
    assert 'c-3-py3-none-any.whl: not in the pins' in problems


def test_manifest_written_for_an_existing_bundle(bundle_tool, tmp_path):
    (tmp_path / 'wheels').mkdir()
    (tmp_path / 'minilm').mkdir()
    (tmp_path / 'minilm' / 'config.json').write_text('{}')
    manifest = bundle_tool.write_manifest(str(tmp_path), [], [], [])
    assert manifest['files']['minilm/config.json']['bytes'] == 2
    assert json.loads((tmp_path / 'MANIFEST.json').read_text()) == manifest
    assert bundle_tool.report(str(tmp_path), [], [], 64) == 0
    assert bundle_tool.report(str(tmp_path), ['x'], [], 64) == 1
    assert bundle_tool.report(str(tmp_path), [], [], 1e-9) == 1


# ------------------------------------------------------------ mmcv patch
SETUP_EXCERPT = '''\
        if torch.cuda.is_available() or os.getenv('FORCE_CUDA', '0') == '1':
            define_macros += [('MMCV_WITH_CUDA', None)]
            cuda_args = os.getenv('MMCV_CUDA_ARGS')
            extra_compile_args['nvcc'] = [cuda_args] if cuda_args else []
            op_files = glob.glob('./mmcv/ops/csrc/pytorch/*.cpp') + \\
                glob.glob('./mmcv/ops/csrc/pytorch/cpu/*.cpp') + \\
                glob.glob('./mmcv/ops/csrc/pytorch/cuda/*.cu') + \\
                glob.glob('./mmcv/ops/csrc/pytorch/cuda/*.cpp')
            extension = CUDAExtension
        extra_compile_args['cxx'] = ['-std=c++17']
'''
CUDABIND = '''\
#include "pytorch_cpp_helper.hpp"
#include "pytorch_device_registry.hpp"

void nms_cuda(Tensor boxes);
REGISTER_DEVICE_IMPL(nms_impl, CUDA, nms_cuda);

Tensor ms_deform_attn_cuda_forward(const Tensor &value);
REGISTER_DEVICE_IMPL(ms_deform_attn_impl_forward, CUDA,
                     ms_deform_attn_cuda_forward);
REGISTER_DEVICE_IMPL(ms_deform_attn_impl_backward, CUDA,
                     ms_deform_attn_cuda_backward);

void roi_align_cuda(Tensor x);
'''


def test_mmcv_patch():
    patch = load_tool('misc/mmcv_sdist.py')
    assert '-std=c++20' in patch.raise_cxx_standard(SETUP_EXCERPT)
    setup = patch.msda_only_setup(SETUP_EXCERPT)
    assert "define_macros += [('MMCV_WITH_CUDA'" not in setup
    assert "['-DMMCV_WITH_CUDA']" in setup
    assert 'cuda/ms_deform_attn_cuda.cu' in setup
    assert "cuda/*.cu'" not in setup
    assert patch.msda_only_setup(setup) == setup  # idempotent
    with pytest.raises(patch.PatchError):
        patch.msda_only_setup(SETUP_EXCERPT.replace('*.cu', '*.cuh'))
    bind = patch.msda_only_cudabind(CUDABIND)
    assert bind.startswith(patch.DEFINE)
    assert 'nms' not in bind and 'roi_align' not in bind
    assert bind.count('REGISTER_DEVICE_IMPL(ms_deform_attn_impl_') == 2
    assert '#include "pytorch_device_registry.hpp"' in bind
    assert patch.msda_only_cudabind(bind) == bind
    with pytest.raises(ValueError, match="'all' or 'msda'"):
        patch.patch_tree('.', cuda_ops='some')


# ------------------------------------------------------------ overlay venv
def test_overlay_venv_sees_parent_packages_behind_its_own(tmp_path):
    """A venv over this Python: the parent's packages import (pytest is
    only there), the venv's own site-packages come first."""
    venv = tmp_path / 'venv'
    proc = subprocess.run(
        ['bash', '-c', f'source {MISC}/device_lib.sh && overlay_venv '
         f'{sys.executable} {venv}'], capture_output=True, text=True,
        timeout=120)
    assert proc.returncode == 0, proc.stderr
    code = ('import sys, sysconfig, pytest; own = sysconfig.get_paths()'
            '["purelib"]; print(sys.path.index(own) < sys.path.index('
            'pytest.__file__.rsplit("/pytest/", 1)[0]))')
    out = subprocess.run([str(venv / 'bin' / 'python'), '-c', code],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == 'True'


# ------------------------------------------------------------ benchmark
@pytest.fixture(scope='module')
def bench():
    return load_tool('analysis_tools/benchmark_gpu.py')


@pytest.mark.parametrize('name, peak', [
    ('NVIDIA H200', 989.4),
    ('NVIDIA H100 80GB HBM3', 989.4),
    ('NVIDIA H100 PCIe', 756.0),
    ('NVIDIA A100-SXM4-80GB', 312.0),
    ('NVIDIA L40S', 362.1),
    ('NVIDIA L4', 121.0),
    ('Some Other GPU', None),
])
def test_peak_table(bench, name, peak):
    assert bench.peak_tflops(name) == peak
    assert bench.peak_tflops(name, override=500.0) == 500.0


def test_synthetic_tokenizer_has_the_asked_size(bench, tmp_path):
    from transformers import AutoTokenizer
    folder = bench.synthetic_bpe_tokenizer(str(tmp_path / 'bpe'), 1000)
    tok = AutoTokenizer.from_pretrained(folder)
    assert len(tok) == 1000
    ids = tok(' abc abd')['input_ids']
    assert len(ids) == 4  # <s> Ġabc Ġabd </s>: a 3-letter word is a token
    assert tok('any Text, 12!')['input_ids'][-1] == tok.eos_token_id
    with pytest.raises(ValueError, match='cannot build'):
        bench.synthetic_bpe_tokenizer(str(tmp_path / 'big'), 10**7)


def test_benchmark_arguments(bench, monkeypatch):
    args = bench.parse_args(['--smoke', '--write', 'x.md'])
    assert args.device == 'cpu' and args.write is None
    assert args.image_size == 128 and args.train_repeats == 1
    monkeypatch.setattr(bench.torch.cuda, 'is_available', lambda: False)
    with pytest.raises(SystemExit):
        bench.parse_args(['--device', 'cuda'])
    with pytest.raises(SystemExit):
        bench.parse_args(['--smoke', '--device', 'cuda'])
    assert bench.parse_size('800x1216') == (800, 1216)
