#!/usr/bin/python3
"""orders.py - a complete Python program over orderkv's orders service
(proto/orders.proto, docs/orders.md), with nothing but grpcio and the
.proto files: open an account and fund it, stock a sku, place an order that
reserves stock, pay it with an idempotency key, resend the payment and see
it replayed (not charged again), refund part of it, and print the balance.

    /usr/bin/python3 examples/orders.py ADDRS [--proto-dir DIR]
    e.g. examples/orders.py 127.0.0.1:7401,127.0.0.1:7402,127.0.0.1:7403

Needs a cluster (orderkvd --initial-cluster; scripts/cluster.sh up) and
Debian's python3-grpcio and python3-grpc-tools. The Python stubs are
generated from proto/ into a temporary directory at start (generated code is
never committed). Ids carry the process id and the time, so the program can
run again on the same cluster. The ctest `examples.orders_py` runs it
against a fresh 3-node cluster (examples/run_example.sh).

Exit status: 0 every step did what the rules promise, 1 a step failed or a
check did not hold, 2 usage, 77 grpcio or grpc_tools missing (skip).
"""

import argparse
import os
import subprocess
import sys
import tempfile
import time

try:
    import grpc
    import grpc_tools  # noqa: F401  (protoc is run as a module below)
except ImportError as e:  # pragma: no cover - depends on the machine
    print(f"SKIP: {e} (apt-get install python3-grpcio python3-grpc-tools; "
          "run with /usr/bin/python3)")
    sys.exit(77)

CALL_TIMEOUT_S = 10.0     # each attempt of an RPC
RETRY_FOR_S = 30.0        # all attempts of one request together
SC = grpc.StatusCode

# Filled in by load_stubs().
O = None   # orders_pb2: requests and responses
R = None   # records_pb2: Order, Payment, Refund, Account, OrderStatus


class Failed(Exception):
    pass


def load_stubs(proto_dir, out_dir):
    """Generates orders_pb2 / records_pb2 / orderkv_pb2 (+ _grpc) from proto/."""
    global O, R
    protos = [os.path.join(proto_dir, p) for p in ("orderkv.proto", "records.proto",
                                                   "orders.proto")]
    r = subprocess.run([sys.executable, "-m", "grpc_tools.protoc", f"-I{proto_dir}",
                        f"--python_out={out_dir}", f"--grpc_python_out={out_dir}", *protos],
                       capture_output=True, text=True, timeout=60)
    if r.returncode != 0:
        raise Failed(f"protoc: {r.stderr.strip()}")
    sys.path.insert(0, out_dir)
    import orders_pb2
    import orders_pb2_grpc
    import records_pb2
    O, R = orders_pb2, records_pb2
    return orders_pb2_grpc


def money(minor, currency="CNY"):
    """'30.00 CNY' from 3000, with integers only (CNY has 2 decimal places;
    okv_money_format knows every ISO 4217 exponent)."""
    sign = "-" if minor < 0 else ""
    return f"{sign}{abs(minor) // 100}.{abs(minor) % 100:02d} {currency}"


class Orders:
    """The Orders service on every node of the cluster. Any node serves any
    request (it forwards to the partitions' leaders), so a node that cannot
    answer is replaced by the next one.

    The retry rule (docs/orders.md, "Retries and idempotency"):
      - UNAVAILABLE means nothing was applied (no leader, not committed):
        resending is always safe.
      - DEADLINE_EXCEEDED, UNKNOWN, a dropped connection: the request may or
        may not have applied. Resend only a request that carries an
        idempotency key (the cluster then answers the first response and
        never applies it twice) or a read. Otherwise report it and let the
        caller read before deciding.
      - ABORTED (IN_PROGRESS): a copy with the same key is being applied:
        resend the same request shortly to get its result.
      - Anything else is the answer: a rule's refusal (FAILED_PRECONDITION,
        NOT_FOUND, INVALID_ARGUMENT), never worth resending as is.
    """

    def __init__(self, addrs, grpc_mod):
        self.channels = [grpc.insecure_channel(a) for a in addrs]
        self.stubs = [grpc_mod.OrdersStub(ch) for ch in self.channels]
        self.next = 0

    def close(self):
        for ch in self.channels:
            ch.close()

    def call(self, method, req, resendable, node=None):
        """Orders.<method>(req); returns the response or raises grpc.RpcError.
        resendable: the request is a read or carries an idempotency key."""
        deadline = time.monotonic() + RETRY_FOR_S
        i = self.next if node is None else node
        while True:
            stub = self.stubs[i % len(self.stubs)]
            try:
                return getattr(stub, method)(req, timeout=CALL_TIMEOUT_S)
            except grpc.RpcError as e:
                code = e.code()
                safe = code == SC.UNAVAILABLE or (
                    resendable and code in (SC.DEADLINE_EXCEEDED, SC.UNKNOWN, SC.ABORTED))
                if not safe or time.monotonic() > deadline:
                    raise
                print(f"  ({method} at node {i % len(self.stubs) + 1}: {code.name}: "
                      f"{e.details()}; resending)")
                i += 1
                time.sleep(0.2)


def run(orders):
    sfx = f"{os.getpid()}-{int(time.time())}"
    acct, cust, sku = f"acct-{sfx}", f"cust-{sfx}", f"tea-{sfx}"

    # 1. An account in CNY, funded with 100.00 (amounts are int64 minor
    #    units: 10000 fen). The deposit's key makes a resend harmless.
    orders.call("CreateAccount", O.CreateAccountRequest(account_id=acct, currency="CNY",
                                                        owner=cust), resendable=True)
    dep = orders.call("Deposit", O.DepositRequest(account_id=acct, amount=10000,
                                                  idempotency_key=f"deposit-{sfx}"),
                      resendable=True)
    print(f"account {acct}: deposited {money(dep.amount)}")

    # 2. Ten units of a sku. SetStock has no key: it is not resent after an
    #    ambiguous answer (a late copy could undo reservations made since).
    orders.call("SetStock", O.SetStockRequest(sku=sku, available=10), resendable=False)

    # 3. An order of 2 x 15.00, taking 2 units in the same transaction
    #    (SOLD_OUT and nothing created if fewer were left).
    item = O.CreateOrderItem(sku=sku, quantity=2, unit_price=1500, reserve_stock=True)
    order = orders.call("CreateOrder", O.CreateOrderRequest(
        customer_id=cust, currency="CNY", items=[item], idempotency_key=f"cart-{sfx}"),
        resendable=True).order
    stock = orders.call("GetStock", O.GetStockRequest(sku=sku), resendable=True).available
    print(f"order {order.order_id}: {money(order.total)}, "
          f"{R.OrderStatus.Name(order.status)}; {sku}: {stock} left")
    if order.total != 3000 or stock != 8:
        raise Failed(f"want a total of 30.00 CNY and 8 units left, got {order.total}, {stock}")

    # 4. Pay with an idempotency key: the order becomes PAID, the payment is
    #    stored and the account debited, in one transaction.
    pay = O.PayOrderRequest(customer_id=cust, order_id=order.order_id, account_id=acct,
                            amount=order.total, idempotency_key=f"pay-{order.order_id}")
    paid = orders.call("PayOrder", pay, resendable=True, node=0)
    print(f"paid {money(paid.payment.amount)}: payment {paid.payment.payment_id}, "
          f"order {R.OrderStatus.Name(paid.order.status)}")

    # 5. Resend the same payment, as a client that lost the answer to a
    #    timeout would, through another node: the first payment is returned,
    #    nothing is charged again.
    again = orders.call("PayOrder", pay, resendable=True, node=1)
    same = again.payment.payment_id == paid.payment.payment_id
    print(f"resent with the same key: payment {again.payment.payment_id} "
          f"({'the same payment, not a second one' if same else 'A SECOND PAYMENT'})")
    if not same:
        raise Failed("a resend with the same key made a second payment")

    # 6. What the rules refuse, and how it reads: the same key with another
    #    request, and a second payment of a paid order under a new key.
    for what, req in (
            ("the payment's key with another amount",
             O.PayOrderRequest(customer_id=cust, order_id=order.order_id, account_id=acct,
                               amount=2999, idempotency_key=pay.idempotency_key)),
            ("paying the paid order again with a new key",
             O.PayOrderRequest(customer_id=cust, order_id=order.order_id, account_id=acct,
                               amount=order.total, idempotency_key=f"pay2-{order.order_id}"))):
        try:
            orders.call("PayOrder", req, resendable=True)
            raise Failed(f"{what}: accepted")
        except grpc.RpcError as e:
            print(f"{what}: {e.code().name}: {e.details()}")
            if e.code() != SC.FAILED_PRECONDITION:
                raise Failed(f"{what}: want FAILED_PRECONDITION")

    # 7. Refund 10.00 of it, back to the account that paid.
    ref = orders.call("RefundOrder", O.RefundOrderRequest(
        customer_id=cust, order_id=order.order_id, amount=1000,
        reason="one tin arrived dented", idempotency_key=f"refund-{order.order_id}"),
        resendable=True)
    print(f"refunded {money(ref.refund.amount)}: order is "
          f"{R.OrderStatus.Name(ref.order.status)}, {money(ref.order.refunded)} of "
          f"{money(ref.order.captured)} refunded")

    # 8. The balance: 100.00 - 30.00 (charged once) + 10.00 = 80.00.
    acc = orders.call("GetAccount", O.GetAccountRequest(account_id=acct), resendable=True)
    print(f"final balance of {acct}: {money(acc.balance)}")
    if acc.balance != 10000 - order.total + 1000:
        raise Failed(f"the balance should be {money(10000 - order.total + 1000)}")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("addrs", help="the cluster's host:port list, comma-separated")
    ap.add_argument("--proto-dir", default=os.path.join(os.path.dirname(
        os.path.abspath(__file__)), "..", "proto"))
    a = ap.parse_args()
    addrs = [x for x in a.addrs.split(",") if x]
    if not addrs:
        ap.error("no address")
    with tempfile.TemporaryDirectory(prefix="orderkv-py-") as tmp:
        try:
            orders = Orders(addrs, load_stubs(a.proto_dir, tmp))
        except Failed as e:
            print(f"orders.py: {e}", file=sys.stderr)
            return 1
        try:
            run(orders)
            return 0
        except Failed as e:
            print(f"orders.py: {e}", file=sys.stderr)
        except grpc.RpcError as e:
            print(f"orders.py: {e.code().name}: {e.details()}", file=sys.stderr)
        finally:
            orders.close()
    return 1


if __name__ == "__main__":
    sys.exit(main())
