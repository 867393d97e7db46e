# BERT text encoder, projections, zero-shot prompts, converters
libt3d_la_SOURCES += core/text.c core/text.h
