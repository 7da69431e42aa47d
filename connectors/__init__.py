"""Chat-platform connectors (Telegram, WeChat Official Account) over the assistant.

Each is mounted only when its settings are present; see README.md here for registering webhooks.
"""

from __future__ import annotations

import logging

from fastapi import FastAPI

from .base import NotReady

log = logging.getLogger("cpc.connectors")

__all__ = ["mount_connectors", "NotReady"]


def _assistant_of(app: FastAPI):
    def get():
        catalog = getattr(app.state, "catalog", None)
        assistant = getattr(app.state, "assistant", None)
        if assistant is None or catalog is None or not catalog.ready:
            raise NotReady()
        return assistant

    return get


def mount_connectors(app: FastAPI, settings) -> list[str]:
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
