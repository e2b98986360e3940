"""After the whole end-to-end suite (this file runs last): no fictional person's name, date
of birth or identifier in any log line or broker message it produced."""

import json

import pika
import pytest

from fictional import find_personal, personal_values
from stack import LOG_FILES, TAP_QUEUE


def drain(amqp_url: str) -> list[str] | None:
    """Bodies and headers of every message the firehose copied, as text; None without one."""
    messages = []
    with pika.BlockingConnection(pika.URLParameters(amqp_url)) as connection:
        channel = connection.channel()
        try:
            channel.queue_declare(TAP_QUEUE, passive=True)
        except pika.exceptions.ChannelClosedByBroker:
            return None
        while True:
            method, props, body = channel.basic_get(TAP_QUEUE, auto_ack=True)
            if method is None:
                return messages
            messages.append(body.decode("utf-8", "replace") + json.dumps(
                props.headers or {}, default=str) + (props.message_id or ""))


def test_no_fictional_person_in_any_log_line_or_broker_message(
    personal_data_watch, amqp_url, request
) -> None:
    ran = [item for item in request.session.items if item.path.parent == request.path.parent
           and item.path != request.path]
    if not ran:
        pytest.skip("run with other end-to-end tests: it scans what they produced")
    # `make test` runs the end-to-end tests in several pytest processes, each with this scan
    # of its own run: thousands of lines and messages where the 1,000-referral test ran.
    # Where the broker restart ran alone: its 60 referrals sent before the broker stops, one
    # message each (their sender is on the API: no status message goes back to it), are
    # copied; the 40 sent after may be published before the copying is on again.
    least = 1000 if any(item.name.startswith("test_a_thousand") for item in ran) else 50
    lines = personal_data_watch.read_text().splitlines()
    for path in LOG_FILES:
        lines += path.read_text(errors="replace").splitlines() if path.exists() else []
    messages = drain(amqp_url)
    # Without the firehose nothing would check the broker messages: fail, do not pass.
    assert messages is not None, (
        "RabbitMQ's firehose could not be turned on: run the tests where `rabbitmqctl` works "
        "(as root, as `make test` does on the project's machines)")
    # The scan saw the run: thousands of lines and messages, and referrals among them.
    assert len(lines) > least and len(messages) > least, (len(lines), len(messages))
    assert sum('"referral_id"' in m for m in messages) > least
    wanted = personal_values()
    assert {"Zawadi", "2014-03-09", "Kiden"} <= wanted
    leaks = {value: line[:300] for line in lines for value in find_personal(line, wanted)}
    leaks |= {value: m[:300] for m in messages for value in find_personal(m, wanted)}
    assert not leaks, f"personal data in {len(leaks)} places: {sorted(leaks)}"
    print(f"scanned {len(lines)} log lines and {len(messages)} broker messages for "
          f"{len(wanted)} fictional values: none found")
