# CPU backend: op table, checked op wrappers, non-convolution ops
