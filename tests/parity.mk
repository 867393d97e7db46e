# PyTorch parity tests and bench-ops
