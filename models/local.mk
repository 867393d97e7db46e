# Model files the build makes or ships.

# A freshly initialised t3d-tiny model (seeded random weights), made with the t3d just built;
# tests start from it and `t3d analyze` uses it by default until a trained model is bundled.
# Built, installed into pkgdatadir, not distributed (the tarball rebuilds it).
pkgdata_DATA += models/t3d-tiny-init.safetensors
CLEANFILES += models/t3d-tiny-init.safetensors
models/t3d-tiny-init.safetensors: t3d$(EXEEXT)
	$(AM_V_GEN)$(MKDIR_P) models && ./t3d$(EXEEXT) model-init --config t3d-tiny --seed 1 -o $@ >/dev/null

# The trained t3d-tiny (train/recipes/t3d-tiny.sh, README "The bundled model"), shipped in the
# source tree and installed next to the init model; `t3d analyze` uses it by default.
dist_pkgdata_DATA = models/t3d-tiny.safetensors
