# Copyright (c) mmupv2 contributors. Licensed under the Apache License 2.0.
"""The docs name only config files that exist."""
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PAGES = sorted([*ROOT.glob('docs/**/*.md'), ROOT / 'README.md',
                *ROOT.glob('configs/**/README.md')])
#: a config path: ``configs/...py`` or a base ``_base_/...py`` (relative
#: ``../_base_/`` included)
CONFIG_PATH = re.compile(
    r'(?<![\w.-])(?:[\w.-]+/)*(?:configs|_base_)/[\w./-]+\.py')
#: files a page tells the reader to write themselves
USER_FILES = {'configs/my_set.py'}


def config_paths(text: str):
    """The config paths named in a page, as paths from the repository
    root."""
    for match in CONFIG_PATH.finditer(text):
        path = match.group(0)
        if '_base_/' in path and not path.startswith(('configs/', 'tests/')):
            path = 'configs/_base_/' + path.split('_base_/', 1)[1]
        yield path


def test_every_config_named_in_the_docs_exists():
    assert len(PAGES) > 10
    missing, named = [], 0
    for page in PAGES:
        for path in config_paths(page.read_text(encoding='utf-8')):
            named += 1
            if path not in USER_FILES and not (ROOT / path).is_file():
                missing.append(f'{page.relative_to(ROOT)}: {path}')
    assert named > 20  # the pattern still finds the docs' configs
    assert not missing, 'config files named in the docs but missing:\n' + (
        '\n'.join(missing))


def test_the_pattern_finds_relative_bases_and_config_paths():
    text = ("_base_ = ['../_base_/models/upv2_x.py'] and "
            '`python tools/train.py configs/uniperceiver_v2/a-b_c.py` or '
            'tests/data/configs/toy.py, not tests/test_configs/test_x.py')
    assert list(config_paths(text)) == [
        'configs/_base_/models/upv2_x.py', 'configs/uniperceiver_v2/a-b_c.py',
        'tests/data/configs/toy.py'
    ]
