/*
 * client_reqid.c — see client_reqid.h.
 */
#include "client_reqid.h"

/* The rule and its assumption are in client_reqid.h. The shift spaces
 * sessions by 1,024 ids per microsecond between their starts; the clamp
 * keeps the result below 2^63, so ids also fit a signed 64-bit integer in
 * tools that read them that way. */
uint64_t client_request_id_first(uint64_t now_us, uint64_t at_least)
{
    if (now_us > CLIENT_REQUEST_ID_CLOCK_MAX)
        now_us = CLIENT_REQUEST_ID_CLOCK_MAX;
    uint64_t first = now_us << CLIENT_REQUEST_ID_SHIFT;
    if (first < at_least)
        first = at_least;
    return first ? first : 1;
}
