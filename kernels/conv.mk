# CPU 3-D convolution and transposed convolution
