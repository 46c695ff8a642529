"""The webhook sender: batches as JSON lists, retries a 5xx, gives up on a 4xx, counts what it lost."""

from __future__ import annotations

from receivers import WebhookReceiver

from llmswitch.telemetry.webhook import WebhookSender, parse_headers


def test_a_batch_is_retried_after_a_5xx_and_delivered_once() -> None:
    with WebhookReceiver(statuses=[503, 502]) as rx:
        sender = WebhookSender(rx.url + "/in", headers={"x-k": "v"}, batch_size=10, interval=0.01, sleep=lambda s: None)
        for i in range(3):
            assert sender.send({"n": i})
        assert sender.flush(10)
        sender.close()
    assert [r.path for r in rx.received] == ["/in"] * 3  # two refused, the third taken
    assert rx.received[-1].headers["x-k"] == "v"
    assert sender.queue.stats()["sent"] == 3 and sender.queue.failed == 0
    assert rx.items()[-3:] == [{"n": 0}, {"n": 1}, {"n": 2}]


def test_a_4xx_is_not_retried_and_the_items_count_as_failed() -> None:
    with WebhookReceiver(statuses=[400]) as rx:
        sender = WebhookSender(rx.url, batched=False, interval=0.01, sleep=lambda s: None)
        sender.send({"event": "x"})
        assert sender.flush(10)
        sender.close()
    assert len(rx.received) == 1 and sender.queue.failed == 1


def test_a_dead_receiver_fails_after_its_retries() -> None:
    with WebhookReceiver() as rx:
        url = rx.url
    sender = WebhookSender(url, retries=2, interval=0.01, sleep=lambda s: None, timeout=1)
    sender.send({"a": 1})
    assert sender.flush(10)
    sender.close()
    assert sender.queue.failed == 1 and sender.queue.sent == 0


def test_parse_headers() -> None:
    assert parse_headers("a=1, b = two ,bad,=x") == {"a": "1", "b": "two"}
    assert parse_headers(None) == {}
