"""Schemathesis hooks for the contract test (loaded by `tests/contract/run`). Each one works
around a limit of the generator, never of the API, and is listed in the README.

1. Idempotency keys: the backend answers a key reused with a different request by
   `422 idempotency_key_reused`, as the IETF Idempotency-Key draft requires. Generated data reuses
   short keys ("0", "a") across unrelated requests, so every request that carries a well-formed key
   gets a fresh one; malformed keys (the negative cases, which must get 400) are sent as generated.
   Replays under one key are tested by the backend's own tests.
2. Consistency tokens in the `X-Consistency-Token` header: for header values, the coverage phase
   keeps to letters and digits, so it cannot build a token (`Type:tenant:uuid:version`); in a case
   it calls positive (testing another parameter) it sends a header that breaks the documented
   pattern. Such a case gets a well-formed token instead (of no write of this tenant: the answer
   is 404). Negative cases, and tokens in the query string, are sent as generated.
"""

import re
import uuid

import schemathesis

WELL_FORMED_KEY = re.compile(r"[!-~]{1,255}")
# The documented pattern of a consistency token (`ConsistencyToken::PATTERN` in the domain).
TOKEN = re.compile(
    r"[A-Za-z][A-Za-z0-9]{0,63}:[A-Za-z0-9_-]{1,128}:"
    r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}:(?:0|[1-9][0-9]{0,18})"
)
SOME_TOKEN = "User:contract-hooks:00000000-0000-4000-8000-000000000000:1"


def _is_positive(case):
    meta = getattr(case, "meta", None)
    return meta is not None and meta.generation.mode.is_positive


@schemathesis.hook
def before_call(ctx, case, **kwargs):
    headers = case.headers
    if not headers:
        return
    for name in list(headers):
        value = headers[name]
        if not isinstance(value, str):
            continue
        lowered = name.lower()
        if lowered == "idempotency-key" and WELL_FORMED_KEY.fullmatch(value):
            headers[name] = str(uuid.uuid4())
        elif (
            lowered == "x-consistency-token"
            and not TOKEN.fullmatch(value)
            and _is_positive(case)
        ):
            headers[name] = SOME_TOKEN
