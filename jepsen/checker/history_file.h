/*
 * history_file.h — reading a history file into memory (the only file input
 * of the checker; the parsing itself is history.h and does no I/O).
 */
#ifndef OKV_JEPSEN_HISTORY_FILE_H
#define OKV_JEPSEN_HISTORY_FILE_H

#include <stddef.h>

#include "errors.h"

/* Reads the whole of path into *text (malloc'd, NUL-terminated, owned by the
 * caller; *len excludes the NUL). Errors: OKV_EIO with the path and the
 * system's reason, OKV_ENOMEM. */
int history_file_read(const char *path, char **text, size_t *len, okv_error *err);

#endif
