/* Prints t3d_finding_display_name / t3d_class_display_name of its arguments, one per line, in
 * the locale of the environment (T3D_LOCALEDIR, LANGUAGE): a helper of tests/test-i18n.sh. */
#ifdef HAVE_CONFIG_H
#include <config.h>
#endif
#include "core/model/displaynames.h"

#include <libintl.h>
#include <locale.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int main(int argc, char **argv)
{
  setlocale(LC_ALL, "");
  const char *dir = getenv("T3D_LOCALEDIR");
  if (dir && *dir) bindtextdomain(GETTEXT_PACKAGE, dir);
  bind_textdomain_codeset(GETTEXT_PACKAGE, "UTF-8");
  /* arguments: finding:NAME or structure:NAME */
  for (int i = 1; i < argc; i++) {
    if (strncmp(argv[i], "finding:", 8) == 0)
      printf("%s\n", t3d_finding_display_name(argv[i] + 8));
    else if (strncmp(argv[i], "structure:", 10) == 0)
      printf("%s\n", t3d_class_display_name(argv[i] + 10));
    else
      return fprintf(stderr, "usage: i18n-names finding:NAME|structure:NAME...\n"), 2;
  }
  return 0;
}
