# Training support (issue 7): `t3d preprocess` writes the training cache with the engine's own
# preprocessing; the Python package train/ (PyTorch) trains and exports t3d model files.
t3d_SOURCES += cli/cmd_preprocess.c
