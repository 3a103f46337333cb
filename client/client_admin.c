/*
 * client_admin.c — node status.
 */
#include <stdlib.h>
#include <string.h>

#include "client_int.h"
#include "orderkv.pb-c.h"

struct okv_status {
    Orderkv__V1__StatusResponse *resp;
    char address[CLIENT_ADDR_MAX];
};

int okv_status_get(okv_client *c, okv_status **out, int timeout_ms)
{
    if (!c || !out)
        return OKV_EINVAL;
    *out = NULL;
    Orderkv__V1__StatusRequest req = ORDERKV__V1__STATUS_REQUEST__INIT;
    ProtobufCMessage *m;
    size_t idx = 0;
    int rc = client_unary(c, M_STATUS, &req.base, &orderkv__v1__status_response__descriptor, 0,
                          timeout_ms, &m, &idx);
    if (rc)
        return rc;
    okv_status *s = calloc(1, sizeof *s);
    if (!s) {
        protobuf_c_message_free_unpacked(m, NULL);
        return client_fail(c, OKV_ENOMEM, "out of memory");
    }
    s->resp = (Orderkv__V1__StatusResponse *)m;
    memcpy(s->address, c->addrs[idx], sizeof s->address);
    *out = s;
    return OKV_OK;
}

uint64_t okv_status_node_id(const okv_status *s) { return s->resp->node_id; }
const char *okv_status_server_version(const okv_status *s) { return s->resp->server_version; }
const char *okv_status_address(const okv_status *s) { return s->address; }
uint64_t okv_status_uptime_ms(const okv_status *s) { return s->resp->uptime_ms; }
size_t okv_status_table_count(const okv_status *s) { return s->resp->n_tables; }

const char *okv_status_table_name(const okv_status *s, size_t i)
{
    return i < s->resp->n_tables ? s->resp->tables[i]->name : NULL;
}

uint32_t okv_status_table_id(const okv_status *s, size_t i)
{
    return i < s->resp->n_tables ? s->resp->tables[i]->id : 0;
}

uint32_t okv_status_table_partitions(const okv_status *s, size_t i)
{
    return i < s->resp->n_tables ? s->resp->tables[i]->partitions : 0;
}

uint64_t okv_status_counter(const okv_status *s, const char *name)
{
    for (size_t i = 0; i < s->resp->n_counters; i++)
        if (strcmp(s->resp->counters[i]->name, name) == 0)
            return s->resp->counters[i]->value;
    return 0;
}

void okv_status_free(okv_status *s)
{
    if (!s)
        return;
    protobuf_c_message_free_unpacked(&s->resp->base, NULL);
    free(s);
}
