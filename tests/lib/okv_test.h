/*
 * okv_test.h — helpers shared by orderkv's C tests: cmocka includes in the
 * order cmocka needs, temp dirs, and starting a real orderkvd process.
 */
#ifndef OKV_TEST_H
#define OKV_TEST_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <sys/types.h>

/* Creates a fresh directory under $TMPDIR (or /tmp); returns a malloc'd path. */
char *okv_test_tmpdir(const char *tag);

/* rm -rf path (only paths under the temp dir; refuses anything else). */
void okv_test_rmtree(const char *path);

typedef struct okv_test_server {
    pid_t pid;
    char address[128];
    char data_dir[4096];
    char log_path[4200];
    /* One extra NAME=VALUE for the process's environment ("" = none), e.g.
     * ORDERKV_FAILPOINTS=...; set it before okv_test_server_start (which
     * keeps it; zero the struct first). */
    char env[512];
} okv_test_server;

/* Starts `orderkvd` (path in env ORDERKVD, else argv-given default) on a
 * free loopback port with data_dir; waits (bounded, 15 s) until it serves.
 * Returns 0 on success. Extra flags may be passed NULL-terminated. */
int okv_test_server_start(okv_test_server *s, const char *orderkvd, const char *data_dir, ...);

/* SIGTERM (or SIGKILL if hard), waits for exit (bounded); returns the exit
 * status (0..255), 128+signal if killed, or -1 if it had to be SIGKILLed after
 * not exiting in time. */
int okv_test_server_stop(okv_test_server *s, int hard);

#endif
