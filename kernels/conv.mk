# CPU 3-D convolution and transposed convolution
# TEMPORARY (cpuops branch): lists the placeholder kernels/cpu/conv.c so the CPU backend links;
# at merge take the conv helper's version of this file and of kernels/cpu/conv.c.
libt3d_la_SOURCES += kernels/cpu/conv.c
