/*
 * auth_user.h — a user's record and what it allows: pure rules, no I/O
 * (tested in tests/unit/auth).
 *
 * Users live in the meta group, one row "user/NAME" each, as text
 * (auth_user_encode). A user has a role and optional per-table grants:
 *
 *   role admin   everything: every table, cluster operations, users;
 *   role writer  read and write every table;
 *   role reader  read every table;
 *   role none    nothing but what its grants give (and Status/WhoAmI).
 *
 * A grant gives at least `reader` or `writer` on one table, on top of the
 * role: "reader + grant orders:writer" reads everything and writes only
 * orders; "none + grant payments:reader" reads only payments.
 */
#ifndef OKV_SERVER_AUTH_USER_H
#define OKV_SERVER_AUTH_USER_H

#include <stddef.h>
#include <stdint.h>

#include "auth_md.h"

enum auth_access { AUTH_ACCESS_NONE = 0, AUTH_ACCESS_READ = 1, AUTH_ACCESS_WRITE = 2 };
enum auth_role { AUTH_ROLE_NONE = 0, AUTH_ROLE_READER, AUTH_ROLE_WRITER, AUTH_ROLE_ADMIN };

#define AUTH_MAX_GRANTS 16
#define AUTH_TABLE_MAX 63
#define AUTH_HASH_MAX 255    /* a crypt(3) string, "$y$..." */

typedef struct auth_grant {
    char table[AUTH_TABLE_MAX + 1];
    enum auth_access access;
} auth_grant;

typedef struct auth_user {
    char name[AUTH_USER_MAX + 1];
    enum auth_role role;
    size_t ngrants;
    auth_grant grants[AUTH_MAX_GRANTS];
    /* The salted, slow hash of the password (auth_password.h); empty: the
     * user can only come with a client certificate naming it. */
    char hash[AUTH_HASH_MAX + 1];
} auth_user;

/* The meta group row of a user: "user/" + name. */
#define AUTH_ROW_PREFIX "user/"

/* 1 when name is a valid user name: 1..AUTH_USER_MAX of [A-Za-z0-9._-]
 * (what a certificate's common name must be, to name a user). */
int auth_user_name_valid(const char *name);

/* Text form, one "key=value" per line: version, role, grants, hash.
 * Returns the length written (without NUL), or 0 when cap is too small. */
size_t auth_user_encode(const auth_user *u, char *buf, size_t cap);
/* Parses a record; name is not in it (it is the row's). 0, or -1 when
 * malformed (an unknown version or key, a bad role or grant). */
int auth_user_decode(const uint8_t *buf, size_t len, const char *name, auth_user *u);

/* What u may do with table. */
enum auth_access auth_user_access(const auth_user *u, const char *table);
/* Sets (AUTH_ACCESS_NONE: removes) u's grant on table. 0, or -1 when the
 * table name is too long or u already has AUTH_MAX_GRANTS grants. */
int auth_user_set_grant(auth_user *u, const char *table, enum auth_access a);

const char *auth_role_name(enum auth_role r);
/* "admin", "writer", "reader" or "none"; 0, or -1 for anything else. */
int auth_role_parse(const char *s, enum auth_role *out);
const char *auth_access_name(enum auth_access a);
/* "reader" or "writer" (as granted); "none" removes. 0, or -1. */
int auth_access_parse(const char *s, enum auth_access *out);

#endif
