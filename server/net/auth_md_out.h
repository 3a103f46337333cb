/*
 * auth_md_out.h — the metadata a node sends on its own calls to its peers
 * (Raft streams, snapshots) when the cluster runs with --auth on: the
 * internal user and the cluster's secret (common/auth_md.h). Static slices:
 * the secret outlives every call that points at it.
 */
#ifndef OKV_SERVER_AUTH_MD_OUT_H
#define OKV_SERVER_AUTH_MD_OUT_H

#include <grpc/grpc.h>
#include <string.h>

#include "auth_md.h"

typedef struct auth_md_out {
    grpc_metadata md[2];
    size_t count;
} auth_md_out;

/* secret NULL: no metadata (--auth off). */
static inline void auth_md_out_init(auth_md_out *o, const char *secret)
{
    memset(o, 0, sizeof *o);
    if (!secret)
        return;
    o->md[0].key = grpc_slice_from_static_string(AUTH_MD_USER);
    o->md[0].value = grpc_slice_from_static_string(AUTH_NODE_USER);
    o->md[1].key = grpc_slice_from_static_string(AUTH_MD_PASSWORD);
    o->md[1].value = grpc_slice_from_static_string(secret);
    o->count = 2;
}

/* Points a SEND_INITIAL_METADATA op at o (which must outlive the call). */
static inline void auth_md_out_set(const auth_md_out *o, grpc_op *op)
{
    op->data.send_initial_metadata.count = o->count;
    op->data.send_initial_metadata.metadata = o->count ? (grpc_metadata *)o->md : NULL;
}

#endif
