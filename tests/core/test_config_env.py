"""One Config: README's configuration table, ``Config`` and the code's environment reads agree.

The table must name exactly the variables of ``Config.ENV`` and ``Config.SECRET_FILES`` (no missing
row, no stale row), with the same defaults where the default is a literal; the code may read no other
variable than those and the internal ones listed in ``idp.config.INTERNAL_ENV``; a secret may come
from a file, and every problem with that file is one start-up error.
"""
from __future__ import annotations

import dataclasses
import os
import re
from pathlib import Path

import pytest

from idp.config import INTERNAL_ENV, Config

ROOT = Path(__file__).resolve().parents[2]


def _readme_rows() -> dict[str, str]:
    text = (ROOT / "README.md").read_text()
    section = text.split("## Configuration", 1)[1].split("\n## ", 1)[0]
    rows = {}
    for line in section.splitlines():
        if not line.startswith("| `"):
            continue
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        names = re.findall(r"`([A-Z][A-Z0-9_]+)`", cells[0])
        defaults = [d.strip() for d in cells[1].split(" / ")]
        for i, name in enumerate(names):
            assert name not in rows, f"{name} has two rows in README's configuration table"
            rows[name] = defaults[i] if len(defaults) == len(names) else cells[1]
    return rows


def _declared() -> set[str]:
    return set(Config.ENV.values()) | set(Config.SECRET_FILES.values())


def test_readme_table_lists_exactly_the_config_variables():
    rows = set(_readme_rows())
    assert not _declared() - rows, f"missing from README's configuration table: {sorted(_declared() - rows)}"
    assert not rows - _declared(), f"in README but not in Config: {sorted(rows - _declared())}"


def _literal(default) -> str | None:
    if isinstance(default, bool):
        return "true" if default else "false"
    if isinstance(default, (int, float)):
        return str(default)
    if isinstance(default, str):
        return default
    return None  # None (unset/generated), paths, factories: described in words


def test_readme_defaults_agree_with_config():
    rows = _readme_rows()
    fields = {f.name: f for f in dataclasses.fields(Config)}
    wrong = []
    for name, var in Config.ENV.items():
        expected = _literal(fields[name].default)
        if fields[name].default is None:
            assert rows[var].startswith(("unset", "generated", "engine default")), (var, rows[var])
            continue
        cell = rows[var].replace("`", "")
        if expected is None:
            continue  # a path: described in words
        if expected == "":
            ok = cell.startswith("empty")
        else:
            ok = cell == expected or _same_number(cell, expected)
        if not ok:
            wrong.append(f"{var}: README {rows[var]!r}, Config {expected!r}")
    assert not wrong, "README defaults disagree with Config: " + "; ".join(wrong)


def _same_number(a: str, b: str) -> bool:
    """README writes 5 where Config says 5.0."""
    try:
        return float(a) == float(b)
    except ValueError:
        return False


_READ = re.compile(r"""(?:os\.environ(?:\.get|\.setdefault|\.pop)?\s*[\(\[]|getenv\s*\(|\benv(?:\.get)?\s*[\(\[])\s*["']([A-Z][A-Z0-9_]*)["']""")
_CONST = re.compile(r"""^([A-Z][A-Z0-9_]*_ENV)\s*=\s*["']([A-Z][A-Z0-9_]*)["']""", re.M)


def test_code_reads_only_declared_variables():
    seen = {}
    for top in ("idp", "clients"):
        for path in (ROOT / top).rglob("*.py"):
            text = path.read_text()
            for var in _READ.findall(text) + [v for _, v in _CONST.findall(text)]:
                seen.setdefault(var, str(path.relative_to(ROOT)))
    assert "IDP_WORKERS" not in seen and "DEMO_ISSUER" in seen  # the scan sees reads, and Config owns these
    undeclared = {v: where for v, where in seen.items() if v not in _declared() and v not in INTERNAL_ENV}
    assert not undeclared, f"environment variables read outside Config: {undeclared}"


def test_workers_and_threads_are_config():
    c = Config.from_env({"IDP_WORKERS": "3", "IDP_THREADS": "8"})
    assert (c.workers, c.threads) == (3, 8)
    assert Config.from_env({}).workers is None


# --- secrets from files ---------------------------------------------------------------------------

@pytest.mark.parametrize("name,file_var", sorted(Config.SECRET_FILES.items()))
def test_secret_read_from_file(tmp_path, name, file_var):
    f = tmp_path / "s"
    value = "ab" * 32  # valid for every secret (a template key is 64 hex characters)
    f.write_text(f"  {value}\n")
    c = Config.from_env({file_var: str(f), "IDP_DATA_DIR": str(tmp_path)}).ensure_secrets()
    assert getattr(c, name) == value
    assert not (tmp_path / "secrets" / name).exists()  # nothing generated for a secret that was given


@pytest.mark.parametrize("problem", ["missing", "empty", "unreadable", "directory", "both"])
def test_secret_file_problem_is_one_clear_error(tmp_path, problem):
    f = tmp_path / "key"
    env = {"IDP_TEMPLATE_KEY_FILE": str(f)}
    if problem == "empty":
        f.write_text(" \n")
    elif problem == "unreadable":
        if os.geteuid() == 0:
            pytest.skip("root reads any file")
        f.write_text("x")
        f.chmod(0)
    elif problem == "directory":
        f.mkdir()
    elif problem == "both":
        f.write_text("x")
        env["IDP_TEMPLATE_KEY"] = "zz-secret-zz"
    with pytest.raises(SystemExit) as exc:
        Config.from_env(env)
    message = str(exc.value)
    assert message.startswith("configuration error:") and "IDP_TEMPLATE_KEY" in message
    assert "\n" not in message and "Traceback" not in message
    assert "zz-secret-zz" not in message


# --- retired keys (key rotation) ------------------------------------------------------------------

GOOD_TEMPLATE_KEYS = ("ab" * 32, "cd" * 32)


def test_retired_keys_are_parsed_from_the_variable_and_from_a_file(tmp_path):
    c = Config.from_env({"IDP_TEMPLATE_KEYS_RETIRED": " , ".join(GOOD_TEMPLATE_KEYS),
                         "IDP_SECRET_KEYS_RETIRED": "old-secret-1,old-secret-2"})
    assert c.retired_keys("template_key") == list(GOOD_TEMPLATE_KEYS)
    assert c.retired_keys("secret_key") == ["old-secret-1", "old-secret-2"]
    assert c.retired_keys("key_encryption_key") == []
    f = tmp_path / "retired"
    f.write_text("old-kek-1\nold-kek-2\n")
    c = Config.from_env({"IDP_KEY_ENCRYPTION_KEYS_RETIRED_FILE": str(f)})
    assert c.retired_keys("key_encryption_key") == ["old-kek-1", "old-kek-2"]


@pytest.mark.parametrize("var,value", [
    ("IDP_TEMPLATE_KEYS_RETIRED", "zz-not-hex-zz"),
    ("IDP_TEMPLATE_KEYS_RETIRED", "ab" * 16),  # 16 bytes
    ("IDP_TEMPLATE_KEYS_RETIRED", "ab" * 32 + ",,"),
    ("IDP_SECRET_KEYS_RETIRED", "zz-old-secret-zz,"),
    ("IDP_KEY_ENCRYPTION_KEYS_RETIRED", ",zz-old-kek-zz"),
])
def test_bad_retired_keys_stop_start_up_with_one_line(tmp_path, var, value):
    with pytest.raises(SystemExit) as exc:
        Config.from_env({var: value, "IDP_DATA_DIR": str(tmp_path)})
    message = str(exc.value)
    assert message.startswith("configuration error:") and var in message and "\n" not in message
    assert "zz-" not in message and "abab" not in message  # never the key itself
    with pytest.raises(SystemExit):  # the same from a file
        f = tmp_path / "retired"
        f.write_text(value)
        Config.from_env({var + "_FILE": str(f)})


@pytest.mark.parametrize("value,expected", [("true", True), ("1", True), (" Yes ", True), ("on", True),
                                            ("false", False), ("0", False), ("No", False), ("off", False)])
def test_switches_read_the_usual_spellings(value, expected):
    assert Config.from_env({"IDP_LIVENESS_ENABLED": value}).liveness_enabled is expected


@pytest.mark.parametrize("var", ["IDP_LIVENESS_ENABLED", "IDP_FACE_ENABLED", "IDP_REQUIRE_VERIFIED_EMAIL"])
@pytest.mark.parametrize("value", ["ture", "enabled", "maybe", "2"])
def test_a_misspelt_switch_stops_start_up_with_one_line(var, value):
    """A typo in a switch is an error, not "false": IDP_LIVENESS_ENABLED=ture turned the liveness checks off."""
    with pytest.raises(SystemExit) as exc:
        Config.from_env({var: value})
    message = str(exc.value)
    assert message.startswith(f"configuration error: {var}={value!r}") and "\n" not in message
    assert "true" in message and "false" in message


@pytest.mark.parametrize("var,value,kind", [("IDP_FACE_THRESHOLD", "x", "a number"),
                                            ("IDP_SESSION_LIFETIME", "abc", "a whole number")])
def test_a_malformed_number_names_what_is_expected(var, value, kind):
    with pytest.raises(SystemExit) as exc:
        Config.from_env({var: value})
    assert str(exc.value) == f"configuration error: {var}={value!r} is not {kind}"


@pytest.mark.parametrize("var,value", [
    ("IDP_LOG_LEVEL", "LOUD"), ("IDP_LOG_FORMAT", "xml"), ("IDP_SMTP_URL", "garbage"),
    ("IDP_SMTP_URL", "smtp://mail.example:notaport"), ("IDP_SMTP_URL", "smtp://mail.example:587?starttls=ture"),
    ("IDP_LIVENESS_CHALLENGES", "turn_left,jump"),
    ("IDP_LIVENESS_MOVES", "0"), ("IDP_LIVENESS_MOVES", "9"),
])
def test_a_bad_setting_stops_start_up_with_one_line(var, value):
    """Read with the rest of the configuration, not when the app (a gunicorn worker: a traceback and
    exit status 3) or the first capture or mail meets it; IDP_LIVENESS_MOVES=9 was taken as 4."""
    with pytest.raises(SystemExit) as exc:
        Config.from_env({var: value})
    message = str(exc.value)
    assert message.startswith("configuration error:") and var in message and "\n" not in message


def test_good_values_of_those_settings_are_taken():
    c = Config.from_env({"IDP_LOG_LEVEL": "warning", "IDP_LOG_FORMAT": "text",
                         "IDP_SMTP_URL": "smtp://u:p%40ss@mail.example:587?starttls=1",
                         "IDP_LIVENESS_CHALLENGES": "turn_left+look_up,turn_right", "IDP_LIVENESS_MOVES": "4"})
    assert (c.log_level, c.log_format, c.liveness_moves) == ("warning", "text", 4)


def test_the_smtp_url_error_never_shows_the_password():
    with pytest.raises(SystemExit) as exc:
        Config.from_env({"IDP_SMTP_URL": "smtp://user:s3cret-pw@mail.example:notaport"})
    assert "s3cret-pw" not in str(exc.value)


@pytest.mark.parametrize("value", ["zz-not-hex-zz", "ab" * 16])
def test_a_malformed_template_key_stops_start_up_with_one_line(tmp_path, value):
    """As a retired one: it was a ValueError traceback from `idp serve` (a worker) and `idp faces rekey`."""
    for env in ({"IDP_TEMPLATE_KEY": value}, {"IDP_TEMPLATE_KEY_FILE": str(tmp_path / "key")}):
        (tmp_path / "key").write_text(value)
        with pytest.raises(SystemExit) as exc:
            Config.from_env(env)
        message = str(exc.value)
        assert message.startswith("configuration error: IDP_TEMPLATE_KEY") and "\n" not in message
        assert "zz-" not in message and "abab" not in message  # never the key itself
    assert Config.from_env({"IDP_TEMPLATE_KEY": "AB" * 32}).template_key == "AB" * 32


@pytest.mark.parametrize("value", ["127.0.0.1:5000", "localhost", "ftp://idp.example", "https://", "https://idp.example/?x=1",
                                   "https://idp.example/#top", "http://idp.example", "http://10.0.0.5:5000",
                                   "http://localhost.evil.example"])
def test_an_issuer_that_is_not_an_http_url_stops_start_up(value):
    """The issuer is every token's `iss` and the base of every discovery URL (OpenID Connect Discovery 1.0
    §3: https scheme, host, optional port and path, no query or fragment). http is allowed for development on a
    loopback address only: elsewhere codes, tokens and cookies would cross the network in clear text (it was
    accepted for any host, and turned Authlib's transport checks off)."""
    with pytest.raises(SystemExit) as exc:
        Config.from_env({"IDP_ISSUER": value})
    assert str(exc.value).startswith("configuration error: IDP_ISSUER=")
    assert Config.from_env({"IDP_ISSUER": "https://idp.example/tenant/"}).issuer == "https://idp.example/tenant"
    for loopback in ("http://127.0.0.1:5000", "http://localhost:8080", "http://[::1]:5000", "http://127.0.0.2"):
        assert Config.from_env({"IDP_ISSUER": loopback}).issuer == loopback


@pytest.mark.parametrize("var", ["IDP_SESSION_LIFETIME", "IDP_ANON_SESSION_LIFETIME", "IDP_CODE_LIFETIME",
                                 "IDP_ACCESS_TOKEN_LIFETIME", "IDP_ID_TOKEN_LIFETIME", "IDP_REFRESH_TOKEN_LIFETIME",
                                 "IDP_CAPTURE_TTL", "IDP_MAX_BODY_BYTES", "IDP_MAX_FORM_BYTES"])
@pytest.mark.parametrize("value", ["0", "-5"])
def test_a_lifetime_or_size_that_is_not_positive_stops_start_up(var, value):
    """A session that ends before it starts, a code that is expired when issued or a body limit of 0 bytes
    is a typo, not a setting: it was taken and every sign-in failed."""
    with pytest.raises(SystemExit) as exc:
        Config.from_env({var: value})
    assert str(exc.value) == f"configuration error: {var}={value} must be a positive number"


@pytest.mark.parametrize("var", ["IDP_MAX_IMAGE_BYTES", "IDP_MAX_IMAGE_PIXELS", "IDP_FACE_ENROLL_FRAMES",
                                 "IDP_FACE_VERIFY_FRAMES", "IDP_THREADS"])
def test_an_image_size_frame_count_or_thread_count_of_zero_stops_start_up(var):
    """A frame limit of 0 bytes or 0 pixels refuses every frame, a capture that needs 0 good frames is done before
    it filmed anything, and gunicorn's threaded worker cannot run 0 threads: each was taken (README: a size that is
    not positive stops start-up), and face sign-in, or the whole server, failed at run time instead."""
    with pytest.raises(SystemExit) as exc:
        Config.from_env({var: "0"})
    assert str(exc.value) == f"configuration error: {var}=0 must be a positive number"


@pytest.mark.parametrize("value", ["IdP <idp@example.com>\nBcc: someone@example.net", "a@", "idp-mailer",
                                   "<<>>", "ops@example.com, audit@example.com"])
def test_a_from_address_no_mail_can_carry_stops_start_up(value):
    """IDP_MAIL_FROM heads every mail, and was never checked: a line break in it (or an address cut short) made
    building every message raise, so every mail - password resets, the owners' security notices - failed at each
    delivery and stayed in the outbox; a value without a domain, or a list, made a From header servers refuse."""
    with pytest.raises(SystemExit) as exc:
        Config.from_env({"IDP_MAIL_FROM": value})
    assert str(exc.value).startswith("configuration error: IDP_MAIL_FROM ") and value not in str(exc.value)
    for good in ("no-reply@example.org", '"Ops, Team" <ops@example.org>', "Deep Authenticator <no-reply@localhost>"):
        assert Config.from_env({"IDP_MAIL_FROM": good}).mail_from == good


@pytest.mark.parametrize("var", ["IDP_REGISTRATION_TOKEN", "IDP_METRICS_TOKEN"])
def test_a_short_bearer_secret_stops_start_up(var):
    """The registration and metrics tokens are bearer secrets the operator chooses (their endpoints throttle failed
    guesses per client address, test_bearer_token_throttle.py, but a whole network of addresses guesses on): one of
    fewer than 32 characters ("initial-token-123" was accepted) stops start-up, in one line that never shows it."""
    with pytest.raises(SystemExit) as exc:
        Config.from_env({var: "initial-token-123"})
    message = str(exc.value)
    assert message.startswith(f"configuration error: {var} has 17 characters") and "initial-token" not in message
    assert getattr(Config.from_env({var: "ab" * 16}), {"IDP_REGISTRATION_TOKEN": "registration_access_token",
                                                       "IDP_METRICS_TOKEN": "metrics_token"}[var]) == "ab" * 16


@pytest.mark.parametrize("var", ["IDP_LOGIN_BASE_DELAY", "IDP_LOGIN_MAX_DELAY", "IDP_FACE_BASE_DELAY",
                                 "IDP_FACE_LOCK_AFTER", "IDP_REGISTER_IP_WINDOW", "IDP_FACE_RATE_WINDOW",
                                 "IDP_BACKCHANNEL_TIMEOUT", "IDP_BACKCHANNEL_MAX_ATTEMPTS"])
@pytest.mark.parametrize("value", ["0", "-30"])
def test_a_throttle_delay_of_zero_stops_start_up_instead_of_turning_the_throttle_off(var, value):
    """IDP_LOGIN_BASE_DELAY=0 (or IDP_LOGIN_MAX_DELAY=0, or a negative delay) was taken, and the throttles then
    never blocked: against the real app, 30 wrong passwords for one account were all checked (no 429) and the
    right one then signed in; the per-address and bearer-token throttles share those delays. "0 = off" is
    documented for the rate limits only, not for these."""
    with pytest.raises(SystemExit) as exc:
        Config.from_env({var: value})
    message = str(exc.value)
    assert message.startswith(f"configuration error: {var}=") and message.endswith("must be a positive number")


@pytest.mark.parametrize("var,value", [("IDP_LOGIN_FREE_FAILURES", "-1"), ("IDP_FACE_RECOVERY_COOLOFF", "-86400"),
                                       ("IDP_JWKS_MAX_AGE", "-300"), ("IDP_FACE_USER_CAPTURES", "-1"),
                                       ("IDP_BACKCHANNEL_RETRY_BASE", "nan"), ("IDP_BACKCHANNEL_TIMEOUT", "inf")])
def test_a_negative_or_non_finite_number_stops_start_up(var, value):
    """No count, size or duration is meaningful below 0, infinite or NaN: a negative cooling-off period acted as none,
    a negative JWKS max-age made a rotated key sign before any JWKS could hold it (``keys.prepublish_s``)."""
    with pytest.raises(SystemExit) as exc:
        Config.from_env({var: value})
    message = str(exc.value)
    assert message.startswith(f"configuration error: {var}=") and "\n" not in message
    assert Config.from_env({"IDP_FACE_RECOVERY_COOLOFF": "0", "IDP_FACE_USER_CAPTURES": "0"}).face_user_captures == 0


@pytest.mark.parametrize("name,var", [("secret_key", "IDP_SECRET_KEY"), ("key_encryption_key", "IDP_KEY_ENCRYPTION_KEY"),
                                      ("client_secret_pepper", "IDP_CLIENT_SECRET_PEPPER")])
def test_a_short_secret_stops_start_up_from_the_environment_a_file_or_the_data_directory(tmp_path, name, var):
    """IDP_KEY_ENCRYPTION_KEY=changeme (or a one-character IDP_SECRET_KEY or pepper) was taken: whoever reads the
    database could search the key-encryption key offline and sign ID tokens with the signing keys it unseals. Like
    the bearer tokens, each needs 32 characters, wherever it comes from; the message never shows it. A retired one
    is not held to it, so a short key in use can be rotated away (docs/operations.md)."""
    (tmp_path / "given").write_text("changeme")
    (tmp_path / "data" / "secrets").mkdir(parents=True)
    (tmp_path / "data" / "secrets" / name).write_text("changeme")
    for load in (lambda: Config.from_env({var: "changeme"}),
                 lambda: Config.from_env({f"{var}_FILE": str(tmp_path / "given")}),
                 lambda: Config.from_env({"IDP_DATA_DIR": str(tmp_path / "data")}).ensure_secrets()):
        with pytest.raises(SystemExit) as exc:
            load()
        message = str(exc.value)
        assert message.startswith("configuration error:") and "has 8 characters" in message, message
        assert "changeme" not in message and "\n" not in message
    rotated = Config.from_env({var: "n" * 32, Config.ENV[Config.RETIRED[name]]: "changeme"})
    assert getattr(rotated, name) == "n" * 32 and rotated.retired_keys(name) == ["changeme"]


@pytest.mark.parametrize("uri", ["mongodb://admin:s3cret@db.example:99999/", "mongodb://admin:s3cret@db.example:0/",
                                 "mongodb://admin:s3cret/x@db.example/", "mongodb://admin:s3c:ret@db.example/",
                                 "mongodb://admin:s3cret@[::1/", "mongodb://admin:s3cret@@db.example/",
                                 "http://admin:s3cret@db.example/", "mongodb://", "mongodb+srv://admin:s3cret@db.example:27017/"])
def test_a_malformed_mongodb_uri_stops_start_up_with_one_line_without_the_credentials(uri):
    """pymongo refused it only when the first client was made (a ValueError traceback from every command and
    gunicorn worker); its message may quote a piece of the URI, which holds the password."""
    with pytest.raises(SystemExit) as exc:
        Config.from_env({"MONGODB_URI": uri})
    message = str(exc.value)
    assert message.startswith("configuration error: MONGODB_URI") and "\n" not in message
    assert "s3cret" not in message and "s3c" not in message and "admin" not in message, message


@pytest.mark.parametrize("uri", ["mongodb://127.0.0.1:27017/", "mongodb://u:p%2Fss%3A@db1.example,db2.example:27018/"
                                 "?replicaSet=rs0&authSource=admin", "mongodb://[::1]:27017/",
                                 "mongodb+srv://u:p@cluster.invalid/?retryWrites=true"])
def test_a_well_formed_mongodb_uri_is_taken_without_reaching_any_server(uri):
    """Parsed only: no connection, and no DNS lookup of a mongodb+srv:// name (that is the connection's, later)."""
    assert Config.from_env({"MONGODB_URI": uri}).mongodb_uri == uri
