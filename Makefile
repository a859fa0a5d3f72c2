# crossformer_mm: set-up, tests and the demo.
#   make demo     install (once), then the detection demo on a generated toy COCO set
#   make test     install (once), then the test suite
#   make install  (re-)check and install the pinned stack and this package
PYTHON ?= python
# mmcv 2.1.0 wheels are taken from this folder when it exists (else mmcv is built from source)
CFMM_WHEELHOUSE ?= $(wildcard ../shared/wheelhouse)
export CFMM_WHEELHOUSE PYTHON

STAMP := build/.install-stamp

.PHONY: install test demo

$(STAMP): setup.py requirements/constraints.txt tools/install.sh
	bash tools/install.sh
	@mkdir -p $(dir $@) && touch $@

install:
	bash tools/install.sh
	@mkdir -p $(dir $(STAMP)) && touch $(STAMP)

test: $(STAMP)
	$(PYTHON) -m pytest tests
