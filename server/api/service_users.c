/*
 * service_users.c — users and roles over orderkv.v1.Admin: WhoAmI,
 * UserAdd, UserSet, UserDelete, UserList (proto/orderkv.proto).
 *
 * A user is one row of the meta group (auth_user.h). Writes are proposed
 * to the meta group by its leader, as a compare-and-swap on the row's
 * version: two admins changing one user at once cannot lose a change (the
 * second gets CONFLICT and retries on what the first wrote). Reads come
 * from this node's replica. Every change is recorded in the audit log.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "auth.h"
#include "auth_password.h"
#include "cluster.h"
#include "command.h"
#include "kvstore.h"
#include "log.h"
#include "meta.h"
#include "node.h"
#include "orderkv.pb-c.h"
#include "request.h"

#define RECORD_MAX 2048
#define LIST_MAX 1000

/* A proposal in flight: answered from the raft loop once it applies. */
typedef struct user_write {
    rpc_call *call;
    node *n;
    int is_delete;
    char what[400];
    rpc_identity who;
    auth_user user;     /* as written (UserSet answers with it) */
    int reply_user;
} user_write;

static void info_fill(const auth_user *u, Orderkv__V1__UserInfo *info,
                      Orderkv__V1__TableGrant *g, Orderkv__V1__TableGrant **gp)
{
    orderkv__v1__user_info__init(info);
    info->name = (char *)u->name;
    info->role = (char *)auth_role_name(u->role);
    info->has_password = u->hash[0] != '\0';
    for (size_t i = 0; i < u->ngrants; i++) {
        orderkv__v1__table_grant__init(&g[i]);
        g[i].table = (char *)u->grants[i].table;
        g[i].access = (char *)auth_access_name(u->grants[i].access);
        gp[i] = &g[i];
    }
    info->n_grants = u->ngrants;
    info->grants = gp;
}

static void audit(node *n, const rpc_identity *who, const char *what, int code, const char *msg)
{
    char result[300];
    if (code == OKV_OK)
        snprintf(result, sizeof result, "ok");
    else
        snprintf(result, sizeof result, "error: %s: %s", okv_strerror(code), msg ? msg : "");
    node_audit(n, who, what, result);
}

static void reply_fail(user_write *w, int code, const char *msg)
{
    audit(w->n, &w->who, w->what, code, msg);
    service_reply_error(w->call, code, msg);
    free(w);
}

static void written(void *arg, int code, const command_result *r, uint64_t leader_hint)
{
    user_write *w = arg;
    if (code == OKV_OK && r)
        code = r->code;
    if (code == OKV_ENOTLEADER) {
        audit(w->n, &w->who, w->what, code, "not the meta group's leader");
        service_reply_not_leader(w->call, w->n, leader_hint);
        free(w);
        return;
    }
    if (code == OKV_ECONFLICT) {
        reply_fail(w, code, w->is_delete || w->reply_user
                                ? "the user changed meanwhile (another admin?): try again"
                                : "that user already exists");
        return;
    }
    if (code) {
        reply_fail(w, code, "the meta group did not apply the change");
        return;
    }
    audit(w->n, &w->who, w->what, OKV_OK, NULL);
    if (w->reply_user) {
        Orderkv__V1__UserSetResponse resp = ORDERKV__V1__USER_SET_RESPONSE__INIT;
        Orderkv__V1__UserInfo info;
        Orderkv__V1__TableGrant g[AUTH_MAX_GRANTS], *gp[AUTH_MAX_GRANTS];
        info_fill(&w->user, &info, g, gp);
        resp.user = &info;
        service_reply_message(w->call, &resp.base);
    } else if (w->is_delete) {
        Orderkv__V1__UserDeleteResponse resp = ORDERKV__V1__USER_DELETE_RESPONSE__INIT;
        service_reply_message(w->call, &resp.base);
    } else {
        Orderkv__V1__UserAddResponse resp = ORDERKV__V1__USER_ADD_RESPONSE__INIT;
        service_reply_message(w->call, &resp.base);
    }
    free(w);
}

/* Proposes the row of w->user (or its deletion) if its version is still
 * expected (0: absent). */
static void propose(user_write *w, uint64_t expected)
{
    node *n = w->n;
    char row[sizeof AUTH_ROW_PREFIX + AUTH_USER_MAX];
    snprintf(row, sizeof row, AUTH_ROW_PREFIX "%s", w->user.name);
    char rec[RECORD_MAX];
    size_t rlen = w->is_delete ? 0 : auth_user_encode(&w->user, rec, sizeof rec);
    if (!w->is_delete && rlen == 0) {
        reply_fail(w, OKV_EINVAL, "the user record would be too large");
        return;
    }
    command c;
    memset(&c, 0, sizeof c);
    c.op = w->is_delete ? CMD_DELETE : CMD_PUT;
    c.check_version = 1;
    c.expected_version = expected;
    c.table_id = CLUSTER_META_TABLE;
    c.key = (const uint8_t *)row;
    c.key_len = strlen(row);
    c.value = (const uint8_t *)rec;
    c.value_len = rlen;
    size_t len = command_encoded_size(&c);
    uint8_t *buf = malloc(len);
    if (!buf) {
        reply_fail(w, OKV_ENOMEM, "out of memory");
        return;
    }
    command_encode(&c, buf);
    raftstore_propose(n->rs, META_GROUP, buf, len, written, w);
    free(buf);
}

/* Common start of the writes: auth on, this node leads the meta group.
 * NULL after answering the call. */
static user_write *write_begin(rpc_call *call, node *n, const char *what)
{
    user_write *w = calloc(1, sizeof *w);
    if (!w) {
        service_reply_error(call, OKV_ENOMEM, "out of memory");
        return NULL;
    }
    w->call = call;
    w->n = n;
    w->who = *rpc_call_identity(call);
    snprintf(w->what, sizeof w->what, "%s", what);
    if (!n->auth || !n->rs) {
        reply_fail(w, OKV_EINVAL, "users need a cluster run with --auth on (this node runs "
                                  "with --auth off: nobody is checked)");
        return NULL;
    }
    uint64_t leader = raftstore_leader(n->rs, META_GROUP);
    if (leader != n->node_id) {
        service_reply_not_leader(call, n, leader);
        free(w);
        return NULL;
    }
    return w;
}

/* The stored user `name` and the row's version (0: absent). */
static int read_user(node *n, const char *name, auth_user *u, uint64_t *version)
{
    char row[sizeof AUTH_ROW_PREFIX + AUTH_USER_MAX];
    snprintf(row, sizeof row, AUTH_ROW_PREFIX "%s", name);
    uint8_t *v = NULL;
    size_t len = 0;
    int rc = meta_row_get(n, row, &v, &len, version);
    if (rc)
        return rc;
    if (!v)
        return OKV_ENOTFOUND;
    rc = auth_user_decode(v, len, name, u) ? OKV_ECORRUPT : OKV_OK;
    free(v);
    return rc;
}

static int set_password(user_write *w, const char *password)
{
    if (!password[0]) {
        w->user.hash[0] = '\0';
        return OKV_OK;
    }
    if (strlen(password) > AUTH_PASSWORD_MAX) {
        reply_fail(w, OKV_EINVAL, "the password is longer than 1024 bytes");
        return OKV_EINVAL;
    }
    if (auth_password_hash(password, w->user.hash, sizeof w->user.hash)) {
        reply_fail(w, OKV_EINTERNAL, "the system's crypt(3) could not hash the password");
        return OKV_EINTERNAL;
    }
    return OKV_OK;
}

static void handle_user_add(rpc_call *call, const uint8_t *buf, size_t len, void *arg)
{
    node *n = arg;
    Orderkv__V1__UserAddRequest *req = orderkv__v1__user_add_request__unpack(NULL, len, buf);
    if (!req) {
        service_reply_error(call, OKV_EPROTO, "malformed UserAddRequest");
        return;
    }
    char what[160];
    snprintf(what, sizeof what, "user-add name=%.64s role=%.16s", req->name, req->role);
    user_write *w = write_begin(call, n, what);
    if (w) {
        enum auth_role role;
        if (!auth_user_name_valid(req->name))
            reply_fail(w, OKV_EINVAL, "a user name is 1 to 64 of A-Z a-z 0-9 . _ -");
        else if (auth_role_parse(req->role, &role))
            reply_fail(w, OKV_EINVAL, "role must be admin, writer, reader or none");
        else {
            snprintf(w->user.name, sizeof w->user.name, "%s", req->name);
            w->user.role = role;
            if (set_password(w, req->password) == OKV_OK)
                propose(w, 0);
        }
    }
    orderkv__v1__user_add_request__free_unpacked(req, NULL);
}

/* The change a UserSet asks for, applied to w->user. OKV_OK or answered. */
static int apply_set(user_write *w, const Orderkv__V1__UserSetRequest *req)
{
    if (req->role[0]) {
        enum auth_role role;
        if (auth_role_parse(req->role, &role)) {
            reply_fail(w, OKV_EINVAL, "role must be admin, writer, reader or none");
            return OKV_EINVAL;
        }
        if (role != AUTH_ROLE_ADMIN && w->who.state == RPC_ID_USER &&
            strcmp(w->who.user, w->user.name) == 0) {
            reply_fail(w, OKV_EINVAL, "an admin cannot take its own admin role (it could lock "
                                      "every admin out): ask another admin");
            return OKV_EINVAL;
        }
        w->user.role = role;
    }
    if (req->grant_table[0]) {
        enum auth_access a;
        if (auth_access_parse(req->grant_access, &a)) {
            reply_fail(w, OKV_EINVAL, "access must be reader, writer or none");
            return OKV_EINVAL;
        }
        if (auth_user_set_grant(&w->user, req->grant_table, a)) {
            reply_fail(w, OKV_EINVAL, "too many grants (16 at most) or a table name too long");
            return OKV_EINVAL;
        }
    }
    if (req->set_password)
        return set_password(w, req->password);
    return OKV_OK;
}

static void handle_user_set(rpc_call *call, const uint8_t *buf, size_t len, void *arg)
{
    node *n = arg;
    Orderkv__V1__UserSetRequest *req = orderkv__v1__user_set_request__unpack(NULL, len, buf);
    if (!req) {
        service_reply_error(call, OKV_EPROTO, "malformed UserSetRequest");
        return;
    }
    char what[400];
    /* The password itself is never recorded. */
    snprintf(what, sizeof what, "user-set name=%.64s%s%s%.32s%s%.64s%s%.8s", req->name,
             req->set_password ? " password=(changed)" : "", req->role[0] ? " role=" : "",
             req->role, req->grant_table[0] ? " grant=" : "", req->grant_table,
             req->grant_table[0] ? ":" : "", req->grant_table[0] ? req->grant_access : "");
    user_write *w = write_begin(call, n, what);
    if (w) {
        uint64_t version = 0;
        int rc = read_user(n, req->name, &w->user, &version);
        if (rc == OKV_ENOTFOUND)
            reply_fail(w, rc, "no such user");
        else if (rc)
            reply_fail(w, rc, "the user's record cannot be read");
        else if (apply_set(w, req) == OKV_OK) {
            w->reply_user = 1;
            propose(w, version);
        }
    }
    orderkv__v1__user_set_request__free_unpacked(req, NULL);
}

static void handle_user_delete(rpc_call *call, const uint8_t *buf, size_t len, void *arg)
{
    node *n = arg;
    Orderkv__V1__UserDeleteRequest *req = orderkv__v1__user_delete_request__unpack(NULL, len, buf);
    if (!req) {
        service_reply_error(call, OKV_EPROTO, "malformed UserDeleteRequest");
        return;
    }
    char what[160];
    snprintf(what, sizeof what, "user-delete name=%.64s", req->name);
    user_write *w = write_begin(call, n, what);
    if (w) {
        uint64_t version = 0;
        int rc = read_user(n, req->name, &w->user, &version);
        if (rc == OKV_ENOTFOUND)
            reply_fail(w, rc, "no such user");
        else if (rc && rc != OKV_ECORRUPT)
            reply_fail(w, rc, "the user's record cannot be read");
        else if (w->who.state == RPC_ID_USER && strcmp(w->who.user, req->name) == 0)
            reply_fail(w, OKV_EINVAL, "an admin cannot delete itself: ask another admin");
        else {
            snprintf(w->user.name, sizeof w->user.name, "%s", req->name);
            w->is_delete = 1;
            propose(w, version);
        }
    }
    orderkv__v1__user_delete_request__free_unpacked(req, NULL);
}

static void handle_user_list(rpc_call *call, const uint8_t *buf, size_t len, void *arg)
{
    (void)buf;
    (void)len;
    node *n = arg;
    if (!n->auth) {
        service_reply_error(call, OKV_EINVAL, "this node runs with --auth off: it has no users");
        return;
    }
    char **names = NULL;
    size_t count = 0;
    int rc = meta_rows_list(n, AUTH_ROW_PREFIX, LIST_MAX, &names, &count);
    if (rc) {
        service_reply_error(call, rc, "cannot list the meta group's user rows");
        return;
    }
    auth_user *users = calloc(count ? count : 1, sizeof *users);
    Orderkv__V1__UserInfo *infos = calloc(count ? count : 1, sizeof *infos);
    Orderkv__V1__UserInfo **ip = calloc(count ? count : 1, sizeof *ip);
    Orderkv__V1__TableGrant *g = calloc((count ? count : 1) * AUTH_MAX_GRANTS, sizeof *g);
    Orderkv__V1__TableGrant **gp = calloc((count ? count : 1) * AUTH_MAX_GRANTS, sizeof *gp);
    size_t k = 0;
    if (users && infos && ip && g && gp) {
        for (size_t i = 0; i < count; i++) {
            uint64_t version;
            if (read_user(n, names[i] + strlen(AUTH_ROW_PREFIX), &users[k], &version))
                continue;
            info_fill(&users[k], &infos[k], g + k * AUTH_MAX_GRANTS, gp + k * AUTH_MAX_GRANTS);
            ip[k] = &infos[k];
            k++;
        }
        Orderkv__V1__UserListResponse resp = ORDERKV__V1__USER_LIST_RESPONSE__INIT;
        resp.n_users = k;
        resp.users = ip;
        service_reply_message(call, &resp.base);
    } else {
        service_reply_error(call, OKV_ENOMEM, "out of memory");
    }
    for (size_t i = 0; i < count; i++)
        free(names[i]);
    free(names);
    free(users);
    free(infos);
    free(ip);
    free(g);
    free(gp);
}

static void handle_whoami(rpc_call *call, const uint8_t *buf, size_t len, void *arg)
{
    (void)buf;
    (void)len;
    node *n = arg;
    Orderkv__V1__WhoAmIResponse resp = ORDERKV__V1__WHO_AM_IRESPONSE__INIT;
    const rpc_identity *id = rpc_call_identity(call);
    resp.auth_enabled = n->auth != NULL;
    auth_user u;
    Orderkv__V1__UserInfo info;
    Orderkv__V1__TableGrant g[AUTH_MAX_GRANTS], *gp[AUTH_MAX_GRANTS];
    if (n->auth) {
        resp.user = (char *)id->user;
        resp.via = id->state == RPC_ID_NODE       ? "node"
                   : strcmp(id->proof, "cert") == 0 ? "certificate"
                                                    : "password";
        if (auth_user_of(n->auth, id, &u) == OKV_OK) {
            info_fill(&u, &info, g, gp);
            resp.info = &info;
        }
    }
    service_reply_message(call, &resp.base);
}

int service_users_register(node *n, okv_error *err)
{
    static const struct {
        const char *name;
        rpc_handler fn;
    } methods[] = {
        { "WhoAmI", handle_whoami },         { "UserAdd", handle_user_add },
        { "UserSet", handle_user_set },      { "UserDelete", handle_user_delete },
        { "UserList", handle_user_list },
    };
    for (size_t i = 0; i < sizeof methods / sizeof methods[0]; i++) {
        char path[64];
        snprintf(path, sizeof path, "/orderkv.v1.Admin/%s", methods[i].name);
        int rc = rpc_server_add_method(n->rpc, path, methods[i].fn, n, err);
        if (rc)
            return rc;
    }
    return OKV_OK;
}
