# Copyright (c) mmupv2 contributors. Licensed under the Apache License 2.0.
"""Install mmupv2. Use ``make test`` / ``bash tools/misc/setup_env.sh`` for a
complete environment: mmcv must be built from source with ops first."""
import os.path as osp

from setuptools import find_packages, setup

HERE = osp.dirname(osp.abspath(__file__))


def get_version() -> str:
    scope = {}
    with open(osp.join(HERE, 'mmupv2', 'version.py')) as f:
        exec(compile(f.read(), 'version.py', 'exec'), scope)
    return scope['__version__']


def parse_requirements(fname: str) -> list:
    """Requirement lines of ``requirements/<fname>``, comments removed."""
    reqs = []
    with open(osp.join(HERE, 'requirements', fname)) as f:
        for line in f:
            line = line.split('#', 1)[0].strip()
            if line:
                reqs.append(line)
    return reqs


if __name__ == '__main__':
    setup(
        name='mmupv2',
        version=get_version(),
        description='Uni-Perceiver v2: a generalist model for large-scale '
        'vision and vision-language tasks, as an OpenMMLab toolbox',
        long_description=open(osp.join(HERE, 'README.md')).read(),
        long_description_content_type='text/markdown',
        license='Apache License 2.0',
        packages=find_packages(exclude=('configs', 'tools', 'demo', 'tests')),
        include_package_data=True,
        python_requires='>=3.10',
        install_requires=parse_requirements('runtime.txt') +
        parse_requirements('mmcv.txt'),
        extras_require=dict(
            tests=parse_requirements('tests.txt'),
            optional=parse_requirements('optional.txt'),
            webui=parse_requirements('webui.txt')),
        zip_safe=False)
