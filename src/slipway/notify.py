"""Notifications to chat webhooks: Feishu/Lark, DingTalk (signed), WeCom and Slack.

Payload builders are pure functions (tested); `send_all` posts them. A failed notification is reported as a
warning and never changes the exit code. Webhook URLs carry tokens: they are never printed.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import time
import urllib.parse
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import requests

from slipway import secrets as names
from slipway.report import Report
from slipway.secrets import Secrets

TIMEOUT = 10


@dataclass(frozen=True)
class Message:
    title: str
    lines: list[str]

    @property
    def text(self) -> str:
        return "\n".join([self.title, *self.lines])


def message(report: Report) -> Message:
    title = f"slipway {report.command} {report.env}: {report.decision.outcome}"
    lines = [report.decision.reason]
    if report.versions:
        lines.append(f"version: {report.versions}")
    lines.append(f"duration: {report.duration:.0f}s")
    if report.run_url:
        lines.append(f"run: {report.run_url}")
    return Message(title, lines)


def dingtalk_sign(secret: str, timestamp_ms: int) -> str:
    """DingTalk: base64(HMAC-SHA256(key=secret, msg="<timestamp>\\n<secret>")), URL-encoded."""
    digest = hmac.new(secret.encode(), f"{timestamp_ms}\n{secret}".encode(), hashlib.sha256).digest()
    return urllib.parse.quote_plus(base64.b64encode(digest).decode())


def feishu_sign(secret: str, timestamp_s: int) -> str:
    """Feishu/Lark: base64(HMAC-SHA256(key="<timestamp>\\n<secret>", msg=b""))."""
    digest = hmac.new(f"{timestamp_s}\n{secret}".encode(), b"", hashlib.sha256).digest()
    return base64.b64encode(digest).decode()


def feishu_payload(msg: Message, secret: str | None, timestamp_s: int) -> dict[str, Any]:
    payload: dict[str, Any] = {"msg_type": "text", "content": {"text": msg.text}}
    if secret:
        payload.update({"timestamp": str(timestamp_s), "sign": feishu_sign(secret, timestamp_s)})
    return payload


def dingtalk_url(webhook: str, secret: str | None, timestamp_ms: int) -> str:
    if not secret:
        return webhook
    joiner = "&" if "?" in webhook else "?"
    return f"{webhook}{joiner}timestamp={timestamp_ms}&sign={dingtalk_sign(secret, timestamp_ms)}"


def dingtalk_payload(msg: Message) -> dict[str, Any]:
    text = "\n\n".join([f"#### {msg.title}", *msg.lines])
    return {"msgtype": "markdown", "markdown": {"title": msg.title, "text": text}}


def wecom_payload(msg: Message) -> dict[str, Any]:
    return {"msgtype": "markdown", "markdown": {"content": "\n".join([f"**{msg.title}**", *msg.lines])}}


def slack_payload(msg: Message) -> dict[str, Any]:
    return {
        "text": msg.text,
        "blocks": [
            {"type": "header", "text": {"type": "plain_text", "text": msg.title[:150]}},
            {"type": "section", "text": {"type": "mrkdwn", "text": "\n".join(msg.lines)}},
        ],
    }


Post = Callable[[str, dict[str, Any]], None]


def post_json(url: str, payload: dict[str, Any]) -> None:
    """POST the payload; these services answer HTTP 200 with a non-zero errcode/code when they refuse it."""
    response = requests.post(url, json=payload, timeout=TIMEOUT)
    response.raise_for_status()
    try:
        body = response.json()
    except ValueError:
        return
    if isinstance(body, dict) and (body.get("errcode") or body.get("code")):
        raise ValueError("the webhook refused the message")


def requests_for(report: Report, secrets: Secrets, now: float) -> list[tuple[str, str, dict[str, Any]]]:
    """(channel, url, payload) for every configured webhook."""
    msg = message(report)
    out: list[tuple[str, str, dict[str, Any]]] = []
    feishu = secrets.get(names.FEISHU_WEBHOOK)
    if feishu:
        out.append(("feishu", feishu, feishu_payload(msg, secrets.get(names.FEISHU_SECRET), int(now))))
    dingtalk = secrets.get(names.DINGTALK_WEBHOOK)
    if dingtalk:
        url = dingtalk_url(dingtalk, secrets.get(names.DINGTALK_SECRET), int(now * 1000))
        out.append(("dingtalk", url, dingtalk_payload(msg)))
    wecom = secrets.get(names.WECOM_WEBHOOK)
    if wecom:
        out.append(("wecom", wecom, wecom_payload(msg)))
    slack = secrets.get(names.SLACK_WEBHOOK)
    if slack:
        out.append(("slack", slack, slack_payload(msg)))
    return out


def send_all(report: Report, secrets: Secrets, post: Post = post_json, now: float | None = None) -> list[str]:
    """Send to every configured webhook; returns one warning per failure (channel and error type only): a failed
    notification never stops the others or the run's report."""
    warnings = []
    for channel, url, payload in requests_for(report, secrets, time.time() if now is None else now):
        try:
            post(url, payload)
        except Exception as exc:  # any failure (not only the network's): a warning, the others are still sent
            warnings.append(f"notification to {channel} failed ({exc.__class__.__name__})")
    return warnings
