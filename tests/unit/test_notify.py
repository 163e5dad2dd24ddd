"""Webhook payloads and signatures. Sending is tested with a fake `post` callable (no network)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import urllib.parse
from typing import Any

import pytest
import requests

from slipway import notify
from slipway.exitcodes import ExitCode
from slipway.report import Report
from slipway.results import Decision, ServiceResult
from slipway.secrets import Secrets

REPORT = Report(
    command="deploy",
    env="production",
    run_id="r1",
    decision=Decision(ExitCode.OK, "deployed", "deployed"),
    duration=42.4,
    results=[ServiceResult("h1", "lark-service", "deployed", version="v1.5.0")],
    run_url="https://github.com/acme/ops/actions/runs/7",
)
SECRET = "SECtest0123456789"  # pragma: allowlist secret


def test_message() -> None:
    msg = notify.message(REPORT)
    assert msg.title == "slipway deploy production: deployed"
    assert msg.lines == [
        "deployed",
        "version: v1.5.0",
        "duration: 42s",
        "run: https://github.com/acme/ops/actions/runs/7",
    ]


def test_dingtalk_signature_matches_the_documented_algorithm() -> None:
    timestamp = 1700000000000
    # Independent computation following DingTalk's documentation: HMAC-SHA256 keyed with the secret over
    # "timestamp\nsecret", base64, then URL-encoded.
    expected_raw = base64.b64encode(
        hmac.new(SECRET.encode(), f"{timestamp}\n{SECRET}".encode(), hashlib.sha256).digest()
    ).decode()
    sign = notify.dingtalk_sign(SECRET, timestamp)
    assert urllib.parse.unquote_plus(sign) == expected_raw
    for char in "+/=":
        assert char not in sign  # URL-safe after quoting
    url = notify.dingtalk_url("https://oapi.dingtalk.com/robot/send?access_token=t", SECRET, timestamp)
    query = urllib.parse.parse_qs(urllib.parse.urlsplit(url).query)
    assert query["timestamp"] == [str(timestamp)]
    assert query["sign"] == [expected_raw]
    assert query["access_token"] == ["t"]
    assert notify.dingtalk_url("https://x/send", None, timestamp) == "https://x/send"


def test_feishu_signature_and_payload() -> None:
    timestamp = 1700000000
    expected = base64.b64encode(
        hmac.new(f"{timestamp}\n{SECRET}".encode(), b"", hashlib.sha256).digest()
    ).decode()
    assert notify.feishu_sign(SECRET, timestamp) == expected
    payload = notify.feishu_payload(notify.message(REPORT), SECRET, timestamp)
    assert payload["msg_type"] == "text"
    assert payload["timestamp"] == str(timestamp)
    assert payload["sign"] == expected
    assert "slipway deploy production: deployed" in payload["content"]["text"]
    assert "sign" not in notify.feishu_payload(notify.message(REPORT), None, timestamp)


def test_wecom_slack_dingtalk_payloads() -> None:
    msg = notify.message(REPORT)
    assert notify.wecom_payload(msg)["markdown"]["content"].startswith(
        "**slipway deploy production: deployed**\n"
    )
    ding = notify.dingtalk_payload(msg)
    assert ding["msgtype"] == "markdown"
    assert ding["markdown"]["title"] == msg.title
    assert "run: https://github.com/acme/ops/actions/runs/7" in ding["markdown"]["text"]
    slack = notify.slack_payload(msg)
    assert slack["text"].startswith("slipway deploy production: deployed\n")
    assert slack["blocks"][0]["text"]["text"] == msg.title


def test_send_all_posts_to_each_configured_webhook_and_reports_failures() -> None:
    secrets = Secrets(
        {
            "SLIPWAY_FEISHU_WEBHOOK": "https://open.feishu.cn/hook/abc",
            "SLIPWAY_DINGTALK_WEBHOOK": "https://oapi.dingtalk.com/robot/send?access_token=tok",
            "SLIPWAY_DINGTALK_SECRET": SECRET,
            "SLIPWAY_WECOM_WEBHOOK": "https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=k",
            "SLIPWAY_SLACK_WEBHOOK": "https://hooks.slack.com/services/T/B/X",
        }
    )
    sent: list[tuple[str, dict[str, Any]]] = []

    def post(url: str, payload: dict[str, Any]) -> None:
        sent.append((url, payload))
        if "slack" in url:
            raise requests.ConnectionError("no route to https://hooks.slack.com/services/T/B/X")

    warnings = notify.send_all(REPORT, secrets, post, now=1700000000.0)
    assert [u.split("/")[2] for u, _ in sent] == [
        "open.feishu.cn",
        "oapi.dingtalk.com",
        "qyapi.weixin.qq.com",
        "hooks.slack.com",
    ]
    assert "&timestamp=1700000000000&sign=" in sent[1][0]
    assert warnings == ["notification to slack failed (ConnectionError)"]  # the URL (a token) is not repeated
    assert notify.send_all(REPORT, Secrets({}), post) == []


class _Response:
    def __init__(self, body: object) -> None:
        self.body = body

    def raise_for_status(self) -> None:
        return None

    def json(self) -> object:
        if self.body is None:
            raise ValueError("no json")
        return self.body


@pytest.mark.parametrize(
    ("body", "refused"), [({"errcode": 0}, False), ({"code": 19021}, True), (None, False)]
)
def test_post_json_reads_the_services_error_codes(
    monkeypatch: pytest.MonkeyPatch, body: object, refused: bool
) -> None:
    """requests.post is replaced by a fake: no network."""
    monkeypatch.setattr(requests, "post", lambda url, json, timeout: _Response(body))
    if refused:
        with pytest.raises(ValueError, match="refused"):
            notify.post_json("https://x", {})
    else:
        notify.post_json("https://x", {})
