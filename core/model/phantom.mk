# Synthetic CT phantoms (core/model/phantom): volumes with known anatomy, findings and labels,
# written as DICOM by `t3d phantom-write`; test data and training data, never patient data.
libt3d_la_SOURCES += core/model/phantom.c core/model/phantom.h
