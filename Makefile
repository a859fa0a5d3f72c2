# crossformer_mm: set-up, tests and the demo.
#   make demo     install (once), then the detection demo on a generated toy COCO set
#   make test     install (once), then the whole test suite (what CI runs)
#   make test-fast  the tests not marked slow (no trainings / subprocess tools): the edit-test loop
#   make install  (re-)check and install the pinned stack and this package
# STACK picks the stack (each target above works with either):
#   STACK=frozen (default)  Python 3.11, numpy 1, the original OpenMMLab packages, in $(PYTHON)
#   STACK=onedl             Python 3.12 (pyenv), numpy 2, the OneDL forks, in .venv-onedl/
#                           (tools/install_onedl.sh, pins in requirements/constraints-onedl.txt)
# PYTEST_ARGS selects tests, e.g. make test STACK=onedl PYTEST_ARGS='-m stack' (what CI runs there)
STACK ?= frozen
PYTEST_ARGS ?=
ifeq ($(STACK),onedl)
CFMM_ONEDL_VENV ?= $(CURDIR)/.venv-onedl
PYTHON := $(CFMM_ONEDL_VENV)/bin/python
INSTALL_SCRIPT := tools/install_onedl.sh
CONSTRAINTS := requirements/constraints-onedl.txt
STAMP := build/.install-stamp-onedl
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

.PHONY: install test test-fast demo

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

# Toy COCO set -> small CrossFormer Mask R-CNN trained on CPU with the stock runner ->
# tools/test.py --eval bbox segm -> work_dirs/demo/predictions.png (about 10 min on 2 cores)
demo: $(STAMP)
	$(PYTHON) tools/demo/run_demo.py --work-dir work_dirs/demo --data-root data/toy_coco
