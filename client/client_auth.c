/*
 * client_auth.c — the user name and password a client sends on every call
 * (okv_options.user / .password, version 4), as gRPC metadata.
 *
 * The metadata lives as long as the client: gRPC reads it when a batch of
 * ops starts, and every call of this client (unary, asynchronous, batched
 * stream) points at the same two entries.
 */
#define _GNU_SOURCE   /* explicit_bzero */
#include <stdlib.h>
#include <string.h>

#include "auth_md.h"
#include "client_int.h"

static int printable(const char *s)
{
    for (; *s; s++)
        if ((unsigned char)*s < 0x20 || *s == 0x7f)
            return 0;
    return 1;
}

int client_auth_init(okv_client *c, const char *user, const char *password)
{
    c->auth_md_count = 0;
    if (!user)
        return password ? client_fail(NULL, OKV_EINVAL,
                                      "okv_options.password is set but user is not")
                        : OKV_OK;
    if (!*user || strlen(user) > AUTH_USER_MAX || !printable(user))
        return client_fail(NULL, OKV_EINVAL,
                           "okv_options.user must be 1 to %d printable characters",
                           AUTH_USER_MAX);
    if (password && (strlen(password) > AUTH_PASSWORD_MAX || !printable(password)))
        return client_fail(NULL, OKV_EINVAL,
                           "okv_options.password must be at most %d printable characters",
                           AUTH_PASSWORD_MAX);
    c->auth_user = strdup(user);
    c->auth_password = strdup(password ? password : "");
    if (!c->auth_user || !c->auth_password) {
        client_auth_free(c);
        return client_fail(NULL, OKV_ENOMEM, "out of memory");
    }
    c->auth_md[0].key = grpc_slice_from_static_string(AUTH_MD_USER);
    c->auth_md[0].value = grpc_slice_from_copied_string(user);
    c->auth_md[1].key = grpc_slice_from_static_string(AUTH_MD_PASSWORD);
    c->auth_md[1].value = grpc_slice_from_copied_string(password ? password : "");
    c->auth_md_count = 2;
    return OKV_OK;
}

void client_auth_free(okv_client *c)
{
    for (size_t i = 0; i < c->auth_md_count; i++) {
        grpc_slice_unref(c->auth_md[i].key);
        grpc_slice_unref(c->auth_md[i].value);
    }
    c->auth_md_count = 0;
    if (c->auth_password)
        explicit_bzero(c->auth_password, strlen(c->auth_password));
    free(c->auth_user);
    free(c->auth_password);
    c->auth_user = c->auth_password = NULL;
}

void client_auth_md(const okv_client *c, grpc_op *send_initial_metadata)
{
    send_initial_metadata->data.send_initial_metadata.count = c->auth_md_count;
    send_initial_metadata->data.send_initial_metadata.metadata =
        c->auth_md_count ? (grpc_metadata *)c->auth_md : NULL;
}
