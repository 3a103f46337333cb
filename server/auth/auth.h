/*
 * auth.h — a node's authenticator (--auth on): who each call comes from,
 * and whether its user may do it (docs/operations.md "Users and roles").
 *
 * Who: the metadata okv-user / okv-password (common/auth_md.h), checked
 * against the user's salted hash in the meta group; without them, the
 * common name of a TLS client certificate the cluster's CA signed, which
 * must name an existing user; the other nodes come as AUTH_NODE_USER with
 * the cluster's shared secret. Anything else is anonymous.
 *
 * Whether: auth_rules.h, against the user's record read afresh from this
 * node's meta replica at every call, so a revoked grant or a deleted user
 * stops working as soon as the change has applied here.
 *
 * The slow hash runs once per user and password per node; a small cache
 * (keyed by a per-process random salt, so it holds no password) serves the
 * next calls, and a changed password misses it.
 */
#ifndef OKV_SERVER_AUTH_H
#define OKV_SERVER_AUTH_H

#include <stddef.h>
#include <stdint.h>

#include "auth_user.h"
#include "errors.h"
#include "rpc_server.h"

typedef struct auth auth;

/* Reads a meta group row of this node's replica: OKV_OK with *value
 * malloc'd (NULL when absent). */
typedef int (*auth_lookup_fn)(void *arg, const char *row, uint8_t **value, size_t *len);
/* Records a refused call (the audit log): who, what, why. */
typedef void (*auth_refusal_fn)(void *arg, const rpc_identity *id, const char *method,
                                const char *why);

/* Reads the shared secret from secret_file (its first line, 16 to 1024
 * bytes). lookup/lookup_arg: where users are read. */
int auth_new(auth **out, const char *secret_file, auth_lookup_fn lookup, void *lookup_arg,
             okv_error *err);
void auth_free(auth *a);   /* accepts NULL */

void auth_on_refusal(auth *a, auth_refusal_fn fn, void *arg);

/* What rpc_server_set_auth takes, with a as its argument. */
const rpc_auth_ops *auth_rpc_ops(void);

/* The nodes' secret, sent as AUTH_NODE_USER's password on calls to peers. */
const char *auth_node_secret(const auth *a);

/* OKV_OK when every method the server serves has a permission rule;
 * OKV_EINVAL naming the first that has none. */
int auth_check_methods(const rpc_server *s, okv_error *err);

/* The user behind id (fresh from the meta replica): OKV_OK, OKV_ENOTFOUND
 * (deleted since), OKV_ECORRUPT, or OKV_EINVAL when id is no user. */
int auth_user_of(auth *a, const rpc_identity *id, auth_user *out);

/* Reads a file's first line (a password or secret) into out; OKV_EINVAL
 * with the file named in err when unreadable, empty or longer than cap-1. */
int auth_read_secret_file(const char *path, char *out, size_t cap, okv_error *err);

#endif
