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
          "                  bf16 where the CPU was measured to run it faster than fp32 (on AMX the\n"
          "                  linear layers; on AVX512-BF16 everything where faster, see t3d devices),\n"
          "                  else fp32 (default auto)\n"),
        to);
}

const char *t3d_cli_bf16_ops_desc(unsigned ops)
{
  const bool conv = ops & (1u << T3D_OP_CONV3D), lin = ops & (1u << T3D_OP_LINEAR);
  if (conv && lin) return "bf16";
  if (lin) return _("bf16 for the linear layers, fp32 for the convolutions");
  if (conv) return _("bf16 for the convolutions, fp32 for the linear layers");
  return "fp32";
}

const char *t3d_cli_precision_desc(const t3d_backend *be, char *buf, size_t size)
{
  const unsigned all = T3D_BF16_OPS_ALL;
  if (be->precision == T3D_PRECISION_BF16 && (be->bf16_ops & all) == all)
    snprintf(buf, size, "bf16 (%s)", t3d_backend_cpu_bf16_isa());
  else if (be->precision == T3D_PRECISION_BF16)
    snprintf(buf, size, "bf16 (%s) for %s, fp32 for the rest", t3d_backend_cpu_bf16_isa(),
             be->bf16_ops & (1u << T3D_OP_LINEAR) ? "the linear layers" : "the convolutions");
  else
    snprintf(buf, size, "fp32");
  return buf;
}
