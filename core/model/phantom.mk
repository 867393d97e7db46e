# Synthetic CT phantoms (core/model/phantom*): the tiny test phantom (`t3d phantom-write`) and
# chest-abdomen cases with findings, labels and reports (`t3d phantom`); test data and training
# data, never patient data.
libt3d_la_SOURCES += core/model/phantom.c core/model/phantom.h core/model/phantom_internal.h \
	core/model/phantom_case.c core/model/phantom_case_internal.h core/model/phantom_sample.c \
	core/model/phantom_report.c
t3d_SOURCES += cli/cmd_phantom.c
