#!/usr/bin/env bash
# `cmake --install` puts liborderkv, orderkv.h and orderkv.pc under a prefix,
# and a program outside the tree builds against them with pkg-config alone,
# both against the shared and the static library.
set -euo pipefail
build="$1"
# The app is built with the same sanitizer flags as the library (ASan build).
extra=(${OKV_APP_CFLAGS:-})
tmp="$(mktemp -d /tmp/okvtest-install-XXXXXX)"
trap 'rm -rf "$tmp"' EXIT
cmake --install "$build" --prefix "$tmp/prefix" >/dev/null
for f in include/orderkv.h include/orderkv_orders.h include/orderkv/orders.pb-c.h \
         include/orderkv/records.pb-c.h include/orderkv/orderkv.pb-c.h lib/pkgconfig/orderkv.pc \
         bin/orderkvd bin/orderkv; do
  [ -e "$tmp/prefix/$f" ] || { echo "missing after install: $f"; exit 1; }
done
ls "$tmp/prefix/lib"/liborderkv.so* "$tmp/prefix/lib/liborderkv.a" >/dev/null

cat >"$tmp/app.c" <<'C'
#include <orderkv.h>
#include <stdio.h>
int main(void)
{
    okv_client *c;
    if (okv_connect(&c, "127.0.0.1:1", NULL) != OKV_OK)
        return 1;
    okv_value *v = NULL;
    int rc = okv_get(c, "orders", "k", 1, &v, 1000);
    printf("%s\n", okv_strerror(rc));
    okv_close(c);
    return rc == OKV_EUNAVAILABLE || rc == OKV_ETIMEDOUT ? 0 : 1;
}
C
export PKG_CONFIG_PATH="$tmp/prefix/lib/pkgconfig"
# shellcheck disable=SC2046
cc -std=c11 -Wall -Werror "${extra[@]}" "$tmp/app.c" -o "$tmp/app" $(pkg-config --cflags --libs orderkv)
LD_LIBRARY_PATH="$tmp/prefix/lib" "$tmp/app"
# shellcheck disable=SC2046
cc -std=c11 "${extra[@]}" "$tmp/app.c" -o "$tmp/app_static" $(pkg-config --cflags orderkv) \
  "$tmp/prefix/lib/liborderkv.a" $(pkg-config --libs grpc libprotobuf-c)
"$tmp/app_static"

# The orders API: its header, the generated messages it includes, and their
# code (descriptors, _init) exported by the shared library.
cat >"$tmp/orders_app.c" <<'C'
#include <orderkv_orders.h>
#include <stdio.h>
int main(void)
{
    okv_client *c;
    if (okv_connect(&c, "127.0.0.1:1", NULL) != OKV_OK)
        return 1;
    Orderkv__V1__GetOrderRequest rq = ORDERKV__V1__GET_ORDER_REQUEST__INIT;
    rq.customer_id = "c1";
    rq.order_id = "o1";
    Orderkv__V1__GetOrderResponse *r = NULL;
    int rc = okv_order_get(c, &rq, &r, 1000);
    okv_orders_response_free(r);
    char buf[OKV_MONEY_TEXT_MAX];
    okv_money_format(buf, sizeof buf, 1234, "CNY");
    printf("%s %s\n", okv_strerror(rc), buf);
    okv_close(c);
    return (rc == OKV_EUNAVAILABLE || rc == OKV_ETIMEDOUT) && buf[0] == '1' ? 0 : 1;
}
C
# shellcheck disable=SC2046
cc -std=c11 -Wall -Werror "${extra[@]}" "$tmp/orders_app.c" -o "$tmp/orders_app" \
  $(pkg-config --cflags --libs orderkv)
LD_LIBRARY_PATH="$tmp/prefix/lib" "$tmp/orders_app"
echo "install: ok"
