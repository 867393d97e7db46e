# Model file: safetensors read/write and t3d metadata (owned by the model-file work).
