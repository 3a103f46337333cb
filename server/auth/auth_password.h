/*
 * auth_password.h — salted, slow password hashes (crypt(3) from libxcrypt,
 * yescrypt: "$y$..."), so a copy of the meta group does not give the
 * passwords away.
 */
#ifndef OKV_SERVER_AUTH_PASSWORD_H
#define OKV_SERVER_AUTH_PASSWORD_H

#include <stddef.h>

/* Hashes password with a fresh random salt into out (cap bytes; 256 is
 * plenty). OKV_OK, or OKV_EINTERNAL when the system's crypt fails. */
int auth_password_hash(const char *password, char *out, size_t cap);

/* 1 when password matches hash (compared in constant time), else 0;
 * an empty or malformed hash matches nothing. */
int auth_password_verify(const char *password, const char *hash);

#endif
