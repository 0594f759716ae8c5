"""The retry policy in the playground: shown on each pane, cycled by a key."""

from __future__ import annotations

from typing import TYPE_CHECKING

from rtplay.clients.base import Client
from rtplay.clients.core import ReconnectingClient
from rtplay.model.events import State
from rtplay.model.retry_spec import next_in_cycle
from rtplay.tui.model import DETAIL_SEPARATOR

if TYPE_CHECKING:
    from rtplay.engine.session import Session


def with_policy(client: Client, detail: str) -> str:
    """The pane's detail line with the client's retry policy (while it is not retrying: a
    retrying pane already names the policy that decided its wait)."""
    if not isinstance(client, ReconnectingClient) or client.state is State.RETRYING:
        return detail
    policy = f"retry {client.retry.describe()}"
    return f"{detail}{DETAIL_SEPARATOR}{policy}" if detail else policy


def cycle_policies(session: Session, transports: list[str]) -> list[str]:
    """Move each transport's client to the next policy of the cycle; say what each now uses."""
    said = []
    for name in transports:
        client = session.clients.get(name)
        if not isinstance(client, ReconnectingClient):
            continue
        spec = next_in_cycle(str(client.retry_spec) if client.retry_spec else "")
        session.set_policy(name, spec)
        said.append(f"{name}: {client.retry.describe()}")
    return said
