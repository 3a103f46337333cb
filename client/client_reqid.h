/*
 * client_reqid.h — where a client session's request ids start. Pure (no
 * gRPC), so the node simulator (tests/nodesim) numbers its clients' writes
 * by the very rule liborderkv uses.
 */
#ifndef OKV_CLIENT_REQID_H
#define OKV_CLIENT_REQID_H

#include <stdint.h>

/* Request ids of a session (client_reqid.c). A session's ids are
 * first, first + 1, first + 2, ... in the order its writes begin, where
 * first = client_request_id_first(wall clock, at_least) at okv_connect.
 *
 * Why the clock: partitions keep (client id, request id) -> answer, and a
 * client may reuse its client_id in a new session (a restarted service).
 * A new session that numbered from 1 again would get the old session's
 * answers for writes it never applied. Starting at the clock reading in
 * microseconds times 2^CLIENT_REQUEST_ID_SHIFT puts a later session's
 * first id above every id an earlier one used, provided
 *
 *   (reading at session 2's start - reading at session 1's start) in us
 *       > (ids session 1 used) / 2^CLIENT_REQUEST_ID_SHIFT,
 *
 * i.e. session 1 averaged fewer than 1,024 writes per microsecond (about
 * a billion a second) and the clock did not step back in between.
 * at_least covers what the clock cannot within one process: okv_connect
 * passes the highest id any client closed earlier in this process used,
 * plus one. Readings are clamped below CLIENT_REQUEST_ID_CLOCK_MAX (the
 * year 2255) so that first stays below 2^63 and a session never wraps. */
#define CLIENT_REQUEST_ID_SHIFT 10
#define CLIENT_REQUEST_ID_CLOCK_MAX ((UINT64_C(1) << 53) - 1)

/* The first request id of a session started at now_us (microseconds since
 * the Unix epoch): max(min(now_us, CLOCK_MAX) << SHIFT, at_least), never 0.
 * Pure: a simulator passes its own clock. */
uint64_t client_request_id_first(uint64_t now_us, uint64_t at_least);

#endif
