"""``CrossFormer(pretrained=...)``: what mmseg's ``EncoderDecoder`` hands its backbone.

mmseg's ``EncoderDecoder(pretrained=PATH)`` sets ``backbone.pretrained = PATH``; like mmseg's
Swin, the backbone loads it as ``init_cfg=dict(type='Pretrained', checkpoint=PATH)`` (a local
path or a URL) and refuses both at once.
"""

import functools
import http.server
import threading

import pytest
import torch

from crossformer_mm.models.backbones.crossformer import CrossFormer

TINY = dict(embed_dims=32, depths=(1, 1, 1, 1), num_heads=(1, 2, 4, 8))


def _saved_backbone(path) -> dict:
    """A tiny backbone with non-default weights saved as ``{'state_dict': ...}`` at ``path``."""
    torch.manual_seed(3)
    source = CrossFormer(arch=TINY)
    with torch.no_grad():
        for param in source.parameters():
            param.add_(torch.randn_like(param))
    state = source.state_dict()
    torch.save({'state_dict': state}, str(path))
    return state


def _assert_loaded(model: CrossFormer, state: dict) -> None:
    loaded = model.state_dict()
    for key, value in state.items():
        assert torch.equal(loaded[key], value), key


def test_pretrained_path_loads_like_init_cfg(tmp_path):
    path = tmp_path / 'cf.pth'
    state = _saved_backbone(path)
    model = CrossFormer(arch=TINY, pretrained=str(path))
    assert model.init_cfg == dict(type='Pretrained', checkpoint=str(path))
    model.init_weights()
    _assert_loaded(model, state)


def test_pretrained_and_init_cfg_together_is_an_error(tmp_path):
    with pytest.raises(ValueError, match='either pretrained=.* or init_cfg=.*not both'):
        CrossFormer(
            arch=TINY, pretrained='a.pth', init_cfg=dict(type='Pretrained', checkpoint='b.pth')
        )


@pytest.mark.parametrize('value', [3, '', ['a.pth']])
def test_pretrained_of_the_wrong_type_is_an_error(value):
    with pytest.raises(TypeError, match='pretrained must be a checkpoint path or URL'):
        CrossFormer(arch=TINY, pretrained=value)


def test_mmseg_encoder_decoder_hands_pretrained_to_the_backbone(tmp_path):
    """The stock segmentor with a model-level ``pretrained``, built from a config as the runner
    builds it (mmseg sets ``backbone.pretrained`` on the backbone's ``ConfigDict``)."""
    from mmengine.config import Config
    from mmseg.registry import MODELS
    from mmseg.utils import register_all_modules

    register_all_modules()
    path = tmp_path / 'cf.pth'
    state = _saved_backbone(path)
    cfg = Config(
        dict(
            model=dict(
                type='EncoderDecoder',
                pretrained=str(path),
                backbone=dict(type='CrossFormer', arch=TINY, out_indices=(3,)),
                decode_head=dict(
                    type='FCNHead',
                    in_channels=256,
                    channels=16,
                    num_convs=1,
                    num_classes=3,
                    in_index=0,
                ),
            )
        )
    )
    segmentor = MODELS.build(cfg.model)
    segmentor.init_weights()
    _assert_loaded(segmentor.backbone, state)
    with torch.no_grad():
        logits = segmentor(torch.rand(1, 3, 64, 64), mode='tensor')
    assert logits.shape == (1, 3, 2, 2)


@pytest.fixture
def http_root(tmp_path, monkeypatch):
    """An http server on 127.0.0.1 serving ``tmp_path / 'www'``; torch.hub's cache in tmp."""
    root = tmp_path / 'www'
    root.mkdir()
    monkeypatch.setenv('TORCH_HOME', str(tmp_path / 'torch_home'))

    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args) -> None:
            pass

    server = http.server.ThreadingHTTPServer(
        ('127.0.0.1', 0), functools.partial(Quiet, directory=str(root))
    )
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield root, f'http://127.0.0.1:{server.server_address[1]}'
    server.shutdown()
    server.server_close()


def test_pretrained_url_loads(http_root):
    root, url = http_root
    state = _saved_backbone(root / 'cf.pth')
    model = CrossFormer(arch=TINY, pretrained=f'{url}/cf.pth')
    model.init_weights()
    _assert_loaded(model, state)
