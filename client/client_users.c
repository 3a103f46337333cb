/*
 * client_users.c — users and roles (Admin.WhoAmI, UserAdd, UserSet,
 * UserDelete, UserList). The writes go to the meta group's leader: a
 * NOT_LEADER answer names it and client_unary follows.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "client_int.h"
#include "orderkv.pb-c.h"

struct okv_user_list {
    Orderkv__V1__UserListResponse *resp;
};

static int bad(okv_client *c, const char *what)
{
    return client_fail(c, OKV_EINVAL, "%s", what);
}

/* A write call; its response is dropped. */
static int write_call(okv_client *c, enum client_method m, const ProtobufCMessage *req,
                      const ProtobufCMessageDescriptor *d, int timeout_ms)
{
    ProtobufCMessage *resp = NULL;
    int rc = client_unary(c, m, req, d, 1, timeout_ms, &resp, NULL, NULL);
    if (resp)
        protobuf_c_message_free_unpacked(resp, NULL);
    return rc;
}

int okv_whoami(okv_client *c, char *user, size_t user_cap, char *role, size_t role_cap,
               int *auth_enabled, int timeout_ms)
{
    if (!c || !user || !role || !auth_enabled || !user_cap || !role_cap)
        return OKV_EINVAL;
    Orderkv__V1__WhoAmIRequest req = ORDERKV__V1__WHO_AM_IREQUEST__INIT;
    ProtobufCMessage *m = NULL;
    int rc = client_unary(c, M_WHOAMI, &req.base, &orderkv__v1__who_am_iresponse__descriptor, 0,
                          timeout_ms, &m, NULL, NULL);
    if (rc)
        return rc;
    Orderkv__V1__WhoAmIResponse *r = (Orderkv__V1__WhoAmIResponse *)m;
    *auth_enabled = r->auth_enabled;
    snprintf(user, user_cap, "%s", r->user);
    snprintf(role, role_cap, "%s", r->info ? r->info->role : "");
    protobuf_c_message_free_unpacked(m, NULL);
    return OKV_OK;
}

int okv_user_add(okv_client *c, const char *name, const char *password, const char *role,
                 int timeout_ms)
{
    if (!c || !name || !role)
        return c ? bad(c, "okv_user_add: name and role are required") : OKV_EINVAL;
    Orderkv__V1__UserAddRequest req = ORDERKV__V1__USER_ADD_REQUEST__INIT;
    req.name = (char *)name;
    req.password = (char *)(password ? password : "");
    req.role = (char *)role;
    return write_call(c, M_USER_ADD, &req.base, &orderkv__v1__user_add_response__descriptor,
                      timeout_ms);
}

static int user_set(okv_client *c, Orderkv__V1__UserSetRequest *req, int timeout_ms)
{
    return write_call(c, M_USER_SET, &req->base, &orderkv__v1__user_set_response__descriptor,
                      timeout_ms);
}

int okv_user_set_role(okv_client *c, const char *name, const char *role, int timeout_ms)
{
    if (!c || !name || !role || !role[0])
        return c ? bad(c, "okv_user_set_role: name and role are required") : OKV_EINVAL;
    Orderkv__V1__UserSetRequest req = ORDERKV__V1__USER_SET_REQUEST__INIT;
    req.name = (char *)name;
    req.role = (char *)role;
    return user_set(c, &req, timeout_ms);
}

int okv_user_set_password(okv_client *c, const char *name, const char *password,
                          int timeout_ms)
{
    if (!c || !name)
        return c ? bad(c, "okv_user_set_password: name is required") : OKV_EINVAL;
    Orderkv__V1__UserSetRequest req = ORDERKV__V1__USER_SET_REQUEST__INIT;
    req.name = (char *)name;
    req.set_password = 1;
    req.password = (char *)(password ? password : "");
    return user_set(c, &req, timeout_ms);
}

int okv_user_grant(okv_client *c, const char *name, const char *table, const char *access,
                   int timeout_ms)
{
    if (!c || !name || !table || !table[0] || !access)
        return c ? bad(c, "okv_user_grant: name, table and access are required") : OKV_EINVAL;
    Orderkv__V1__UserSetRequest req = ORDERKV__V1__USER_SET_REQUEST__INIT;
    req.name = (char *)name;
    req.grant_table = (char *)table;
    req.grant_access = (char *)access;
    return user_set(c, &req, timeout_ms);
}

int okv_user_delete(okv_client *c, const char *name, int timeout_ms)
{
    if (!c || !name)
        return c ? bad(c, "okv_user_delete: name is required") : OKV_EINVAL;
    Orderkv__V1__UserDeleteRequest req = ORDERKV__V1__USER_DELETE_REQUEST__INIT;
    req.name = (char *)name;
    return write_call(c, M_USER_DELETE, &req.base,
                      &orderkv__v1__user_delete_response__descriptor, timeout_ms);
}

int okv_user_list_get(okv_client *c, okv_user_list **out, int timeout_ms)
{
    if (!c || !out)
        return OKV_EINVAL;
    *out = NULL;
    Orderkv__V1__UserListRequest req = ORDERKV__V1__USER_LIST_REQUEST__INIT;
    ProtobufCMessage *m = NULL;
    int rc = client_unary(c, M_USER_LIST, &req.base, &orderkv__v1__user_list_response__descriptor,
                          0, timeout_ms, &m, NULL, NULL);
    if (rc)
        return rc;
    okv_user_list *l = calloc(1, sizeof *l);
    if (!l) {
        protobuf_c_message_free_unpacked(m, NULL);
        return client_fail(c, OKV_ENOMEM, "out of memory");
    }
    l->resp = (Orderkv__V1__UserListResponse *)m;
    *out = l;
    return OKV_OK;
}

size_t okv_user_list_count(const okv_user_list *l) { return l ? l->resp->n_users : 0; }

static const Orderkv__V1__UserInfo *user_at(const okv_user_list *l, size_t i)
{
    return l && i < l->resp->n_users ? l->resp->users[i] : NULL;
}

const char *okv_user_list_name(const okv_user_list *l, size_t i)
{
    const Orderkv__V1__UserInfo *u = user_at(l, i);
    return u ? u->name : NULL;
}

const char *okv_user_list_role(const okv_user_list *l, size_t i)
{
    const Orderkv__V1__UserInfo *u = user_at(l, i);
    return u ? u->role : NULL;
}

int okv_user_list_has_password(const okv_user_list *l, size_t i)
{
    const Orderkv__V1__UserInfo *u = user_at(l, i);
    return u ? u->has_password : 0;
}

void okv_user_list_grants(const okv_user_list *l, size_t i, char *buf, size_t cap)
{
    const Orderkv__V1__UserInfo *u = user_at(l, i);
    if (!cap)
        return;
    buf[0] = '\0';
    size_t used = 0;
    for (size_t k = 0; u && k < u->n_grants && used < cap; k++) {
        int w = snprintf(buf + used, cap - used, "%s%s:%s", k ? "," : "", u->grants[k]->table,
                         u->grants[k]->access);
        if (w < 0)
            break;
        used += (size_t)w;
    }
}

void okv_user_list_free(okv_user_list *l)
{
    if (!l)
        return;
    protobuf_c_message_free_unpacked(&l->resp->base, NULL);
    free(l);
}
