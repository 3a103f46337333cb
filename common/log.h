/*
 * log.h — one logging macro for the server side.
 *
 * OKV_LOG checks the level before any argument is formatted, so a debug line
 * on a hot path costs one comparison when debug logging is off. Lines go to
 * stderr as: 2026-11-22T15:52:01.123Z INFO  [node 1] file.c:42 message
 * Library code (storage, raft, client) never logs on its own; the raft core
 * logs through a callback the server wires to this.
 */
#ifndef OKV_COMMON_LOG_H
#define OKV_COMMON_LOG_H

enum okv_log_level {
    OKV_LOG_ERROR = 0,
    OKV_LOG_WARN = 1,
    OKV_LOG_INFO = 2,
    OKV_LOG_DEBUG = 3
};

extern int okv_log_level;      /* lines above this level are skipped */
extern unsigned long okv_log_node_id;

/* Parses "error", "warn", "info", "debug"; returns -1 if unknown. */
int okv_log_parse_level(const char *name);

void okv_log_write(int level, const char *file, int line, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

#define OKV_LOG(level, ...)                                              \
    do {                                                                 \
        if ((level) <= okv_log_level)                                    \
            okv_log_write((level), __FILE__, __LINE__, __VA_ARGS__);     \
    } while (0)

#define OKV_ERROR(...) OKV_LOG(OKV_LOG_ERROR, __VA_ARGS__)
#define OKV_WARN(...) OKV_LOG(OKV_LOG_WARN, __VA_ARGS__)
#define OKV_INFO(...) OKV_LOG(OKV_LOG_INFO, __VA_ARGS__)
#define OKV_DEBUG(...) OKV_LOG(OKV_LOG_DEBUG, __VA_ARGS__)

#endif
