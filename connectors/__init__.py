"""Chat-platform connectors (Telegram, WeChat Official Account) over the assistant.

Each is mounted only when its settings are present; see README.md here for registering webhooks.
The assistant finds this package through the ``cpc.extensions`` entry point (pyproject.toml):
``mount`` adds the webhook routes to its app, ``add_commands`` adds ``cpc telegram``.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys

from fastapi import FastAPI

from .base import NotReady

log = logging.getLogger("cpc.connectors")

__all__ = ["mount", "add_commands", "NotReady"]


def _assistant_of(app: FastAPI):
    def get():
        catalog = getattr(app.state, "catalog", None)
        assistant = getattr(app.state, "assistant", None)
        if assistant is None or catalog is None or not catalog.ready:
            raise NotReady()
        return assistant

    return get


def mount(app: FastAPI, settings) -> list[str]:
    """Add the routes of every configured channel; returns the channels mounted."""
    mounted = []
    if settings.telegram_token is not None:
        if settings.telegram_secret is None:
            log.warning("CPC_TELEGRAM_TOKEN without CPC_TELEGRAM_SECRET: webhook not mounted (use `cpc telegram poll`)")
        else:
            from .telegram import TelegramConnector, telegram_router

            app.state.telegram = TelegramConnector(settings, _assistant_of(app))
            app.include_router(telegram_router(app.state.telegram))
            mounted.append("telegram")
    if settings.wechat_token is not None:
        from .wechat import WeChatConnector, wechat_router

        app.state.wechat = WeChatConnector(settings, _assistant_of(app))
        app.include_router(wechat_router(app.state.wechat))
        mounted.append("wechat")
    return mounted


def cmd_telegram(args: argparse.Namespace) -> int:
    from assistant import settings_from_args

    from . import telegram

    settings = settings_from_args(args)
    if settings.telegram_token is None:
        print("error: set CPC_TELEGRAM_TOKEN (and CPC_TELEGRAM_SECRET for webhooks)", file=sys.stderr)
        return 2
    if args.telegram_command == "poll":
        return telegram.run_polling(settings)
    try:
        print(json.dumps(telegram.set_webhook(settings, args.url)))
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


def add_commands(sub, common: argparse.ArgumentParser) -> None:
    """``cpc telegram poll`` and ``cpc telegram set-webhook URL``."""
    tg = sub.add_parser("telegram", help="Telegram bot commands").add_subparsers(dest="telegram_command", required=True)
    tg.add_parser("poll", parents=[common], help="answer Telegram by long polling (development)").set_defaults(func=cmd_telegram)
    w = tg.add_parser("set-webhook", parents=[common], help="register URL/telegram/webhook with the secret token")
    w.add_argument("url", help="the service's public https URL")
    w.set_defaults(func=cmd_telegram)
