#!/usr/bin/python3
"""End-to-end test: a Python client built from proto/*.proto alone.

The claim under test is the one proto/orderkv.proto makes: "Everything a
client needs is in this file." So this test knows nothing about orderkv but
the .proto files and the orderkvd command line. It

  1. generates Python stubs into a temp dir with grpc_tools.protoc (generated
     code is never committed),
  2. starts orderkvd on a free port (--listen 127.0.0.1:0 --port-file) with a
     fresh data dir,
  3. calls every RPC (KV.Get/Put/Delete/Scan, Admin.Status), stores Order and
     Payment records from records.proto and decodes them back,
  4. sends bad input: limits, unknown tables, malformed protobuf to every
     method, an unknown method, and seeded random garbage,
  5. checks the server is still up and the earlier data unchanged,
  6. stops it with SIGTERM (expects exit 0 in time), restarts it on the same
     data dir and checks the data survived,
  7. starts a 3-node cluster (--initial-cluster, free ports) and runs
     transactions across partitions and tables (two-phase commit): commits,
     refusals with TxnResponse.failed/reason, KV.TxnStatus, resends with the
     same request id (applied once), KV.TxnPart with garbage; then SIGTERMs
     every node (expects exit 0).

Run by ctest as `python.client` (tests/python/CMakeLists.txt) with Debian's
/usr/bin/python3 (python3-grpcio, python3-grpc-tools). By hand:

  /usr/bin/python3 tests/python/test_python_client.py \
      --orderkvd build/server/orderkvd --proto-dir proto [--seed N] [--keep]

Exit status: 0 pass, 1 fail, 77 skipped (grpc modules missing).
"""

import argparse
import atexit
import os
import random
import re
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import time
import traceback

try:
    import grpc
    import grpc_tools  # noqa: F401  (only checked for presence here)
except ImportError as e:  # pragma: no cover - depends on the machine
    print(f"SKIP: {e}; run with Debian's /usr/bin/python3 "
          "(apt-get install python3-grpcio python3-grpc-tools)")
    sys.exit(77)

RPC_TIMEOUT = 20.0        # seconds, every RPC (generous for ASan builds)
START_TIMEOUT = 30.0      # until the port file appears
STOP_TIMEOUT = 30.0       # SIGTERM -> exit
OVERALL_TIMEOUT = 600     # whole test; SIGALRM aborts it (ctest TIMEOUT is higher)

MAX_KEY = 1024
MAX_VALUE = 1024 * 1024
TABLES = {"orders", "payments", "accounts", "stock"}

# Filled in by generate_stubs().
pb = None        # orderkv_pb2
pb_grpc = None   # orderkv_pb2_grpc
rec = None       # records_pb2

SC = grpc.StatusCode
METHODS = {
    "Get": "/orderkv.v1.KV/Get",
    "Put": "/orderkv.v1.KV/Put",
    "Delete": "/orderkv.v1.KV/Delete",
    "Scan": "/orderkv.v1.KV/Scan",
    "Txn": "/orderkv.v1.KV/Txn",
    "Status": "/orderkv.v1.Admin/Status",
}
# What a request of arbitrary bytes may legitimately produce. Anything else
# (INTERNAL, UNKNOWN, UNAVAILABLE, DEADLINE_EXCEEDED, ...) is a server bug.
# UNIMPLEMENTED: garbage that decodes as a Txn over several partitions.
GARBAGE_OK_CODES = {SC.OK, SC.INVALID_ARGUMENT, SC.NOT_FOUND, SC.FAILED_PRECONDITION,
                    SC.UNIMPLEMENTED}


class TestFailure(Exception):
    pass


SOFT_FAILURES = []


def soft_fail(what):
    """A failure that should not stop the later steps; main() fails at the end."""
    log(f"FAILED (continuing): {what}")
    SOFT_FAILURES.append(what)


def check(cond, what):
    if not cond:
        raise TestFailure(what)


def log(msg):
    print(f"[python.client] {msg}", flush=True)


# --------------------------------------------------------------------------
# Stubs

def generate_stubs(proto_dir, out_dir):
    global pb, pb_grpc, rec, opb, opb_grpc
    os.makedirs(out_dir, exist_ok=True)
    cmd = [sys.executable, "-m", "grpc_tools.protoc", f"-I{proto_dir}",
           f"--python_out={out_dir}", f"--grpc_python_out={out_dir}",
           os.path.join(proto_dir, "orderkv.proto"), os.path.join(proto_dir, "records.proto"),
           os.path.join(proto_dir, "orders.proto")]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
    if r.returncode != 0:
        raise TestFailure(f"protoc failed ({r.returncode}): {r.stderr.strip()}")
    sys.path.insert(0, out_dir)
    import orderkv_pb2
    import orderkv_pb2_grpc
    import records_pb2
    import orders_pb2
    import orders_pb2_grpc
    pb, pb_grpc, rec = orderkv_pb2, orderkv_pb2_grpc, records_pb2
    opb, opb_grpc = orders_pb2, orders_pb2_grpc


# --------------------------------------------------------------------------
# Server process

class Server:
    """One orderkvd process. stop() is idempotent; kill() is for cleanup."""

    def __init__(self, binary, data_dir, work_dir, name, listen="127.0.0.1:0", extra=()):
        self.binary = binary
        self.data_dir = data_dir
        self.name = name
        self.listen = listen          # a fixed port for cluster nodes
        self.extra = list(extra)      # more flags (--node-id, --initial-cluster)
        self.port_file = os.path.join(work_dir, f"{name}.port")
        self.log_path = os.path.join(work_dir, f"{name}.log")
        self.proc = None
        self.address = None
        self.channel = None

    def start(self):
        if os.path.exists(self.port_file):
            os.unlink(self.port_file)
        self.log_file = open(self.log_path, "wb")
        self.proc = subprocess.Popen(
            [self.binary, "--data-dir", self.data_dir, "--listen", self.listen,
             "--port-file", self.port_file, "--log-level", "info"] + self.extra,
            stdout=self.log_file, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        log(f"started orderkvd {self.name} pid {self.proc.pid}")
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise TestFailure(f"orderkvd exited with {self.proc.returncode} during start-up\n"
                                  + self.log_tail())
            if os.path.exists(self.port_file):
                # The server renames the file into place, so it is whole.
                with open(self.port_file) as f:
                    self.address = f.read().strip()
                break
            time.sleep(0.02)
        else:
            raise TestFailure(f"no port file after {START_TIMEOUT}s\n" + self.log_tail())
        check(self.address.startswith("127.0.0.1:") and not self.address.endswith(":0"),
              f"port file holds {self.address!r}, expected 127.0.0.1:PORT")
        self.channel = grpc.insecure_channel(
            self.address, options=[("grpc.max_receive_message_length", 64 << 20),
                                   ("grpc.max_send_message_length", 64 << 20)])
        grpc.channel_ready_future(self.channel).result(timeout=RPC_TIMEOUT)
        self.kv = pb_grpc.KVStub(self.channel)
        self.admin = pb_grpc.AdminStub(self.channel)
        self.orders = opb_grpc.OrdersStub(self.channel)
        log(f"orderkvd serving on {self.address}")

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def close_channel(self):
        if self.channel is not None:
            self.channel.close()
            self.channel = None

    def stop(self):
        """SIGTERM; returns the exit code (None if it had to be killed)."""
        self.close_channel()
        if self.proc is None or self.proc.poll() is not None:
            return self.proc.returncode if self.proc else None
        t0 = time.monotonic()
        self.proc.send_signal(signal.SIGTERM)
        try:
            rc = self.proc.wait(timeout=STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            self.kill()
            raise TestFailure(f"orderkvd did not exit within {STOP_TIMEOUT}s of SIGTERM\n"
                              + self.log_tail())
        log(f"orderkvd exited with {rc} {time.monotonic() - t0:.2f}s after SIGTERM")
        self.log_file.close()
        return rc

    def kill(self):
        self.close_channel()
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()    # this process, by PID
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                pass

    def log_tail(self, n=40):
        try:
            with open(self.log_path, "rb") as f:
                lines = f.read().decode(errors="replace").splitlines()
            return (f"--- orderkvd {self.name} log (tail) ---\n"
                    + "\n".join(lines[-n:]))
        except OSError:
            return ""


# --------------------------------------------------------------------------
# Helpers

def expect_error(fn, req, code, substrings=(), what=""):
    """Calls fn(req) and checks it fails with `code` and a message holding
    every one of `substrings`. Returns the message."""
    try:
        fn(req, timeout=RPC_TIMEOUT)
    except grpc.RpcError as e:
        check(e.code() == code,
              f"{what}: expected {code.name}, got {e.code().name}: {e.details()!r}")
        msg = e.details() or ""
        for s in substrings:
            check(s in msg, f"{what}: message {msg!r} does not mention {s!r}")
        check(msg != "", f"{what}: {code.name} without a message")
        return msg
    raise TestFailure(f"{what}: expected {code.name}, the call succeeded")


def raw_call(channel, method, payload):
    """Sends bytes as-is (no serializer) and returns (code, details, body)."""
    call = channel.unary_unary(method, request_serializer=None, response_deserializer=None)
    try:
        body = call(payload, timeout=RPC_TIMEOUT)
        return SC.OK, "", body
    except grpc.RpcError as e:
        return e.code(), e.details() or "", None


def put(s, table, key, value, **kw):
    return s.kv.Put(pb.PutRequest(table=table, key=key, value=value, **kw), timeout=RPC_TIMEOUT)


def get(s, table, key):
    return s.kv.Get(pb.GetRequest(table=table, key=key), timeout=RPC_TIMEOUT)


def scan_all(s, table, page_limit, **bounds):
    """Pages through a scan with resume tokens; returns (items, pages)."""
    items, token, pages = [], b"", 0
    while True:
        resp = s.kv.Scan(pb.ScanRequest(table=table, limit=page_limit, resume_token=token,
                                        **bounds), timeout=RPC_TIMEOUT)
        pages += 1
        check(len(resp.items) <= (page_limit or 100),
              f"scan page has {len(resp.items)} items, limit {page_limit}")
        items.extend(resp.items)
        token = resp.resume_token
        if not token:
            return items, pages
        check(pages < 10000, "scan paging does not terminate")


def check_sorted_unique(keys, what):
    for a, b in zip(keys, keys[1:]):
        check(a < b, f"{what}: keys out of order or repeated: {a!r} then {b!r}")


def snapshot(s, table):
    items, _ = scan_all(s, table, 1000)
    return [(kv.key, kv.value, kv.version) for kv in items]


# --------------------------------------------------------------------------
# The test, in steps. `st` carries what later steps check.

def step_put_get(s, st):
    r1 = put(s, "orders", b"alice/o1", b"v1", client_id=7, request_id=1)
    check(r1.version > 0, f"Put version {r1.version}, must be > 0")
    g = get(s, "orders", b"alice/o1")
    check(g.value == b"v1" and g.version == r1.version,
          f"Get returned {g.value!r}@{g.version}, want b'v1'@{r1.version}")
    r2 = put(s, "orders", b"alice/o1", b"v2", client_id=7, request_id=2)
    check(r2.version > r1.version, f"second Put version {r2.version} <= first {r1.version}")
    g = get(s, "orders", b"alice/o1")
    check(g.value == b"v2" and g.version == r2.version, "Get after overwrite")
    # Same partition key ("alice"), other key: versions keep increasing.
    r3 = put(s, "orders", b"alice/o2", b"", client_id=7, request_id=3)
    check(r3.version > r2.version, "versions must increase within a partition")
    g = get(s, "orders", b"alice/o2")
    check(g.value == b"" and g.version == r3.version, "empty value round trip")
    # Binary keys and values, all byte values.
    key = bytes(range(1, 256))
    val = bytes(range(256)) * 4
    r = put(s, "accounts", key, val)
    g = get(s, "accounts", key)
    check(g.value == val and g.version == r.version, "binary key/value round trip")
    # Limits exactly: 1024-byte key and 1 MiB value are accepted.
    bigkey = b"k" * MAX_KEY
    big = os.urandom(MAX_VALUE)
    r = put(s, "accounts", bigkey, big)
    g = get(s, "accounts", bigkey)
    check(g.value == big and g.version == r.version, "1024-byte key / 1 MiB value round trip")
    d = s.kv.Delete(pb.DeleteRequest(table="accounts", key=bigkey), timeout=RPC_TIMEOUT)
    check(d.existed, "delete of the 1 MiB value")
    expect_error(s.kv.Get, pb.GetRequest(table="orders", key=b"nobody/none"), SC.NOT_FOUND,
                 what="Get of a missing key")
    st["puts"] = 6
    st["gets"] = 5


def step_check_version(s, st):
    k = b"bob/cas"
    # expected_version 0 = "key absent".
    r = put(s, "orders", k, b"c1", check_version=True, expected_version=0)
    check(r.version > 0, "CAS create")
    expect_error(s.kv.Put, pb.PutRequest(table="orders", key=k, value=b"x", check_version=True,
                                         expected_version=0),
                 SC.FAILED_PRECONDITION, what="CAS create over an existing key")
    expect_error(s.kv.Put, pb.PutRequest(table="orders", key=k, value=b"x", check_version=True,
                                         expected_version=r.version + 1000),
                 SC.FAILED_PRECONDITION, what="CAS with a wrong version")
    check(get(s, "orders", k).value == b"c1", "a failed CAS must change nothing")
    r2 = put(s, "orders", k, b"c2", check_version=True, expected_version=r.version)
    check(r2.version > r.version, "CAS with the right version")
    g = get(s, "orders", k)
    check(g.value == b"c2" and g.version == r2.version, "value after CAS")
    # check_version=False ignores expected_version.
    r3 = put(s, "orders", k, b"c3", check_version=False, expected_version=12345)
    check(get(s, "orders", k).version == r3.version, "unconditional put")
    # Conditional delete.
    expect_error(s.kv.Delete, pb.DeleteRequest(table="orders", key=k, check_version=True,
                                               expected_version=r2.version),
                 SC.FAILED_PRECONDITION, what="conditional Delete with a stale version")
    d = s.kv.Delete(pb.DeleteRequest(table="orders", key=k, check_version=True,
                                     expected_version=r3.version), timeout=RPC_TIMEOUT)
    check(d.existed and d.version > r3.version, "conditional Delete with the right version")


def counter(n):
    """A counter value as proto/orderkv.proto defines it."""
    return struct.pack(">q", n)


def txn(s, conds, writes, **kw):
    return s.kv.Txn(pb.TxnRequest(conditions=conds, writes=writes, **kw), timeout=RPC_TIMEOUT)


def step_txn(s, st):
    C, W = pb.TxnCondition, pb.TxnWrite
    a, b = b"shop1/alice", b"shop1/bob"
    r = txn(s, [], [W(kind=W.ADD, table="accounts", key=a, delta=1000)])
    check(r.committed and r.version > 0, "a counter add commits")
    g = get(s, "accounts", a)
    check(g.value == counter(1000) and g.version == r.version, "an add to an absent key starts at 0")
    # A transfer: a condition, a floored debit and a credit, one version.
    r2 = txn(s, [C(kind=C.INT_COMPARE, table="accounts", key=a, cmp=C.GE, num=300)],
             [W(kind=W.ADD, table="accounts", key=a, delta=-300, has_floor=True, floor=0),
              W(kind=W.ADD, table="accounts", key=b, delta=300)])
    check(r2.committed and r2.version > r.version, "transfer commits")
    check(get(s, "accounts", a).value == counter(700) and
          get(s, "accounts", b).value == counter(300), "transfer moved 300")
    check(get(s, "accounts", b).version == r2.version, "every write gets the one version")
    # A condition that does not hold: nothing applies, the message names it.
    expect_error(s.kv.Txn, pb.TxnRequest(
        conditions=[C(kind=C.EXISTS, table="accounts", key=b),
                    C(kind=C.INT_COMPARE, table="accounts", key=a, cmp=C.GE, num=10000)],
        writes=[W(kind=W.ADD, table="accounts", key=a, delta=-10000),
                W(kind=W.ADD, table="accounts", key=b, delta=10000)]),
        SC.FAILED_PRECONDITION, ["condition 1"], what="Txn with a false condition")
    # A floor: the debit would go negative.
    expect_error(s.kv.Txn, pb.TxnRequest(writes=[
        W(kind=W.ADD, table="accounts", key=b, delta=5000),
        W(kind=W.ADD, table="accounts", key=a, delta=-5000, has_floor=True, floor=0)]),
        SC.FAILED_PRECONDITION, ["floor"], what="Txn below a floor")
    check(get(s, "accounts", a).value == counter(700) and
          get(s, "accounts", b).value == counter(300), "failed transactions change nothing")
    # Exactly once: the same request id twice applies once, same answer.
    req = pb.TxnRequest(writes=[W(kind=W.ADD, table="accounts", key=b, delta=1)],
                        client_id=77, request_id=5)
    x1 = s.kv.Txn(req, timeout=RPC_TIMEOUT)
    x2 = s.kv.Txn(req, timeout=RPC_TIMEOUT)
    check(x1.committed and x2.committed and x1.version == x2.version, "resend: same answer")
    check(get(s, "accounts", b).value == counter(301), "resend applied once")
    # Version and value conditions, put and delete, in one partition of orders.
    o = b"cust9/o1"
    p1 = txn(s, [C(kind=C.ABSENT, table="orders", key=o)],
             [W(kind=W.PUT, table="orders", key=o, value=b"created"),
              W(kind=W.PUT, table="orders", key=b"cust9/index", value=b"o1")])
    check(p1.committed, "create-if-absent")
    expect_error(s.kv.Txn, pb.TxnRequest(
        conditions=[C(kind=C.ABSENT, table="orders", key=o)],
        writes=[W(kind=W.PUT, table="orders", key=o, value=b"again")]),
        SC.FAILED_PRECONDITION, ["condition 0"], what="create over an existing order")
    p2 = txn(s, [C(kind=C.VERSION_EQUALS, table="orders", key=o, version=p1.version),
                 C(kind=C.VALUE_EQUALS, table="orders", key=o, value=b"created")],
             [W(kind=W.PUT, table="orders", key=o, value=b"paid"),
              W(kind=W.DELETE, table="orders", key=b"cust9/index")])
    check(p2.committed and get(s, "orders", o).value == b"paid", "compare-and-set in a Txn")
    expect_error(s.kv.Get, pb.GetRequest(table="orders", key=b"cust9/index"), SC.NOT_FOUND,
                 what="deleted in a Txn")
    # Across partitions: a single node refuses it (two-phase commit runs on a
    # cluster; step_cluster covers that), nothing applied.
    expect_error(s.kv.Txn, pb.TxnRequest(writes=[
        W(kind=W.PUT, table="orders", key=b"cust1/x", value=b"1"),
        W(kind=W.PUT, table="payments", key=b"cust1/x", value=b"1")]),
        SC.UNIMPLEMENTED, ["cluster"], what="Txn across partitions on a single node")
    expect_error(s.kv.Txn, pb.TxnRequest(writes=[
        W(kind=W.PUT, table="orders", key=o, value=b"1"),
        W(kind=W.PUT, table="orders", key=o, value=b"2")]),
        SC.INVALID_ARGUMENT, ["at most once"], what="a key written twice")
    expect_error(s.kv.Txn, pb.TxnRequest(), SC.INVALID_ARGUMENT, ["at least one write"],
                 what="an empty Txn")
    chk = txn(s, [C(kind=C.VALUE_EQUALS, table="orders", key=o, value=b"paid")], [])
    check(chk.committed and chk.version > p2.version, "a check (conditions only) commits")
    # A RANGE condition from another language: what a scan of cust9/ saw
    # (count and digest as proto/orderkv.proto defines them) still holds,
    # and a write commits with it; then an insert in the range is caught.
    put(s, "orders", b"cust9/o2", b"x")
    seen, _ = scan_all(s, "orders", 100, prefix=b"cust9/")
    nparts = {t.name: t.partitions for t in
              s.admin.Status(pb.StatusRequest(), timeout=RPC_TIMEOUT).tables}["orders"]
    part = partition_of(b"cust9/", nparts)
    rng = C(kind=C.RANGE, table="orders", partition=part, key=b"cust9/", end=b"cust90",
            count=len(seen), version=range_digest(seen))
    r3 = txn(s, [rng], [W(kind=W.PUT, table="orders", key=b"cust9/n", value=b"%d" % len(seen))])
    check(r3.committed, "a write guarded by a RANGE condition commits")
    expect_error(s.kv.Txn, pb.TxnRequest(conditions=[rng], writes=[
        W(kind=W.PUT, table="orders", key=b"cust9/n", value=b"stale")]),
        SC.FAILED_PRECONDITION, ["range"], what="a RANGE condition after an insert")
    expect_error(s.kv.Txn, pb.TxnRequest(conditions=[rng], writes=[
        W(kind=W.PUT, table="payments", key=b"cust9/n", value=b"1")]),
        SC.UNIMPLEMENTED, ["cluster"],
        what="a RANGE condition across partitions on a single node (range locks need 2PC)")
    expect_error(s.kv.Txn, pb.TxnRequest(writes=[W(kind=W.PUT, table="nope", key=b"k")]),
                 SC.NOT_FOUND, ["unknown table"], what="Txn on an unknown table")
    st["txn"] = 1


def step_single_tpc(s, st):
    """A single node runs no two-phase commit: KV.TxnPart and KV.TxnStatus
    are not served, and a Txn over the cluster stage's two accounts is
    refused as one across partitions (the server confirms they lie apart)."""
    for name, path in TPC_PATHS.items():
        code, details, _ = raw_call(s.channel, path, b"")
        check(code == SC.UNIMPLEMENTED, f"single node: {name} answered {code.name} {details!r}, "
                                        "want UNIMPLEMENTED (cluster mode only)")
    W = pb.TxnWrite
    expect_error(s.kv.Txn, pb.TxnRequest(writes=[
        W(kind=W.ADD, table="accounts", key=ACCT_A, delta=1),
        W(kind=W.ADD, table="accounts", key=ACCT_B, delta=1)]),
        SC.UNIMPLEMENTED, ["cluster"], what=f"single node: Txn over {ACCT_A!r} and {ACCT_B!r}")
    for k in (ACCT_A, ACCT_B):
        expect_error(s.kv.Get, pb.GetRequest(table="accounts", key=k), SC.NOT_FOUND,
                     what="a refused Txn must not write")


def step_delete(s, st):
    r = put(s, "orders", b"carol/d1", b"gone soon")
    d = s.kv.Delete(pb.DeleteRequest(table="orders", key=b"carol/d1", client_id=9, request_id=1),
                    timeout=RPC_TIMEOUT)
    check(d.existed is True, "Delete of a present key: existed must be true")
    check(d.version > r.version, f"Delete version {d.version} <= put version {r.version}")
    expect_error(s.kv.Get, pb.GetRequest(table="orders", key=b"carol/d1"), SC.NOT_FOUND,
                 what="Get after Delete")
    d2 = s.kv.Delete(pb.DeleteRequest(table="orders", key=b"carol/d1"), timeout=RPC_TIMEOUT)
    check(d2.existed is False, "Delete of an absent key: existed must be false (and OK)")


def step_scan(s, st):
    # 250 keys under "cust42/", plus neighbours that a prefix scan must not
    # return ("cust420/..." shares the text prefix "cust42" but not "cust42/").
    mine = [b"cust42/order-%04d" % i for i in range(250)]
    others = [b"cust4/x", b"cust420/y", b"cust43/z", b"cust41/w", b"cust42", b"cust42.",
              b"cust420/a"]
    order = mine + others
    random.Random(1).shuffle(order)
    for k in order:
        put(s, "orders", k, b"val:" + k)

    # Prefix with a '/': one partition.
    items, pages = scan_all(s, "orders", 37, prefix=b"cust42/")
    keys = [kv.key for kv in items]
    check_sorted_unique(keys, "prefix scan")
    check(keys == mine, f"prefix scan returned {len(keys)} keys, want the 250 cust42/ keys")
    check(pages >= 7, f"250 keys at 37 a page took {pages} pages")
    for kv in items:
        check(kv.value == b"val:" + kv.key and kv.version > 0, f"scan item {kv.key!r}")

    # Prefix without '/': spans partitions, still in byte order.
    items, _ = scan_all(s, "orders", 10, prefix=b"cust42")
    keys = [kv.key for kv in items]
    want = sorted(k for k in mine + others if k.startswith(b"cust42"))
    check(keys == want, f"cross-partition prefix scan: got {len(keys)}, want {len(want)}")

    # Range [start, end).
    items, _ = scan_all(s, "orders", 16, start=b"cust42/order-0100", end=b"cust42/order-0150")
    keys = [kv.key for kv in items]
    check(keys == mine[100:150], f"range scan returned {len(keys)} keys, want 50")
    # Range with no end.
    items, _ = scan_all(s, "orders", 50, start=b"cust43")
    keys = [kv.key for kv in items]
    check_sorted_unique(keys, "open range scan")
    check(b"cust43/z" in keys and all(k >= b"cust43" for k in keys), "open range scan bounds")

    # Limit 0 means 100; a full page comes with a resume token.
    resp = s.kv.Scan(pb.ScanRequest(table="orders", prefix=b"cust42/"), timeout=RPC_TIMEOUT)
    check(len(resp.items) == 100 and resp.resume_token, "limit 0 = 100 with a resume token")
    resp = s.kv.Scan(pb.ScanRequest(table="orders", prefix=b"cust42/", limit=10000),
                     timeout=RPC_TIMEOUT)
    check([kv.key for kv in resp.items] == mine, "limit 10000 returns all in one page")

    # Whole table, paged; every key we wrote is there, in order.
    items, _ = scan_all(s, "orders", 64)
    keys = [kv.key for kv in items]
    check_sorted_unique(keys, "full-table scan")
    check(set(mine + others) <= set(keys), "full-table scan misses keys")

    # A prefix nobody has.
    items, _ = scan_all(s, "orders", 5, prefix=b"nobody-here/")
    check(items == [], "scan of an empty prefix")
    # All-0xff prefix: no successor, must still work.
    put(s, "accounts", b"\xff\xff\xffz", b"ff")
    items, _ = scan_all(s, "accounts", 5, prefix=b"\xff\xff")
    check([kv.key for kv in items] == [b"\xff\xff\xffz"], "scan with an all-0xff prefix")
    st["scan_keys"] = set(mine + others)


def step_records(s, st):
    order = rec.Order(order_id="o-1001", customer_id="cust42", merchant_id="m-7",
                      items=[rec.OrderItem(sku="SKU-1", quantity=2, unit_price=1999),
                             rec.OrderItem(sku="SKU-2", quantity=1, unit_price=500)],
                      total=4498, currency="CNY", status=rec.PAID, refunded=0,
                      created_at_ms=1700000000000, updated_at_ms=1700000001000)
    payment = rec.Payment(payment_id="p-1", order_id="o-1001", amount=4498, currency="CNY",
                          method="card", status=rec.CAPTURED, idempotency_key="idem-xyz",
                          created_at_ms=1700000000500)
    account = rec.Account(account_id="acct-9", currency="CNY", owner="cust42",
                          created_at_ms=1700000000000)
    okey, pkey, akey = b"cust42/o-1001", b"o-1001/p-1", b"acct-9"
    put(s, "orders", okey, order.SerializeToString())
    put(s, "payments", pkey, payment.SerializeToString())
    put(s, "accounts", akey, account.SerializeToString())
    o2 = rec.Order.FromString(get(s, "orders", okey).value)
    p2 = rec.Payment.FromString(get(s, "payments", pkey).value)
    a2 = rec.Account.FromString(get(s, "accounts", akey).value)
    check(o2 == order, f"Order did not round-trip: {o2}")
    check(p2 == payment, f"Payment did not round-trip: {p2}")
    check(a2 == account, f"Account did not round-trip: {a2}")
    check(o2.items[0].sku == "SKU-1" and o2.status == rec.PAID, "decoded Order fields")
    # The customer's orders come back from a prefix scan, decodable.
    items, _ = scan_all(s, "orders", 100, prefix=b"cust42/o-")
    check([kv.key for kv in items] == [okey], "prefix scan for the customer's orders")
    check(rec.Order.FromString(items[0].value).total == 4498, "scan value decodes as Order")
    st["order"], st["payment"] = order, payment


def step_status(s, st, data_dir):
    r = s.admin.Status(pb.StatusRequest(), timeout=RPC_TIMEOUT)
    check(not r.HasField("error") or r.error.code == pb.OK, f"Status error {r.error}")
    names = {t.name for t in r.tables}
    check(names == TABLES, f"Status tables {sorted(names)}, want {sorted(TABLES)}")
    check(len(r.tables) == len(TABLES), "a table listed twice")
    ids = {t.name: t.id for t in r.tables}
    check(ids == {"orders": 1, "payments": 2, "accounts": 3, "stock": 4}, f"table ids {ids}")
    check(all(t.partitions >= 1 for t in r.tables), "every table has partitions")
    counters = {c.name: c.value for c in r.counters}
    for c in ("writes", "syncs", "reads"):
        check(c in counters, f"Status lacks counter {c!r} (has {sorted(counters)})")
    check(counters["writes"] >= st.get("puts", 1), f"writes counter {counters['writes']}")
    check(counters["reads"] >= st.get("gets", 1), f"reads counter {counters['reads']}")
    check(1 <= counters["syncs"] <= counters["writes"],
          f"syncs {counters['syncs']} vs writes {counters['writes']}")
    check(r.node_id >= 1, f"node_id {r.node_id}")
    check(r.server_version != "", "server_version empty")
    check(r.listen_address == s.address, f"listen_address {r.listen_address!r} != {s.address!r}")
    check(os.path.realpath(r.data_dir) == os.path.realpath(data_dir),
          f"data_dir {r.data_dir!r} != {data_dir!r}")
    log(f"status: version {r.server_version}, tables "
        f"{[(t.name, t.id, t.partitions) for t in r.tables]}, counters {counters}")
    return r


def step_bad_input(s, st):
    E = expect_error
    # Unknown table: NOT_FOUND naming it, on every keyed method.
    E(s.kv.Get, pb.GetRequest(table="nosuchtable", key=b"k"), SC.NOT_FOUND, ["nosuchtable"],
      "Get unknown table")
    E(s.kv.Put, pb.PutRequest(table="nosuchtable", key=b"k", value=b"v"), SC.NOT_FOUND,
      ["nosuchtable"], "Put unknown table")
    E(s.kv.Delete, pb.DeleteRequest(table="nosuchtable", key=b"k"), SC.NOT_FOUND,
      ["nosuchtable"], "Delete unknown table")
    E(s.kv.Scan, pb.ScanRequest(table="nosuchtable"), SC.NOT_FOUND, ["nosuchtable"],
      "Scan unknown table")
    # Table names: empty, too long, case matters.
    E(s.kv.Get, pb.GetRequest(table="", key=b"k"), SC.INVALID_ARGUMENT, ["table"], "empty table")
    E(s.kv.Get, pb.GetRequest(table="t" * 65, key=b"k"), SC.INVALID_ARGUMENT, ["65"],
      "65-byte table name")
    E(s.kv.Get, pb.GetRequest(table="Orders", key=b"k"), SC.NOT_FOUND, ["Orders"],
      "table names are case-sensitive")
    # A table name with a NUL inside is not "accounts". (protobuf-c hands the
    # server a C string; a strlen() on it sees only "accounts".) Soft check:
    # recorded, and the test goes on so later steps still run.
    try:
        s.kv.Put(pb.PutRequest(table="accounts\x00evil", key=b"nul/k", value=b"v"),
                 timeout=RPC_TIMEOUT)
        soft_fail("Put to table 'accounts\\0evil' succeeded (and wrote to accounts); "
                  "it must fail with NOT_FOUND or INVALID_ARGUMENT")
    except grpc.RpcError as e:
        if e.code() not in (SC.NOT_FOUND, SC.INVALID_ARGUMENT):
            soft_fail(f"table with NUL: got {e.code().name}, want NOT_FOUND/INVALID_ARGUMENT")
    # The same inside a transaction's condition and write.
    W, C = pb.TxnWrite, pb.TxnCondition
    E(s.kv.Txn, pb.TxnRequest(writes=[W(kind=W.PUT, table="accounts\x00evil", key=b"nul/k",
                                        value=b"v")]),
      SC.INVALID_ARGUMENT, ["NUL"], "Txn write to a table name with a NUL")
    E(s.kv.Txn, pb.TxnRequest(conditions=[C(kind=C.ABSENT, table="accounts\x00evil",
                                            key=b"nul/k")]),
      SC.INVALID_ARGUMENT, ["NUL"], "Txn condition on a table name with a NUL")
    # Keys.
    E(s.kv.Put, pb.PutRequest(table="orders", key=b"", value=b"v"), SC.INVALID_ARGUMENT,
      ["empty"], "Put empty key")
    E(s.kv.Get, pb.GetRequest(table="orders", key=b""), SC.INVALID_ARGUMENT, ["empty"],
      "Get empty key")
    E(s.kv.Delete, pb.DeleteRequest(table="orders", key=b""), SC.INVALID_ARGUMENT, ["empty"],
      "Delete empty key")
    E(s.kv.Put, pb.PutRequest(table="orders", key=b"k" * (MAX_KEY + 1), value=b"v"),
      SC.INVALID_ARGUMENT, ["1025", "1024"], "Put 1025-byte key")
    E(s.kv.Get, pb.GetRequest(table="orders", key=b"k" * (MAX_KEY + 1)), SC.INVALID_ARGUMENT,
      ["1025"], "Get 1025-byte key")
    E(s.kv.Delete, pb.DeleteRequest(table="orders", key=b"k" * (MAX_KEY + 1)),
      SC.INVALID_ARGUMENT, ["1025"], "Delete 1025-byte key")
    # Value one byte over 1 MiB.
    E(s.kv.Put, pb.PutRequest(table="orders", key=b"big/v", value=b"x" * (MAX_VALUE + 1)),
      SC.INVALID_ARGUMENT, [str(MAX_VALUE + 1)], "Put 1 MiB + 1 value")
    E(s.kv.Get, pb.GetRequest(table="orders", key=b"big/v"), SC.NOT_FOUND,
      what="a rejected Put must not write")
    # Scans.
    E(s.kv.Scan, pb.ScanRequest(table="orders", prefix=b"a", start=b"a"), SC.INVALID_ARGUMENT,
      ["prefix"], "Scan with prefix and start")
    E(s.kv.Scan, pb.ScanRequest(table="orders", prefix=b"a", end=b"b"), SC.INVALID_ARGUMENT,
      ["prefix"], "Scan with prefix and end")
    E(s.kv.Scan, pb.ScanRequest(table="orders", start=b"b", end=b"a"), SC.INVALID_ARGUMENT,
      what="Scan with start > end")
    E(s.kv.Scan, pb.ScanRequest(table="orders", start=b"b", end=b"b"), SC.INVALID_ARGUMENT,
      what="Scan with start == end")
    E(s.kv.Scan, pb.ScanRequest(table="orders", limit=10001), SC.INVALID_ARGUMENT, ["10001"],
      "Scan limit 10001")
    E(s.kv.Scan, pb.ScanRequest(table="orders", prefix=b"p" * (MAX_KEY + 1)),
      SC.INVALID_ARGUMENT, what="Scan prefix over the key limit")
    E(s.kv.Scan, pb.ScanRequest(table="orders", resume_token=b"\x7fjunk"), SC.INVALID_ARGUMENT,
      ["resume token"], "Scan with a forged resume token")
    E(s.kv.Scan, pb.ScanRequest(table="orders", resume_token=b"\x01"), SC.INVALID_ARGUMENT,
      ["resume token"], "Scan with a 1-byte resume token")
    E(s.kv.Scan, pb.ScanRequest(table="orders", prefix=b"cust42/", resume_token=b"\x01zzz"),
      SC.INVALID_ARGUMENT, ["resume token"], "resume token outside the prefix")
    E(s.kv.Scan, pb.ScanRequest(table="orders", resume_token=b"\x01" + b"k" * (MAX_KEY + 1)),
      SC.INVALID_ARGUMENT, ["resume token"], "resume token over the key limit")

    # Malformed protobuf to every method, raw bytes. Each is invalid for any
    # message: a truncated varint, a length past the end, a reserved wire type,
    # field number 0, a truncated fixed64.
    malformed = [b"\x08", b"\x08\xff", b"\x0a\x05ab", b"\x12\xff\xff\xff\xff\x0f",
                 b"\x0f", b"\x00\x01", b"\x09\x01\x02", b"\x0b\x0c",
                 b"\x08" + b"\xff" * 11]
    for name, path in METHODS.items():
        for m in malformed:
            code, details, _ = raw_call(s.channel, path, m)
            check(code == SC.INVALID_ARGUMENT,
                  f"{name} with malformed bytes {m!r}: {code.name} {details!r}")
            check(details != "", f"{name} malformed: no message")
        check(s.alive(), f"server died after malformed {name}")
    # Valid bytes sent raw work (the raw path itself is sound).
    code, _, body = raw_call(s.channel, METHODS["Status"], b"")
    check(code == SC.OK and pb.StatusResponse.FromString(body).tables, "raw Status")

    # Unknown methods: UNIMPLEMENTED, promptly.
    for path in ("/orderkv.v1.KV/Nope", "/orderkv.v1.Nope/Get", "/orderkv.v1.Admin/Get",
                 "/orderkv.v2.KV/Get", "/x"):
        t0 = time.monotonic()
        code, details, _ = raw_call(s.channel, path, b"")
        check(code == SC.UNIMPLEMENTED, f"unknown method {path}: {code.name} {details!r}")
        check(time.monotonic() - t0 < RPC_TIMEOUT / 2, f"unknown method {path} was slow")


def step_garbage(s, st, seed):
    rng = random.Random(seed)
    log(f"garbage: seed {seed} (rerun with --seed {seed})")
    # Templates to mutate. They write only to `accounts` under "zz-fuzz", so
    # mutated writes cannot touch the orders/payments data checked later.
    templates = {
        "Get": pb.GetRequest(table="accounts", key=b"zz-fuzz/1").SerializeToString(),
        "Put": pb.PutRequest(table="accounts", key=b"zz-fuzz/2", value=b"abc", client_id=1,
                             request_id=2, check_version=True,
                             expected_version=0).SerializeToString(),
        "Delete": pb.DeleteRequest(table="accounts", key=b"zz-fuzz/3",
                                   check_version=True).SerializeToString(),
        "Scan": pb.ScanRequest(table="accounts", prefix=b"zz-fuzz/", limit=3,
                               resume_token=b"\x01zz-fuzz/0").SerializeToString(),
        "Txn": pb.TxnRequest(
            conditions=[pb.TxnCondition(kind=pb.TxnCondition.INT_COMPARE, table="accounts",
                                        key=b"zz-fuzz/4", cmp=pb.TxnCondition.GE, num=-5)],
            writes=[pb.TxnWrite(kind=pb.TxnWrite.ADD, table="accounts", key=b"zz-fuzz/5",
                                delta=7, has_floor=True, floor=0)],
            client_id=1, request_id=3).SerializeToString(),
        "Status": pb.StatusRequest().SerializeToString(),
    }
    sizes = list(range(0, 40)) + [63, 64, 65, 127, 128, 255, 256, 1000, 1024, 1025, 4095,
                                  4096, 65535, 65536, 1 << 20, (1 << 20) + 100]
    counts = {}
    n = 0

    def send(name, payload):
        nonlocal n
        code, details, _ = raw_call(s.channel, METHODS[name], payload)
        n += 1
        counts[code.name] = counts.get(code.name, 0) + 1
        if code not in GARBAGE_OK_CODES:
            raise TestFailure(f"{name} with {len(payload)} garbage bytes "
                              f"{payload[:64].hex()}...: {code.name} {details!r} (seed {seed})")

    for size in sizes:
        for name in METHODS:
            send(name, rng.randbytes(size))
    for _ in range(1500):
        name = rng.choice(list(METHODS))
        if rng.random() < 0.5:
            send(name, rng.randbytes(rng.choice([rng.randrange(0, 16), rng.randrange(0, 300)])))
        else:
            b = bytearray(templates[name])
            for _ in range(rng.randrange(1, 4)):
                op = rng.randrange(4)
                if op == 0 and b:
                    b[rng.randrange(len(b))] = rng.randrange(256)
                elif op == 1 and b:
                    i = rng.randrange(len(b))
                    del b[i:i + rng.randrange(1, 8)]
                elif op == 2:
                    i = rng.randrange(len(b) + 1)
                    b[i:i] = rng.randbytes(rng.randrange(1, 8))
                else:
                    b = b[:rng.randrange(len(b) + 1)]
            send(name, bytes(b))
    check(s.alive(), "server died during the garbage loop")
    log(f"garbage: {n} calls, statuses {counts}")


def step_intact(s, st, before, what):
    for table in ("orders", "payments"):
        now = snapshot(s, table)
        if now != before[table]:
            a, b = set(before[table]), set(now)
            raise TestFailure(f"{what}: table {table} changed: lost {sorted(a - b)[:5]}, "
                              f"gained {sorted(b - a)[:5]}")
    o = rec.Order.FromString(get(s, "orders", b"cust42/o-1001").value)
    p = rec.Payment.FromString(get(s, "payments", b"o-1001/p-1").value)
    check(o == st["order"] and p == st["payment"], f"{what}: records changed")


# --------------------------------------------------------------------------
# Cluster stage: three orderkvd processes (--initial-cluster) on 127.0.0.1,
# transactions across partitions (two-phase commit), KV.TxnStatus and
# KV.TxnPart. Only raw stubs; a call that meets a non-leader follows the
# address its NOT_LEADER message names (the hint in the body is dropped by
# unary stubs), else tries the next node.

CLUSTER_NODES = 3
CLUSTER_READY_TIMEOUT = 60.0   # until every partition of every table takes a write
CLUSTER_RETRY_TIMEOUT = 30.0   # one call's retries while it answers UNAVAILABLE
TPC_PATHS = {"TxnPart": "/orderkv.v1.KV/TxnPart", "TxnStatus": "/orderkv.v1.KV/TxnStatus"}
NOT_LEADER_RE = re.compile(r"node \d+ at (\S+) does")
# The keys the cluster stage moves money between: two partition keys of
# `accounts` in different partitions (partition_of checks it, and the single
# node's step_single_tpc has the server confirm it), and an order.
ACCT_A, ACCT_B, ORDER_K, ORDER_NEVER = b"alice/acct", b"bob/acct", b"cust7/o-1", b"cust8/o-2"
# server/txn/tpc.c, message format 1 (the bytes a TxnPartRequest carries).
TPC_FORMAT, TPC_PREPARE, TPC_DECIDE, TPC_CHECK, TPC_FINISH, TPC_FORGET = 1, 1, 2, 4, 5, 6


def range_digest(kvs):
    """A range condition's digest (proto/orderkv.proto, TxnCondition RANGE):
    FNV-1a 64 over each key's length (u16 big-endian), bytes and version
    (u64 big-endian), in key order."""
    h = 0xcbf29ce484222325
    for kv in sorted(kvs, key=lambda kv: kv.key):
        for c in struct.pack(">H", len(kv.key)) + kv.key + struct.pack(">Q", kv.version):
            h = ((h ^ c) * 0x100000001b3) & 0xFFFFFFFFFFFFFFFF
    return h


def partition_of(key, partitions):
    """The server's partitioning (common/hash.c, storage/keycodec.c): FNV-1a
    64 of the key up to its first '/', mod the table's partitions."""
    h = 1469598103934665603
    for c in key.split(b"/", 1)[0]:
        h = ((h ^ c) * 1099511628211) & 0xFFFFFFFFFFFFFFFF
    return h % partitions


def tpc_msg(kind, table_id, partition, client=1, req=1, flag=0, nparts=0, parts=b"",
            share=b"", share_len=None, coord=None, deadline=0):
    """A TPC step as server/txn/tpc.c encodes it (64 fixed bytes, the
    participants, a length-prefixed share); the fields after nparts may lie.
    coord: the coordinator's (table id, partition), by default the step's own."""
    ct, cp = coord if coord is not None else (table_id, partition)
    fixed = struct.pack(">BBBQQQQIIIIiIBI", TPC_FORMAT, kind, flag, client, req, 0, deadline,
                        table_id, partition, ct, cp, 0, 0, 0, nparts)
    assert len(fixed) == 64
    return fixed + parts + struct.pack(">I", len(share) if share_len is None else share_len) \
        + share


def one_line(msg):
    return " ".join(str(msg).split())


def free_ports(n):
    """n distinct free ports: bound to port 0 together, then released (the
    nodes bind them right after; a lost race shows as a start-up failure)."""
    socks = []
    try:
        for _ in range(n):
            so = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            so.bind(("127.0.0.1", 0))
            socks.append(so)
        return [so.getsockname()[1] for so in socks]
    finally:
        for so in socks:
            so.close()


def stub_call(method, req, timeout=RPC_TIMEOUT):
    """One call through the generated stub: node -> (code, details, response)."""
    def attempt(node):
        try:
            return SC.OK, "", getattr(node.kv, method)(req, timeout=timeout)
        except grpc.RpcError as e:
            return e.code(), e.details() or "", None
    return attempt


def body_call(path, req, resp_cls):
    """One call that keeps the response body the server sends ahead of a
    non-OK status (TxnResponse.failed/reason, Error). A unary stub drops it,
    so this reads the unary call as a server stream: node -> (code, details,
    response or None)."""
    def attempt(node):
        call = node.channel.unary_stream(path, request_serializer=type(req).SerializeToString,
                                         response_deserializer=resp_cls.FromString)
        got = []
        try:
            for m in call(req, timeout=RPC_TIMEOUT):
                got.append(m)
        except grpc.RpcError as e:
            return e.code(), e.details() or "", got[0] if got else None
        check(len(got) == 1, f"{path}: OK with {len(got)} response messages")
        return SC.OK, "", got[0]
    return attempt


def raw_attempt(path, payload):
    return lambda node: raw_call(node.channel, path, payload)


def on_leader(nodes, attempt, what, wait=CLUSTER_RETRY_TIMEOUT, start=0,
              retry=(SC.UNAVAILABLE,)):
    """Runs attempt(node) until it answers other than UNAVAILABLE, which means
    NOT_LEADER (go to the node its message names), no leader yet, or a step
    that did not commit (not applied): all safe to resend. Bounded by `wait`.
    Returns (node, code, details, response)."""
    by_addr = {n.address: n for n in nodes}
    deadline = time.monotonic() + wait
    i, node, tries = start, nodes[start], 0
    while True:
        code, details, resp = attempt(node)
        tries += 1
        if code not in retry:
            return node, code, details, resp
        if time.monotonic() >= deadline:
            raise TestFailure(f"{what}: still {code.name} after {wait:.0f}s and {tries} calls; "
                              f"last from {node.name}: {details!r}")
        m = NOT_LEADER_RE.search(details)
        if m and by_addr.get(m.group(1)) not in (None, node):
            node = by_addr[m.group(1)]
            time.sleep(0.02)
        else:
            i = (i + 1) % len(nodes)
            node = nodes[i]
            time.sleep(0.1)


def c_call(nodes, method, req, what, start=0):
    """A call that must succeed (on the leader, when it needs one)."""
    node, code, details, resp = on_leader(nodes, stub_call(method, req), what, start=start)
    check(code == SC.OK, f"{what}: {method}({one_line(req)}) answered {code.name}: {details!r}")
    return resp


def c_counter(nodes, table, key, start=0):
    g = c_call(nodes, "Get", pb.GetRequest(table=table, key=key), f"Get {table}/{key!r}",
               start=start)
    check(len(g.value) == 8, f"{table}/{key!r} holds {g.value!r}, not a counter")
    return struct.unpack(">q", g.value)[0]


def start_cluster(binary, work, servers, flags=(), tag="cluster"):
    """Starts CLUSTER_NODES nodes (each with the extra orderkvd flags);
    retries with new ports (twice) if a node dies while starting (a port
    taken between free_ports and its bind)."""
    for attempt in range(3):
        ports = free_ports(CLUSTER_NODES)
        spec = ",".join(f"{i}=127.0.0.1:{p}" for i, p in enumerate(ports, 1))
        nodes = []
        try:
            for i, port in enumerate(ports, 1):
                name = f"{tag}{attempt}-node{i}"
                n = Server(binary, os.path.join(work, name), work, name,
                           listen=f"127.0.0.1:{port}",
                           extra=["--node-id", str(i), "--initial-cluster", spec, *flags])
                servers.append(n)
                nodes.append(n)
                n.start()
            log(f"cluster {spec}")
            return nodes
        except TestFailure:
            died = [n for n in nodes if n.proc is not None and n.proc.poll() is not None]
            stop_nodes(nodes)
            if attempt == 2 or not died:
                raise
            log("a node died while starting (port race?); retrying with new ports\n"
                + died[0].log_tail(10))


def stop_nodes(nodes):
    """SIGTERMs every node at once, waits for each (bounded), SIGKILLs
    stragglers, all by PID. Never raises. Returns {name: exit code or None}."""
    for n in nodes:
        n.close_channel()
        if n.proc is not None and n.proc.poll() is None:
            n.proc.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + STOP_TIMEOUT
    rcs = {}
    for n in nodes:
        if n.proc is None:
            continue
        try:
            rcs[n.name] = n.proc.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            log(f"{n.name} (pid {n.proc.pid}) ignored SIGTERM for {STOP_TIMEOUT}s; SIGKILL")
            n.kill()
            rcs[n.name] = None
        try:
            n.log_file.close()
        except (AttributeError, OSError):
            pass
    return rcs


def cluster_wait_ready(nodes, partitions):
    """Until every partition of every table takes a write (a Delete of an
    absent key goes through Raft like any write), at most CLUSTER_READY_TIMEOUT."""
    t0 = time.monotonic()
    deadline = t0 + CLUSTER_READY_TIMEOUT
    for table in sorted(partitions):
        probes = {}
        i = 0
        while len(probes) < partitions[table]:
            k = b"okv-probe-%d" % i
            probes.setdefault(partition_of(k, partitions[table]), k)
            i += 1
        for p in sorted(probes):
            req = pb.DeleteRequest(table=table, key=probes[p])
            left = deadline - time.monotonic()
            check(left > 0, f"cluster not ready within {CLUSTER_READY_TIMEOUT:.0f}s "
                            f"(waiting for {table} partition {p})")
            # DEADLINE_EXCEEDED too: a write to a leader that lost its quorum
            # while starting may hang; deleting an absent key is idempotent.
            _, code, details, _ = on_leader(
                nodes, stub_call("Delete", req, timeout=min(5.0, left)),
                f"cluster readiness ({table} partition {p})", wait=left,
                retry=(SC.UNAVAILABLE, SC.DEADLINE_EXCEEDED))
            check(code == SC.OK, f"readiness probe Delete({one_line(req)}): {code.name} "
                                 f"{details!r}")
    log(f"cluster ready: every partition took a write after {time.monotonic() - t0:.1f}s")


def step_cluster(binary, work, servers, seed):
    nodes = start_cluster(binary, work, servers)
    ok = False
    try:
        cluster_checks(nodes, seed)
        ok = True
    finally:
        rcs = stop_nodes(nodes)
        log(f"cluster stopped: exit codes {rcs}")
    if ok:
        bad = {k: v for k, v in rcs.items() if v != 0}
        check(not bad, f"cluster nodes exited with {bad} after SIGTERM, want 0\n"
              + "\n".join(n.log_tail(15) for n in nodes if n.name in bad))


def step_cluster_idem_gc(binary, work, servers):
    """Idempotency records past their retention are dropped (orderkvd
    --idem-retention-ms), and a resend after that is a new request. The
    only time it waits on is bounded: the record must be gone within
    GC_WAIT seconds of its retention passing."""
    GC_WAIT = 60.0
    nodes = start_cluster(binary, work, servers, tag="gc",
                          flags=["--idem-retention-ms", "1000", "--idem-gc-every-ms", "200"])
    try:
        st = nodes[0].admin.Status(pb.StatusRequest(), timeout=RPC_TIMEOUT)
        cluster_wait_ready(nodes, {t.name: t.partitions for t in st.tables})
        O = opb
        req = O.CreateOrderRequest(customer_id="gc-cust", currency="CNY", idempotency_key="k1",
                                   items=[O.CreateOrderItem(sku="s", quantity=1, unit_price=5)])
        first = nodes[0].orders.CreateOrder(req, timeout=RPC_TIMEOUT).order
        key = pb.GetRequest(table="orders", key=b"gc-cust/i/create/k1")
        deadline = time.monotonic() + GC_WAIT
        while True:
            node, code, details, _ = on_leader(nodes, stub_call("Get", key), "Get idem record")
            if code == SC.NOT_FOUND:
                break
            check(code == SC.OK, f"Get of the idempotency record: {code.name} {details!r}")
            check(time.monotonic() < deadline, f"the idempotency record outlived its 1 s "
                                               f"retention by {GC_WAIT:.0f}s")
            time.sleep(0.2)
        again = nodes[1].orders.CreateOrder(req, timeout=RPC_TIMEOUT).order
        check(again.order_id != first.order_id, "a resend after the key's retention replayed")
        log("idempotency record dropped after its retention; a later resend is a new order")
    finally:
        stop_nodes(nodes)


def cluster_checks(nodes, seed):
    C, W, R = pb.TxnCondition, pb.TxnWrite, pb.TxnResponse
    S = pb.TxnPartResponse
    st = nodes[0].admin.Status(pb.StatusRequest(), timeout=RPC_TIMEOUT)
    parts = {t.name: t.partitions for t in st.tables}
    tids = {t.name: t.id for t in st.tables}
    check(set(parts) == TABLES, f"cluster Status tables {sorted(parts)}")
    check(sorted(nd.id for nd in st.nodes) == list(range(1, CLUSTER_NODES + 1)),
          f"cluster Status nodes {[(nd.id, nd.address) for nd in st.nodes]}")
    for i, n in enumerate(nodes, 1):
        r = n.admin.Status(pb.StatusRequest(), timeout=RPC_TIMEOUT)
        check(r.node_id == i and r.listen_address == n.address,
              f"{n.name}: Status says node {r.node_id} at {r.listen_address!r}")
    pa, pb_ = partition_of(ACCT_A, parts["accounts"]), partition_of(ACCT_B, parts["accounts"])
    check(pa != pb_, f"{ACCT_A!r} and {ACCT_B!r} share accounts partition {pa}")
    cluster_wait_ready(nodes, parts)

    cid = 0x5eed0000 + (seed & 0xffff)

    def treq(rid, conds, writes):
        return pb.TxnRequest(conditions=conds, writes=writes, client_id=cid, request_id=rid)

    def commit(req, what, start=0):
        node, code, details, resp = on_leader(nodes, stub_call("Txn", req), what, start=start)
        check(code == SC.OK and resp.committed,
              f"{what}: Txn({one_line(req)}) on {node.name} answered {code.name} {details!r} "
              f"{one_line(resp) if resp else ''}")
        return resp

    def balances(start=0):
        return (c_counter(nodes, "accounts", ACCT_A, start),
                c_counter(nodes, "accounts", ACCT_B, start))

    def balances_everywhere(want, what):
        # Get from each node in turn (a follower reads through the leader's
        # read index, or redirects): all must see the committed values.
        for i in range(len(nodes)):
            got = balances(start=i)
            check(got == want, f"{what}: balances read starting at {nodes[i].name} are {got}, "
                               f"want {want}")

    # 1. Open both accounts in one transaction across partitions.
    fund = treq(1, [], [W(kind=W.ADD, table="accounts", key=ACCT_A, delta=1000),
                        W(kind=W.ADD, table="accounts", key=ACCT_B, delta=500)])
    commit(fund, "funding across partitions")
    balances_everywhere((1000, 500), "after funding")

    # 2. A transfer between the two partitions: condition, floored debit, credit.
    transfer = treq(2, [C(kind=C.INT_COMPARE, table="accounts", key=ACCT_A, cmp=C.GE, num=300)],
                    [W(kind=W.ADD, table="accounts", key=ACCT_A, delta=-300, has_floor=True,
                       floor=0),
                     W(kind=W.ADD, table="accounts", key=ACCT_B, delta=300)])
    commit(transfer, "transfer across partitions", start=1)
    balances_everywhere((700, 800), "after the transfer")

    # 3. Across tables: the order (first write: orders is the coordinator)
    #    and its payment out of an account, together.
    order = treq(3, [C(kind=C.ABSENT, table="orders", key=ORDER_K)],
                 [W(kind=W.PUT, table="orders", key=ORDER_K, value=b"paid:250"),
                  W(kind=W.ADD, table="accounts", key=ACCT_B, delta=-250, has_floor=True,
                    floor=0)])
    commit(order, "order + payment across tables", start=2)
    g = c_call(nodes, "Get", pb.GetRequest(table="orders", key=ORDER_K), "Get the order")
    check(g.value == b"paid:250", f"order holds {g.value!r}")
    balances_everywhere((700, 550), "after the order")

    # 4. A condition on the second partition (not the coordinator's) fails:
    #    FAILED_PRECONDITION, failed = its index, reason CONDITION, nothing
    #    applied in any of the three partitions.
    failing = treq(4, [C(kind=C.EXISTS, table="accounts", key=ACCT_A),
                       C(kind=C.INT_COMPARE, table="accounts", key=ACCT_B, cmp=C.GE,
                         num=1_000_000)],
                   [W(kind=W.ADD, table="accounts", key=ACCT_A, delta=-1),
                    W(kind=W.ADD, table="accounts", key=ACCT_B, delta=1),
                    W(kind=W.PUT, table="orders", key=ORDER_NEVER, value=b"never")])

    def expect_refusal(req, failed, reason, what, start=0, mention=None):
        node, code, details, resp = on_leader(
            nodes, body_call(METHODS["Txn"], req, pb.TxnResponse), what, start=start)
        desc = (f"{what}: Txn({one_line(req)}) on {node.name} answered {code.name} {details!r} "
                f"body {one_line(resp) if resp is not None else None}")
        check(code == SC.FAILED_PRECONDITION, desc)
        check(resp is not None, f"{desc}: no TxnResponse body with the failure")
        check(not resp.committed and resp.failed == failed and resp.reason == reason and
              resp.error.code == pb.CONDITION_FAILED,
              f"{desc}: want failed={failed} reason={R.Reason.Name(reason)} "
              "error CONDITION_FAILED")
        if mention:
            check(mention in details, f"{desc}: message does not mention {mention!r}")
        return resp

    expect_refusal(failing, 1, R.CONDITION, "condition on the second partition",
                   mention="condition 1")
    balances_everywhere((700, 550), "after the failed condition")
    _, code, details, _ = on_leader(
        nodes, stub_call("Get", pb.GetRequest(table="orders", key=ORDER_NEVER)),
        "Get the order a failed Txn would have written")
    check(code == SC.NOT_FOUND, f"a failed Txn wrote orders/{ORDER_NEVER!r}: {code.name} "
                                f"{details!r}")

    # 5. A floor on the second partition: failed = 1 condition + write 1.
    floor = treq(5, [C(kind=C.EXISTS, table="accounts", key=ACCT_A)],
                 [W(kind=W.ADD, table="accounts", key=ACCT_A, delta=5),
                  W(kind=W.ADD, table="accounts", key=ACCT_B, delta=-1_000_000,
                    has_floor=True, floor=0)])
    expect_refusal(floor, 2, R.FLOOR, "floor on the second partition", start=1)
    balances_everywhere((700, 550), "after the failed floor")

    # 6. TxnStatus at the coordinator (table and a key of its first write's partition).
    def status(table, key, rid, what):
        req = pb.TxnStatusRequest(table=table, key=key, client_id=cid, request_id=rid)
        r = c_call(nodes, "TxnStatus", req, what)
        return req, r

    for table, key, rid in (("accounts", ACCT_A, 1), ("accounts", ACCT_A, 2),
                            ("accounts", b"alice/another-key", 2), ("orders", ORDER_K, 3)):
        req, r = status(table, key, rid, f"TxnStatus of committed request {rid}")
        check(r.state == S.COMMITTED and r.refusal == pb.OK,
              f"TxnStatus({one_line(req)}) = {one_line(r)}, want COMMITTED")
    for rid, failed, reason in ((4, 1, R.CONDITION), (5, 2, R.FLOOR)):
        req, r = status("accounts", ACCT_A, rid, f"TxnStatus of refused request {rid}")
        check(r.state == S.ABORTED and r.refusal == pb.CONDITION_FAILED and
              r.failed == failed and r.reason == reason,
              f"TxnStatus({one_line(req)}) = {one_line(r)}, want ABORTED CONDITION_FAILED "
              f"failed {failed} reason {R.Reason.Name(reason)}")
    for table, key, rid in (("accounts", ACCT_A, 999), ("orders", ORDER_K, 998)):
        req, r = status(table, key, rid, f"TxnStatus of unknown request {rid}")
        check(r.state == S.NONE, f"TxnStatus({one_line(req)}) = {one_line(r)}, want NONE")
    # settle: an undecided transaction across partitions is decided now, for
    # good (aborted), and a committed one keeps its answer.
    for rid, want in ((997, S.ABORTED), (997, S.ABORTED), (1, S.COMMITTED)):
        req = pb.TxnStatusRequest(table="accounts", key=ACCT_A, client_id=cid, request_id=rid,
                                  settle=True)
        r = c_call(nodes, "TxnStatus", req, f"TxnStatus settle of request {rid}")
        check(r.state == want, f"TxnStatus({one_line(req)}) = {one_line(r)}, want "
              f"{pb.TxnPartResponse.State.Name(want)}")
    for req, code in ((pb.TxnStatusRequest(table="nosuchtable", key=ACCT_A, client_id=cid,
                                           request_id=2), SC.NOT_FOUND),
                      (pb.TxnStatusRequest(table="accounts", key=b"", client_id=cid,
                                           request_id=2), SC.INVALID_ARGUMENT),
                      (pb.TxnStatusRequest(table="accounts", key=b"k" * (MAX_KEY + 1),
                                           client_id=cid, request_id=2), SC.INVALID_ARGUMENT),
                      (pb.TxnStatusRequest(table="accounts", key=ACCT_A, client_id=0,
                                           request_id=2), SC.INVALID_ARGUMENT)):
        for n in nodes:
            expect_error(n.kv.TxnStatus, req, code, what=f"{n.name}: TxnStatus({one_line(req)})")

    # 7. Resends (same client and request id), at every node: the committed
    #    ones answer committed and apply nothing again; the refused one is
    #    refused again the same way.
    for i in range(len(nodes)):
        commit(transfer, f"resend of the transfer via {nodes[i].name}", start=i)
        commit(fund, f"resend of the funding via {nodes[i].name}", start=i)
        commit(order, f"resend of the order via {nodes[i].name}", start=i)
        expect_refusal(failing, 1, R.CONDITION, f"resend of the refused Txn via {nodes[i].name}",
                       start=i)
    balances_everywhere((700, 550), "after resending committed transactions")

    # 8. TxnPart with garbage, at every node (leader or not: bad input is
    #    refused before any routing). Never INTERNAL/UNKNOWN, nobody dies.
    cluster_tpc_garbage(nodes, tids, parts, seed)
    for n in nodes:
        check(n.alive(), f"{n.name} died after TxnPart garbage\n" + n.log_tail())
        n.admin.Status(pb.StatusRequest(), timeout=RPC_TIMEOUT)
    balances_everywhere((700, 550), "after TxnPart garbage")
    # ... and still commit across partitions.
    commit(treq(6, [], [W(kind=W.ADD, table="accounts", key=ACCT_B, delta=-50),
                        W(kind=W.ADD, table="accounts", key=ACCT_A, delta=50)]),
           "transfer after the garbage", start=2)
    balances_everywhere((750, 500), "after the last transfer")
    req, r = status("accounts", ACCT_B, 6, "TxnStatus of the last transfer")
    check(r.state == S.COMMITTED, f"TxnStatus({one_line(req)}) = {one_line(r)}, want COMMITTED")

    # 9. The Orders service from grpcio: place, pay (a resend through
    #    another node replays), the rule errors with their reasons, garbage.
    cluster_orders(nodes)


def cluster_orders(nodes):
    O = opb

    def ocall(method, req, node=0, want=SC.OK, reason=None, what=""):
        """Orders.method at nodes[node] (any node serves it), read as a
        stream so an error keeps its body (Error + OrdersError reason)."""
        resp_cls = getattr(O, method + "Response")
        code, details, resp = body_call(f"/orderkv.v1.Orders/{method}", req, resp_cls)(nodes[node])
        check(code == want, f"{what or method}: {code.name} {details!r}, want {want.name}")
        if reason is not None:
            check(resp is not None and resp.reason == reason,
                  f"{what or method}: reason {resp.reason if resp else None}, want {reason} "
                  f"({details!r})")
        return resp

    ocall("CreateAccount", O.CreateAccountRequest(account_id="py-acct", currency="CNY",
                                                   owner="py"))
    ocall("Deposit", O.DepositRequest(account_id="py-acct", amount=5000, idempotency_key="d1"))
    ocall("Deposit", O.DepositRequest(account_id="py-acct", amount=5000, idempotency_key="d1"),
          node=1, what="Deposit resent with its key")
    ocall("SetStock", O.SetStockRequest(sku="py-sku", available=3))
    item = O.CreateOrderItem(sku="py-sku", quantity=2, unit_price=1250)
    create = O.CreateOrderRequest(customer_id="py-cust", currency="CNY", items=[item],
                                  reserve_stock=True, idempotency_key="c1")
    order = ocall("CreateOrder", create).order
    again = ocall("CreateOrder", create, node=2, what="CreateOrder resent via node 3").order
    check(again.order_id == order.order_id, f"create replay {again.order_id} != {order.order_id}")
    check(order.total == 2500 and order.status == rec.CREATED, f"new order {one_line(order)}")
    st = ocall("GetStock", O.GetStockRequest(sku="py-sku"))
    check(st.available == 1, f"stock after reserving 2 of 3: {st.available}")

    pay = O.PayOrderRequest(customer_id="py-cust", order_id=order.order_id, account_id="py-acct",
                            amount=2500, idempotency_key="p1")
    paid = ocall("PayOrder", pay)
    check(paid.order.status == rec.PAID and paid.payment.amount == 2500, f"pay {one_line(paid)}")
    replay = ocall("PayOrder", pay, node=1, what="PayOrder resent via node 2")
    check(replay.payment.payment_id == paid.payment.payment_id, "pay replay gave another payment")
    bal = ocall("GetAccount", O.GetAccountRequest(account_id="py-acct")).balance
    check(bal == 2500, f"balance after one payment of 2500 from 5000: {bal}")

    R = O.OrdersError
    ocall("PayOrder", O.PayOrderRequest(customer_id="py-cust", order_id=order.order_id,
                                        account_id="py-acct", amount=2500, idempotency_key="p2"),
          want=SC.FAILED_PRECONDITION, reason=R.Value("ORDERS_ERROR_ILLEGAL_TRANSITION"),
          what="paying a paid order with another key")
    ocall("PayOrder", O.PayOrderRequest(customer_id="py-cust", order_id=order.order_id,
                                        account_id="py-acct", amount=2400, idempotency_key="p1"),
          want=SC.FAILED_PRECONDITION, reason=R.Value("ORDERS_ERROR_IDEMPOTENCY_KEY_REUSED"),
          what="the payment's key with another amount")
    big = ocall("CreateOrder", O.CreateOrderRequest(
        customer_id="py-cust", currency="CNY",
        items=[O.CreateOrderItem(sku="py-other", quantity=1, unit_price=9999)])).order
    ocall("PayOrder", O.PayOrderRequest(customer_id="py-cust", order_id=big.order_id,
                                        account_id="py-acct", amount=9999),
          want=SC.FAILED_PRECONDITION, reason=R.Value("ORDERS_ERROR_INSUFFICIENT_FUNDS"),
          what="paying more than the balance")
    ocall("ReserveStock", O.ReserveStockRequest(sku="py-sku", quantity=2),
          want=SC.FAILED_PRECONDITION, reason=R.Value("ORDERS_ERROR_SOLD_OUT"),
          what="reserving 2 of the last 1")
    ref = ocall("RefundOrder", O.RefundOrderRequest(customer_id="py-cust",
                                                    order_id=order.order_id, amount=1000,
                                                    idempotency_key="r1"))
    check(ref.order.status == rec.PARTIALLY_REFUNDED and ref.order.refunded == 1000,
          f"refund {one_line(ref)}")
    ocall("RefundOrder", O.RefundOrderRequest(customer_id="py-cust", order_id=order.order_id,
                                              amount=1501),
          want=SC.FAILED_PRECONDITION, reason=R.Value("ORDERS_ERROR_REFUND_EXCEEDS_CAPTURED"),
          what="refunding more than is left")
    ocall("GetOrder", O.GetOrderRequest(customer_id="py-cust", order_id="missing"),
          want=SC.NOT_FOUND, reason=R.Value("ORDERS_ERROR_NOT_FOUND"))
    listed = ocall("ListOrders", O.ListOrdersRequest(customer_id="py-cust"))
    check(sorted(o.order_id for o in listed.orders) == sorted([order.order_id, big.order_id]),
          f"ListOrders {[o.order_id for o in listed.orders]}")
    bal = ocall("GetAccount", O.GetAccountRequest(account_id="py-acct")).balance
    check(bal == 3500, f"balance after paying 2500 and a refund of 1000: {bal}")
    # Garbage to every Orders method at every node: INVALID_ARGUMENT, nobody dies.
    for name in ("CreateOrder", "PayOrder", "RefundOrder", "ListOrders", "ReserveStock"):
        for n in nodes:
            code, details, _ = raw_call(n.channel, f"/orderkv.v1.Orders/{name}", b"\xff\xff\x07")
            check(code == SC.INVALID_ARGUMENT, f"garbage to Orders/{name} at {n.name}: "
                  f"{code.name} {details!r}")
    for n in nodes:
        check(n.alive(), f"{n.name} died after Orders garbage\n" + n.log_tail())


def cluster_tpc_garbage(nodes, tids, parts, seed):
    rng = random.Random(seed ^ 0x7c0)
    acc, np_ = tids["accounts"], parts["accounts"]
    counts = {}
    n_calls = 0

    def send(node, payload, want, what):
        nonlocal n_calls
        code, details, _ = raw_call(node.channel, TPC_PATHS["TxnPart"], payload)
        n_calls += 1
        counts[code.name] = counts.get(code.name, 0) + 1
        if code not in want or not details:
            raise TestFailure(f"{node.name}: TxnPart {what}: request bytes {payload[:96].hex()}"
                              f"{'...' if len(payload) > 96 else ''} ({len(payload)} bytes) "
                              f"answered {code.name} {details!r}, want "
                              f"{sorted(c.name for c in want)} with a message")

    def part(table, partition, message, want, what):
        req = pb.TxnPartRequest(table=table, partition=partition, message=message)
        for node in nodes:
            send(node, req.SerializeToString(), want, what)

    IA, NF = {SC.INVALID_ARGUMENT}, {SC.NOT_FOUND}
    # The well-formed step used below, sent where it belongs, is accepted
    # (CHECK of an unknown transaction, flag 0 = only ask: NONE, no record).
    good = tpc_msg(TPC_CHECK, acc, 3 % np_, client=0x6a7ba6e, req=4242)
    node, code, details, r = on_leader(
        nodes, body_call(TPC_PATHS["TxnPart"],
                         pb.TxnPartRequest(table="accounts", partition=3 % np_, message=good),
                         pb.TxnPartResponse),
        "TxnPart CHECK of an unknown transaction")
    check(code == SC.OK and r.state == pb.TxnPartResponse.NONE,
          f"TxnPart CHECK of an unknown transaction on {node.name}: {code.name} {details!r} "
          f"{one_line(r) if r is not None else None}")
    # A step for another partition, or another table, than the call's.
    part("accounts", (3 + 1) % np_, good, IA, "a CHECK for partition 3 sent to another one")
    part("orders", 3 % np_, good, IA, "a CHECK for accounts sent as orders")
    # Unknown tables, partitions out of range.
    part("nosuchtable", 0, good, NF, "unknown table")
    part("", 0, good, NF | IA, "empty table name")
    part("Accounts", 0, good, NF, "table name in the wrong case")
    part("accounts", np_, tpc_msg(TPC_CHECK, acc, np_), IA, f"partition {np_} of {np_}")
    part("accounts", 0xFFFFFFFF, tpc_msg(TPC_CHECK, acc, 0xFFFFFFFF), IA, "partition 2^32-1")
    # Malformed steps for the right partition.
    p0 = 0
    bad_msgs = {
        "empty message": b"",
        "one byte": b"\x01",
        "67 bytes": tpc_msg(TPC_CHECK, acc, p0)[:67],
        "an extra trailing byte": tpc_msg(TPC_CHECK, acc, p0) + b"\x00",
        "format 2": b"\x02" + tpc_msg(TPC_CHECK, acc, p0)[1:],
        "format 0": b"\x00" + tpc_msg(TPC_CHECK, acc, p0)[1:],
        "kind 0": tpc_msg(0, acc, p0),
        "kind 7": tpc_msg(7, acc, p0),
        "kind 255": tpc_msg(255, acc, p0),
        "CHECK with flag 3": tpc_msg(TPC_CHECK, acc, p0, flag=3),
        "FORGET with flag 'X'": tpc_msg(TPC_FORGET, acc, p0, flag=ord("X")),
        "65 participants": tpc_msg(TPC_CHECK, acc, p0, nparts=65, parts=b"\0" * 8 * 65),
        "2^32-1 participants": tpc_msg(TPC_CHECK, acc, p0, nparts=0xFFFFFFFF),
        "1 participant, no bytes for it": tpc_msg(TPC_CHECK, acc, p0, nparts=1),
        "CHECK with participants": tpc_msg(TPC_CHECK, acc, p0, nparts=1,
                                           parts=struct.pack(">II", acc, p0)),
        "CHECK with a share": tpc_msg(TPC_CHECK, acc, p0, share=b"xyz"),
        "share length past the end": tpc_msg(TPC_CHECK, acc, p0, share=b"xyz", share_len=1000),
        "share length 2^32-1": tpc_msg(TPC_CHECK, acc, p0, share=b"xyz",
                                       share_len=0xFFFFFFFF),
        "PREPARE without a share": tpc_msg(TPC_PREPARE, acc, p0),
        "coordinator PREPARE with one participant": tpc_msg(
            TPC_PREPARE, acc, p0, nparts=1, parts=struct.pack(">II", acc, p0), share=b"junk"),
        # Well-formed steps no partition could apply. Each of these once
        # reached the log and stopped every replica, again at each restart.
        "DECIDE for a partition that does not coordinate": tpc_msg(
            TPC_DECIDE, acc, p0, flag=1, coord=(acc, p0 + 1), deadline=1 << 62),
        "CHECK for a partition that does not coordinate": tpc_msg(
            TPC_CHECK, acc, p0, coord=(acc, p0 + 1)),
        "FINISH for a partition that does not coordinate": tpc_msg(
            TPC_FINISH, acc, p0, coord=(acc, p0 + 1)),
        "participant PREPARE whose share is no transaction": tpc_msg(
            TPC_PREPARE, acc, p0, coord=(acc, p0 + 1), share=b"junk", deadline=1 << 62),
    }
    for what, m in bad_msgs.items():
        part("accounts", p0, m, IA, what)
    # Random bytes as the step, of many sizes, for every partition.
    for size in list(range(0, 80, 3)) + [127, 128, 255, 1000, 4096, 65536]:
        part("accounts", rng.randrange(np_), rng.randbytes(size), IA, f"{size} random bytes")
    for _ in range(60):
        m = bytearray(tpc_msg(rng.choice([TPC_PREPARE, TPC_CHECK, TPC_FORGET]), acc,
                              rng.randrange(np_)))
        m += rng.randbytes(rng.randrange(1, 40))   # trailing junk: the share length is wrong
        m[0] = rng.choice([0, 2, 3, 0xff]) if rng.random() < 0.3 else m[0]
        table = rng.choice(["accounts", "orders", "payments"])
        part(table, rng.randrange(np_), bytes(m), IA, "a mutated step with trailing junk")
    # Raw bytes that are not a TxnPartRequest / TxnStatusRequest at all.
    malformed = [b"\x08", b"\x08\xff", b"\x0a\x05ab", b"\x12\xff\xff\xff\xff\x0f", b"\x0f",
                 b"\x00\x01", b"\x09\x01\x02", b"\x0b\x0c", b"\x08" + b"\xff" * 11]
    for node in nodes:
        for m in malformed:
            send(node, m, IA, "malformed protobuf")
            code, details, _ = raw_call(node.channel, TPC_PATHS["TxnStatus"], m)
            check(code == SC.INVALID_ARGUMENT and details,
                  f"{node.name}: TxnStatus with malformed bytes {m!r}: {code.name} {details!r}")
        for _ in range(100):
            send(node, rng.randbytes(rng.randrange(0, 200)), IA | NF, "random request bytes")
    log(f"TxnPart garbage: {n_calls} calls, statuses {counts}")


# --------------------------------------------------------------------------

def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--orderkvd", required=True)
    ap.add_argument("--proto-dir", required=True)
    ap.add_argument("--seed", type=int, default=None)
    ap.add_argument("--keep", action="store_true", help="keep the temp dir")
    args = ap.parse_args()
    seed = args.seed if args.seed is not None else random.SystemRandom().randrange(1 << 32)
    binary = os.path.abspath(args.orderkvd)
    check(os.access(binary, os.X_OK), f"{binary} is not executable")

    work = tempfile.mkdtemp(prefix="okv-pytest-")
    servers = []

    def cleanup():
        for srv in servers:
            srv.kill()
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
        else:
            log(f"kept {work}")
    atexit.register(cleanup)

    def on_alarm(signum, frame):
        raise TestFailure(f"overall time limit of {OVERALL_TIMEOUT}s exceeded")
    signal.signal(signal.SIGALRM, on_alarm)
    signal.alarm(OVERALL_TIMEOUT)

    t0 = time.monotonic()
    try:
        generate_stubs(os.path.abspath(args.proto_dir), os.path.join(work, "stubs"))
        data_dir = os.path.join(work, "data")
        srv = Server(binary, data_dir, work, "first")
        servers.append(srv)
        srv.start()
        st = {}
        for fn in (step_put_get, step_check_version, step_txn, step_single_tpc, step_delete,
                   step_scan, step_records):
            log(fn.__name__)
            fn(srv, st)
        log("step_status")
        step_status(srv, st, data_dir)
        before = {t: snapshot(srv, t) for t in ("orders", "payments")}
        log("step_bad_input")
        step_bad_input(srv, st)
        log("step_garbage")
        step_garbage(srv, st, seed)
        log("step_intact")
        check(srv.alive(), "server is down after bad input")
        step_status(srv, st, data_dir)
        step_intact(srv, st, before, "after bad input")

        log("SIGTERM")
        rc = srv.stop()
        check(rc == 0, f"orderkvd exited with {rc} after SIGTERM, want 0\n" + srv.log_tail())

        log("restart on the same data dir")
        srv2 = Server(binary, data_dir, work, "second")
        servers.append(srv2)
        srv2.start()
        step_intact(srv2, st, before, "after restart")
        last = get(srv2, "orders", b"alice/o2")
        r = put(srv2, "orders", b"alice/o3", b"after restart")
        check(r.version > last.version,
              f"version {r.version} after restart is not above {last.version}: "
              "a partition's versions must keep increasing across restarts")
        expect_error(srv2.kv.Get, pb.GetRequest(table="orders", key=b"carol/d1"), SC.NOT_FOUND,
                     what="a delete must survive restart")
        step_status(srv2, {}, data_dir)
        rc = srv2.stop()
        check(rc == 0, f"restarted orderkvd exited with {rc}, want 0\n" + srv2.log_tail())

        log("step_cluster")
        step_cluster(binary, work, servers, seed)
        log("step_cluster_idem_gc")
        step_cluster_idem_gc(binary, work, servers)
    except Exception as e:
        signal.alarm(0)
        if not isinstance(e, TestFailure):
            traceback.print_exc()
        print(f"FAIL: {e}", flush=True)
        for srv_ in servers:
            print(srv_.log_tail(), flush=True)
        print(f"(garbage seed {seed})", flush=True)
        return 1
    signal.alarm(0)
    if SOFT_FAILURES:
        for f in SOFT_FAILURES:
            print(f"FAIL: {f}", flush=True)
        return 1
    log(f"PASS in {time.monotonic() - t0:.1f}s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
