# Compute backends: the interface, the CPU backend (reference + fast paths), CUDA when configured.
libt3d_la_SOURCES += \
	kernels/backend.h kernels/backend.c
