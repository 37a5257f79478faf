"""Serve the function over gRPC, as Crossplane runs it (port 9443, TLS from a mounted directory)."""
from __future__ import annotations

import argparse
import os

from crossplane.function import logging as fnlogging
from crossplane.function import runtime

from .fn import FunctionRunner


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="function-idp-multicloud")
    parser.add_argument("--address", default="0.0.0.0:9443", help="address to listen on")
    parser.add_argument("--tls-certs-dir", default=os.environ.get("TLS_SERVER_CERTS_DIR", ""), help="directory with tls.crt, tls.key, ca.crt (Crossplane mounts it)")
    parser.add_argument("--insecure", action="store_true", help="serve without TLS (local runs and tests)")
    parser.add_argument("--debug", action="store_true")
    args = parser.parse_args(argv)
    fnlogging.configure(level=fnlogging.Level.DEBUG if args.debug else fnlogging.Level.INFO)
    creds = runtime.load_credentials(args.tls_certs_dir) if args.tls_certs_dir else None
    runtime.serve(FunctionRunner(), args.address, creds=creds, insecure=args.insecure)


if __name__ == "__main__":
    main()
