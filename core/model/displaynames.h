/* Names of findings and segmentation classes as shown to the user: the translation from the t3d
 * message catalog (context "finding" or "structure") when it has one, else the name itself.
 * Display only: model files, JSON output, the index and report matching keep the English names. */
#ifndef T3D_DISPLAYNAMES_H
#define T3D_DISPLAYNAMES_H

#ifdef __cplusplus
extern "C" {
#endif

/* `name` as the model file spells it ("pleural effusion"); returns a static catalog string, or
 * `name` itself when it is not one of the names t3d ships or has no translation. NULL -> NULL. */
const char *t3d_finding_display_name(const char *name);
/* A segmentation class ("liver", "lesion"), same rules. */
const char *t3d_class_display_name(const char *name);

#ifdef __cplusplus
}
#endif
#endif
