# DICOM reading through the DCMTK shim
