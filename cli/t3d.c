/* `t3d`: the command line for site engineers and researchers. Dispatches to cli/cmd_*.c;
 * holds no logic of its own beyond argument routing, locale and log-level set-up. */
#include "config.h"

#include <libintl.h>
#include <locale.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/commands.h"
#include "core/base/log.h"
#include "core/base/status.h"

#define _(s) gettext(s)
#define N_(s) (s)

#ifndef T3D_BUILD_MODEL
#define T3D_BUILD_MODEL ""
#endif
#ifndef T3D_PKGDATADIR
#define T3D_PKGDATADIR "/usr/share/t3d"
#endif

static int cmd_version(int argc, char **argv)
{
  printf("t3d %s\n", PACKAGE_VERSION);
  return 0;
}

static const t3d_command commands[] = {
  /* one line per command, alphabetical */
  {"analyze", N_("run the T3D model on a CT series: findings, organ volumes, mask"), t3d_cmd_analyze},
  {"bench", N_("time t3d-r50 on the CPU next to PyTorch (ms, peak memory)"), t3d_cmd_bench},
  {"bench-dicom", N_("time loading DICOM series next to dcm2niix converting them (s, peak memory)"), t3d_cmd_bench_dicom},
  {"bench-ops", N_("time each compute op against PyTorch at the reference model sizes"), t3d_cmd_bench_ops},
  {"bench-search", N_("time embedding search at 100k/1M cases beside FAISS (load, p50/p99, recall)"),
   t3d_cmd_bench_search},
  {"devices", N_("list the CPU and CUDA GPUs t3d can run on"), t3d_cmd_devices},
  {"eval", N_("evaluate a model on a labelled phantom set: AUROC, retrieval R@k, Dice"), t3d_cmd_eval},
  {"index", N_("analyse the CT series under folders into the case index (resumable)"), t3d_cmd_index},
  {"info", N_("list the DICOM series in a folder or DICOMDIR"), t3d_cmd_info},
  {"model-info", N_("describe a model file: config, metadata, tensors"), t3d_cmd_model_info},
  {"model-init", N_("write a model file with seeded random weights"), t3d_cmd_model_init},
  {"phantom", N_("write chest-abdomen CT phantom cases with findings, labels and reports"), t3d_cmd_phantom},
  {"phantom-write", N_("write a synthetic CT phantom as a DICOM series"), t3d_cmd_phantom_write},
  {"preprocess", N_("preprocess a phantom set for training exactly as analyze does (cache)"), t3d_cmd_preprocess},
  {"report", N_("analyse a CT series and write a draft report (text, Markdown, DICOM SR, SEG)"), t3d_cmd_report},
  {"search", N_("find indexed cases by typed findings (embeddings fused with report text)"), t3d_cmd_search},
  {"similar", N_("list the indexed cases nearest to a series"), t3d_cmd_similar},
  {"thumbnail", N_("write the middle slice of a series as a small PGM image"), t3d_cmd_thumbnail},
  {"version", N_("print the t3d version"), cmd_version},
  {"volume", N_("load a DICOM series and export it (NIfTI)"), t3d_cmd_volume},
};

int t3d_cli_fail(int status, const char *what)
{
  const char *detail = t3d_error_detail();
  if (what && *what)
    fprintf(stderr, "t3d: %s: %s%s%s\n", what, _(t3d_strerror((t3d_status)status)), *detail ? ": " : "", detail);
  else
    fprintf(stderr, "t3d: %s%s%s\n", _(t3d_strerror((t3d_status)status)), *detail ? ": " : "", detail);
  return 1;
}

const char *t3d_cli_default_model(void)
{
  static char buf[4096];
  const char *e = getenv("T3D_MODEL");
  if (e && *e) return e;
  if (*T3D_BUILD_MODEL && access(T3D_BUILD_MODEL, R_OK) == 0) return T3D_BUILD_MODEL;
  snprintf(buf, sizeof buf, "%s/t3d-tiny.safetensors", T3D_PKGDATADIR);
  if (access(buf, R_OK) == 0) return buf;
  snprintf(buf, sizeof buf, "%s/t3d-tiny-init.safetensors", T3D_PKGDATADIR);
  return buf;
}

static void usage(FILE *to)
{
  fprintf(to, _("Usage: t3d COMMAND [ARGS...]\n\nCommands:\n"));
  for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
    fprintf(to, "  %-12s %s\n", commands[i].name, _(commands[i].summary));
  fprintf(to, _("\nRun 't3d COMMAND --help' for a command's options. "
                "T3D_LOG=debug|info|warn|error sets the log level.\n"));
}

int main(int argc, char **argv)
{
  setlocale(LC_ALL, "");
  /* T3D_LOCALEDIR: catalogs outside the configured prefix (a relocated install, the tests). */
  bindtextdomain(GETTEXT_PACKAGE, getenv("T3D_LOCALEDIR") && *getenv("T3D_LOCALEDIR") ? getenv("T3D_LOCALEDIR")
                                                                                       : LOCALEDIR);
  textdomain(GETTEXT_PACKAGE);
  t3d_log_get_level(); /* reads T3D_LOG once, warning about a bad value up front */

  if (argc < 2 || strcmp(argv[1], "help") == 0 || strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
    usage(argc < 2 ? stderr : stdout);
    return argc < 2 ? 2 : 0;
  }
  if (strcmp(argv[1], "--version") == 0)
    return cmd_version(argc - 1, argv + 1);
  for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
    if (strcmp(argv[1], commands[i].name) == 0)
      return commands[i].run(argc - 1, argv + 1);
  fprintf(stderr, _("t3d: unknown command '%s'\n\n"), argv[1]);
  usage(stderr);
  return 2;
}
