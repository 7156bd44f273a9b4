"""Settings from the environment (`TICKETOPS_*`), one object for every process."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Literal, Self

from pydantic import BaseModel, Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

VAR = Path("var")


class TemporalSettings(BaseModel):
    """`address` and `namespace` are the development defaults. Temporal's own environment
    configuration (`TEMPORAL_ADDRESS`, `TEMPORAL_NAMESPACE`, `TEMPORAL_API_KEY`,
    `TEMPORAL_TLS_CLIENT_CERT_PATH`/`_KEY_PATH`, `TEMPORAL_CONFIG_FILE` + `TEMPORAL_PROFILE`)
    overrides them, so Temporal Cloud and a self-hosted cluster need no ticketops-specific names."""

    address: str = "127.0.0.1:7233"
    namespace: str = "default"
    queue_prefix: str = ""
    payments_rate_per_second: float = 25.0
    email_rate_per_second: float = 200.0
    use_env_config: bool = Field(
        default=True, description="Apply Temporal's environment configuration (TEMPORAL_* and the TOML profile)."
    )
    register_search_attributes: bool = Field(
        default=True,
        description="Workers add missing search attributes at start (dev server, self-hosted). Temporal Cloud "
        "does not offer this to workers: set False there and create them with tcld or terraform.",
    )


class WorkerSettings(BaseModel):
    """How a worker process runs: which queues, how it drains, what it exports, which version it is."""

    queues: list[str] = Field(
        default_factory=lambda: ["orders", "email", "payments", "render"],
        description="Task queues this process serves; production runs one process kind per queue.",
    )
    graceful_shutdown_seconds: float = Field(
        default=30.0,
        ge=0,
        description="On SIGTERM, running activities get this long to finish before they are cancelled. "
        "The orchestrator's grace period (terminationGracePeriodSeconds) must be longer.",
    )
    metrics_port: int | None = Field(
        default=None, description="Serve the Temporal SDK's Prometheus metrics on 0.0.0.0:<port> (9464 in deploy/)."
    )
    versioning: bool = Field(
        default=False,
        description="Worker Versioning: poll as version <deployment_name>.<build_id> of a Worker Deployment.",
    )
    migrate_on_start: bool = Field(
        default=True, description="Bring the schema up at start (development); deploy/ runs a migration job instead."
    )
    deployment_name: str = "ticketops"
    build_id: str | None = Field(default=None, description="The image tag or git sha; default: the package version.")


class TracingSettings(BaseModel):
    """OpenTelemetry spans from the API through workflows to activities."""

    enabled: bool = False
    otlp_endpoint: str | None = Field(
        default=None, description="OTLP/HTTP traces endpoint, e.g. http://otel-collector:4318/v1/traces."
    )
    service_name: str = "ticketops"


class StripeSettings(BaseModel):
    api_key: SecretStr = SecretStr("sk_test_ticketops")
    base_url: str | None = "http://127.0.0.1:12111"
    webhook_secret: SecretStr = SecretStr("whsec_ticketops_dev")
    max_network_retries: int = 0


class SmtpConfig(BaseModel):
    host: str = "127.0.0.1"
    port: int = 1025
    username: str | None = None
    password: SecretStr | None = None
    security: str = "none"
    timeout: float = 10.0
    pool_size: int = 8


class SesConfig(BaseModel):
    region: str = "eu-west-1"
    endpoint_url: str | None = None
    access_key_id: str = "testing"
    secret_access_key: SecretStr = SecretStr("testing")
    configuration_set: str | None = None


class EmailConfig(BaseModel):
    provider: str = "smtp"
    sender: str = "tickets@ticketops.local"
    # Buyers' emails: the sender's display name, reply-to and accent colour unless the event's policy names its own.
    sender_name: str = "Ticket office"
    reply_to: str = "help@ticketops.local"
    brand_colour: str = "#1d4ed8"
    finance_address: str = "finance@ticketops.local"
    smtp: SmtpConfig = SmtpConfig()
    ses: SesConfig = SesConfig()


class RefundTiming(BaseModel):
    """Durations a refund waits, defined once: settings read them, workflows receive them in their input
    (so a run stays deterministic and testable). `payment_timeout_seconds` bounds every processor call."""

    confirmation_business_days: int = 10
    poll_initial_seconds: float = 30.0
    poll_max_seconds: float = 6 * 3600.0
    manual_reminder_days: float = 3.0
    finance_action_days: float = 30.0
    approval_expiry_hours: float = 48.0
    payment_timeout_seconds: float = 60.0


class RefundConfig(RefundTiming):
    """The refund settings: its timing, and the default approval threshold (an event's own overrides it)."""

    def timing(self) -> RefundTiming:
        return RefundTiming.model_validate(self.model_dump(include=set(RefundTiming.model_fields)))

    approval_threshold: int | None = Field(
        default=None, description="Refunds above this many minor units wait for a second finance user."
    )


class TransferConfig(BaseModel):
    acceptance_days: float = Field(
        default=7.0, gt=0, description="Days a transfer recipient has to accept, never past the event's start."
    )


class ReservationConfig(BaseModel):
    default_days: float = Field(default=14.0, gt=0, description="Payment deadline of a reservation opened without one.")
    reminder_hours: list[float] = Field(
        default_factory=lambda: [72.0, 24.0],
        description="Reminders with the payment link, this long before the deadline.",
    )


class AuthSettings(BaseModel):
    """API keys live hashed in the store; OIDC tokens are checked offline against a JWKS file."""

    jwks_file: Path | None = None
    issuer: str | None = None
    audience: str | None = None
    role_claim: str = "ticketops_role"
    name_claim: str = "sub"
    leeway_seconds: float = 30.0
    rate_limit_per_minute: int | None = Field(default=600, ge=1, description="Per principal; None disables it.")


# A development key only: production sets TICKETOPS_CODEC__KEYS and TICKETOPS_CODEC__ACTIVE_KEY_ID.
_DEV_CODEC_KEY = "dGlja2V0b3BzLWRldmVsb3BtZW50LWtleS0zMmJ5dGU="


class CodecSettings(BaseModel):
    """AES-GCM keys for payloads; every key here still decrypts, the active one encrypts."""

    keys: dict[str, SecretStr] = Field(default_factory=lambda: {"dev-1": SecretStr(_DEV_CODEC_KEY)})
    active_key_id: str = "dev-1"
    cors_origins: list[str] = ["http://127.0.0.1:8233", "http://localhost:8233"]
    trust_local_ui: bool = Field(
        default=False,
        description="Development only: a codec request without credentials from loopback, sent by a "
        "Web UI whose origin is one of `cors_origins` on loopback, decodes as support. `ticketops dev` "
        "turns it on so the person at the machine reads the UI; production settings refuse it.",
    )


class BlobConfig(BaseModel):
    """Reports go to a local folder by default, or to S3 (`kind="s3"`)."""

    kind: str = "local"
    root: str = str(VAR / "blobs")
    s3_bucket: str = "ticketops-reports"
    s3_region: str = "eu-west-1"
    s3_endpoint_url: str | None = None
    s3_access_key_id: str | None = None
    s3_secret_access_key: SecretStr | None = None


class BulkConfig(BaseModel):
    batch_size: int = 100
    window: int = 4
    emails_per_second: float = 50.0
    refunds_per_second: float = Field(
        default=25.0, description="The processor's refund rate limit: Stripe allows 100/s live, 25/s in test mode."
    )
    continue_after_batches: int = 100
    deferred_retries: int = Field(
        default=3, ge=0, description="Passes over recipients whose server said 'later' (greylisting, full mailbox)."
    )
    deferred_retry_seconds: float = Field(
        default=300.0, gt=0, description="Wait before the first such pass; each further pass waits twice as long."
    )
    batch_concurrency: int = Field(
        default=8, ge=1, description="Emails one batch has in flight at once (the SMTP pool caps the total)."
    )
    heartbeat_seconds: float = Field(default=60.0, description="A batch whose worker died is retried after this.")


class ReconciliationSettings(BaseModel):
    """When each processor is reconciled and over which window; `ticketops schedules apply` makes it so.

    A run scheduled at T reconciles the whole window (`window_hours`, aligned to
    UTC) that ended at least `settlement_lag_hours` before T, so a backfill of
    past schedule times reconciles past windows, and jitter never moves a window.
    """

    processors: list[str] = Field(
        default=["stripe"], description="One schedule each; manual and free processors have nothing to reconcile."
    )
    cron: str | None = Field(default=None, description="A cron expression; when set it replaces hour and minute.")
    hour: int = Field(default=4, ge=0, le=23)
    minute: int = Field(default=30, ge=0, le=59)
    time_zone: str = Field(default="Europe/Amsterdam", description="IANA name the hour and cron are read in.")
    jitter_minutes: float = Field(default=10.0, ge=0, description="Spreads runs so processors see no burst.")
    catchup_window_hours: float = Field(
        default=36.0, gt=0, description="After an outage, runs missed within this long still start."
    )
    pause_on_failure: bool = Field(default=True, description="A run that fails after all retries pauses it.")
    paused: bool = Field(default=False, description="Create (or keep) the schedules paused.")
    window_hours: int = Field(default=24, ge=1, le=24, description="Length of one window; divides a day.")
    settlement_lag_hours: int = Field(
        default=24, ge=0, description="How long after a window ends it is reconciled (the processor settles)."
    )

    @model_validator(mode="after")
    def _window_divides_a_day(self) -> ReconciliationSettings:
        if 24 % self.window_hours:
            raise ValueError("reconciliation window_hours must divide 24")
        return self


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="TICKETOPS_", env_nested_delimiter="__")

    environment: Literal["development", "production"] = Field(
        default="development",
        description="`production` refuses development-only shortcuts (TICKETOPS_CODEC__TRUST_LOCAL_UI).",
    )

    database_url: str = f"sqlite+aiosqlite:///{VAR / 'ticketops.sqlite'}"
    temporal: TemporalSettings = TemporalSettings()
    stripe: StripeSettings = StripeSettings()
    email: EmailConfig = EmailConfig()
    refunds: RefundConfig = RefundConfig()
    transfers: TransferConfig = TransferConfig()
    reservations: ReservationConfig = ReservationConfig()
    auth: AuthSettings = AuthSettings()
    codec: CodecSettings = CodecSettings()
    blobs: BlobConfig = BlobConfig()
    bulk: BulkConfig = BulkConfig()
    reconciliation: ReconciliationSettings = ReconciliationSettings()
    worker: WorkerSettings = WorkerSettings()
    tracing: TracingSettings = TracingSettings()
    public_url: str = "http://127.0.0.1:8000"
    signing_secret: SecretStr = SecretStr("dev-signing-secret-change-me")
    log_json: bool = False
    render_processes: int = Field(
        default=0,
        ge=0,
        description="Processes that render ticket PDFs the cache does not have (0: a thread of the worker), "
        "ahead of delivery on the `render` queue or on a cache miss during one; set it to the `render` "
        "worker machine's cores.",
    )
    log_level: str = "INFO"

    @model_validator(mode="after")
    def _no_development_shortcuts_in_production(self) -> Self:
        if self.codec.trust_local_ui and self.environment != "development":
            raise ValueError(
                "codec.trust_local_ui lets anyone on the machine decode payloads without a token: "
                "it is for `ticketops dev` only and refused when environment is production"
            )
        return self


@lru_cache
def get_settings() -> Settings:
    return Settings()
