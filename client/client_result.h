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
/* The op behind a callback's result (NULL for a batch's own result). */
const client_op *client_result_op(const okv_result *r);
/* Moves a successful call's response out of r (NULL on failure). */
ProtobufCMessage *client_result_take_resp(const okv_result *r);
/* Submits op and waits (not from a callback: OKV_EINVAL); returns op->rc
 * (recorded with client_fail). The caller still owns and frees op. */
int client_op_wait(okv_client *c, client_op *op);
/* Submits op with cb as its callback; frees op on failure. */
int client_op_submit_async(okv_client *c, client_op *op, okv_callback cb, void *arg);

/* Result objects from responses: a copy of a GetResponse's value; a scan
 * result that takes ownership of m. NULL when out of memory. */
okv_value *client_value_from(const ProtobufCMessage *m);
okv_value *client_value_new(const void *data, size_t len, uint64_t version);
okv_scan_result *client_scan_from(ProtobufCMessage *m);

#endif
