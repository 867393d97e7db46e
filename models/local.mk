# Model files the build makes or ships.
noinst_DATA =

# A freshly initialised t3d-tiny model (seeded random weights), made with the t3d just built;
# tests and `t3d train` start from it. Build output only: not installed, not distributed.
noinst_DATA += models/t3d-tiny-init.safetensors
CLEANFILES += models/t3d-tiny-init.safetensors
models/t3d-tiny-init.safetensors: t3d$(EXEEXT)
	$(AM_V_GEN)$(MKDIR_P) models && ./t3d$(EXEEXT) model-init --config t3d-tiny --seed 1 -o $@ >/dev/null
