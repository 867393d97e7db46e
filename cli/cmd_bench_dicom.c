/* `t3d bench-dicom`: how long a clinician waits for a series to load, next to dcm2niix converting
 * the same files, for several transfer syntaxes. Each run is its own process (this t3d running
 * `info --load`; dcm2niix writing NIfTI), timed wall-clock from start to exit with peak RSS from
 * wait4; medians are printed. Not a correctness check (tests/test-dicom-*). */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <libintl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "cli/commands.h"
#include "core/dicom/dicomwrite.h"
#include "core/model/phantom.h"

#define _(s) gettext(s)

static void usage(FILE *to)
{
  fprintf(to, _("Usage: t3d bench-dicom [--size X,Y,Z] [--runs N] [--syntaxes LIST] [--dir DIR]\n"
                "Writes the CT phantom as DICOM series (one per transfer syntax) and times `t3d info --load`\n"
                "(scan and load, as a clinician waits for it) next to dcm2niix converting the same files to\n"
                "NIfTI, each run in its own process: median wall seconds and median peak RSS (MiB).\n"
                "  --size X,Y,Z     phantom voxels (default 512,512,140)\n"
                "  --runs N         runs per row, median kept (default 5)\n"
                "  --syntaxes LIST  comma-separated (default explicit,rle,jpeg-lossless,j2k)\n"
                "  --dir DIR        where to write the series (default: a temporary folder, removed after)\n"
                "Environment: T3D_DCM2NIIX (default dcm2niix; rows show '-' when it cannot run).\n"));
}

static double now_s(void)
{
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* Runs argv with stdout/stderr to /dev/null; wall and CPU (user + system) seconds and peak RSS
 * (KiB). -1 when it failed. */
static int run_timed(char *const argv[], double *sec, double *cpu, long *rss_kib)
{
  double t0 = now_s();
  pid_t pid = fork();
  if (pid < 0)
    return -1;
  if (pid == 0) {
    int fd = open("/dev/null", O_WRONLY);
    if (fd >= 0) {
      dup2(fd, 1);
      dup2(fd, 2);
    }
    execvp(argv[0], argv);
    _exit(127);
  }
  int status = 0;
  struct rusage ru;
  if (wait4(pid, &status, 0, &ru) != pid)
    return -1;
  *sec = now_s() - t0;
  *cpu = (double)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) + 1e-6 * (double)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec);
  *rss_kib = ru.ru_maxrss;
  return WIFEXITED(status) && WEXITSTATUS(status) == 0 ? 0 : -1;
}

static int cmp_double(const void *a, const void *b)
{
  double x = *(const double *)a, y = *(const double *)b;
  return x < y ? -1 : x > y;
}

static double median(double *v, int n)
{
  qsort(v, (size_t)n, sizeof *v, cmp_double);
  return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

static int rm_one(const char *p, const struct stat *sb, int flag, struct FTW *ftw)
{
  (void)sb, (void)flag, (void)ftw;
  return remove(p);
}

/* Median wall and CPU seconds and peak MiB of `runs` runs of argv (after clearing out_dir when
 * given). */
static int bench_row(char *const argv[], int runs, const char *out_dir, double *sec, double *cpu, double *mib)
{
  double t[64], c[64], m[64];
  for (int r = 0; r < runs; r++) {
    long kib = 0;
    if (out_dir) {
      nftw(out_dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
      if (mkdir(out_dir, 0700) != 0)
        return -1;
    }
    if (run_timed(argv, &t[r], &c[r], &kib) != 0)
      return -1;
    m[r] = (double)kib / 1024.0;
  }
  *sec = median(t, runs);
  *cpu = median(c, runs);
  *mib = median(m, runs);
  return 0;
}

static double dir_mib(const char *dir)
{
  char path[4096];
  double bytes = 0;
  for (int k = 1; k < 100000; k++) {
    struct stat sb;
    snprintf(path, sizeof path, "%s/CT%05d.dcm", dir, k);
    if (stat(path, &sb) != 0)
      break;
    bytes += (double)sb.st_size;
  }
  return bytes / 1048576.0;
}

int t3d_cmd_bench_dicom(int argc, char **argv)
{
  t3d_phantom_params pp = t3d_phantom_default_params();
  const char *dir = NULL, *syntaxes = "explicit,rle,jpeg-lossless,j2k";
  const char *dcm2niix = getenv("T3D_DCM2NIIX");
  char tmpl[4096] = "", self[4096];
  int runs = 5, rc = 1, own_dir = 0;
  t3d_volume *v = NULL;
  pp.nx = 512, pp.ny = 512, pp.nz = 140;
  if (!dcm2niix || !*dcm2niix)
    dcm2niix = "dcm2niix";

  for (int i = 1; i < argc; i++) {
    const char *a = argv[i], *val = i + 1 < argc ? argv[i + 1] : NULL;
    if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
      usage(stdout);
      return 0;
    }
    if (!val) {
      usage(stderr);
      return 2;
    }
    i++;
    if (strcmp(a, "--size") == 0) {
      long long x, y, z;
      if (sscanf(val, "%lld,%lld,%lld", &x, &y, &z) != 3 || x < 1 || y < 1 || z < 1 || x > 4096 || y > 4096 ||
          z > 4096) {
        fprintf(stderr, _("t3d bench-dicom: --size wants X,Y,Z voxels (1..4096), got '%s'\n"), val);
        return 2;
      }
      pp.nx = x, pp.ny = y, pp.nz = z;
    } else if (strcmp(a, "--runs") == 0) {
      runs = atoi(val);
      if (runs < 1 || runs > 64) {
        fprintf(stderr, _("t3d bench-dicom: --runs wants 1..64, got '%s'\n"), val);
        return 2;
      }
    } else if (strcmp(a, "--syntaxes") == 0) {
      syntaxes = val;
    } else if (strcmp(a, "--dir") == 0) {
      dir = val;
    } else {
      fprintf(stderr, _("t3d bench-dicom: unknown option '%s'\n"), a);
      usage(stderr);
      return 2;
    }
  }
  ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
  if (n <= 0) {
    fprintf(stderr, _("t3d bench-dicom: cannot find this program (/proc/self/exe): %s\n"), strerror(errno));
    return 1;
  }
  self[n] = '\0';
  if (!dir) {
    const char *t = getenv("TMPDIR");
    snprintf(tmpl, sizeof tmpl, "%s/t3d-bench-dicom.XXXXXX", t && *t ? t : "/tmp");
    if (!mkdtemp(tmpl)) {
      fprintf(stderr, _("t3d bench-dicom: cannot create a temporary folder: %s\n"), strerror(errno));
      return 1;
    }
    dir = tmpl;
    own_dir = 1;
  }
  t3d_status st = t3d_phantom_ct(&pp, &v);
  if (st != T3D_OK) {
    rc = t3d_cli_fail(st, "phantom");
    goto cleanup;
  }
  long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
  printf(_("DICOM load: %lldx%lldx%lld CT phantom, %d run(s) per row (median), %ld CPU(s)\n"), (long long)pp.nx,
         (long long)pp.ny, (long long)pp.nz, runs, ncpu);
  printf(_("t3d: `t3d info --load` (scan + load to float HU); dcm2niix: `%s -z n` (convert + write NIfTI)\n\n"),
         dcm2niix);
  printf("%-14s %7s %7s %7s %8s %10s %10s %12s %8s\n", _("syntax"), _("MiB"), _("t3d s"), _("cpu s"), _("t3d MiB"),
         _("dcm2niix s"), _("cpu s"), _("dcm2niix MiB"), _("ratio"));
  char list[256];
  snprintf(list, sizeof list, "%s", syntaxes);
  for (char *save = NULL, *name = strtok_r(list, ",", &save); name; name = strtok_r(NULL, ",", &save)) {
    t3d_dicom_write_params wp = t3d_dicom_write_default_params();
    char series[4200], out[4200];
    if (t3d_dicom_syntax_parse(name, &wp.syntax) != 0) {
      fprintf(stderr, _("t3d bench-dicom: unknown transfer syntax '%s'\n"), name);
      rc = 2;
      goto cleanup;
    }
    snprintf(series, sizeof series, "%s/%s", dir, name);
    snprintf(out, sizeof out, "%s/%s-nifti", dir, name);
    if ((st = t3d_dicom_write_ct_series(v, series, &wp)) != T3D_OK) {
      rc = t3d_cli_fail(st, "writing DICOM");
      goto cleanup;
    }
    char *t3d_argv[] = {self, "info", "--load", series, NULL};
    char *d2n_argv[] = {(char *)dcm2niix, "-z", "n", "-f", "bench", "-o", out, series, NULL};
    double ts = 0, tc = 0, tm = 0, ds = 0, dc = 0, dm = 0;
    if (bench_row(t3d_argv, runs, NULL, &ts, &tc, &tm) != 0) {
      fprintf(stderr, _("t3d bench-dicom: `t3d info --load %s` failed\n"), series);
      goto cleanup;
    }
    int have = bench_row(d2n_argv, runs, out, &ds, &dc, &dm) == 0;
    nftw(out, rm_one, 16, FTW_DEPTH | FTW_PHYS);
    if (have)
      printf("%-14s %7.1f %7.3f %7.3f %8.1f %10.3f %10.3f %12.1f %8.2f\n", name, dir_mib(series), ts, tc, tm, ds, dc, dm,
             ts / ds);
    else
      printf("%-14s %7.1f %7.3f %7.3f %8.1f %10s %10s %12s %8s\n", name, dir_mib(series), ts, tc, tm, "-", "-", "-", "-");
    fflush(stdout);
  }
  printf(_("\ns: wall seconds; cpu s: user + system seconds of all threads; ratio: t3d wall / dcm2niix wall\n"
           "(below 1: t3d is faster). A float volume of this size needs %.1f MiB.\n"), (double)pp.nx * (double)pp.ny * (double)pp.nz * 4.0 / 1048576.0);
  rc = 0;
cleanup:
  t3d_volume_free(v);
  if (own_dir)
    nftw(tmpl, rm_one, 16, FTW_DEPTH | FTW_PHYS);
  return rc;
}
