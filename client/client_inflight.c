/*
 * client_inflight.c — request ids of writes and the client's watermark.
 *
 * Every write carries (client id, request id); partitions keep its result
 * so that a retry of the same request is answered, not applied again. The
 * watermark sent with each write lets them forget those records: it is the
 * oldest request id this client still has in flight, so every id below it
 * has its final answer and is never sent again (not even by a retry).
 *
 * A session's ids start from the wall clock, not from 1, so that a new
 * session with the same client id is not answered from an old session's
 * records (client_request_id_first). The first write of a new session
 * carries a watermark far above the old session's: partitions then drop
 * the old records and raise their stored watermark, which is safe because
 * sessions of one client id never overlap (orderkv.h).
 *
 * Ids are handed out under the same lock that appends them to the list, so
 * the list is in id order and its head is the watermark: O(1) both ways.
 */
#include "client_int.h"

uint64_t client_write_begin(okv_client *c, client_write *w)
{
    pthread_mutex_lock(&c->inflight_mu);
    w->id = c->next_request_id++;
    w->next = NULL;
    w->prev = c->inflight_tail;
    if (c->inflight_tail)
        c->inflight_tail->next = w;
    else
        c->inflight_head = w;
    c->inflight_tail = w;
    uint64_t watermark = c->inflight_head->id;
    pthread_mutex_unlock(&c->inflight_mu);
    return watermark;
}

void client_write_end(okv_client *c, client_write *w)
{
    pthread_mutex_lock(&c->inflight_mu);
    if (w->prev)
        w->prev->next = w->next;
    else
        c->inflight_head = w->next;
    if (w->next)
        w->next->prev = w->prev;
    else
        c->inflight_tail = w->prev;
    pthread_mutex_unlock(&c->inflight_mu);
}
