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
    # in the repository, real files in wheels/sdists), where `mim` finds them, with the
    # model index that `mim search crossformer_mm` reads.
    package_data={
        'crossformer_mm': [
            '.mim/configs/**/*.py',
            '.mim/configs/*/metafile.yml',
            '.mim/model-index.yml',
            '.mim/tools/**/*.py',
            '.mim/tools/*.sh',
        ]
    },
    python_requires='>=3.10',
    # Compatible ranges; the versions tested together are pinned in requirements/
    # constraints.txt (frozen stack) and constraints-onedl.txt (maintained stack).
    # The core needs only what both stacks share. The OpenMMLab packages come as
    # the originals (mmengine, mmcv, mmdet, ...) or as the OneDL forks (onedl-*, the
    # same import names): one set of extras per stack, so that installing this
    # package never replaces a fork by an original or the reverse (as mmdet keeps
    # mmcv / mmengine in its `mim` extra). Originals: [mm], [det], [seg], [pose],
    # [cls]; forks: [onedl-mm], [onedl-det], [onedl-seg], [onedl-pose], [onedl-cls].
    install_requires=[
        'torch>=2.3',  # torch.compiler.is_compiling, the CPU flash kernel with log-sum-exp
        'numpy',
    ],
    extras_require={
        # the original OpenMMLab packages (frozen stack: Python 3.11, numpy 1)
        'mm': ['mmengine>=0.10,<1', 'mmcv>=2.0,<3'],
        'det': ['mmengine>=0.10,<1', 'mmcv>=2.0,<3', 'mmdet>=3.0,<4', 'pycocotools'],
        'seg': ['mmengine>=0.10,<1', 'mmcv>=2.0,<3', 'mmsegmentation>=1.0,<2', 'ftfy', 'regex'],
        # mmpose itself is installed with --no-deps (its chumpy dependency does
        # not build on Python >= 3.11 and is never imported): tools/install*.sh
        'pose': ['mmengine>=0.10,<1', 'mmcv>=2.0,<3', 'munkres>=1.1', 'xtcocotools', 'json_tricks'],
        'cls': ['mmengine>=0.10,<1', 'mmcv>=2.0,<3', 'mmpretrain>=1.0,<2'],
        # the OneDL forks (maintained stack: Python 3.12, numpy 2)
        'onedl-mm': ['onedl-mmengine>=0.10.8,<1', 'onedl-mmcv>=2.3,<3'],
        'onedl-det': [
            'onedl-mmengine>=0.10.8,<1',
            'onedl-mmcv>=2.3,<3',
            'onedl-mmdetection>=3.5,<4',
            'pycocotools',
        ],
        'onedl-seg': [
            'onedl-mmengine>=0.10.8,<1',
            'onedl-mmcv>=2.3,<3',
            'onedl-mmsegmentation>=1.4,<2',
            'ftfy',
            'regex',
        ],
        'onedl-pose': [
            'onedl-mmengine>=0.10.8,<1',
            'onedl-mmcv>=2.3,<3',
            'munkres>=1.1',
            'xtcocotools',
            'json_tricks',
        ],
        # onedl-mmpretrain 1.3 asserts mmcv < 2.4 at import
        'onedl-cls': [
            'onedl-mmengine>=0.10.8,<1',
            'onedl-mmcv>=2.3,<2.4',
            'onedl-mmpretrain>=1.3,<2',
        ],
        'tests': ['pytest'],
    },
    zip_safe=False,
)
