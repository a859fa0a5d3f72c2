# crossformer_mm: set-up, tests and the demo.
#   make demo     install (once), then the detection demo on a generated toy COCO set
#   make test     install (once), then the whole test suite (what CI runs)
#   make test-fast  the tests not marked slow (no trainings / subprocess tools): the edit-test loop
#   make install  (re-)check and install the pinned stack and this package
PYTHON ?= python
# mmcv 2.1.0 wheels are taken from this folder when it exists (else mmcv is built from source)
CFMM_WHEELHOUSE ?= $(wildcard ../shared/wheelhouse)
# Idle OpenMP threads yield instead of spinning: several training processes on a
# 2-core machine (tests, torchrun) otherwise slow each other down several-fold.
OMP_WAIT_POLICY ?= PASSIVE
export CFMM_WHEELHOUSE PYTHON OMP_WAIT_POLICY

STAMP := build/.install-stamp

.PHONY: install test test-fast demo

$(STAMP): setup.py requirements/constraints.txt tools/install.sh
	bash tools/install.sh
	@mkdir -p $(dir $@) && touch $@

install:
	bash tools/install.sh
	@mkdir -p $(dir $(STAMP)) && touch $(STAMP)

test: $(STAMP)
	$(PYTHON) -m pytest tests

test-fast: $(STAMP)
	$(PYTHON) -m pytest tests -m "not slow"

# Toy COCO set -> small CrossFormer Mask R-CNN trained on CPU with the stock runner ->
# tools/test.py --eval bbox segm -> work_dirs/demo/predictions.png (about 10 min on 2 cores)
demo: $(STAMP)
	$(PYTHON) tools/demo/run_demo.py --work-dir work_dirs/demo --data-root data/toy_coco
