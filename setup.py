import os.path as osp

from setuptools import find_packages, setup


def read_version() -> str:
    scope: dict = {}
    with open(osp.join(osp.dirname(__file__), 'crossformer_mm', 'version.py')) as f:
        exec(f.read(), scope)
    return scope['__version__']


setup(
    name='crossformer_mm',
    version=read_version(),
    description='CrossFormer / CrossFormer++ backbones and HigherHRNet for '
    'mmdet 3.x, mmsegmentation 1.x and mmpose 1.x',
    long_description=open('README.md').read() if osp.exists('README.md') else '',
    long_description_content_type='text/markdown',
    license='MIT',
    packages=find_packages(exclude=('tests', 'configs', 'tools')),
    include_package_data=True,
    # tools/ and configs/ ship as crossformer_mm/.mim/{tools,configs} (symlinks
    # in the repository, real files in wheels/sdists), where `mim` finds them.
    package_data={'crossformer_mm': ['.mim/configs/**/*.py', '.mim/tools/**/*.py',
                                     '.mim/tools/*.sh']},
    python_requires='>=3.10',
    # Compatible ranges: the backbone and its layers need only torch, mmengine
    # and mmcv; each toolbox part is an extra. The versions this project tests
    # together are pinned once, in requirements/constraints.txt (`make install`).
    install_requires=[
        'torch>=2.3',  # torch.compiler.is_compiling, the CPU flash kernel with log-sum-exp
        'numpy',
        'mmengine>=0.10,<1',
        'mmcv>=2.0,<3',
    ],
    extras_require={
        'det': ['mmdet>=3.0,<4', 'pycocotools'],
        'seg': ['mmsegmentation>=1.0,<2', 'ftfy', 'regex'],
        # mmpose itself is installed with --no-deps (its chumpy dependency does
        # not build on Python 3.11 and is never imported): tools/install.sh
        'pose': ['munkres>=1.1', 'xtcocotools', 'json_tricks'],
        'cls': ['mmpretrain>=1.0,<2'],
        'tests': ['pytest'],
    },
    zip_safe=False,
)
