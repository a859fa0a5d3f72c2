import os.path as osp

from setuptools import find_packages, setup
from setuptools.command.build_py import build_py


def read_version() -> str:
    scope: dict = {}
    with open(osp.join(osp.dirname(__file__), 'crossformer_mm', 'version.py')) as f:
        exec(f.read(), scope)
    return scope['__version__']


def read_hook_file() -> tuple:
    """(name, content) of the .pth file of ``_crossformer_mm_hook.py``."""
    scope: dict = {'__name__': '_crossformer_mm_hook'}
    with open(osp.join(osp.dirname(__file__), '_crossformer_mm_hook.py')) as f:
        exec(compile(f.read(), '_crossformer_mm_hook.py', 'exec'), scope)
    return scope['PTH_NAME'], scope['PTH_LINE']


class BuildPyWithHook(build_py):
    """build_py that also puts the ``.pth`` file of the mmpose-without-torchvision
    import hook (``_crossformer_mm_hook.py``) at the root of the build, i.e. into
    site-packages of a wheel install (as setuptools ships distutils-precedence.pth).
    Editable installs do not install build outputs; tools/install.sh writes it there."""

    def run(self) -> None:
        super().run()
        if not getattr(self, 'editable_mode', False):
            name, line = read_hook_file()
            with open(osp.join(self.build_lib, name), 'w') as f:
                f.write(line)

    def get_outputs(self, include_bytecode: bool = True) -> list:
        outputs = super().get_outputs(include_bytecode)
        if not getattr(self, 'editable_mode', False):
            outputs.append(osp.join(self.build_lib, read_hook_file()[0]))
        return outputs


setup(
    name='crossformer_mm',
    version=read_version(),
    description='CrossFormer / CrossFormer++ backbones and HigherHRNet for '
    'mmdet 3.x, mmsegmentation 1.x and mmpose 1.x',
    long_description=open('README.md').read() if osp.exists('README.md') else '',
    long_description_content_type='text/markdown',
    packages=find_packages(exclude=('tests', 'configs', 'tools')),
    # the interpreter-start import hook (mmpose without torchvision) and its .pth
    py_modules=['_crossformer_mm_hook'],
    cmdclass={'build_py': BuildPyWithHook},
    include_package_data=True,
    # tools/ and configs/ ship as crossformer_mm/.mim/{tools,configs} (symlinks
    # in the repository, real files in wheels/sdists), where `mim` finds them.
    # the C++ source of the CPU attention kernel, compiled on first use
    package_data={'crossformer_mm': ['.mim/configs/**/*.py', '.mim/tools/**/*.py',
                                     '.mim/tools/*.sh', 'models/layers/csrc/*.cpp']},
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
