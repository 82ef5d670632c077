"""Schemathesis hooks for `deploy/dev fuzz-api` (loaded through SCHEMATHESIS_HOOKS).

A generated Idempotency-Key is drawn from a small space ("0", "00", ...), so two different
requests of a run often carry the same one; the API then rightly answers the second with 422
(the key was used for another request) and never runs it. A real client sends a new key for each
new request, so a well-formed key is replaced by a fresh UUID before each call; a malformed one
(negative testing: too long, not visible ASCII) is left for the API to refuse with 400.
"""

import re
import uuid

import schemathesis

WELL_FORMED = re.compile(r"^[!-~]{1,255}$")
HEADER = "idempotency-key"


@schemathesis.hook
def before_call(context, case, kwargs):
    headers = case.headers or {}
    for name in list(headers):
        value = headers[name]
        if name.lower() == HEADER and isinstance(value, str) and WELL_FORMED.match(value):
            headers[name] = str(uuid.uuid4())
