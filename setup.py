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
    packages=find_packages(exclude=('tests', 'configs', 'tools')),
    include_package_data=True,
    # tools/ and configs/ ship as crossformer_mm/.mim/{tools,configs} (symlinks
    # in the repository, real files in wheels/sdists), where `mim` finds them.
    package_data={'crossformer_mm': ['.mim/configs/**/*.py', '.mim/tools/**/*.py',
                                     '.mim/tools/*.sh']},
    python_requires='>=3.10',
    # The pins of requirements/constraints.txt. mmpose==1.3.2 is installed by
    # tools/install.sh with --no-deps: its declared chumpy dependency does not
    # build on Python 3.11 and is never imported, so it cannot be listed here.
    install_requires=[
        'torch>=2.0',
        'numpy<2',
        'mmengine==0.10.7',
        'mmcv==2.1.0',
        'mmdet==3.3.0',
        'mmsegmentation==1.2.2',
        'ftfy',
        'regex',
        'munkres==1.1.4',
        'json_tricks',
        'pycocotools',
        'xtcocotools',
    ],
    extras_require={'tests': ['pytest']},
    zip_safe=False,
)
