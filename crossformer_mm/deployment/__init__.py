"""Deployment: ONNX export of backbones and whole models, ONNX Runtime inference
and agreement checks (:mod:`.onnx_export`; two-stage detectors as a chain of graphs:
:mod:`.two_stage`). Needs ``onnx``, ``onnxruntime`` and,
for the default (dynamo) exporter, ``onnxscript``; imported only by the
deployment tools and tests."""

from .onnx_export import (
    EXPORTERS,
    OPSET,
    Result,
    TensorOutputs,
    build_model,
    compare,
    export_onnx,
    find_backbone,
    flatten_outputs,
    is_two_stage,
    min_dynamic_size,
    non_standard_ops,
    ort_session,
    postprocess,
    preprocess,
    relative_errors,
    run_ort,
    small_map_limit,
    static_size_modules,
)
from .ort_network import run_network_in_onnx_runtime
from .two_stage import (
    InstancesResult,
    RoIStages,
    chain_errors,
    chain_paths,
    export_two_stage,
    two_stage_predict,
)

__all__ = [
    'EXPORTERS',
    'OPSET',
    'InstancesResult',
    'Result',
    'RoIStages',
    'TensorOutputs',
    'build_model',
    'chain_errors',
    'chain_paths',
    'compare',
    'export_onnx',
    'export_two_stage',
    'find_backbone',
    'flatten_outputs',
    'is_two_stage',
    'min_dynamic_size',
    'non_standard_ops',
    'ort_session',
    'postprocess',
    'preprocess',
    'relative_errors',
    'run_network_in_onnx_runtime',
    'run_ort',
    'small_map_limit',
    'static_size_modules',
    'two_stage_predict',
]
