# Display names of findings and classes in the user's language (message catalog).
libt3d_la_SOURCES += core/model/displaynames.c core/model/displaynames.h

# tests/test-i18n.sh prints display names through this helper.
check_PROGRAMS += tests/i18n-names
tests_i18n_names_SOURCES = tests/i18n-names.c
tests_i18n_names_LDADD = libt3d.la $(LIBINTL)
