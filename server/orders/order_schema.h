/*
 * order_schema.h — the schema version the planners write, and the check that
 * keeps them from rewriting a record a newer version wrote (records.proto,
 * compatibility rule 5).
 */
#ifndef OKV_ORDERS_SCHEMA_H
#define OKV_ORDERS_SCHEMA_H

#include <stdint.h>

#include "order_error.h"

#define ORD_SCHEMA_VERSION 1u

/* 0 if a record with schema_version v may be rewritten by this build;
 * OKV_EFORMAT (reason INVALID) naming the record otherwise. */
static inline int ord_schema_check(const char *what, const char *id, uint32_t v,
                                   ord_error *err)
{
    if (v <= ORD_SCHEMA_VERSION)
        return 0;
    return ord_error_set_code(err, OKV_EFORMAT, ORD_R(INVALID),
                              "%s %s was written with record schema %u; this orderkvd knows "
                              "schema %u and will not change it: upgrade the node", what, id, v,
                              ORD_SCHEMA_VERSION);
}

#endif
