/* Test and bench helper: writes a model file with only the text side of a config (text.*,
 * text_proj.*, t3d.config, t3d.vocab = default vocabulary padded with [unusedN] to vocab_size)
 * and seeded random weights, optionally leaving one tensor out or the vocabulary short, so that
 * tests can check the text encoder's errors. Not part of libt3d. */
#ifndef T3D_TESTS_TEXT_TESTMODEL_H
#define T3D_TESTS_TEXT_TESTMODEL_H

#include "core/model/modelconfig.h"

/* skip: a tensor name to leave out (NULL: none); vocab_delta: tokens added (> 0) or removed
 * (< 0) from the vocabulary relative to cfg->text.vocab_size; INT32_MIN: no t3d.vocab at all. */
t3d_status t3d_test_write_text_model(const t3d_model_config *cfg, const char *path, const char *skip,
                                     int vocab_delta);

#endif
