"""tools/analysis/gpu_check.py in CPU smoke mode, as its own process: the fast
and reference LSDA paths agree (outputs and every gradient), autocast stays
finite, and the timing, FLOPs and matmul sections are filled."""

import json
import math
import sys

import pytest

from _helpers import run

pytestmark = pytest.mark.slow  # a subprocess of about 30 s

TOLERANCE = 1e-4
LDA_MODES = ('iclr', 'windowed')
UNPADDED, PADDED = (224, 224), (72, 100)  # the smoke sizes of the comparison


@pytest.fixture(scope='module')
def results(tmp_path_factory) -> dict:
    out = tmp_path_factory.mktemp('gpu_check') / 'gpu_check.json'
    output = run(
        [
            sys.executable,
            'tools/analysis/gpu_check.py',
            '--device',
            'cpu',
            '--smoke',
            '--out',
            str(out),
        ],
        timeout=180,
    )
    assert '| model | input | mode | precision |' in output, output[-3000:]
    with open(out) as f:
        return json.load(f)


def test_no_section_failed(results):
    sections = results['sections']
    assert {
        'build',
        'fast_vs_ref',
        'autocast',
        'sdpa_kernels',
        'matmul_peak',
        'flops',
        'timing',
    } <= set(sections)
    assert {name: s['error'] for name, s in sections.items() if 'error' in s} == {}
    assert results['env']['device'] == 'cpu' and results['settings']['smoke']
    assert results['markdown'].startswith('GPU check: cpu')


def test_fast_and_reference_paths_agree(results):
    section = results['sections']['fast_vs_ref']
    cases = {(c['lda_mode'], tuple(c['size'])): c for c in section['cases']}
    assert set(cases) == {(mode, size) for mode in LDA_MODES for size in (UNPADDED, PADDED)}
    for key, case in cases.items():
        assert case['output_max_rel_diff'] <= TOLERANCE, key
        assert case['grad_max_rel_diff'] <= TOLERANCE, (key, case['worst_grad_param'])
        assert case['params_compared'] > 200 and case['ok'], key
    # the switch really selects two computations: they differ by rounding
    assert max(c['output_max_rel_diff'] for c in cases.values()) > 0
    for mode in LDA_MODES:  # one size needs no padding in any LSDA, the other pads
        assert cases[(mode, UNPADDED)]['padded_lsda_calls'] == 0
        assert cases[(mode, PADDED)]['padded_lsda_calls'] > 0
    assert section['ok']


def test_autocast_is_finite(results):
    cases = results['sections']['autocast']['cases']
    assert {(c['precision'], c['lda_mode'], c['path']) for c in cases} == {
        (p, m, path) for p in ('fp16', 'bf16') for m in LDA_MODES for path in ('fast', 'ref')
    }
    for case in cases:
        if case['precision'] == 'fp16' and 'error' in case:
            continue  # an op without a CPU fp16 kernel is recorded, not hidden
        assert 'error' not in case, case
        assert case['finite_outputs'] and case['finite_grads'], case
        assert case['output_max_rel_diff_vs_fp32'] < 0.1, case  # autocast, not garbage
    assert all(c['ok'] for c in cases if c['precision'] == 'bf16')


def test_timing_flops_and_matmul_rates(results):
    sections = results['sections']
    peaks = sections['matmul_peak']['tflops']
    assert set(peaks) == {'bf16', 'fp32'} and all(v > 0 for v in peaks.values())
    gflops = sections['flops']['gflops_per_image']
    for model in ('CrossFormer-S iclr', 'CrossFormer-S windowed'):
        assert gflops[model]['64x96'] > 0.5  # about 1.3 and 1.7 GFLOPs (2 per multiply-add)
    rows = [r for r in sections['timing']['rows'] if r['model'].startswith('CrossFormer')]
    measured = {(r['model'], r['mode'], r['precision']) for r in rows if 'median_ms' in r}
    assert {
        (m, mode, p)
        for m in ('CrossFormer-S iclr', 'CrossFormer-S windowed')
        for mode in ('infer', 'train')
        for p in ('bf16', 'fp32')
    } <= measured
    for row in rows:
        assert row['median_ms'] > 0 and math.isfinite(row['tflops_per_s']), row
        assert row['tflops_per_s'] > 0 and row['peak_memory_mib'] is None  # CPU: no CUDA peak
    speedups = sections['timing']['speedup_fast_vs_ref']
    assert {s['mode'] for s in speedups} == {'infer', 'train'}
    assert sections['timing']['skipped'] == []
