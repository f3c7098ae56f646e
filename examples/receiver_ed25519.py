"""A webhook receiver for endpoints created with `signature_scheme=ed25519`.

    pip install cryptography==46.0.3
    CASAPAY_WEBHOOK_PUBLIC_KEY=whpk_... python3 examples/receiver_ed25519.py 8001

Standard Webhooks' asymmetric scheme: `webhook-signature` carries `v1a,<base64>`
signatures (one per key that signs, space-separated) of
"{webhook-id}.{webhook-timestamp}.{body}", checked here with the endpoint's public key
(`whpk_` + base64 of the raw 32-byte Ed25519 key) by the `cryptography` package, not by
any CasaPay code. Deliveries older or newer than five minutes are refused as replays.
CASAPAY_WEBHOOK_PUBLIC_KEY_FILE reads the key from a file on every request;
CASAPAY_RECEIVER_LOG appends one line per verified event.
"""

import base64
import json
import os
import sys
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

TOLERANCE_SECONDS = 300


def public_key() -> Ed25519PublicKey:
    path = os.environ.get("CASAPAY_WEBHOOK_PUBLIC_KEY_FILE")
    if path:
        with open(path, encoding="utf-8") as f:
            text = f.read().strip()
    else:
        text = os.environ["CASAPAY_WEBHOOK_PUBLIC_KEY"]
    if not text.startswith("whpk_"):
        raise ValueError("a public key begins with whpk_")
    return Ed25519PublicKey.from_public_bytes(base64.b64decode(text[len("whpk_"):]))


def verify(headers, body: bytes) -> None:
    msg_id, timestamp = headers["webhook-id"], headers["webhook-timestamp"]
    if abs(time.time() - int(timestamp)) > TOLERANCE_SECONDS:
        raise ValueError("timestamp outside the tolerance")
    signed = f"{msg_id}.{timestamp}.".encode() + body
    key = public_key()
    for entry in headers["webhook-signature"].split(" "):
        version, _, signature = entry.partition(",")
        if version != "v1a":
            continue
        try:
            key.verify(base64.b64decode(signature), signed)
            return
        except InvalidSignature:
            pass
    raise ValueError("no v1a signature verified")


class Handler(BaseHTTPRequestHandler):
    def do_POST(self):  # noqa: N802 (the http.server API)
        body = self.rfile.read(int(self.headers.get("content-length", "0")))
        try:
            verify({k.lower(): v for k, v in self.headers.items()}, body)
        except Exception as e:
            print(f"refused: {type(e).__name__}: {e}", file=sys.stderr)
            self.send_response(400)
            self.end_headers()
            return
        event = json.loads(body)
        print(f"verified {event['id']} {event['type']} (ed25519)")
        log = os.environ.get("CASAPAY_RECEIVER_LOG")
        if log:
            with open(log, "a", encoding="utf-8") as f:
                f.write(json.dumps({"id": event["id"], "type": event["type"]}) + "\n")
        self.send_response(204)
        self.end_headers()

    def log_message(self, *args):
        pass


if __name__ == "__main__":
    port = int(sys.argv[1]) if len(sys.argv) > 1 else 8001
    ThreadingHTTPServer(("127.0.0.1", port), Handler).serve_forever()
