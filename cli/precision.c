/* --precision auto|fp32|bf16 of the commands that run the model: parsing, the help line and the
 * description of what runs ("bf16 (avx512bf16)"). Not the choice itself: the CPU backend
 * resolves auto (kernels/backend.h). */
#include "config.h"

#include <libintl.h>
#include <stdio.h>

#include "cli/commands.h"
#include "kernels/backend.h"

#define _(s) gettext(s)

int t3d_cli_parse_precision(const char *cmd, const char *arg, t3d_precision *out)
{
  if (t3d_precision_from_name(arg, out)) return 0;
  fprintf(stderr, _("t3d %s: --precision wants auto, fp32 or bf16, not '%s'\n"), cmd, arg);
  return 2;
}

void t3d_cli_precision_help(FILE *to)
{
  fputs(_("  --precision P   convolutions and matrix products in fp32, bf16 (fp32 accumulation) or auto:\n"
          "                  bf16 where the CPU runs it faster than fp32 (AMX; AVX512-BF16 where\n"
          "                  measured faster, see t3d devices), else fp32 (default auto)\n"),
        to);
}

const char *t3d_cli_precision_desc(const t3d_backend *be, char *buf, size_t size)
{
  if (be->precision == T3D_PRECISION_BF16)
    snprintf(buf, size, "bf16 (%s)", t3d_backend_cpu_bf16_isa());
  else
    snprintf(buf, size, "fp32");
  return buf;
}
