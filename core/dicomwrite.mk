# DICOM CT series writing and NIfTI export
