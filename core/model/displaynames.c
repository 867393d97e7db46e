/* Display names of findings and classes from the message catalog (see displaynames.h): the
 * names t3d ships (default model, phantom generator), marked for xgettext with their context.
 * Not a registry of valid names: model files may carry others, shown untranslated. */
#ifdef HAVE_CONFIG_H
#include <config.h>
#endif
#include "core/model/displaynames.h"

#include <libintl.h>
#include <string.h>

#define NC_(ctx, s) (s)

/* The findings and classes of the default model and the phantom generator. */
static const char *const finding_names[] = {
  NC_("finding", "pulmonary nodule"), NC_("finding", "pleural effusion"), NC_("finding", "pneumothorax"),
  NC_("finding", "consolidation"),    NC_("finding", "emphysema"),        NC_("finding", "cardiomegaly"),
  NC_("finding", "liver lesion"),     NC_("finding", "renal cyst"),       NC_("finding", "splenomegaly"),
  NC_("finding", "ascites"),          NC_("finding", "lymphadenopathy"),
};
static const char *const class_names[] = {
  NC_("structure", "background"), NC_("structure", "body"),   NC_("structure", "lung"),
  NC_("structure", "heart"),      NC_("structure", "liver"),  NC_("structure", "spleen"),
  NC_("structure", "kidney"),     NC_("structure", "bone"),   NC_("structure", "lesion"),
};

#define COUNT(a) (sizeof(a) / sizeof((a)[0]))

/* pgettext without glib: the catalog key is "context\004msgid". */
static const char *lookup(const char *ctx, const char *name)
{
  char key[256];
  size_t lc = strlen(ctx), ln = strlen(name);
  if (lc + 1 + ln + 1 > sizeof key) return name;
  memcpy(key, ctx, lc);
  key[lc] = '\004';
  memcpy(key + lc + 1, name, ln + 1);
  const char *t = dgettext(GETTEXT_PACKAGE, key);
  return t == key || strcmp(t, key) == 0 ? name : t;
}

/* Only the listed names are looked up: a model's own names stay as they are. */
static const char *display(const char *const *names, size_t n, const char *ctx, const char *name)
{
  for (size_t i = 0; name && i < n; i++)
    if (strcmp(names[i], name) == 0) return lookup(ctx, name);
  return name;
}

const char *t3d_finding_display_name(const char *name)
{
  return display(finding_names, COUNT(finding_names), "finding", name);
}

const char *t3d_class_display_name(const char *name)
{
  return display(class_names, COUNT(class_names), "structure", name);
}
