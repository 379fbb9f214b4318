"""Configuration: one TOML file, a typed key schema, and flag > env > config > default resolution.

Every resolved value carries where it came from, so commands can say which address they use
and why (DESIGN.md section 5: never fall back silently to a stale address).
"""

from __future__ import annotations

import difflib
import os
import secrets
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import tomllib

from kgen.core.errors import BadInput, ConfigError


@dataclass(frozen=True)
class Key:
    name: str                 # dotted, e.g. "gateway.port"
    type: type                # str | int | float | bool
    default: Any
    env: str | None = None    # environment variable that overrides the file
    help: str = ""
    check: Callable[[Any], str | None] | None = None  # returns an error text or None
    secret: bool = False      # masked by `kgen config show` unless asked to reveal


def _port(v: int) -> str | None:
    return None if 0 <= v <= 65535 else "must be a port number 0-65535"


def _positive(v: float) -> str | None:
    return None if v > 0 else "must be > 0"


def _backend(v: str) -> str | None:
    return None if v in ("cpu", "cuda") else "must be 'cpu' or 'cuda'"


def _url(v: str) -> str | None:
    return None if v.startswith(("http://", "https://")) else "must be an http:// or https:// URL"


KEYS: dict[str, Key] = {k.name: k for k in [
    Key("gateway.url", str, "http://127.0.0.1:8000", "KGEN_GATEWAY_URL", "gateway the client commands talk to", _url),
    Key("gateway.host", str, "127.0.0.1", "KGEN_GATEWAY_HOST", "address the gateway binds"),
    Key("gateway.port", int, 8000, "KGEN_GATEWAY_PORT", "port the gateway binds", _port),
    Key("gateway.db", str, "", "KGEN_GATEWAY_DB", "gateway SQLite file (default: <state dir>/gateway.db)"),
    Key("gateway.max_queue", int, 256, None, "queued jobs before submits get 429", _positive),
    Key("gateway.heartbeat_ttl_s", float, 30.0, None, "worker heartbeat TTL in seconds", _positive),
    Key("gateway.max_attempts", int, 3, None, "tries of one candidate on different nodes", _positive),
    Key("gateway.max_node_capacity", int, 16, None, "cap on the capacity a node reports for itself", _positive),
    Key("gateway.cross_check", str, "auto", None,
        "auto: re-verify a correct candidate on a second node when one serves the backend; off",
        lambda v: None if v in ("auto", "off") else "must be 'auto' or 'off'"),
    Key("gateway.ui", bool, True, None, "serve the web dashboard at /ui/ (`kgen gateway start --no-ui` turns it off)"),
    Key("node.host", str, "127.0.0.1", "KGEN_NODE_HOST", "address the node binds"),
    Key("node.port", int, 9001, "KGEN_NODE_PORT", "port the node binds", _port),
    Key("node.backend", str, "cpu", "KGEN_NODE_BACKEND", "cpu (Triton interpreter) or cuda", _backend),
    Key("node.arch", str, "", "KGEN_NODE_ARCH", "arch label, e.g. h100 (default: detected)"),
    Key("node.devices", str, "", "KGEN_NODE_DEVICES", "device ids, e.g. 0 or 0,1 (cpu ids name slots)"),
    Key("node.gateway", str, "", "KGEN_NODE_GATEWAY", "gateway URL to self-register with"),
    Key("node.token_file", str, "", "KGEN_NODE_TOKEN_FILE", "file holding this node's node token (registers with the gateway)"),
    Key("node.insecure_sandbox", bool, False, "KGEN_NODE_INSECURE_SANDBOX",
        "start even when the kernel lacks a run-sandbox feature (see `kgen doctor`)"),
    Key("node.compile_for", str, "", "KGEN_NODE_COMPILE_FOR",
        "GPU targets every verify also compiles for, e.g. sm_80,sm_90"),
    Key("store.path", str, "", "KGEN_STORE", "local-mode SQLite file (default: <home>/kgen.db)"),
    Key("verify.timeout_s", float, 300.0, "KGEN_VERIFY_TIMEOUT", "per-candidate timeout in seconds", _positive),
    Key("verify.memory_mb", int, 8192, "KGEN_VERIFY_MEMORY_MB", "per-candidate address-space limit", _positive),
    Key("llm.base_url", str, "", "KGEN_LLM_BASE_URL", "OpenAI-compatible endpoint, e.g. https://host/v1"),
    Key("llm.model", str, "", "KGEN_LLM_MODEL", "model name for the llm generator"),
    Key("llm.api_key", str, "", "KGEN_LLM_API_KEY", "API key for the llm endpoint (prefer the env var)",
        secret=True),
]}


def kgen_home() -> Path:
    """$KGEN_HOME, else the platform config dir (XDG on Linux)."""
    if os.environ.get("KGEN_HOME"):
        return Path(os.environ["KGEN_HOME"]).expanduser()
    if sys.platform == "darwin":
        return Path.home() / "Library" / "Application Support" / "kgen"
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "kgen"


def config_path() -> Path:
    # systemd's ConfigurationDirectory= wins for daemons started by a unit.
    if os.environ.get("CONFIGURATION_DIRECTORY") and not os.environ.get("KGEN_HOME"):
        return Path(os.environ["CONFIGURATION_DIRECTORY"].split(":")[0]) / "config.toml"
    return kgen_home() / "config.toml"


def state_dir() -> Path:
    """Where daemons keep databases: systemd's STATE_DIRECTORY, else the kgen home."""
    if os.environ.get("STATE_DIRECTORY"):
        return Path(os.environ["STATE_DIRECTORY"].split(":")[0])
    return kgen_home()


def token_path() -> Path:
    return config_path().parent / "token"


def coerce(key: Key, raw: Any, origin: str) -> Any:
    """Convert and validate one value; a bad one is a one-line error naming the key and origin."""
    try:
        if key.type is bool:
            if isinstance(raw, bool):
                value = raw
            elif str(raw).lower() in ("1", "true", "yes", "on"):
                value = True
            elif str(raw).lower() in ("0", "false", "no", "off"):
                value = False
            else:
                raise ValueError(raw)
        elif key.type is int and isinstance(raw, bool):
            raise ValueError(raw)
        else:
            value = key.type(raw)
    except (TypeError, ValueError):
        raise ConfigError(f"{key.name} in {origin}: expected {key.type.__name__}, got {raw!r}") from None
    problem = key.check(value) if key.check and value != "" else None
    if problem:
        raise ConfigError(f"{key.name} in {origin}: {problem} (got {value!r})")
    return value


def _flatten(data: dict, prefix: str = "") -> dict[str, Any]:
    flat: dict[str, Any] = {}
    for k, v in data.items():
        name = f"{prefix}{k}"
        if isinstance(v, dict):
            flat.update(_flatten(v, name + "."))
        else:
            flat[name] = v
    return flat


def load_file(path: Path | None = None) -> dict[str, Any]:
    """The config file as a flat {dotted key: validated value}; missing file = empty."""
    path = path or config_path()
    if not path.exists():
        return {}
    try:
        data = tomllib.loads(path.read_text())
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"cannot read {path}: {exc}") from None
    flat = _flatten(data)
    values = {}
    for name, raw in flat.items():
        if name not in KEYS:
            raise ConfigError(f"unknown key {name!r} in {path}")
        values[name] = coerce(KEYS[name], raw, str(path))
    return values


def _key(name: str) -> Key:
    if name in KEYS:
        return KEYS[name]
    close = difflib.get_close_matches(name, list(KEYS), n=1)
    hint = f" (did you mean {close[0]}?)" if close else " (`kgen config show` lists the keys)"
    raise BadInput(f"unknown config key {name!r}{hint}")


def resolve(name: str, flag: Any = None, *, file_values: dict[str, Any] | None = None) -> tuple[Any, str]:
    """(value, source) for a key: flag > env > config file > default."""
    key = _key(name)
    if flag is not None:
        return coerce(key, flag, "command-line flag"), "flag"
    if key.env and os.environ.get(key.env) not in (None, ""):
        return coerce(key, os.environ[key.env], f"${key.env}"), f"env {key.env}"
    values = load_file() if file_values is None else file_values
    if name in values:
        return values[name], f"config {config_path()}"
    return key.default, "default"


def get(name: str, flag: Any = None) -> Any:
    return resolve(name, flag)[0]


def resolve_token(flag: str | None = None) -> tuple[str | None, str]:
    """Bearer token: --token, $KGEN_TOKEN, then the token file. (None, 'none') when absent."""
    if flag:
        return flag, "flag"
    if os.environ.get("KGEN_TOKEN"):
        return os.environ["KGEN_TOKEN"], "env KGEN_TOKEN"
    path = token_path()
    if path.exists():
        text = path.read_text().strip()
        if text:
            return text, f"file {path}"
    return None, "none"


def resolve_node_token(token_file: str | None = None) -> tuple[str | None, str]:
    """A node's node token: --token-file, $KGEN_NODE_TOKEN, then the file named by node.token_file."""
    path_value, origin = (token_file, "flag --token-file") if token_file else (None, "")
    if not path_value and os.environ.get("KGEN_NODE_TOKEN"):
        return os.environ["KGEN_NODE_TOKEN"].strip(), "env KGEN_NODE_TOKEN"
    if not path_value:
        path_value, origin = resolve("node.token_file")
    if not path_value:
        return None, "none"
    path = Path(path_value).expanduser()
    try:
        text = path.read_text().strip()
    except OSError as exc:
        raise ConfigError(f"cannot read node token file {path} ({origin}): {exc.strerror or exc}") from None
    if not text:
        raise ConfigError(f"node token file {path} is empty")
    return text, f"file {path}"


# -- writing ---------------------------------------------------------------------------------

_HEADER = "# kgen configuration. `kgen config show` lists every key, its value and where it came from.\n"


def _atomic_write(path: Path, data: str, mode: int = 0o600) -> None:
    """Write via a temp file in the same directory and rename, so readers never see half a file."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise


def load_raw(path: Path | None = None) -> dict[str, Any]:
    """The config file as a flat {dotted key: raw value}, unvalidated (so `set` can repair a bad file)."""
    path = path or config_path()
    if not path.exists():
        return {}
    try:
        return _flatten(tomllib.loads(path.read_text()))
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"cannot read {path}: {exc}") from None


def write_file(values: dict[str, Any], path: Path | None = None) -> Path:
    """Write flat {dotted key: value} as nested TOML tables with tomli-w, atomically."""
    try:
        import tomli_w  # only writers pay for it; reading config, verify, run and bench never need it
    except ImportError:
        raise ConfigError("writing the config file needs the tomli-w package (pip install tomli-w); "
                          "reading it does not") from None

    path = path or config_path()
    nested: dict[str, Any] = {}
    for name in sorted(values):
        *tables, leaf = name.split(".")
        node = nested
        for table in tables:
            node = node.setdefault(table, {})
        node[leaf] = values[name]
    _atomic_write(path, _HEADER + tomli_w.dumps(nested))
    return path


def set_value(name: str, raw: Any, path: Path | None = None) -> Any:
    """Validate and store one key in the config file; returns the stored (typed) value."""
    key = _key(name)
    path = path or config_path()
    try:
        value = coerce(key, raw, str(path))
    except ConfigError as exc:  # a bad value typed by the user is bad input, not a broken daemon config
        raise BadInput(exc.message) from None
    values = load_raw(path)
    values[name] = value
    write_file(values, path)
    return value


def unset_value(name: str, path: Path | None = None) -> bool:
    """Remove one key from the config file; False when it was not set there."""
    _key(name)
    path = path or config_path()
    values = load_raw(path)
    if name not in values:
        return False
    del values[name]
    write_file(values, path)
    return True


def show(reveal: bool = False) -> list[dict[str, Any]]:
    """Every key with its effective value and source (flag > env > config > default)."""
    file_values = load_file()
    rows = []
    for name, key in KEYS.items():
        value, source = resolve(name, file_values=file_values)
        if key.secret and value and not reveal:
            value = "********"
        rows.append({"key": name, "value": value, "source": source, "env": key.env,
                     "default": key.default, "type": key.type.__name__, "help": key.help})
    return rows


def init_home(force: bool = False) -> dict[str, Any]:
    """Create the config file and the API token if missing. Idempotent; only `force` replaces a token."""
    cfg, tok = config_path(), token_path()
    home_created = not cfg.parent.exists()
    cfg.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    config_created = False
    if not cfg.exists():
        _atomic_write(cfg, _HEADER)
        config_created = True
    else:
        load_file(cfg)  # an existing but broken file is reported now, not at daemon start
    token_state = "kept"
    if not tok.exists() or not tok.read_text().strip():
        token_state = "created"
    elif force:
        token_state = "replaced"
    if token_state != "kept":
        _atomic_write(tok, secrets.token_urlsafe(32) + "\n", mode=0o600)
    return {"home": str(cfg.parent), "home_created": home_created,
            "config_path": str(cfg), "config_created": config_created,
            "token_path": str(tok), "token": token_state}
