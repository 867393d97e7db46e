/* The t3d model file: safetensors with t3d metadata, read through a read-only mmap and written
 * atomically. Not a model loader: it hands out borrowed tensor views and validated metadata;
 * building a network from them (BN folding, dtype conversion) is the model code's job.
 *
 * ---- Format (t3d.format_version "1"; this is a format t3d owns) -----------------------------
 *
 *   bytes 0..7      N, unsigned 64-bit little-endian: length of the JSON header
 *   bytes 8..8+N    JSON object (UTF-8), no duplicate keys. The t3d writer pads it with
 *                   trailing spaces so the data section starts on a 64-byte file offset.
 *   bytes 8+N..end  the data section: raw tensor bytes, little-endian, row-major (C order)
 *
 * Header members:
 *   "<tensor name>": {"dtype": D, "shape": [d0, ...], "data_offsets": [begin, end]}
 *       D is one of "F32" "F16" "BF16" "I32" "U8" (any other dtype is refused as unsupported);
 *       0..5 dimensions, each an integer >= 0; begin/end are byte offsets into the data section
 *       with begin <= end <= data section length and end - begin == numel * element size;
 *       begin is a multiple of the element size. Tensors may not overlap; the reader allows
 *       gaps and trailing bytes, but the writer never makes them (the reference safetensors
 *       reader refuses them): it stores tensors back to back, largest element size first and
 *       then by name, which keeps each one aligned to its element size. Names are 1..255 bytes.
 *   "__metadata__": {string: string}, required, holding:
 *       "t3d.format_version"  decimal integer; "1" now. A larger one is refused as unsupported
 *                             (written by a newer t3d); bumped only for incompatible changes.
 *       "t3d.config"   optional: model config JSON object (schema in modelconfig.h)
 *       "t3d.vocab"    optional: JSON array of WordPiece tokens (unique non-empty strings);
 *                      a token's id is its index
 *       "t3d.findings" optional: JSON array of {"name","positive","negative"} (non-empty strings,
 *                      unique names): zero-shot findings with their prompt pair
 *       "t3d.classes"  optional: JSON array of unique segmentation class names, background
 *                      first
 *       Other keys (any "t3d." or foreign ones) are kept and readable, not interpreted.
 *   The header is capped at 100 MiB.
 *
 * Alignment: the mapping is page-aligned, so a tensor's address is aligned for its dtype when
 * 8+N+begin is. Files from other safetensors writers need not pad the header; a tensor whose
 * address is misaligned for its element size is copied once, at open, into an aligned buffer
 * owned by the handle (logged at debug level). Tensors from t3d's writer are never copied.
 * Views are aligned to their element size, not more: SIMD code must use unaligned loads.
 * The host must be little-endian (checked at open).
 *
 * Replacing a file that is open is safe with t3d's writer (rename keeps the old inode mapped);
 * truncating it in place under a reader is not (the mapping would fault), as with any mmap.
 *
 * Thread safety: an open handle is immutable and may be read from several threads. */
#ifndef T3D_MODELFILE_H
#define T3D_MODELFILE_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

#include "core/model/modelconfig.h"
#include "core/model/modeldefaults.h"
#include "core/base/status.h"
#include "core/base/tensor.h"

#ifdef __cplusplus
extern "C" {
#endif

#define T3D_MODELFILE_FORMAT_VERSION 1
#define T3D_MODELFILE_MAX_HEADER ((size_t)100 << 20)
#define T3D_MODELFILE_MAX_NAME 255
/* For t3d_modelfile_require: accept F32, F16 or BF16. */
#define T3D_MODELFILE_ANY_FLOAT T3D_DTYPE_COUNT

typedef struct t3d_modelfile t3d_modelfile;

/* Opens and validates path (structure, every tensor entry, the metadata above). On success *out
 * is the caller's, released with t3d_modelfile_close. Errors: T3D_ERR_NOT_FOUND (no such file),
 * T3D_ERR_IO (open/stat/mmap or not a regular file, with errno text), T3D_ERR_FORMAT (malformed; the message names the file, the tensor or key and what
 * is wrong), T3D_ERR_UNSUPPORTED (unknown dtype, newer format version, big-endian host),
 * T3D_ERR_NOMEM. Messages start with the path. */
t3d_status t3d_modelfile_open(t3d_modelfile **out, const char *path);
/* The same parser over len bytes in memory. buf is borrowed: it must outlive the handle.
 * Messages start with "<memory>". */
t3d_status t3d_modelfile_open_memory(t3d_modelfile **out, const void *buf, size_t len);
/* Unmaps and frees. Views and strings obtained from the handle die with it. NULL is a no-op. */
void t3d_modelfile_close(t3d_modelfile *mf);

/* The path given to open ("<memory>" for open_memory). Borrowed. */
const char *t3d_modelfile_path(const t3d_modelfile *mf);
size_t t3d_modelfile_size(const t3d_modelfile *mf);        /* whole file, bytes */
size_t t3d_modelfile_header_size(const t3d_modelfile *mf); /* N */

/* ---- tensors: views into the (read-only) mapping; never write through .data ----------------- */

size_t t3d_modelfile_tensor_count(const t3d_modelfile *mf);
/* i-th tensor in byte order of its name (strcmp); *name (may be NULL) gets the borrowed name.
 * NULL when i is out of range. */
const t3d_tensor *t3d_modelfile_tensor_at(const t3d_modelfile *mf, size_t i, const char **name);
/* Borrowed view of the named tensor, or NULL when absent (binary search). */
const t3d_tensor *t3d_modelfile_get(const t3d_modelfile *mf, const char *name);
/* Checks that the named tensor exists with this dtype (or T3D_MODELFILE_ANY_FLOAT) and shape,
 * and sets *out (may be NULL) to its view. T3D_ERR_NOT_FOUND ("model.safetensors: tensor
 * vision.conv1.weight missing (expected f32[16,1,7,7,7])") or T3D_ERR_SHAPE ("... tensor
 * vision.conv1.weight is f32[16,1,3,3,3], expected f32[16,1,7,7,7]"). */
t3d_status t3d_modelfile_require(const t3d_modelfile *mf, const char *name, t3d_dtype dtype, int ndim,
                                 const int64_t *shape, const t3d_tensor **out);
/* Tells the kernel that t's bytes were copied out (e.g. uploaded to a backend) and its resident
 * file pages may be dropped, so a loaded model does not hold its weights twice. The view stays
 * valid: a later read pages the bytes back in from the file. A no-op for memory-opened files and
 * tensors the reader had to copy. */
void t3d_modelfile_release_pages(const t3d_modelfile *mf, const t3d_tensor *t);

/* ---- metadata ------------------------------------------------------------------------------- */

/* Value of a __metadata__ key, or NULL. Borrowed. */
const char *t3d_modelfile_metadata(const t3d_modelfile *mf, const char *key);
size_t t3d_modelfile_metadata_count(const t3d_modelfile *mf);
/* i-th metadata key in byte order; NULL when out of range. *value (may be NULL) gets the value. */
const char *t3d_modelfile_metadata_at(const t3d_modelfile *mf, size_t i, const char **value);
int t3d_modelfile_format_version(const t3d_modelfile *mf);

/* The parsed t3d.config: NULL when the file has none. The struct and the JSON object are
 * borrowed (the JSON keeps keys the struct does not know). */
const t3d_model_config *t3d_modelfile_config(const t3d_modelfile *mf);
const json_t *t3d_modelfile_config_json(const t3d_modelfile *mf);
/* t3d.vocab / t3d.classes as borrowed arrays of count strings; NULL (count 0) when absent. */
const char *const *t3d_modelfile_vocab(const t3d_modelfile *mf, size_t *count);
const char *const *t3d_modelfile_classes(const t3d_modelfile *mf, size_t *count);
const t3d_finding *t3d_modelfile_findings(const t3d_modelfile *mf, size_t *count);

/* Checks that the file is a complete model: config, vocab and classes present and consistent
 * with it (vocab size, class count), and every tensor t3d_model_config_tensors lists present
 * with its shape and a float dtype. Returns the first problem (see t3d_modelfile_require). */
t3d_status t3d_modelfile_check_model(const t3d_modelfile *mf);

/* ---- writer --------------------------------------------------------------------------------- */

typedef struct t3d_modelfile_writer t3d_modelfile_writer;

/* New empty writer (caller's; t3d_modelfile_writer_free). t3d.format_version is preset. */
t3d_status t3d_modelfile_writer_new(t3d_modelfile_writer **out);
void t3d_modelfile_writer_free(t3d_modelfile_writer *w);
/* Adds a tensor under name (copied). With copy false only the shape is copied and t->data is
 * borrowed until the writer is freed. T3D_ERR_INVALID_ARG for a duplicate or bad name
 * (empty, longer than 255 bytes, "__metadata__"), ndim outside 0..5 or an unknown dtype. */
t3d_status t3d_modelfile_writer_add(t3d_modelfile_writer *w, const char *name, const t3d_tensor *t, bool copy);
/* Sets (or replaces) a metadata string; both are copied. */
t3d_status t3d_modelfile_writer_set_metadata(t3d_modelfile_writer *w, const char *key, const char *value);
/* Sets a metadata key to the compact JSON text of value (for t3d.config, t3d.vocab, ...). */
t3d_status t3d_modelfile_writer_set_json(t3d_modelfile_writer *w, const char *key, const json_t *value);
/* Validates the metadata as the reader would, then writes path atomically: a temporary file in
 * the same folder, fsync, rename over path, fsync of the folder. On any failure path is left as
 * it was and the temporary file is removed. T3D_ERR_IO names the file and the errno text;
 * T3D_ERR_FORMAT when the metadata would not read back. */
t3d_status t3d_modelfile_writer_write(t3d_modelfile_writer *w, const char *path);

#ifdef __cplusplus
}
#endif
#endif
