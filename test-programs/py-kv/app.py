"""`py-kv`: a componentize-py component using wasi:keyvalue 0.2.0-draft2.

`/<mount>/incr/<key>` increments a counter in the `default` store and answers its value, `/get/<key>`
answers a value (404 `absent`), `/set/<key>?<value>` stores the query as the value, and
`/open/<store>` opens a store: 200 `opened`, or 403 with the interface's error name.
"""

from wit_world import exports
from wit_world.imports import atomics, store
from wit_world.imports.types import (
    Fields,
    IncomingRequest,
    OutgoingBody,
    OutgoingResponse,
    ResponseOutparam,
)
from componentize_py_types import Err, Ok


def run(path: str) -> tuple[int, str]:
    route, _, query = path.partition("?")
    # `/<mount>/<op>/<key>`: the first segment is the route's.
    _mount, _, rest = route.strip("/").partition("/")
    op, _, key = rest.partition("/")
    try:
        if op == "open":
            store.open(key)
            return 200, "opened"
        bucket = store.open("default")
        if op == "incr":
            return 200, str(atomics.increment(bucket, key, 1))
        if op == "get":
            value = bucket.get(key)
            return (404, "absent") if value is None else (200, value.decode())
        if op == "set":
            bucket.set(key, query.encode())
            return 200, "set"
        return 400, f"unknown operation {op}"
    except Err as e:
        return 403, f"error: {type(e.value).__name__}"


class IncomingHandler(exports.IncomingHandler):
    def handle(self, request: IncomingRequest, response_out: ResponseOutparam) -> None:
        status, text = run(request.path_with_query() or "/")
        response = OutgoingResponse(Fields.from_list([("content-type", b"text/plain")]))
        response.set_status_code(status)
        body = response.body()
        ResponseOutparam.set(response_out, Ok(response))
        stream = body.write()
        stream.blocking_write_and_flush(text.encode())
        stream.__exit__(None, None, None)
        OutgoingBody.finish(body, None)
