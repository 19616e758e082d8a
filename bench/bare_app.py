"""The baseline: FastAPI doing only what Tidings' send path cannot avoid.

It parses the same JSON and validates it with the same request models
(`tidings.wire.messages_v1.parse_send_request`), then answers 202 with a fresh UUID. It does not
authenticate and stores nothing. It is served by uvicorn the way `tidings serve` serves Tidings
(uvloop, httptools, one process, no access log, no lifespan), so the gap between the two is
what Tidings adds: authentication, building the message, the durable write and the worker.

Run alone: python -m bench.bare_app --port 8090
"""

from __future__ import annotations

import argparse
import asyncio
import json
import uuid

import uvicorn
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from tidings.wire.messages_v1 import parse_send_request

app = FastAPI(title="Tidings bench baseline", openapi_url=None, docs_url=None, redoc_url=None)


@app.post("/v1/messages", status_code=202)
async def send_message(request: Request) -> JSONResponse:
    body = json.loads(await request.body())
    parse_send_request(body)
    return JSONResponse({"message_uuid": str(uuid.uuid4())}, status_code=202)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8090)
    args = parser.parse_args()
    import uvloop

    uvloop.install()
    # The same uvicorn settings as tidings/cli/serve.py's listener.
    config = uvicorn.Config(
        app,
        host=args.host,
        port=args.port,
        lifespan="off",
        log_config=None,
        access_log=False,
        http="httptools",
    )
    asyncio.run(uvicorn.Server(config).serve())


if __name__ == "__main__":
    main()
