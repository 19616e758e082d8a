"""`tidings webhooks listen`: a receiver to point `webhook_url` at while trying Tidings out.

It prints every request that arrives (path, whether its signature checks out, the JSON body) and
answers 200, so nothing is retried. It is a tool for a terminal, not a production endpoint.
"""

from __future__ import annotations

import asyncio
import json
from datetime import datetime

import typer
from aiohttp import web

from tidings.auth.webhook_signing import verify_webhook

app = typer.Typer(help="Receive Tidings' webhooks locally.", no_args_is_help=True)

# A webhook body is a few kilobytes; anything much larger is not one of ours.
MAX_BODY_BYTES = 1024 * 1024


def signature_verdict(authorization: str, body: bytes, signature_secret: str | None) -> str:
    if not authorization.startswith("Bearer "):
        return "unsigned"
    if signature_secret is None:
        return "signed (not checked: no --signature-secret)"
    if verify_webhook(authorization.removeprefix("Bearer "), body, signature_secret):
        return "signature ok"
    return "SIGNATURE INVALID"


def render(path: str, verdict: str, body: bytes) -> str:
    try:
        shown = json.dumps(json.loads(body), indent=2, ensure_ascii=False)
    except ValueError:
        shown = body.decode("utf-8", "replace")
    return f"--- {datetime.now().astimezone().isoformat(timespec='seconds')} POST {path} [{verdict}]\n{shown}"


def listener(signature_secret: str | None) -> web.Application:
    async def receive(request: web.Request) -> web.Response:
        body = await request.read()
        verdict = signature_verdict(request.headers.get("Authorization", ""), body, signature_secret)
        typer.echo(render(request.path, verdict, body))
        return web.Response(status=200)

    application = web.Application(client_max_size=MAX_BODY_BYTES)
    application.router.add_post("/{path:.*}", receive)
    return application


@app.command("listen")
def listen(
    port: int = typer.Option(3000, help="Port to listen on."),
    host: str = typer.Option("127.0.0.1", help="Address to listen on."),
    signature_secret: str | None = typer.Option(
        None,
        envvar="TIDINGS_SIGNATURE_SECRET",
        help="The account's signature secret, to check each webhook's signature.",
    ),
) -> None:
    """Print the webhooks that arrive at http://HOST:PORT/ (any path), checking their signatures."""

    async def run() -> None:
        runner = web.AppRunner(listener(signature_secret), access_log=None)
        await runner.setup()
        await web.TCPSite(runner, host, port).start()
        typer.echo(f"Listening for webhooks on http://{host}:{port}/ (Ctrl-C to stop)", err=True)
        try:
            await asyncio.Event().wait()
        finally:
            await runner.cleanup()

    try:
        asyncio.run(run())
    except KeyboardInterrupt:
        pass
