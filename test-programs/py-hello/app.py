"""`py-hello`: a componentize-py wasi:http/proxy component.

Answers every request with `hello from python <path>` and prints `python stdout <path>`, so tests
can check that a componentize-py component (which imports more of WASI than the proxy world, at
its own 0.2.x patch versions) deploys, serves and logs under Updraft.
"""

from wit_world import exports
from wit_world.imports.types import (
    Fields,
    IncomingRequest,
    OutgoingBody,
    OutgoingResponse,
    ResponseOutparam,
)
from componentize_py_types import Ok


class IncomingHandler(exports.IncomingHandler):
    def handle(self, request: IncomingRequest, response_out: ResponseOutparam) -> None:
        path = request.path_with_query() or "/"
        print(f"python stdout {path}")
        response = OutgoingResponse(Fields.from_list([("content-type", b"text/plain")]))
        body = response.body()
        ResponseOutparam.set(response_out, Ok(response))
        stream = body.write()
        stream.blocking_write_and_flush(f"hello from python {path}\n".encode())
        stream.__exit__(None, None, None)
        OutgoingBody.finish(body, None)
