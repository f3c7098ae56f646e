"""A webhook receiver that verifies CasaPay deliveries with off-the-shelf libraries.

    pip install standardwebhooks==1.1.0 stripe==16.1.0
    CASAPAY_WEBHOOK_SECRET=whsec_... python3 examples/receiver.py 8000

Each delivery carries two signatures over the same body: `webhook-signature`
(Standard Webhooks) and `CasaPay-Signature` (Stripe's scheme). Either library
verifies it unchanged; this receiver checks both and answers 400 if either fails.
Set CASAPAY_WEBHOOK_SECRET_FILE instead to read the secret from a file on every
request (scripts/check-receiver uses that), and CASAPAY_RECEIVER_LOG to append
one line per verified event.
"""

import json
import os
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import stripe
from standardwebhooks.webhooks import Webhook


def secret() -> str:
    path = os.environ.get("CASAPAY_WEBHOOK_SECRET_FILE")
    if path:
        with open(path, encoding="utf-8") as f:
            return f.read().strip()
    return os.environ["CASAPAY_WEBHOOK_SECRET"]


class Handler(BaseHTTPRequestHandler):
    def do_POST(self):  # noqa: N802 (the http.server API)
        body = self.rfile.read(int(self.headers.get("content-length", "0")))
        key = secret()
        try:
            # Standard Webhooks: webhook-id, webhook-timestamp, webhook-signature.
            Webhook(key).verify(body, {k.lower(): v for k, v in self.headers.items()})
            # Stripe's scheme: t=...,v1=... in CasaPay-Signature, keyed by the whole secret.
            event = stripe.Webhook.construct_event(body.decode("utf-8"), self.headers["CasaPay-Signature"], key)
        except Exception as e:  # both libraries raise their own verification errors
            print(f"refused: {type(e).__name__}: {e}", file=sys.stderr)
            self.send_response(400)
            self.end_headers()
            return
        print(f"verified {event['id']} {event['type']} (both schemes)")
        log = os.environ.get("CASAPAY_RECEIVER_LOG")
        if log:
            with open(log, "a", encoding="utf-8") as f:
                f.write(json.dumps({"id": event["id"], "type": event["type"]}) + "\n")
        self.send_response(204)
        self.end_headers()

    def log_message(self, *args):
        pass


if __name__ == "__main__":
    port = int(sys.argv[1]) if len(sys.argv) > 1 else 8000
    ThreadingHTTPServer(("127.0.0.1", port), Handler).serve_forever()
