"""HTTPS for the server (`server.tls`): the SSL context, and `check` for `chatwatch check`.

The context trusts exactly `client_ca_file` for client certificates, never the system's
CAs, and enforces `min_version`; paths are relative to the config file's folder.
"""

from __future__ import annotations

import ssl
from pathlib import Path

from agent.server.config import ServerConfig, ServerError

_VERIFY_MODES = {
    "NoClientCert": ssl.CERT_NONE,
    "VerifyClientCertIfGiven": ssl.CERT_OPTIONAL,
    "RequireAndVerifyClientCert": ssl.CERT_REQUIRED,
}


def server_context(cfg: ServerConfig, base_dir: Path | None = None) -> ssl.SSLContext | None:
    """The SSL context of `cfg.tls` (None without TLS), or ServerError naming the bad file."""
    if cfg.tls is None:
        return None
    cert = resolve(cfg.tls.cert_file, base_dir)
    key = resolve(cfg.tls.key_file, base_dir)
    for key_name, path in (("cert_file", cert), ("key_file", key)):
        try:
            with open(path, "rb"):
                pass
        except OSError as exc:
            raise ServerError(
                f"server.tls.{key_name}: cannot read {path}: {exc.strerror}"
            ) from None
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = (
        ssl.TLSVersion.TLSv1_3 if cfg.tls.min_version == "TLS13" else ssl.TLSVersion.TLSv1_2
    )
    if cfg.tls.client_ca_file:
        client_ca = resolve(cfg.tls.client_ca_file, base_dir)
        try:
            context.load_verify_locations(cafile=client_ca)
        except (OSError, ssl.SSLError) as exc:
            reason = getattr(exc, "strerror", None) or getattr(exc, "reason", None) or str(exc)
            raise ServerError(
                f"server.tls.client_ca_file: cannot use {client_ca} as a PEM CA bundle: {reason}"
            ) from None
        context.verify_mode = _VERIFY_MODES[cfg.tls.client_auth_type]
    try:
        context.load_cert_chain(certfile=cert, keyfile=key)
    except (OSError, ssl.SSLError) as exc:
        reason = getattr(exc, "reason", None) or getattr(exc, "strerror", None) or str(exc)
        raise ServerError(
            f"server.tls: cert_file {cert} and key_file {key} are not a usable "
            f"PEM certificate and key: {reason}"
        ) from None
    return context


def check(cfg: ServerConfig, base_dir: Path | None = None) -> list[str]:
    """Problems `chatwatch check` should report about the server section (TLS files)."""
    try:
        server_context(cfg, base_dir)
    except ServerError as exc:
        return [str(exc)]
    return []


def resolve(path: str, base_dir: Path | None) -> str:
    """`path` from the config, relative to the config file's folder unless absolute."""
    p = Path(path)
    return str(p if p.is_absolute() or base_dir is None else base_dir / p)
