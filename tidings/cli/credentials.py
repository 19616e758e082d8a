"""Printing a new account's credentials, once: `tidings accounts create` and serve's first start.

A module of its own so that `serve` does not import the accounts commands, and through them
Alembic (their database helper migrates first), which the server never runs in-process.
"""

from __future__ import annotations

import json

import typer

from tidings.services.accounts import NewAccountCredentials


def print_credentials(credentials: NewAccountCredentials, *, as_json: bool) -> None:
    if as_json:
        typer.echo(
            json.dumps(
                {
                    "api_key": credentials.api_key,
                    "api_secret": credentials.api_secret,
                    "signature_secret": credentials.signature_secret,
                }
            )
        )
        return
    typer.echo("Keep these credentials: the API secret and signature secret are not shown again.")
    typer.echo(f"  API key:          {credentials.api_key}")
    typer.echo(f"  API secret:       {credentials.api_secret}")
    typer.echo(f"  Signature secret: {credentials.signature_secret}")
