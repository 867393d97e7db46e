# Preprocessing with geometry: resample, HU window, crop/pad, inverse label mapping
