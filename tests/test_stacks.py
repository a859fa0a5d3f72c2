"""The two tested stacks (README, "Versions"): the frozen one (Python 3.11, numpy 1,
the original OpenMMLab packages) and the maintained one (Python 3.12, numpy 2, the
OneDL forks, ``make install STACK=onedl``). Each test runs on whichever stack runs
it and says what must hold there: safe loading decided by what mmengine's loaders
do, checkpoints of either stack loading on both, the segmentation configs' copies of
mmseg's bases, packaging that changes no installed OpenMMLab package, and the
``mim train`` / ``mim test`` spellings of each toolbox."""

import importlib.metadata as metadata
import json
import os.path as osp
import re
import subprocess
import sys
import textwrap
import zipfile
from fractions import Fraction
from glob import glob

import numpy as np
import pytest
import torch
from mmengine.config import Config
from mmengine.logging import HistoryBuffer
from mmengine.runner import CheckpointLoader

from _helpers import MIM_PACKAGE, ONEDL, OTHER, REPO_ROOT, THIS, installed, run
from crossformer_mm import compat
from crossformer_mm.utils.safe_load import UnsafeCheckpointError, load_checkpoint

#: The OpenMMLab distributions of each stack (mmpose has no fork: both have mmpose).
DISTRIBUTIONS = {
    'frozen': ['mmengine', 'mmcv', 'mmdet', 'mmsegmentation', 'mmpretrain', 'openmim'],
    'onedl': [
        'onedl-mmengine',
        'onedl-mmcv',
        'onedl-mmdetection',
        'onedl-mmsegmentation',
        'onedl-mmpretrain',
        'onedl-mim',
    ],
}
CONSTRAINTS = {
    'frozen': 'requirements/constraints.txt',
    'onedl': 'requirements/constraints-onedl.txt',
}
#: Checkpoints written by mmengine runners on each stack (see write_runner_file).
STACK_FILES = osp.join(REPO_ROOT, 'tests', 'stack_files')


def python(code: str) -> subprocess.CompletedProcess:
    """Run ``code`` in a fresh interpreter of this stack (crossformer_mm not imported),
    outside the checkout (whose crossformer_mm.egg-info importlib.metadata would find)."""
    return subprocess.run(
        [sys.executable, '-c', textwrap.dedent(code)],
        cwd=osp.dirname(REPO_ROOT),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        timeout=300,
    )


# which stack -----------------------------------------------------------------------
def pins(stack: str) -> dict:
    with open(osp.join(REPO_ROOT, CONSTRAINTS[stack])) as f:
        return dict(re.findall(r'^([A-Za-z0-9_.-]+)==(\S+)', f.read(), re.M))


def test_this_is_one_tested_stack_with_its_pinned_versions():
    assert all(map(installed, DISTRIBUTIONS[THIS])), DISTRIBUTIONS[THIS]
    mixed = [name for name in DISTRIBUTIONS[OTHER] if installed(name)]
    assert not mixed, f'{THIS} stack with {OTHER} packages installed beside it: {mixed}'
    wrong = {
        name: (metadata.version(name), version)
        for name, version in pins(THIS).items()
        if installed(name) and metadata.version(name).split('+')[0] != version
    }
    assert not wrong, f'installed (found, pinned) versions differ from {CONSTRAINTS[THIS]}'
    assert np.__version__.startswith('2.' if ONEDL else '1.'), np.__version__
    assert sys.version_info[:2] == ((3, 12) if ONEDL else (3, 11))


# safe loading, decided by what the loaders do ---------------------------------------
def save_any_global(path: str) -> None:
    """A checkpoint with a harmless global outside every allow-list (Fraction)."""
    torch.save({'state_dict': {'w': torch.ones(1)}, 'meta': {'ratio': Fraction(1, 3)}}, path)


def stock_outcome(path: str) -> str:
    """What mmengine's own local loader does with ``path`` in an interpreter where
    crossformer_mm is not imported: 'loaded' or 'refused' (anything else fails)."""
    result = python(f"""
        import pickle
        from mmengine.runner import CheckpointLoader
        try:
            CheckpointLoader.load_checkpoint({path!r}, map_location='cpu')
        except pickle.UnpicklingError as error:
            print('OUTCOME refused', error)
        else:
            print('OUTCOME loaded')
    """)
    found = re.search(r'OUTCOME (\w+)', result.stdout)
    assert found, result.stdout
    return found.group(1)


def test_the_probe_finds_what_the_stock_loader_does(tmp_path):
    """compat's probe (small files, at import) and mmengine's loader run on its own
    (no crossformer_mm) agree; the patch is applied exactly where it is needed."""
    any_global, runner = str(tmp_path / 'any_global.pth'), str(tmp_path / 'runner.pth')
    save_any_global(any_global)
    write_runner_file(runner)
    probe = compat.stock_checkpoint_loading()
    assert stock_outcome(any_global) == probe['local_any_global']
    assert stock_outcome(runner) == probe['local_runner_file']
    if ONEDL:  # onedl-mmengine falls back to weights_only=False: unsafe, not failing
        assert probe['local_any_global'] == 'loaded' and probe['local_runner_file'] == 'loaded'
    else:  # mmengine 0.10.7 leaves torch's weights_only=True: safe, fails on its own files
        assert probe['local_any_global'] == 'refused'
        assert probe['local_runner_file'] == 'refused'
    assert probe['url_any_global'] == 'loaded'  # torch.hub: weights_only=False on both
    needed = (
        compat.mmengine_unpickles_arbitrary_globals()
        or compat.mmengine_loads_weights_only_unaware()
    )
    assert needed and 'safe_checkpoint_loading' in compat.APPLIED


def test_loaders_refuse_what_the_stock_loader_would_unpickle(tmp_path):
    path = str(tmp_path / 'any_global.pth')
    save_any_global(path)
    for load in (CheckpointLoader.load_checkpoint, load_checkpoint):
        with pytest.raises(UnsafeCheckpointError, match=r'fractions\.Fraction'):
            load(path, map_location='cpu')


# checkpoints of either stack load on both ------------------------------------------
def runner_content() -> dict:
    """What an mmengine runner checkpoint pickles besides tensors (message hub
    HistoryBuffers, numpy scalars / arrays / dtypes of several kinds)."""
    buffer = HistoryBuffer()
    for value in (1.5, 0.5):
        buffer.update(value)
    return dict(
        state_dict={'backbone.w': torch.arange(4.0)},
        message_hub=dict(
            log_scalars={'train/loss': buffer},
            runtime_info=dict(eta=np.float64(12.5), iter=np.int64(2)),
        ),
        meta=dict(
            dataset_meta=dict(
                weights=np.array([1.0, 2.0], dtype=np.float32),
                colours=np.array([[255, 0, 0]], dtype=np.uint8),
            ),
            seed=np.int64(7),
        ),
    )


def write_runner_file(path: str) -> None:
    """How tests/stack_files/runner_numpy{1,2}.pth were written (frozen stack: 1,
    maintained stack: 2)."""
    torch.save(runner_content(), path)


def assert_runner_content(checkpoint: dict) -> None:
    expected = runner_content()
    assert torch.equal(checkpoint['state_dict']['backbone.w'], expected['state_dict']['backbone.w'])
    loss = checkpoint['message_hub']['log_scalars']['train/loss']
    assert isinstance(loss, HistoryBuffer) and loss.current() == 0.5 and loss.mean() == 1.0
    info = checkpoint['message_hub']['runtime_info']
    assert info == {'eta': 12.5, 'iter': 2} and isinstance(info['eta'], np.float64)
    meta = checkpoint['meta']['dataset_meta']
    assert meta['weights'].dtype == np.float32 and meta['weights'].tolist() == [1.0, 2.0]
    assert meta['colours'].dtype == np.uint8 and meta['colours'].tolist() == [[255, 0, 0]]


@pytest.mark.parametrize('numpy_major', [1, 2])
def test_runner_files_of_both_stacks_load(numpy_major):
    path = osp.join(STACK_FILES, f'runner_numpy{numpy_major}.pth')
    with zipfile.ZipFile(path) as archive:
        pickled = archive.read(next(n for n in archive.namelist() if n.endswith('data.pkl')))
    module = b'numpy.core.multiarray' if numpy_major == 1 else b'numpy._core.multiarray'
    assert module in pickled, 'the file was not written by the stack it stands for'
    assert_runner_content(load_checkpoint(path))
    assert_runner_content(CheckpointLoader.load_checkpoint(path, map_location='cpu'))


def test_runner_file_written_here_loads(tmp_path):
    path = str(tmp_path / 'runner.pth')
    write_runner_file(path)
    assert_runner_content(CheckpointLoader.load_checkpoint(path, map_location='cpu'))


# configs ------------------------------------------------------------------------------
MMSEG_COPIES = sorted(
    glob(osp.join(REPO_ROOT, 'configs', '_base_', 'mmseg', '**', '*.py'), recursive=True)
)


def config_text(path: str) -> str:
    """The config as mmengine reads it, as text; the fork's checkpoint URLs (it hosts
    OpenMMLab's checkpoints at mmassets.onedl.ai) spelled as the original's."""
    return json.dumps(Config.fromfile(path).to_dict(), sort_keys=True, default=repr).replace(
        'https://mmassets.onedl.ai/', 'https://download.openmmlab.com/'
    )


@pytest.mark.parametrize(
    'copy', MMSEG_COPIES, ids=[osp.relpath(p, REPO_ROOT) for p in MMSEG_COPIES]
)
def test_mmseg_base_copies_are_the_installed_mmseg_configs(copy):
    """configs/_base_/mmseg/X is the installed mmseg's configs/X (what 'mmseg::X' reads)."""
    import mmseg

    relative = osp.relpath(copy, osp.join(REPO_ROOT, 'configs', '_base_', 'mmseg'))
    original = osp.join(osp.dirname(mmseg.__file__), '.mim', 'configs', relative)
    assert osp.isfile(original), f'the installed mmseg has no {relative}'
    assert config_text(copy) == config_text(original)


def test_no_config_inherits_through_mmseg_scope():
    """'mmseg::' bases fail on onedl-mmengine: configs inherit mmseg's by path."""
    found = [
        path
        for path in glob(osp.join(REPO_ROOT, 'configs', '**', '*.py'), recursive=True)
        if re.search(r"^[^#]*['\"]mmseg::", open(path).read(), re.M)
    ]
    assert not found, f"'mmseg::' bases (use ./_base_/mmseg/...): {found}"


# packaging ----------------------------------------------------------------------------
def dry_run_installs(requirement: str) -> list:
    """The distributions ``pip install REQUIREMENT`` would install here (offline)."""
    report = json.loads(
        run(
            [
                sys.executable,
                '-m',
                'pip',
                'install',
                '--isolated',
                '--dry-run',
                '--no-index',
                '--no-build-isolation',
                '--quiet',
                '--report',
                '-',
                requirement,
            ],
            cwd=osp.dirname(REPO_ROOT),
        )
    )
    return sorted(item['metadata']['name'] for item in report['install'])


def test_installing_the_package_changes_no_openmmlab_package():
    """No extras, and this stack's own extras: everything is already there, so pip
    would install only the package itself (with --no-index it fails otherwise)."""
    assert dry_run_installs(REPO_ROOT) == ['crossformer_mm']
    extras = 'onedl-det,onedl-seg,onedl-pose,onedl-cls' if ONEDL else 'det,seg,pose,cls'
    assert dry_run_installs(f'{REPO_ROOT}[{extras}]') == ['crossformer_mm']


# mim ------------------------------------------------------------------------------------
def mim_scripts(package: str) -> str:
    """The training script ``mim train PACKAGE`` runs here (as mim finds it)."""
    result = python(f"""
        import os.path as osp, warnings
        warnings.simplefilter('ignore')
        from mim.utils import get_installed_path, module_full_name
        full = module_full_name({package!r})
        assert full, "mim: Can't determine a unique package given {package}"
        root = get_installed_path(full)
        for parts in (('.mim', 'tools'), ('tools', )):
            if osp.isfile(osp.join(root, *parts, 'train.py')):
                print('SCRIPT', osp.join(root, *parts, 'train.py'))
                break
    """)
    found = re.search(r'SCRIPT (\S+)', result.stdout)
    assert found, f'mim finds no train.py for {package}: {result.stdout}'
    return found.group(1)


@pytest.mark.parametrize('toolbox', ['mmdet', 'mmseg', 'mmpose', 'mmpretrain', 'crossformer_mm'])
def test_mim_finds_each_toolbox_training_script(toolbox):
    """The README's mim spelling of each toolbox on this stack finds a train.py:
    the toolbox's own (``<toolbox>/.mim/tools``) or this package's."""
    package = MIM_PACKAGE[toolbox]
    script = mim_scripts(package)
    owner = 'crossformer_mm' if package == 'crossformer_mm' else toolbox
    if owner == 'crossformer_mm':
        assert osp.samefile(script, osp.join(REPO_ROOT, 'tools', 'train.py')), script
    else:
        assert script.endswith(osp.join(owner, '.mim', 'tools', 'train.py')), script


def test_no_checkpoint_patch_where_mmengine_loads_safely():
    """Where mmengine's loaders refuse arbitrary globals and read runner files (a
    local loader and a load_url with weights_only=True and mmengine's allow-list, as
    a fixed mmengine would have), importing the package leaves them as they are."""
    result = python("""
        import numpy as np, torch
        import numpy._core.multiarray as multiarray  # numpy 2, and numpy 1.26's alias
        from mmengine.logging import HistoryBuffer
        from mmengine.runner import CheckpointLoader
        from mmengine.runner import checkpoint as mmengine_checkpoint
        ALLOWED = [HistoryBuffer, getattr, multiarray.scalar, multiarray._reconstruct,
                   np.ndarray, np.dtype, type(np.dtype(np.float64)), type(np.dtype(np.int64))]

        def local(filename, map_location=None):
            with torch.serialization.safe_globals(ALLOWED):
                return torch.load(filename, map_location=map_location, weights_only=True)

        def load_url(url, model_dir=None, map_location=None, progress=True, **kwargs):
            return torch.hub.load_state_dict_from_url(
                url, model_dir=model_dir, map_location=map_location, progress=progress,
                weights_only=True)

        CheckpointLoader.register_scheme(prefixes='', loader=local, force=True)
        mmengine_checkpoint.load_url = load_url
        from crossformer_mm import compat
        assert CheckpointLoader._schemes[''] is local
        assert mmengine_checkpoint.load_url is load_url
        print('PROBE', sorted(compat.stock_checkpoint_loading().items()))
        print('APPLIED', 'safe_checkpoint_loading' in compat.APPLIED)
    """)
    assert 'APPLIED False' in result.stdout, result.stdout
    assert (
        "PROBE [('local_any_global', 'refused'), ('local_runner_file', 'loaded'), "
        "('url_any_global', 'refused')]"
    ) in result.stdout, result.stdout


def test_mim_train_slurm_gets_no_unset_option_objects():
    """click 8.3.1-8.5.1 hand options left out as a ``Sentinel.UNSET`` object, and mim's
    slurm launch then fails on ``srun_args.split()``: the pinned click hands None."""
    result = python("""
        import importlib, sys
        from click.testing import CliRunner
        importlib.import_module('mim.commands.train')
        module = sys.modules['mim.commands.train']  # mim.commands.train is also a function
        seen = {}
        module.train = lambda **kwargs: (seen.update(kwargs), (True, 'ok'))[1]
        out = CliRunner().invoke(module.cli, ['mmpose', 'x.py', '--launcher', 'slurm',
                                              '--gpus', '2', '--gpus-per-node', '2',
                                              '--partition', 'p'])
        assert out.exit_code == 0, out.output
        print('OPTIONS', sorted((k, type(v).__name__) for k, v in seen.items()))
    """)
    assert "('srun_args', 'NoneType')" in result.stdout, result.stdout
