/* Test-only hooks into the model file writer. Not part of the public API: only tests include
 * this header, to exercise failure paths that a real disk rarely produces on demand. */
#ifndef T3D_MODELFILE_INTERNAL_H
#define T3D_MODELFILE_INTERNAL_H

#include <stddef.h>

#include "core/model/modelfile.h"

/* Makes the writer's next write() calls fail with errno err once `bytes` bytes of the file
 * have been written (as a full disk would, with err = ENOSPC). */
void t3d_modelfile_writer_fail_after(t3d_modelfile_writer *w, size_t bytes, int err);

#endif
