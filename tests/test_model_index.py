"""The OpenMMLab model index (``model-index.yml`` and ``configs/*/metafile.yml``): every config
is listed, every listed config exists, and ``mim search crossformer_mm`` lists them.

mim reads ``<installed package>/.mim/model-index.yml``: in the repository (editable install)
that is the link ``crossformer_mm/.mim/model-index.yml`` -> ``model-index.yml``; its
``Import`` paths and every ``Config`` are relative to the folder that holds it, where
``configs`` is the repository's (``crossformer_mm/.mim/configs`` links to it).
"""

import glob
import json
import os.path as osp
import subprocess
import sys

import pytest
import yaml

from _helpers import REPO_ROOT

INDEX = osp.join(REPO_ROOT, 'model-index.yml')
MIM_INDEX = osp.join(REPO_ROOT, 'crossformer_mm', '.mim', 'model-index.yml')
TASKS = {
    'Image Classification',
    'Object Detection',
    'Instance Segmentation',
    'Semantic Segmentation',
    'Body 2D Keypoint',
}


#: configs/ folders without model configs of their own: bases, the toy demo, mmdeploy's
#: deployment configs (backend settings for a model config).
NOT_MODELS = ('_base_', 'demo', 'deploy')


def config_files() -> set:
    """Every model config of configs/, relative to the repository."""
    found = set()
    for path in glob.glob(osp.join(REPO_ROOT, 'configs', '**', '*.py'), recursive=True):
        rel = osp.relpath(path, REPO_ROOT)
        if rel.split(osp.sep)[1] not in NOT_MODELS:
            found.add(rel)
    return found


def metafiles() -> dict:
    index = yaml.safe_load(open(INDEX))
    return {path: yaml.safe_load(open(osp.join(REPO_ROOT, path))) for path in index['Import']}


def models() -> list:
    return [model for meta in metafiles().values() for model in meta['Models']]


def test_mim_finds_the_index_in_the_package():
    assert osp.realpath(MIM_INDEX) == osp.realpath(INDEX)
    for path in yaml.safe_load(open(MIM_INDEX))['Import']:
        assert osp.isfile(osp.join(osp.dirname(MIM_INDEX), path)), path


def test_every_config_is_listed_and_every_listed_config_exists():
    listed = [model['Config'] for model in models()]
    assert len(listed) == len(set(listed)), 'a config is listed twice'
    missing_files = [path for path in listed if not osp.isfile(osp.join(REPO_ROOT, path))]
    assert not missing_files, f'listed, but no such config: {missing_files}'
    unlisted = config_files() - set(listed)
    assert not unlisted, f'configs missing from configs/*/metafile.yml: {sorted(unlisted)}'


def test_entries_follow_the_openmmlab_format():
    names = set()
    for path, meta in metafiles().items():
        collections = {c['Name']: c for c in meta['Collections']}
        for collection in collections.values():
            assert collection['Paper']['URL'].startswith('https://arxiv.org/abs/'), collection
            assert collection['Paper']['Title'], collection
        for model in meta['Models']:
            assert model['Name'] == osp.basename(model['Config'])[:-3], model['Name']
            assert model['Name'] not in names, model['Name']
            names.add(model['Name'])
            assert model['In Collection'] in collections, (path, model['Name'])
            assert model['Metadata']['Training Data'], model['Name']
            for key in ('Parameters', 'FLOPs'):
                value = model['Metadata'].get(key)
                assert value is None or (isinstance(value, int) and value > 0), (model, key)
            for result in model.get('Results', []):
                assert result['Task'] in TASKS, result
                assert result['Dataset'] and result['Metrics'], result
                assert all(isinstance(v, (int, float)) for v in result['Metrics'].values())
            weights = model.get('Weights')
            assert weights is None or weights.startswith('https://'), weights


def test_the_index_loads_as_mim_loads_it():
    from modelindex.load_model_index import load

    index = load(MIM_INDEX)
    assert {m.name for m in index.models} == {m['Name'] for m in models()}
    for model in index.models:
        assert model.in_collection is not None, model.name


@pytest.mark.slow
def test_mim_search_lists_every_config(tmp_path):
    mim = [sys.executable, '-m', 'mim']
    out = tmp_path / 'search.json'
    result = subprocess.run(
        [*mim, 'search', 'crossformer_mm', '--json', str(out)],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=str(tmp_path),
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    configs = json.load(open(out))['config']  # field -> {model name: value}
    names = {m['Name'] for m in models()}
    assert set(configs) == names, set(configs) ^ names
    assert set(configs.values()) == config_files()
    # the plain command prints every model (what a user sees)
    result = subprocess.run(
        [*mim, 'search', 'crossformer_mm', '--display-width', '200'],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=str(tmp_path),
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    for model in models():
        assert f'config id: {model["Name"]}\n' in result.stdout, model['Name']
