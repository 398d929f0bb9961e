"""All configuration, read from environment variables with documented defaults.

Every setting has one name here; the README's configuration table mirrors this
module. Secrets that are not given are generated once into the data directory
(never hard-coded), so a fresh checkout is secure without any setup.
"""
from __future__ import annotations

import dataclasses
import math
import os
import secrets
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from idp.assets import FROM_CHECKOUT, ROOT
from idp.parsing import is_loopback_host, parse_switch


def _check_template_key(value: str, where: str, advice: str = "") -> None:
    """A ``configuration error`` line naming ``where`` (then ``advice``) unless ``value`` is a template key;
    ``idp.keyring.parse_template_key`` decides (one check for the cipher and the configuration). The
    line never shows the value."""
    from idp.keyring import parse_template_key
    try:
        parse_template_key(value)
    except ValueError as e:
        raise SystemExit(f"configuration error: {where}: {e}{advice}") from None


# The fewest characters of a secret an operator chooses: the bearer tokens (IDP_REGISTRATION_TOKEN,
# IDP_METRICS_TOKEN) and the current IDP_SECRET_KEY, IDP_KEY_ENCRYPTION_KEY and IDP_CLIENT_SECRET_PEPPER (the
# template key is 64 hex characters). Generated secrets have 64.
MIN_SECRET_CHARS = 32

KEYED_SECRETS = ("secret_key", "key_encryption_key", "client_secret_pepper")  # held to MIN_SECRET_CHARS

# Settings that must be above 0 (every number must be 0 or more). Besides lifetimes and sizes, the throttles'
# delays: with IDP_LOGIN_BASE_DELAY or IDP_LOGIN_MAX_DELAY at 0 no failure ever blocked anything (password
# guesses per account and per address, wrong bearer tokens: unlimited), IDP_FACE_BASE_DELAY at 0 dropped the
# face step's delays, and IDP_FACE_LOCK_AFTER at 0 locked face sign-in at the first failure; a frame limit of 0 refused
# every frame, a capture needing 0 good frames was done before it filmed, and gunicorn cannot run 0 threads. The
# settings whose 0 means "off" say so in README's table (rate limits, the decode budget, the cooling-off period).
POSITIVE_SETTINGS = ("session_lifetime_s", "anon_session_lifetime_s", "code_lifetime_s", "access_token_lifetime_s",
                     "id_token_lifetime_s", "refresh_token_lifetime_s", "capture_ttl_s", "max_body_bytes",
                     "max_form_bytes", "max_image_bytes", "max_image_pixels", "face_enroll_frames", "face_verify_frames",
                     "threads",
                     "login_base_delay_s", "login_max_delay_s", "face_base_delay_s", "face_lock_after",
                     "register_ip_window_s", "face_rate_window_s", "backchannel_timeout_s", "backchannel_max_attempts",
                     "email_undo_window_s")


def _read_or_create_secret(path: Path, nbytes: int = 32) -> str:
    """Return the secret stored at ``path``, creating it (mode 0600) on first use.

    Safe when several processes start together on a fresh data directory: the value is written to a
    private temporary file first and then hard-linked into place, which never overwrites, so a reader
    sees either no file or a complete one, and every process ends up with the first linker's value.
    A file that is empty or cannot be read (not text, a directory, no permission), or a directory where
    none can be created, is a one-line ``configuration error`` (``SystemExit``) that never shows the
    secret: an existing secret is never replaced by "" or by a new value that would make data
    encrypted with the old one unreadable."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            value = path.read_text().strip()
        except FileNotFoundError:
            value = _create_secret(path, nbytes)
    except (OSError, UnicodeDecodeError) as exc:
        raise SystemExit(f"configuration error: the secret file {path} cannot be read or created "
                         f"({_reason(exc)}); restore it from a backup, or fix the data directory") from None
    if not value:
        raise SystemExit(f"configuration error: the secret file {path} is empty; restore it from a backup, or "
                         f"delete it to generate a new secret (data protected by the old one becomes unreadable)")
    return value


def _reason(exc: Exception) -> str:
    """Why a file could not be read, never its content (a UnicodeDecodeError's message quotes a byte)."""
    return exc.strerror if isinstance(exc, OSError) and exc.strerror else "not readable text"


def _create_secret(path: Path, nbytes: int) -> str:
    value = secrets.token_hex(nbytes)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")  # mode 0600
    try:
        with os.fdopen(fd, "w") as f:
            f.write(value)
            f.flush()
            os.fsync(f.fileno())
        try:
            os.link(tmp, path)
        except FileExistsError:  # another process won the race; its file is complete
            return path.read_text().strip()
    finally:
        os.unlink(tmp)
    return value


@dataclass
class Config:
    # --- core -------------------------------------------------------------
    issuer: str = "http://127.0.0.1:5000"  # IDP_ISSUER
    data_dir: Path = ROOT / "var" if FROM_CHECKOUT else Path("var").resolve()  # IDP_DATA_DIR; ./var
    mongodb_uri: str | None = None  # MONGODB_URI; unset = embedded SecantusDB
    db_name: str = "deepauth"  # IDP_DB_NAME
    secret_key: str | None = None  # IDP_SECRET_KEY; session/CSRF signing
    key_encryption_key: str | None = None  # IDP_KEY_ENCRYPTION_KEY; signing keys at rest
    template_key: str | None = None  # IDP_TEMPLATE_KEY; face templates at rest (hex, 32 bytes)
    client_secret_pepper: str | None = None  # IDP_CLIENT_SECRET_PEPPER; HMAC key for client secrets
    # Key rotation: earlier (or not yet current) values of the three keys above, comma-separated. They are only
    # ever used to read or verify, never to write or sign; see docs/operations.md "Rotating keys".
    secret_keys_retired: str = ""  # IDP_SECRET_KEYS_RETIRED; still verify CSRF tokens, recovery codes, stashes
    key_encryption_keys_retired: str = ""  # IDP_KEY_ENCRYPTION_KEYS_RETIRED; still unseal signing keys
    template_keys_retired: str = ""  # IDP_TEMPLATE_KEYS_RETIRED; still decrypt face templates (64 hex each)
    # IDP_CLIENT_SECRET_PEPPERS_RETIRED; still verify client secrets (each re-hashed under the current pepper
    # at its client's next authentication)
    client_secret_peppers_retired: str = ""
    log_format: str = "json"  # IDP_LOG_FORMAT: json | text
    log_level: str = "INFO"  # IDP_LOG_LEVEL
    trusted_proxies: str = ""  # IDP_TRUSTED_PROXIES; "" = none, "N" = hop count, or "CIDR,CIDR" (idp/web/proxy.py)
    # --- limits -----------------------------------------------------------
    max_body_bytes: int = 2 * 1024 * 1024  # IDP_MAX_BODY_BYTES (face frames)
    max_form_bytes: int = 256 * 1024  # IDP_MAX_FORM_BYTES (every other request: idp.web.bodylimit)
    session_lifetime_s: int = 8 * 3600  # IDP_SESSION_LIFETIME
    anon_session_lifetime_s: int = 600  # IDP_ANON_SESSION_LIFETIME; sessions before sign-in (login page, CSRF)
    # --- password throttling ------------------------------------------------
    login_free_failures: int = 5  # IDP_LOGIN_FREE_FAILURES
    login_base_delay_s: int = 30  # IDP_LOGIN_BASE_DELAY
    login_max_delay_s: int = 3600  # IDP_LOGIN_MAX_DELAY
    login_ip_free_failures: int = 20  # IDP_LOGIN_IP_FREE_FAILURES; per client IP (shared NATs need room)
    register_ip_limit: int = 10  # IDP_REGISTER_IP_LIMIT; registration attempts per client IP per window (0 = off)
    register_ip_window_s: int = 3600  # IDP_REGISTER_IP_WINDOW
    # requests without the right IDP_REGISTRATION_TOKEN / IDP_METRICS_TOKEN per client IP before the login delays
    bearer_ip_free_failures: int = 10  # IDP_BEARER_IP_FREE_FAILURES (idp/web/bearer.py)
    # --- OAuth ------------------------------------------------------------
    code_lifetime_s: int = 60  # IDP_CODE_LIFETIME
    access_token_lifetime_s: int = 3600  # IDP_ACCESS_TOKEN_LIFETIME
    id_token_lifetime_s: int = 3600  # IDP_ID_TOKEN_LIFETIME
    refresh_token_lifetime_s: int = 30 * 86400  # IDP_REFRESH_TOKEN_LIFETIME
    registration_access_token: str | None = None  # IDP_REGISTRATION_TOKEN; enables RFC 7591
    # let dynamically registered clients' back-channel logout URIs reach loopback/private addresses (SSRF: off)
    registration_private_addresses: bool = False  # IDP_REGISTRATION_PRIVATE_ADDRESSES
    # JWKS Cache-Control max-age; a new signing key is published this long (+ process cache + margin) before use
    jwks_max_age_s: int = 300  # IDP_JWKS_MAX_AGE
    # back-channel logout delivery: HTTP timeout, attempts before giving up, first retry delay (doubling, <= 1 h)
    backchannel_timeout_s: float = 5.0  # IDP_BACKCHANNEL_TIMEOUT
    backchannel_max_attempts: int = 8  # IDP_BACKCHANNEL_MAX_ATTEMPTS
    backchannel_retry_base_s: float = 10.0  # IDP_BACKCHANNEL_RETRY_BASE
    # IDP_OUTBOUND_CA_BUNDLE; PEM file of the CAs that clients' https endpoints (back-channel logout) are verified
    # against, instead of certifi's public bundle (a private CA); "" = certifi's
    outbound_ca_bundle: str = ""
    # --- face -------------------------------------------------------------
    face_enabled: bool = True  # IDP_FACE_ENABLED; load the models (off only for tooling)
    face_threshold: float | None = None  # IDP_FACE_THRESHOLD; None = engine default from evaluation
    face_enroll_frames: int = 8  # IDP_FACE_ENROLL_FRAMES
    face_verify_frames: int = 5  # IDP_FACE_VERIFY_FRAMES; good frames per sign-in verification
    face_free_failures: int = 5  # IDP_FACE_FREE_FAILURES
    face_lock_after: int = 10  # IDP_FACE_LOCK_AFTER
    face_base_delay_s: int = 30  # IDP_FACE_BASE_DELAY
    max_image_bytes: int = 2 * 1024 * 1024  # IDP_MAX_IMAGE_BYTES
    max_image_pixels: int = 1920 * 1080  # IDP_MAX_IMAGE_PIXELS
    capture_ttl_s: int = 300  # IDP_CAPTURE_TTL
    # a template enrolled through a recovery code or an admin reset gives no amr "face" for this long (0 = none)
    face_recovery_cooloff_s: int = 86400  # IDP_FACE_RECOVERY_COOLOFF
    # an administrator's face reset lets the user enroll after the password alone for this long (> 0); 72 h
    # covers a weekend between the helpdesk call and a camera, and keeps no password-only door open for good
    face_reset_grant_lifetime_s: int = 259200  # IDP_FACE_RESET_GRANT_LIFETIME
    # --- face work limits (rates in the database, shared by every worker and instance; 0 = off) -----
    face_rate_window_s: int = 600  # IDP_FACE_RATE_WINDOW; the fixed window of the four limits below
    face_user_captures: int = 30  # IDP_FACE_USER_CAPTURES; capture sessions started per user per window
    face_user_frames: int = 600  # IDP_FACE_USER_FRAMES; frames sent per user per window (a capture: ~60)
    # per client IP, the address's budget; once spent, each account behind it still gets budget // accounts
    # seen there in the window (faceweb.limits.FaceRates: a few accounts cannot lock a shared NAT out)
    face_ip_captures: int = 150  # IDP_FACE_IP_CAPTURES; capture sessions per client IP per window
    face_ip_frames: int = 3000  # IDP_FACE_IP_FRAMES; frames per client IP per window
    face_concurrency: int = 1  # IDP_FACE_CONCURRENCY; frames analysed at once per worker process
    face_busy_wait_ms: int = 500  # IDP_FACE_BUSY_WAIT; a frame waits this long for a slot, then 429 busy
    face_decode_budget_ms: int = 250  # IDP_FACE_DECODE_BUDGET; CPU ms; a costlier decode is refused (0 = off)
    # --- liveness (presentation-attack detection) -------------------------
    liveness_enabled: bool = True  # IDP_LIVENESS_ENABLED; challenge + burst checks + replay store
    liveness_challenges: str = ""  # IDP_LIVENESS_CHALLENGES; comma-separated pool of moves or "+"-joined sequences, "" = random sequence
    # IDP_LIVENESS_MOVES; head moves per random challenge (1-4) of turns (left / right) and tilts (up / down),
    # at least one of each among two or more (2: 8 sequences, 1 in 8 for a fixed clip; 3: 48, 1 in 48)
    liveness_moves: int = 2
    # IDP_LIVENESS_PASSIVE_MIN_SCORE; MiniFASNet "real" probability (median over every face frame) below which a
    # burst is refused as passive_spoof (LivenessSettings.min_passive_score); 0 = off
    liveness_passive_min_score: float = 0.1
    # --- email (outbox in MongoDB, delivered by a sender thread per process; idp/mail) ---------------
    smtp_url: str | None = None  # IDP_SMTP_URL; smtp://user:pass@host:587?starttls=1 or smtps://...; unset = files
    mail_from: str = "Deep Authenticator <no-reply@localhost>"  # IDP_MAIL_FROM; the From header
    mail_sender: bool = True  # IDP_MAIL_SENDER; deliver the outbox from a thread of each process (else CLI only)
    require_verified_email: bool = False  # IDP_REQUIRE_VERIFIED_EMAIL; no sign-in before the email is verified
    # IDP_NEW_DEVICE_NOTICE; the password signing in from a browser not seen before on the account mails the owner
    new_device_notice: bool = True
    reset_ip_limit: int = 10  # IDP_RESET_IP_LIMIT; password-reset/verification mails requested per IP per hour
    reset_account_limit: int = 3  # IDP_RESET_ACCOUNT_LIMIT; the same per account (or per name typed) per hour
    # IDP_EMAIL_UNDO_WINDOW; how long the link in the notice to the previous (confirmed) address of a changed email
    # address can undo the change (restore that address, sign everything out, set a new password): 7 days
    email_undo_window_s: int = 7 * 86400
    # --- operations ---------------------------------------------------------
    metrics_token: str | None = None  # IDP_METRICS_TOKEN; Bearer token for /metrics (unset = loopback only)
    workers: int | None = None  # IDP_WORKERS; gunicorn worker processes (unset = 2 for `idp serve`, 1 for `idp demo`)
    threads: int = 4  # IDP_THREADS; threads per gunicorn worker
    # --- demo -------------------------------------------------------------
    demo_client_url: str | None = None  # IDP_DEMO_CLIENT_URL; demo RP's base URL (unset = http://127.0.0.1:<client-port>)
    extra: dict = field(default_factory=dict)

    ENV = {
        "issuer": "IDP_ISSUER",
        "data_dir": "IDP_DATA_DIR",
        "mongodb_uri": "MONGODB_URI",
        "db_name": "IDP_DB_NAME",
        "secret_key": "IDP_SECRET_KEY",
        "key_encryption_key": "IDP_KEY_ENCRYPTION_KEY",
        "template_key": "IDP_TEMPLATE_KEY",
        "client_secret_pepper": "IDP_CLIENT_SECRET_PEPPER",
        "secret_keys_retired": "IDP_SECRET_KEYS_RETIRED",
        "key_encryption_keys_retired": "IDP_KEY_ENCRYPTION_KEYS_RETIRED",
        "template_keys_retired": "IDP_TEMPLATE_KEYS_RETIRED",
        "client_secret_peppers_retired": "IDP_CLIENT_SECRET_PEPPERS_RETIRED",
        "log_format": "IDP_LOG_FORMAT",
        "log_level": "IDP_LOG_LEVEL",
        "trusted_proxies": "IDP_TRUSTED_PROXIES",
        "max_body_bytes": "IDP_MAX_BODY_BYTES",
        "max_form_bytes": "IDP_MAX_FORM_BYTES",
        "session_lifetime_s": "IDP_SESSION_LIFETIME",
        "anon_session_lifetime_s": "IDP_ANON_SESSION_LIFETIME",
        "login_free_failures": "IDP_LOGIN_FREE_FAILURES",
        "login_base_delay_s": "IDP_LOGIN_BASE_DELAY",
        "login_max_delay_s": "IDP_LOGIN_MAX_DELAY",
        "login_ip_free_failures": "IDP_LOGIN_IP_FREE_FAILURES",
        "register_ip_limit": "IDP_REGISTER_IP_LIMIT",
        "register_ip_window_s": "IDP_REGISTER_IP_WINDOW",
        "bearer_ip_free_failures": "IDP_BEARER_IP_FREE_FAILURES",
        "code_lifetime_s": "IDP_CODE_LIFETIME",
        "access_token_lifetime_s": "IDP_ACCESS_TOKEN_LIFETIME",
        "id_token_lifetime_s": "IDP_ID_TOKEN_LIFETIME",
        "refresh_token_lifetime_s": "IDP_REFRESH_TOKEN_LIFETIME",
        "registration_access_token": "IDP_REGISTRATION_TOKEN",
        "registration_private_addresses": "IDP_REGISTRATION_PRIVATE_ADDRESSES",
        "jwks_max_age_s": "IDP_JWKS_MAX_AGE",
        "backchannel_timeout_s": "IDP_BACKCHANNEL_TIMEOUT",
        "backchannel_max_attempts": "IDP_BACKCHANNEL_MAX_ATTEMPTS",
        "backchannel_retry_base_s": "IDP_BACKCHANNEL_RETRY_BASE",
        "outbound_ca_bundle": "IDP_OUTBOUND_CA_BUNDLE",
        "face_enabled": "IDP_FACE_ENABLED",
        "face_threshold": "IDP_FACE_THRESHOLD",
        "face_enroll_frames": "IDP_FACE_ENROLL_FRAMES",
        "face_verify_frames": "IDP_FACE_VERIFY_FRAMES",
        "face_free_failures": "IDP_FACE_FREE_FAILURES",
        "face_lock_after": "IDP_FACE_LOCK_AFTER",
        "face_base_delay_s": "IDP_FACE_BASE_DELAY",
        "max_image_bytes": "IDP_MAX_IMAGE_BYTES",
        "max_image_pixels": "IDP_MAX_IMAGE_PIXELS",
        "capture_ttl_s": "IDP_CAPTURE_TTL",
        "face_recovery_cooloff_s": "IDP_FACE_RECOVERY_COOLOFF",
        "face_reset_grant_lifetime_s": "IDP_FACE_RESET_GRANT_LIFETIME",
        "face_rate_window_s": "IDP_FACE_RATE_WINDOW",
        "face_user_captures": "IDP_FACE_USER_CAPTURES",
        "face_user_frames": "IDP_FACE_USER_FRAMES",
        "face_ip_captures": "IDP_FACE_IP_CAPTURES",
        "face_ip_frames": "IDP_FACE_IP_FRAMES",
        "face_concurrency": "IDP_FACE_CONCURRENCY",
        "face_busy_wait_ms": "IDP_FACE_BUSY_WAIT",
        "face_decode_budget_ms": "IDP_FACE_DECODE_BUDGET",
        "liveness_enabled": "IDP_LIVENESS_ENABLED",
        "liveness_challenges": "IDP_LIVENESS_CHALLENGES",
        "liveness_moves": "IDP_LIVENESS_MOVES",
        "liveness_passive_min_score": "IDP_LIVENESS_PASSIVE_MIN_SCORE",
        "smtp_url": "IDP_SMTP_URL",
        "mail_from": "IDP_MAIL_FROM",
        "mail_sender": "IDP_MAIL_SENDER",
        "require_verified_email": "IDP_REQUIRE_VERIFIED_EMAIL",
        "new_device_notice": "IDP_NEW_DEVICE_NOTICE",
        "reset_ip_limit": "IDP_RESET_IP_LIMIT",
        "reset_account_limit": "IDP_RESET_ACCOUNT_LIMIT",
        "email_undo_window_s": "IDP_EMAIL_UNDO_WINDOW",
        "metrics_token": "IDP_METRICS_TOKEN",
        "workers": "IDP_WORKERS",
        "threads": "IDP_THREADS",
        "demo_client_url": "IDP_DEMO_CLIENT_URL",
    }

    # Each secret may instead be read from a file (container secrets): VAR_FILE names the file. A file
    # that is missing, unreadable or empty, or VAR and VAR_FILE both set, stops start-up with one line.
    SECRET_FILES = {
        "secret_key": "IDP_SECRET_KEY_FILE",
        "key_encryption_key": "IDP_KEY_ENCRYPTION_KEY_FILE",
        "template_key": "IDP_TEMPLATE_KEY_FILE",
        "client_secret_pepper": "IDP_CLIENT_SECRET_PEPPER_FILE",
        "secret_keys_retired": "IDP_SECRET_KEYS_RETIRED_FILE",
        "key_encryption_keys_retired": "IDP_KEY_ENCRYPTION_KEYS_RETIRED_FILE",
        "template_keys_retired": "IDP_TEMPLATE_KEYS_RETIRED_FILE",
        "client_secret_peppers_retired": "IDP_CLIENT_SECRET_PEPPERS_RETIRED_FILE",
    }

    @classmethod
    def from_env(cls, environ=None, **overrides) -> "Config":
        environ = os.environ if environ is None else environ
        values = {}
        types = {f.name: f.type for f in dataclasses.fields(cls)}
        for name, var in cls.ENV.items():
            if var in environ and environ[var] != "":
                values[name] = _coerce(types[name], environ[var], var)
        for name, file_var in cls.SECRET_FILES.items():
            if environ.get(file_var, "") != "":
                if name in values:
                    raise SystemExit(f"configuration error: both {cls.ENV[name]} and {file_var} are set; "
                                     "use one")
                values[name] = _read_secret_file(environ[file_var], file_var)
        values.update(overrides)
        return cls(**values)

    def __post_init__(self):
        self.data_dir = Path(self.data_dir)
        self.issuer = self.issuer.rstrip("/")
        if self.face_threshold is not None:
            from idp.face.settings import MIN_THRESHOLD
            if not self.face_threshold >= MIN_THRESHOLD:  # also refuses NaN
                raise SystemExit(f"configuration error: IDP_FACE_THRESHOLD={self.face_threshold} is below "
                                 f"{MIN_THRESHOLD}, the lowest safe face-match threshold (the score is in "
                                 "cohort standard deviations, not a cosine; see docs/evaluation.md)")
        if not 0 < self.face_reset_grant_lifetime_s <= 365 * 86400:
            raise SystemExit(f"configuration error: IDP_FACE_RESET_GRANT_LIFETIME={self.face_reset_grant_lifetime_s} "
                             "must be a positive number of seconds, at most a year (31536000)")
        if not 0.0 <= self.liveness_passive_min_score <= 1.0:  # also refuses NaN
            raise SystemExit(f"configuration error: IDP_LIVENESS_PASSIVE_MIN_SCORE={self.liveness_passive_min_score} "
                             "is not a probability between 0 (off) and 1")
        for name in self.RETIRED:
            self.retired_keys(name)  # a malformed list stops start-up here, not at the first record it should read
        self._check_parsed_settings()
        if self.outbound_ca_bundle:
            import ssl
            try:  # at start-up, not at the first logout, and never with certifi's bundle silently instead
                ssl.create_default_context(cafile=self.outbound_ca_bundle)
            except (OSError, ssl.SSLError, ValueError):
                raise SystemExit(f"configuration error: IDP_OUTBOUND_CA_BUNDLE={self.outbound_ca_bundle} is not a "
                                 "readable PEM file of CA certificates") from None

    def _check_parsed_settings(self) -> None:
        """Settings that other modules parse are checked here, when the configuration is read: a bad one is
        one ``configuration error`` line from every command, not a traceback from a gunicorn worker (or
        a failure at the first capture or mail). Each is parsed by its own module's code."""
        import logging
        from urllib.parse import urlsplit
        parts = urlsplit(self.issuer)
        if parts.scheme not in ("http", "https") or not parts.hostname or parts.query or parts.fragment \
                or "#" in self.issuer or "?" in self.issuer:
            raise SystemExit(f"configuration error: IDP_ISSUER={self.issuer!r} is not an http(s) URL without query "
                             "or fragment (e.g. https://id.example.com)")
        if parts.scheme == "http" and not is_loopback_host(parts.hostname):
            # codes, tokens and session cookies would cross the network in clear text
            raise SystemExit(f"configuration error: IDP_ISSUER={self.issuer!r}: http is for a loopback address "
                             "(127.0.0.1, ::1, localhost) only; use https (behind a TLS proxy: IDP_TRUSTED_PROXIES)")
        for name in ("registration_access_token", "metrics_token"):  # bearer secrets an operator chooses
            value = getattr(self, name)
            if value is not None and len(value) < MIN_SECRET_CHARS:
                raise SystemExit(f"configuration error: {self.ENV[name]} has {len(value)} characters; use at least "
                                 f"{MIN_SECRET_CHARS} random ones (e.g. `openssl rand -hex 32`): whoever "
                                 "guesses it can use it")
        for name in POSITIVE_SETTINGS:
            if not getattr(self, name) > 0:
                raise SystemExit(f"configuration error: {self.ENV[name]}={getattr(self, name)} must be a positive number")
        for f in dataclasses.fields(self):  # no count, size or duration is negative, infinite or NaN
            value = getattr(self, f.name)
            if f.name in self.ENV and isinstance(value, (int, float)) and not isinstance(value, bool) \
                    and not (math.isfinite(value) and value >= 0):
                raise SystemExit(f"configuration error: {self.ENV[f.name]}={value} must be a finite number, 0 or more")
        for name in KEYED_SECRETS:
            self._check_secret_length(name, f"{self.ENV[name]} (or the file {self.SECRET_FILES[name]} names)")
        if self.template_key is not None:
            _check_template_key(self.template_key, "IDP_TEMPLATE_KEY (or the file IDP_TEMPLATE_KEY_FILE names)")
        from idp.web.proxy import parse as parse_trusted_proxies
        parse_trusted_proxies(self.trusted_proxies)
        if self.log_format not in ("json", "text"):
            raise SystemExit(f"configuration error: IDP_LOG_FORMAT={self.log_format!r} is not json or text")
        if not isinstance(logging.getLevelName(str(self.log_level).upper()), int):
            raise SystemExit(f"configuration error: IDP_LOG_LEVEL={self.log_level!r} is not a log level "
                             "(DEBUG, INFO, WARNING, ERROR or CRITICAL)")
        if not 1 <= self.liveness_moves <= 4:
            raise SystemExit(f"configuration error: IDP_LIVENESS_MOVES={self.liveness_moves} is not 1 to 4")
        if self.mongodb_uri:
            from idp.store import uri_problem
            if problem := uri_problem(self.mongodb_uri):  # else every command's and worker's first client raised
                raise SystemExit(f"configuration error: MONGODB_URI: {problem}")
        from idp.mail.transport import sender_problem
        if problem := sender_problem(self.mail_from):  # else every mail, the owners' notices too, failed to send
            raise SystemExit(f"configuration error: {problem}")
        if self.smtp_url:
            from idp.mail.transport import MailConfigError, SMTPTransport
            try:
                SMTPTransport(self.smtp_url, self.mail_from)
            except MailConfigError as e:  # its messages never quote the URL (it may hold a password)
                raise SystemExit(f"configuration error: {e}") from None
        if (self.liveness_challenges or "").strip():
            from idp.liveness import challenge_pool
            try:
                challenge_pool(self.liveness_challenges)
            except ValueError as e:
                raise SystemExit(f"configuration error: {e}") from None

    def _check_secret_length(self, name: str, where: str) -> None:
        """A ``configuration error`` line (never showing the value) when the secret ``name`` is set but shorter than
        ``MIN_SECRET_CHARS``: whoever reads the database can search a short key-encryption key offline and then
        sign ID tokens with the signing keys it unseals; the secret key and the pepper key the HMACs stored there
        (recovery codes, client secrets). A short one in use is replaced as any key is rotated: it becomes a
        retired key (not checked), a new one the current."""
        value = getattr(self, name)
        if value is not None and len(value) < MIN_SECRET_CHARS:
            raise SystemExit(f"configuration error: {where} has {len(value)} characters; use at least "
                             f"{MIN_SECRET_CHARS} random ones (e.g. `openssl rand -hex 32`); to replace one in use, "
                             f"list it in {self.ENV[self.RETIRED[name]]} (docs/operations.md, \"Rotating keys\")")

    # The retired-keys setting of each rotatable secret.
    RETIRED = {"secret_key": "secret_keys_retired", "key_encryption_key": "key_encryption_keys_retired",
               "template_key": "template_keys_retired", "client_secret_pepper": "client_secret_peppers_retired"}

    def retired_keys(self, name: str) -> list[str]:
        """The retired values of secret ``name`` (``secret_key``, ``key_encryption_key``, ``template_key`` or
        ``client_secret_pepper``):
        read-only keys, in the order given. Commas (or line breaks, in a file) separate them; an empty entry,
        or a template key that is not 64 hex characters, is a one-line ``configuration error`` that never
        shows a key."""
        var = self.ENV[self.RETIRED[name]]
        raw = (getattr(self, self.RETIRED[name]) or "").strip()
        if not raw:
            return []
        keys = [k.strip() for k in raw.replace("\n", ",").split(",")]
        for i, key in enumerate(keys, 1):
            if not key:
                raise SystemExit(f"configuration error: {var}: entry {i} of {len(keys)} is empty "
                                 "(stray comma?); list the retired keys separated by commas")
            if name == "template_key":
                _check_template_key(key, f"{var}: entry {i} of {len(keys)}")
        return keys

    @classmethod
    def load(cls) -> "Config":
        """The configuration a process runs with: the environment, every missing secret filled from the data
        directory (``ensure_secrets``). The one way the app factory's callers and every CLI command read it."""
        return cls.from_env().ensure_secrets()

    def ensure_secrets(self) -> "Config":
        """Fill every missing secret from files in the data directory (created 0600)."""
        secrets_dir = self.data_dir / "secrets"
        for name in ("secret_key", "key_encryption_key", "template_key", "client_secret_pepper"):
            if not getattr(self, name):
                setattr(self, name, _read_or_create_secret(secrets_dir / name))
                if name in KEYED_SECRETS:
                    self._check_secret_length(name, f"the secret file {secrets_dir / name}")
                if name == "template_key":  # refused, never replaced: a new key could not open the templates
                    _check_template_key(self.template_key, f"the secret file {secrets_dir / name}",
                                        "; restore it from a backup (a new key cannot decrypt the stored face "
                                        "templates)")
        return self

    @property
    def secure_cookies(self) -> bool:
        return self.issuer.startswith("https://")


def _read_secret_file(path: str, var: str) -> str:
    """The secret in ``path`` (surrounding whitespace stripped); any problem is one start-up error line."""
    try:
        value = Path(path).read_text().strip()
    except (OSError, UnicodeDecodeError) as exc:
        raise SystemExit(f"configuration error: {var}={path}: cannot read the secret ({_reason(exc)})") from None
    if not value:
        raise SystemExit(f"configuration error: {var}={path}: the file is empty")
    return value


# Variables the code reads or sets that are not operator settings, so they are not Config fields and
# not in README's configuration table. Each is named here once; tests/core/test_config_env.py checks
# that the code reads no variable that is neither in Config.ENV, Config.SECRET_FILES nor here.
INTERNAL_ENV = {
    "TF_CPP_MIN_LOG_LEVEL": "TensorFlow's own log filter; set to 2 at import (idp/__init__.py) unless already set",
    "AUTHLIB_INSECURE_TRANSPORT": "set by idp/oauth for an http:// loopback issuer (development) only",
    "PROMETHEUS_MULTIPROC_DIR": "set by `idp serve`/`idp demo` to $IDP_DATA_DIR/metrics (idp/metrics.py)",
    "IDP_EMBEDDED_MONGODB_URI": "set by the process that started the embedded database, for its children",
    # the example relying party (clients/demo) is a separate application; `idp demo` sets these for it
    "DEMO_ISSUER": "demo RP: the IdP's issuer URL",
    "DEMO_CLIENT_ID": "demo RP: its client id",
    "DEMO_CLIENT_SECRET": "demo RP: its client secret (empty for a public client)",
    "DEMO_BASE_URL": "demo RP: its own base URL",
    "DEMO_HOST": "demo RP: address to bind (127.0.0.1)",
    "DEMO_PORT": "demo RP: port to bind (5001)",
    "DEMO_SCOPE": "demo RP: scopes to ask for",
    "DEMO_SECRET_KEY": "demo RP: its session signing key (random per start when unset)",
}


def _coerce(type_name, raw: str, var: str):
    t = str(type_name)
    kind = ("true or false (also 1/0, yes/no, on/off)" if "bool" in t else "a number" if "float" in t
            else "a whole number")
    try:
        if "bool" in t:
            return parse_switch(raw)
        if "float" in t:
            return float(raw)
        if "int" in t:
            return int(raw)
    except ValueError:
        raise SystemExit(f"configuration error: {var}={raw!r} is not {kind}") from None
    if "Path" in t:
        return Path(raw)
    return raw
