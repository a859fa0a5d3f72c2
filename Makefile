# crossformer_mm: set-up, tests and the demo.
#   make demo     install (once), then the detection demo on a generated toy COCO set
#   make test     install (once), then the whole test suite (what CI runs)
#   make test-fast  the tests not marked slow (no trainings / subprocess tools): the edit-test loop
#   make install  (re-)check and install the pinned stack and this package
# STACK picks the stack (each target above works with either):
#   STACK=frozen (default)  Python 3.11, numpy 1, the original OpenMMLab packages, in $(PYTHON)
#   STACK=onedl             Python 3.12 (pyenv), numpy 2, the OneDL forks, in .venv-onedl/
#                           (tools/install_onedl.sh, pins in requirements/constraints-onedl.txt)
#   make test-stack  the tests that touch the OpenMMLab stack (STACK_TESTS): what CI runs on
#                    the maintained stack (make test-stack STACK=onedl); make test runs them all
# PYTEST_ARGS adds pytest arguments, e.g. make test PYTEST_ARGS=-x; STACK_MARKS (below) picks
# test-stack's marks, e.g. make test-stack STACK=onedl STACK_MARKS='not every_config and not slow'
STACK ?= frozen
PYTEST_ARGS ?=
ifeq ($(STACK),onedl)
CFMM_ONEDL_VENV ?= $(CURDIR)/.venv-onedl
PYTHON := $(CFMM_ONEDL_VENV)/bin/python
INSTALL_SCRIPT := tools/install_onedl.sh
CONSTRAINTS := requirements/constraints-onedl.txt
STAMP := build/.install-stamp-onedl
# the venv's mim, torchrun, ... for the tools and tests that run them by name
export PATH := $(CFMM_ONEDL_VENV)/bin:$(PATH)
export CFMM_ONEDL_VENV
else ifeq ($(STACK),frozen)
PYTHON ?= python
INSTALL_SCRIPT := tools/install.sh
CONSTRAINTS := requirements/constraints.txt
STAMP := build/.install-stamp
else
$(error STACK=$(STACK) is not a stack: use STACK=frozen (the default) or STACK=onedl)
endif
# prebuilt mmcv / onedl-mmcv wheels are taken from this folder when it exists (else built from source)
CFMM_WHEELHOUSE ?= $(wildcard ../shared/wheelhouse)
# Idle OpenMP threads yield instead of spinning: several training processes on a
# 2-core machine (tests, torchrun) otherwise slow each other down several-fold.
OMP_WAIT_POLICY ?= PASSIVE
export CFMM_WHEELHOUSE PYTHON OMP_WAIT_POLICY

# Safe loading, configs, mim (train, test, search), stock tools, launchers, inferencers,
# conversion, ONNX export with the stack's torch; not the backbone's own numerics
# (tests/models, the benchmark, the GPU check), which the frozen stack's run covers.
# One config per model family where a check repeats over configs (STACK_MARKS: the
# every_config ones, e.g. two training iterations of each further Mask R-CNN, are the whole
# suite's).
STACK_MARKS ?= not every_config
STACK_TESTS := tests/test_stacks.py tests/test_compat.py tests/test_registry.py tests/configs \
	tests/test_model_index.py tests/deployment \
	tests/utils tests/pose tests/classification tests/models/test_pretrained_arg.py \
	tests/tools/test_checkpoint_paths.py tests/tools/test_det_tools.py \
	tests/tools/test_seg_tools.py tests/tools/test_pose_tools.py tests/tools/test_slurm.py \
	tests/tools/test_multinode.py

.PHONY: install test test-fast test-stack demo

$(STAMP): setup.py $(CONSTRAINTS) $(INSTALL_SCRIPT)
	bash $(INSTALL_SCRIPT)
	@mkdir -p $(dir $@) && touch $@

install:
	bash $(INSTALL_SCRIPT)
	@mkdir -p $(dir $(STAMP)) && touch $(STAMP)

test: $(STAMP)
	$(PYTHON) -m pytest tests $(PYTEST_ARGS)

test-fast: $(STAMP)
	$(PYTHON) -m pytest tests -m "not slow" $(PYTEST_ARGS)

test-stack: $(STAMP)
	$(PYTHON) -m pytest $(STACK_TESTS) -m "$(STACK_MARKS)" $(PYTEST_ARGS)

# Toy COCO set -> small CrossFormer Mask R-CNN trained on CPU with the stock runner ->
# tools/test.py --eval bbox segm -> work_dirs/demo/predictions.png (about 10 min on 2 cores)
demo: $(STAMP)
	$(PYTHON) tools/demo/run_demo.py --work-dir work_dirs/demo --data-root data/toy_coco
