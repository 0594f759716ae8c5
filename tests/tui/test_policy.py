"""The retry policy in the playground: each pane names its client's policy, and the policy key
moves the selected clients through the cycle (poll, which has none, is left alone)."""

from __future__ import annotations

from rtplay.clients.poll import PollClient
from rtplay.clients.sse import SSEClient
from rtplay.clients.ws import WebSocketClient
from rtplay.engine.session import Session, SessionConfig
from rtplay.model.events import State
from rtplay.model.retry_spec import CYCLE, parse_policy
from rtplay.tui.policy import cycle_policies, with_policy

URL = "http://127.0.0.1:9"  # never connected to: these clients are not run


def test_a_pane_names_the_policy_beside_its_detail() -> None:
    client = WebSocketClient(URL, retry="fixed:2")
    assert with_policy(client, "open") == "open · retry fixed 2s"
    assert with_policy(client, "") == "retry fixed 2s"


def test_a_retrying_pane_is_not_told_its_policy_twice() -> None:
    client = WebSocketClient(URL, retry="fixed:2")
    client.state = State.RETRYING
    assert with_policy(client, "retrying in 2s (fixed 2s)") == "retrying in 2s (fixed 2s)"


def test_a_client_without_a_policy_keeps_its_detail() -> None:
    assert with_policy(PollClient(URL), "every 1s") == "every 1s"


def session_with(*clients: tuple[str, object]) -> Session:
    session = Session(SessionConfig(transports=[name for name, _ in clients]))
    session.clients.update(dict(clients))  # type: ignore[arg-type]
    return session


def test_the_policy_key_walks_the_whole_cycle_and_comes_back() -> None:
    ws = WebSocketClient(URL, retry=CYCLE[0])
    session = session_with(("ws", ws))
    seen = [str(ws.retry_spec)]
    for _ in CYCLE:
        (said,) = cycle_policies(session, ["ws"])
        assert said == f"ws: {ws.retry.describe()}"
        seen.append(str(ws.retry_spec))
    assert seen == [str(parse_policy(text)) for text in (*CYCLE, CYCLE[0])]
    # the session keeps the choice, so a client it builds again (restart) uses it too
    assert session.config.client_options["ws"]["retry"] == parse_policy(CYCLE[0])


def test_only_the_named_clients_move_and_poll_is_skipped() -> None:
    ws = WebSocketClient(URL, retry="immediate")
    sse = SSEClient(URL, retry="immediate")
    session = session_with(("poll", PollClient(URL)), ("sse", sse), ("ws", ws))
    said = cycle_policies(session, ["poll", "ws"])
    assert said == [f"ws: {ws.retry.describe()}"]
    assert str(ws.retry_spec) == str(parse_policy(CYCLE[0]))  # after the last comes the first
    assert str(sse.retry_spec) == "immediate"


def test_a_hand_built_policy_outside_the_cycle_moves_to_its_start() -> None:
    ws = WebSocketClient(URL, retry="exponential:full,base=0.25")
    session = session_with(("ws", ws))
    cycle_policies(session, ["ws"])
    assert str(ws.retry_spec) == str(parse_policy(CYCLE[0]))
