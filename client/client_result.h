/*
 * client_result.h — okv_result and batches of writes (internal).
 */
#ifndef OKV_CLIENT_RESULT_H
#define OKV_CLIENT_RESULT_H

#include "client_async.h"

/* Makes op's done call cb with an okv_result, then free op. */
void client_result_attach(client_op *op, okv_callback cb, void *arg);

/* Builders shared with client_kv.c (errors recorded with client_fail). */
int client_check_table_key(okv_client *c, const char *table, const void *key, size_t key_len);
client_op *client_put_op(okv_client *c, const char *table, const void *key, size_t key_len,
                         const void *value, size_t value_len, int check, uint64_t expected,
                         int timeout_ms, int *rc);
client_op *client_delete_op(okv_client *c, const char *table, const void *key, size_t key_len,
                            int timeout_ms, int *rc);
/* Result objects from responses: a copy of a GetResponse's value; a scan
 * result that takes ownership of m. NULL when out of memory. */
okv_value *client_value_from(const ProtobufCMessage *m);
okv_scan_result *client_scan_from(ProtobufCMessage *m);

#endif
