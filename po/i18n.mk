# Translations: `make update-po` (template from the sources, msgmerge into every po/LL.po) and
# `make update-gmo` from the top build folder; po/ itself is gettext's own sub-make.
update-po update-gmo:
	cd po && $(MAKE) $(AM_MAKEFLAGS) $@
.PHONY: update-po update-gmo

# Every catalog in po/LINGUAS compiles and translates every string the sources mark.
dist_check_SCRIPTS += tests/test-po.sh
TESTS += tests/test-po.sh
EXTRA_DIST += po/i18n.mk
