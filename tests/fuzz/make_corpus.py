#!/usr/bin/python3
"""Regenerates tests/fuzz/corpus/: valid encoded requests for fuzz_request.

Each file is one byte of request kind (0 Get, 1 Put, 2 Delete, 3 Scan,
4 Status, as enum request_kind in server/api/request.h) followed by the protobuf
body. Stubs are generated into a temp dir from proto/orderkv.proto with
Debian's grpc_tools (never committed). Run with /usr/bin/python3:

  /usr/bin/python3 tests/fuzz/make_corpus.py
"""
import hashlib
import os
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
PROTO = os.path.join(HERE, "..", "..", "proto")
GET, PUT, DELETE, SCAN, STATUS = range(5)


def main():
    with tempfile.TemporaryDirectory() as tmp:
        subprocess.run([sys.executable, "-m", "grpc_tools.protoc", f"-I{PROTO}",
                        f"--python_out={tmp}", os.path.join(PROTO, "orderkv.proto")],
                       check=True)
        sys.path.insert(0, tmp)
        import orderkv_pb2 as pb

        seeds = [
            (GET, pb.GetRequest(table="orders", key=b"cust42/o-1001")),
            (GET, pb.GetRequest(table="accounts", key=b"acct-9")),
            (PUT, pb.PutRequest(table="orders", key=b"cust42/o-1001", value=b"\x0a\x06o-1001",
                                client_id=7, request_id=1)),
            (PUT, pb.PutRequest(table="payments", key=b"o-1001/p-1", value=b"x" * 40,
                                check_version=True, expected_version=3)),
            (DELETE, pb.DeleteRequest(table="orders", key=b"cust42/o-1001", client_id=7,
                                      request_id=2, check_version=True, expected_version=5)),
            (DELETE, pb.DeleteRequest(table="payments", key=b"p")),
            (SCAN, pb.ScanRequest(table="orders", prefix=b"cust42/", limit=10)),
            (SCAN, pb.ScanRequest(table="orders", prefix=b"cust\xff\xff")),
            (SCAN, pb.ScanRequest(table="orders", start=b"a", end=b"m", limit=100)),
            (SCAN, pb.ScanRequest(table="accounts", start=b"acct-", limit=3,
                                  resume_token=b"\x01acct-5")),
            (SCAN, pb.ScanRequest(table="orders", prefix=b"cust42/",
                                  resume_token=b"\x01cust42/o-1001")),
            (STATUS, pb.StatusRequest()),
        ]
        out = os.path.join(HERE, "corpus")
        os.makedirs(out, exist_ok=True)
        for kind, msg in seeds:
            data = bytes([kind]) + msg.SerializeToString()
            name = f"{type(msg).__name__}-{hashlib.sha1(data).hexdigest()[:12]}"
            with open(os.path.join(out, name), "wb") as f:
                f.write(data)
            print(name, len(data))


if __name__ == "__main__":
    main()
