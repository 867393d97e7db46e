# Training support (issue 7): `t3d preprocess` writes the training cache with the engine's own
# preprocessing; the Python package train/ (PyTorch) trains and exports t3d model files.
t3d_SOURCES += cli/cmd_preprocess.c

# Trainer tests (tests/train-common.sh sets up a tiny phantom set and cache for each).
dist_check_SCRIPTS += tests/test-train-inputs.sh tests/test-train-resume.sh tests/test-train-ddp.sh \
	tests/test-train-overfit.sh tests/test-train-dataparts.sh tests/test-gpu-train.sh
EXTRA_DIST += tests/train-common.sh train/__init__.py train/model.py train/data.py train/losses.py \
	train/train.py train/export.py train/checks.py train/testdata.py train/torchrun.py \
	train/dataparts.py train/evaluate.py train/probe.py train/overlay.py train/ceiling.py \
	train/prompts.py train/recipes/t3d-tiny.sh train/recipes/t3d-tiny.json train/recipes/findings.json \
	train/recipes/prompt-candidates.json
TESTS += tests/test-train-inputs.sh tests/test-train-resume.sh tests/test-train-ddp.sh \
	tests/test-train-overfit.sh tests/test-train-dataparts.sh tests/test-gpu-train.sh
# tools/gpu-train.sh: the bundled model's training on a GPU machine in one call (prepare here, run there)
EXTRA_DIST += tools/gpu-train.sh
