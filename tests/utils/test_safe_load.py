"""The safe checkpoint loader (crossformer_mm/utils/safe_load.py): what real
files need loads with ``weights_only=True``; a pickle that would run code is
refused with one error naming the file and the global unless the user trusts
the file; files that are no checkpoint and NaN / Inf weights give one clear
error each. (Every load path of the stock tools: tests/tools/test_checkpoint_paths.py.)"""

import builtins
import functools
import http.server
import os
import os.path as osp
import pickle
import subprocess
import sys
import textwrap
import threading
from collections import Counter, OrderedDict

import numpy as np
import pytest
import torch
from mmengine.logging import HistoryBuffer
from mmengine.runner import CheckpointLoader
from yacs.config import CfgNode

from crossformer_mm.models.backbones import CrossFormer
from crossformer_mm.utils import safe_load
from crossformer_mm.utils.checkpoint import load_backbone_checkpoint, load_checkpoint_file
from crossformer_mm.utils.safe_load import (
    InvalidCheckpointError,
    NonFiniteCheckpointError,
    TrustedCheckpointWarning,
    UnsafeCheckpointError,
)


def python(code: str, **env) -> subprocess.CompletedProcess:
    """Run ``code`` in a fresh interpreter (1 thread, ``env`` added)."""
    full_env = {
        k: v
        for k, v in os.environ.items()
        if k not in (safe_load.TRUSTED_ENV, safe_load.NONFINITE_ENV)
    }
    full_env.update(OMP_NUM_THREADS='1', **env)
    return subprocess.run(
        [sys.executable, '-c', textwrap.dedent(code)],
        env=full_env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        timeout=300,
    )


@pytest.fixture(autouse=True)
def no_opt_ins(monkeypatch):
    monkeypatch.delenv(safe_load.TRUSTED_ENV, raising=False)
    monkeypatch.delenv(safe_load.NONFINITE_ENV, raising=False)


# files that must load --------------------------------------------------------------
def mmengine_style(path: str) -> None:
    """What the stock runner writes (see test_checkpoint_paths.py for real ones):
    message hub, numpy scalars and arrays, optimizer and scheduler state."""
    buffer = HistoryBuffer()
    buffer.update(1.5)
    buffer.update(0.5)
    weight = torch.ones(2, requires_grad=True)
    torch.save(
        dict(
            meta=dict(
                epoch=1,
                iter=2,
                seed=1234,
                cfg='model = dict(...)',
                dataset_meta=dict(
                    classes=('a', 'b'),
                    dataset_keypoint_weights=np.ones(17, np.float32),
                    keypoint_colors=np.zeros((17, 3), np.uint8),
                ),
            ),
            state_dict=OrderedDict(w=torch.ones(2), num_batches_tracked=torch.tensor(3)),
            message_hub=dict(
                log_scalars=OrderedDict({'train/loss': buffer}),
                runtime_info=OrderedDict(eta=np.float64(12.5), iter=2),
                resumed_keys=OrderedDict(eta=False),
            ),
            optimizer=torch.optim.AdamW([weight]).state_dict(),
            param_schedulers=[dict(milestones=Counter({8: 1, 11: 1}), base_lrs=[1e-4])],
        ),
        path,
    )


def test_mmengine_runner_layout_loads_and_nothing_global_changes(tmp_path):
    path = str(tmp_path / 'epoch_1.pth')
    mmengine_style(path)
    before = set(map(str, torch.serialization.get_safe_globals()))
    for checkpoint in (safe_load.load_checkpoint(path), CheckpointLoader.load_checkpoint(path)):
        buffer = checkpoint['message_hub']['log_scalars']['train/loss']
        assert isinstance(buffer, HistoryBuffer)
        assert buffer.current() == 0.5 and buffer.mean() == 1.0 and buffer.statistics('max') == 1.5
        assert checkpoint['message_hub']['runtime_info']['eta'] == np.float64(12.5)
        meta = checkpoint['meta']['dataset_meta']
        assert meta['keypoint_colors'].dtype == np.uint8
        assert meta['dataset_keypoint_weights'].dtype == np.float32
        assert checkpoint['param_schedulers'][0]['milestones'] == Counter({8: 1, 11: 1})
    assert set(map(str, torch.serialization.get_safe_globals())) == before
    # the allow-list is one commented list: every entry says which real file needs it
    names = [name for _, name, why in safe_load.SAFE_GLOBALS if why]
    assert len(names) == len(safe_load.SAFE_GLOBALS) == len(set(names))


def released_classification_state(reference_dir) -> dict:
    """A state dict of the released CrossFormer-S classification layout
    (368 keys; the tensors themselves tiny: the layout is what matters here)."""
    state = OrderedDict()
    for line in open(osp.join(reference_dir, 'crossformer_s_keys.txt')):
        if line.startswith('#') or not line.strip():
            continue
        _, key, _, _ = line.split()
        dtype = torch.long if key.endswith('relative_position_index') else torch.float32
        state[key] = torch.ones(2, dtype=dtype)
    return state


def released_config() -> CfgNode:
    """The kind of yacs config the original main.py pickles next to ``model``."""
    cfg = CfgNode(new_allowed=True)
    cfg.MODEL = CfgNode(
        dict(
            TYPE='cross-scale',
            NAME='crossformer-s',
            DROP_PATH_RATE=0.2,
            CROS=dict(GROUP_SIZE=[7, 7, 7, 7], PATCH_SIZE=[4, 8, 16, 32]),
        )
    )
    cfg.TRAIN = CfgNode(dict(EPOCHS=300, BASE_LR=1e-3))
    cfg.AMP_OPT_LEVEL = 'O1'
    cfg.freeze()
    return cfg


@pytest.mark.parametrize('layout', ['raw', 'model', 'model_config'])
def test_released_classification_layouts(tmp_path, reference_dir, layout):
    state = released_classification_state(reference_dir)
    assert len(state) == 368
    checkpoint = {
        'raw': state,
        'model': {'model': state},
        'model_config': {
            'model': state,
            'config': released_config(),
            'epoch': 299,
            'max_accuracy': 82.5,
            'lr_scheduler': {'base_values': [1e-3]},
        },
    }[layout]
    path = str(tmp_path / 'crossformer-s.pth')
    torch.save(checkpoint, path)
    loaded = load_checkpoint_file(path)
    weights = loaded if layout == 'raw' else loaded['model']
    assert list(weights) == list(state)
    if layout == 'model_config':
        config = loaded['config']
        assert type(config) is CfgNode and type(config.MODEL.CROS) is CfgNode
        assert config.MODEL.NAME == 'crossformer-s' and config.MODEL.CROS.GROUP_SIZE == [7] * 4
        assert config.is_frozen() and config == released_config()


@pytest.mark.slow  # a fresh interpreter (subprocess)
def test_released_config_loads_without_yacs(tmp_path, reference_dir):
    path = str(tmp_path / 'crossformer-s.pth')
    torch.save(
        {'model': released_classification_state(reference_dir), 'config': released_config()}, path
    )
    result = python(f"""
        import sys
        sys.modules['yacs'] = None  # `import yacs` raises ImportError
        try:
            import yacs.config
        except ImportError:
            print('yacs blocked')
        from crossformer_mm.utils.checkpoint import load_checkpoint_file
        from crossformer_mm.utils.safe_load import CfgNodeDict
        ckpt = load_checkpoint_file({path!r})
        cfg = ckpt['config']
        assert type(cfg) is CfgNodeDict and type(cfg['MODEL']) is CfgNodeDict, type(cfg)
        print('loaded', len(ckpt['model']), cfg.MODEL.NAME, cfg.MODEL.CROS.GROUP_SIZE)
    """)
    assert result.returncode == 0, result.stdout
    assert 'yacs blocked' in result.stdout
    assert 'loaded 368 crossformer-s [7, 7, 7, 7]' in result.stdout


def higherhrnet_state(reference_dir, fp16_wrapper: bool) -> 'OrderedDict[str, torch.Tensor]':
    """The original HigherHRNet-W32 layout (1810 keys, int64 BN counters); the
    640 files: saved from ``nn.Sequential(tofp16(), model)``: ``1.`` + half."""
    state = OrderedDict()
    for line in open(osp.join(reference_dir, 'higherhrnet_w32_keys.txt')):
        if line.startswith('#') or not line.strip():
            continue
        key, _, dtype, _ = line.rstrip('\n').split('\t')
        dtype = getattr(torch, dtype)
        if fp16_wrapper and dtype.is_floating_point:
            dtype = torch.float16
        state[('1.' if fp16_wrapper else '') + key] = torch.zeros(2, dtype=dtype)
    return state


@pytest.mark.parametrize('fp16_wrapper', [False, True], ids=['w32_512', 'w32_640_fp16'])
@pytest.mark.parametrize('zip_format', [True, False], ids=['zip', 'pre-1.6'])
def test_higherhrnet_original_layouts(tmp_path, reference_dir, fp16_wrapper, zip_format):
    state = higherhrnet_state(reference_dir, fp16_wrapper)
    assert len(state) == 1810
    path = str(tmp_path / 'pose_higher_hrnet_w32.pth')
    torch.save(state, path, _use_new_zipfile_serialization=zip_format)
    loaded = load_checkpoint_file(path)
    assert type(loaded) is OrderedDict and list(loaded) == list(state)
    assert loaded['1.conv1.weight' if fp16_wrapper else 'conv1.weight'].dtype == (
        torch.float16 if fp16_wrapper else torch.float32
    )


# payloads --------------------------------------------------------------------------
class SystemPayload:
    """Unpickling calls ``os.system('touch MARKER')``."""

    def __init__(self, marker: str):
        self.marker = marker

    def __reduce__(self):
        return os.system, (f'touch {self.marker}',)


class OpenPayload:
    """Unpickling calls ``builtins.open(MARKER, 'w')`` (pickled as ``io.open``)."""

    def __init__(self, marker: str):
        self.marker = marker

    def __reduce__(self):
        return builtins.open, (self.marker, 'w')


class GetattrPayload:
    """Unpickling calls ``getattr(HistoryBuffer, 'register_statistics')``: the one
    global that the allow-list maps to a restricted getattr."""

    def __reduce__(self):
        return getattr, (HistoryBuffer, 'register_statistics')


def payload_file(path: str, payload, zip_format: bool = True) -> str:
    torch.save(
        {'state_dict': {'w': torch.ones(2)}, 'meta': {'note': payload}},
        path,
        _use_new_zipfile_serialization=zip_format,
    )
    return path


@pytest.mark.parametrize(
    'kind, global_name',
    [
        ('system', 'posix.system'),
        ('open', 'io.open'),
        ('system_pre-1.6', 'posix.system'),
        ('getattr', 'getattr(HistoryBuffer'),
    ],
)
def test_payload_is_refused_naming_file_global_and_opt_in(tmp_path, kind, global_name):
    marker = str(tmp_path / 'MARKER')
    payload = {
        'system': SystemPayload(marker),
        'system_pre-1.6': SystemPayload(marker),
        'open': OpenPayload(marker),
        'getattr': GetattrPayload(),
    }[kind]
    path = payload_file(str(tmp_path / 'evil.pth'), payload, zip_format=kind != 'system_pre-1.6')
    loaders = [safe_load.load_checkpoint, load_checkpoint_file, CheckpointLoader.load_checkpoint]
    for load in loaders:
        with pytest.raises(UnsafeCheckpointError) as error:
            load(path)
        message = str(error.value)
        assert path in message and global_name in message, message
        assert f'{safe_load.TRUSTED_ENV}={path}' in message
    model = CrossFormer(arch='small', init_cfg=dict(type='Pretrained', checkpoint=path))
    with pytest.raises(UnsafeCheckpointError):
        model.init_weights()
    assert not osp.exists(marker)
    assert isinstance(error.value, pickle.UnpicklingError)


@pytest.mark.slow  # a fresh interpreter (subprocess)
def test_trusted_payload_loads_with_a_warning_naming_the_file(tmp_path):
    """In a fresh interpreter (the opted-in file runs its harmless payload):
    each way of trusting the file; another file stays refused."""
    marker = str(tmp_path / 'MARKER')
    (tmp_path / 'trusted').mkdir()
    path = payload_file(str(tmp_path / 'trusted' / 'evil.pth'), SystemPayload(marker))
    other = payload_file(str(tmp_path / 'other.pth'), SystemPayload(marker))
    result = python(f"""
        import os, warnings
        from crossformer_mm.utils.safe_load import (TRUSTED_ENV, UnsafeCheckpointError,
                                                    load_checkpoint)
        warnings.simplefilter('always')
        for trusted in [{path!r}, {str(tmp_path / 'trusted')!r}, '/nonexistent:' + {path!r}, '1']:
            os.environ[TRUSTED_ENV] = trusted
            if trusted != '1':
                try:
                    load_checkpoint({other!r})
                except UnsafeCheckpointError:
                    print('other refused')
            checkpoint = load_checkpoint({path!r})
            print('loaded', checkpoint['meta']['note'], 'marker', os.path.exists({marker!r}))
            os.remove({marker!r})
    """)
    assert result.returncode == 0, result.stdout
    assert result.stdout.count('other refused') == 3, result.stdout
    assert result.stdout.count('loaded 0 marker True') == 4, result.stdout
    warning = f'TrustedCheckpointWarning: loading checkpoint {path} with weights_only=False'
    assert result.stdout.count(warning) == 4, result.stdout
    assert 'posix.system' in result.stdout
    # in this process (no opt-in): refused
    with pytest.raises(UnsafeCheckpointError):
        safe_load.load_checkpoint(path)
    assert not osp.exists(marker)


def test_trusted_file_that_needs_no_opt_in_does_not_warn(tmp_path, monkeypatch, recwarn):
    path = str(tmp_path / 'epoch_1.pth')
    mmengine_style(path)
    monkeypatch.setenv(safe_load.TRUSTED_ENV, path)
    safe_load.load_checkpoint(path)
    assert not [w for w in recwarn if issubclass(w.category, TrustedCheckpointWarning)]


# files that are no checkpoint ------------------------------------------------------
def write_bad_file(path: str, kind: str, tmp_path) -> None:
    good = str(tmp_path / 'good.pth')
    torch.save({'state_dict': {'w': torch.randn(1000)}}, good)
    if kind == 'empty':
        open(path, 'wb').close()
    elif kind == 'truncated':
        data = open(good, 'rb').read()
        open(path, 'wb').write(data[: len(data) // 2])
    elif kind == 'truncated_pre-1.6':
        torch.save({'w': torch.randn(1000)}, good, _use_new_zipfile_serialization=False)
        data = open(good, 'rb').read()
        open(path, 'wb').write(data[: len(data) // 2])
    elif kind == 'text':
        open(path, 'w').write('model weights are at https://example.org/crossformer-s.pth\n')
    elif kind == 'html':
        open(path, 'w').write(
            '<!DOCTYPE html>\n<html><head><title>Sign in - Google Accounts'
            '</title></head><body>...</body></html>\n'
        )
    elif kind == 'npy':
        with open(path, 'wb') as f:
            np.save(f, np.zeros((3, 4), np.float32))
    elif kind == 'random':
        open(path, 'wb').write(bytes(np.random.RandomState(0).randint(0, 256, 4096, np.uint8)))
    elif kind == 'lfs':
        open(path, 'w').write('version https://git-lfs.github.com/spec/v1\noid sha256:abc\n')
    elif kind == 'pickle':
        with open(path, 'wb') as f:
            pickle.dump({'w': [1.0]}, f, protocol=4)
    elif kind == 'zeros':
        open(path, 'wb').write(bytes(8192))


BAD_FILES = {
    'empty': 'is empty (0 bytes): the download or copy probably failed',
    'truncated': 'is truncated (zip archive incomplete',
    'truncated_pre-1.6': 'is truncated or corrupted (a pre-1.6 torch.save file',
    'text': "is a text file (59 bytes, starting 'model weights are at",
    'html': "is an HTML page (title: 'Sign in - Google Accounts'), not a checkpoint",
    'npy': 'is a NumPy .npy file',
    'random': 'is not a PyTorch checkpoint',
    'lfs': 'is a Git LFS pointer',
    'pickle': 'is a plain Python pickle',
    'zeros': 'starts with 4096 zero bytes',
}


@pytest.mark.parametrize('kind', list(BAD_FILES))
def test_unusable_file_gives_one_error_naming_it(tmp_path, kind):
    path = str(tmp_path / f'{kind}.pth')
    write_bad_file(path, kind, tmp_path)
    for load in (safe_load.load_checkpoint, load_checkpoint_file, CheckpointLoader.load_checkpoint):
        with pytest.raises(InvalidCheckpointError) as error:
            load(path)
        message = str(error.value)
        assert message.startswith(f'checkpoint file {path} {BAD_FILES[kind]}'), message
        # one error: no chained "During handling of the above exception" traceback
        assert error.value.__cause__ is None
        assert error.value.__context__ is None or error.value.__suppress_context__


def test_missing_file_and_folder(tmp_path):
    with pytest.raises(FileNotFoundError, match='nope.pth does not exist'):
        CheckpointLoader.load_checkpoint(str(tmp_path / 'nope.pth'))
    with pytest.raises(InvalidCheckpointError, match='is a folder'):
        safe_load.load_checkpoint(str(tmp_path))


def test_map_location_errors_are_not_reported_as_damage(tmp_path):
    path = str(tmp_path / 'w.pth')
    torch.save({'w': torch.ones(1)}, path)
    with pytest.raises(RuntimeError, match='no_such_device') as error:
        safe_load.load_checkpoint(path, map_location='no_such_device')
    assert not isinstance(error.value, InvalidCheckpointError)


# NaN / Inf -----------------------------------------------------------------------------
def test_nonfinite_weights_are_an_error_naming_the_keys(tmp_path, monkeypatch):
    state = OrderedDict((f'layer{i}.weight', torch.ones(4)) for i in range(8))
    for i in range(7):
        state[f'layer{i}.weight'][i % 4] = float('nan') if i % 2 else float('inf')
    state['num_batches_tracked'] = torch.tensor(5)
    optimizer = {'state': {0: {'exp_avg': torch.full((2,), float('nan'))}}, 'param_groups': []}
    path = str(tmp_path / 'diverged.pth')
    torch.save({'state_dict': state, 'optimizer': optimizer}, path)
    for load in (safe_load.load_checkpoint, load_checkpoint_file, CheckpointLoader.load_checkpoint):
        with pytest.raises(NonFiniteCheckpointError) as error:
            load(path)
        message = str(error.value)
        assert f'checkpoint {path}: 7 weight tensors hold NaN or Inf' in message
        assert 'layer0.weight (1 values), layer1.weight (1 values)' in message
        assert 'layer4.weight' in message and 'layer5.weight' not in message
        assert 'and 2 more' in message and safe_load.NONFINITE_ENV in message
    assert load_checkpoint_file(path, allow_nonfinite=True)['state_dict']['layer6.weight'][
        2
    ] == float('inf')
    monkeypatch.setenv(safe_load.NONFINITE_ENV, '1')
    CheckpointLoader.load_checkpoint(path)
    # only the weights are checked: NaN in the optimizer state loads
    monkeypatch.delenv(safe_load.NONFINITE_ENV)
    torch.save({'state_dict': {'w': torch.ones(2)}, 'optimizer': optimizer}, path)
    CheckpointLoader.load_checkpoint(path)


def test_nonfinite_backbone_checkpoint_and_init_cfg_opt_out(tmp_path):
    model = CrossFormer(arch=dict(embed_dims=32, depths=(1, 1, 1, 1), num_heads=(1, 2, 4, 8)))
    state = model.state_dict()
    state['layers.0.blocks.0.attn.qkv.weight'][0, 0] = float('nan')
    path = str(tmp_path / 'nan_backbone.pth')
    torch.save({'model': state}, path)
    arch = dict(embed_dims=32, depths=(1, 1, 1, 1), num_heads=(1, 2, 4, 8))
    with pytest.raises(NonFiniteCheckpointError, match=r'layers\.0\.blocks\.0\.attn\.qkv\.weight'):
        CrossFormer(arch=arch, init_cfg=dict(type='Pretrained', checkpoint=path)).init_weights()
    relaxed = CrossFormer(
        arch=arch, init_cfg=dict(type='Pretrained', checkpoint=path, allow_nonfinite=True)
    )
    relaxed.init_weights()
    assert torch.isnan(relaxed.layers[0].blocks[0].attn.qkv.weight[0, 0])
    load_backbone_checkpoint(CrossFormer(arch=arch), path, allow_nonfinite=True)


# URLs ------------------------------------------------------------------------------------
@pytest.fixture
def http_root(tmp_path, monkeypatch):
    """An http server on 127.0.0.1 serving ``tmp_path / 'www'``; torch.hub's cache in tmp."""
    root = tmp_path / 'www'
    root.mkdir()
    monkeypatch.setenv('TORCH_HOME', str(tmp_path / 'torch_home'))

    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args) -> None:
            pass

    handler = functools.partial(Quiet, directory=str(root))
    server = http.server.ThreadingHTTPServer(('127.0.0.1', 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield root, f'http://127.0.0.1:{server.server_address[1]}'
    server.shutdown()
    server.server_close()


def test_urls_go_through_the_safe_loader(http_root, tmp_path):
    root, url = http_root
    marker = str(tmp_path / 'MARKER')
    payload_file(str(root / 'evil.pth'), SystemPayload(marker))
    mmengine_style(str(root / 'good.pth'))
    (root / 'page.pth').write_text('<html><title>404</title></html>')
    cache = tmp_path / 'torch_home' / 'hub' / 'checkpoints'
    with pytest.raises(UnsafeCheckpointError, match=f'{cache}/evil.pth needs .*posix.system'):
        load_checkpoint_file(f'{url}/evil.pth')
    assert not osp.exists(marker)
    # mmengine's own http loader (load_from=URL, tools/test.py URL, init_cfg URLs)
    from mmengine.runner import CheckpointLoader

    with pytest.raises(UnsafeCheckpointError, match='posix.system'):
        CheckpointLoader.load_checkpoint(f'{url}/evil.pth')
    assert not osp.exists(marker)
    good = load_checkpoint_file(f'{url}/good.pth')
    assert good['message_hub']['log_scalars']['train/loss'].current() == 0.5
    with pytest.raises(InvalidCheckpointError, match=f'{cache}/page.pth is an HTML page'):
        safe_load.load_url(f'{url}/page.pth')
