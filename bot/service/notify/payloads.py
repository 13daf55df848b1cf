"""Each notification service's request for one notice: where to POST, and the JSON (pure).

==========  ===========================================================================
webhook     ``format: slack`` / ``mattermost``: ``{"text": ...}`` (Slack's and
            Mattermost's incoming webhooks); ``discord``: ``{"content": ...}`` cut to
            Discord's 2000 characters; ``json``: ``{"source": "krakenbot", "kind",
            "level", "text", "time", "fields"}`` for a service of your own
telegram    ``POST {api_url}/bot{token}/sendMessage`` with ``{"chat_id", "text",
            "disable_web_page_preview": true}`` (the Bot API)
==========  ===========================================================================

The URL holds the secret (the webhook's, the bot's token): it never leaves this module but
to the HTTP client, and it is a registered secret, so it is scrubbed from any log line.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Final

from bot.config import NotifierConfig
from bot.core.log import scrub_text
from bot.service.fmt import utc
from bot.service.notify.notice import Notice

__all__ = ["DISCORD_MAX", "Request", "request_for"]

DISCORD_MAX: Final = 2000


@dataclass(frozen=True, slots=True)
class Request:
    url: str
    body: dict[str, Any]


def request_for(notifier: NotifierConfig, item: Notice) -> Request:
    text = scrub_text(item.line())
    if notifier.kind == "telegram":
        assert notifier.token is not None and notifier.chat_id is not None
        base = notifier.api_url.rstrip("/")
        url = f"{base}/bot{notifier.token.reveal()}/sendMessage"
        body = {"chat_id": notifier.chat_id, "text": text, "disable_web_page_preview": True}
        return Request(url, body)
    assert notifier.url is not None
    url = notifier.url.reveal()
    if notifier.format == "discord":
        cut = text if len(text) <= DISCORD_MAX else text[: DISCORD_MAX - 1] + "…"
        return Request(url, {"content": cut})
    if notifier.format == "json":
        return Request(
            url,
            {
                "source": "krakenbot",
                "kind": item.kind,
                "level": item.level,
                "text": scrub_text(item.text),
                "time": utc(item.at_ns) + " UTC",
                "fields": dict(item.fields),
            },
        )
    return Request(url, {"text": text})
