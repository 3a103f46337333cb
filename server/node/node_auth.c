#define _GNU_SOURCE   /* explicit_bzero */
/*
 * node_auth.c — the node's side of users and roles: --auth on or off, the
 * authenticator on the gRPC server, the first admin, and the audit hook.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "audit.h"
#include "auth.h"
#include "auth_password.h"
#include "log.h"
#include "meta.h"
#include "node.h"
#include "node_auth.h"

static int lookup_row(void *arg, const char *row, uint8_t **value, size_t *len)
{
    uint64_t version;
    return meta_row_get(arg, row, value, len, &version);
}

static void on_refusal(void *arg, const rpc_identity *id, const char *method, const char *why)
{
    char what[128];
    snprintf(what, sizeof what, "call %s", method);
    char result[600];
    snprintf(result, sizeof result, "refused: %s", why);
    node_audit(arg, id, what, result);
}

int node_auth_new(node *n, const config *cfg, okv_error *err)
{
    if (!cfg->auth) {
        OKV_WARN("**********************************************************************");
        OKV_WARN("AUTHENTICATION IS OFF (--auth off): any client that reaches %s can read",
                 cfg->listen);
        OKV_WARN("and write every table and move leaders. Use it only on a trusted");
        OKV_WARN("loopback; see docs/operations.md \"Users and roles\".");
        OKV_WARN("**********************************************************************");
        return OKV_OK;
    }
    if (!cfg->initial_cluster[0])
        return okv_error_set(err, OKV_EINVAL, "--auth on needs a cluster (--initial-cluster): "
                                              "users live in the meta group");
    int rc = auth_new(&n->auth, cfg->auth_secret_file, lookup_row, n, err);
    if (rc)
        return rc;
    auth_on_refusal(n->auth, on_refusal, n);
    return OKV_OK;
}

int node_auth_finish(node *n, const config *cfg, okv_error *err)
{
    if (!n->auth)
        return OKV_OK;
    if (meta_status(n->meta, NULL, NULL, 0) == META_NOT_HELD)
        return okv_error_set(err, OKV_EINVAL,
                             "--auth on: node %llu holds no meta group replica, where users "
                             "live (only the first 5 nodes do); run it with --auth off behind "
                             "the others, or in a cluster of at most 5 nodes",
                             (unsigned long long)n->node_id);
    int rc = auth_check_methods(n->rpc, err);
    if (rc)
        return rc;
    if (cfg->auth_admin[0]) {
        if (!auth_user_name_valid(cfg->auth_admin))
            return okv_error_set(err, OKV_EINVAL, "--auth-admin: \"%s\" is no valid user name "
                                                  "(1 to 64 of A-Z a-z 0-9 . _ -)",
                                 cfg->auth_admin);
        char password[AUTH_PASSWORD_MAX + 2];
        rc = auth_read_secret_file(cfg->auth_admin_password_file, password, sizeof password,
                                   err);
        if (rc)
            return rc;
        auth_user u;
        memset(&u, 0, sizeof u);
        snprintf(u.name, sizeof u.name, "%s", cfg->auth_admin);
        u.role = AUTH_ROLE_ADMIN;
        rc = auth_password_hash(password, u.hash, sizeof u.hash);
        explicit_bzero(password, sizeof password);
        if (rc)
            return okv_error_set(err, rc, "cannot hash the first admin's password (crypt)");
        char row[sizeof AUTH_ROW_PREFIX + AUTH_USER_MAX];
        char rec[1024];
        snprintf(row, sizeof row, AUTH_ROW_PREFIX "%s", u.name);
        if (!auth_user_encode(&u, rec, sizeof rec) || meta_set_first_row(n->meta, row, rec))
            return okv_error_set(err, OKV_ENOMEM, "out of memory");
    }
    rpc_server_set_auth(n->rpc, auth_rpc_ops(), n->auth);
    OKV_INFO("authentication on: every call is checked against the users and roles in the "
             "meta group%s%s", cfg->auth_admin[0] ? "; first admin: " : "", cfg->auth_admin);
    return OKV_OK;
}

const char *node_auth_secret(const node *n) { return n->auth ? auth_node_secret(n->auth) : NULL; }

const char *node_audit_who(const rpc_identity *id)
{
    switch (id ? id->state : RPC_ID_ANONYMOUS) {
    case RPC_ID_USER:
    case RPC_ID_NODE:
        return id->user;
    case RPC_ID_FAILED:
        return "unauthenticated";   /* the name it claimed is in the result */
    default:
        return "anonymous";
    }
}

void node_audit(node *n, const rpc_identity *who, const char *what, const char *result)
{
    audit_log_append(n->audit, node_audit_who(who), who && who->from[0] ? who->from : NULL, what,
                     result);
}
