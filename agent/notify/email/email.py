"""Email through an SMTP smarthost (aiosmtplib): STARTTLS or implicit TLS, AUTH, HTML + text.

Like Alertmanager: `require_tls` (default true) upgrades with STARTTLS and fails when the
server does not offer it; port 465 means implicit TLS. Header values built from alert
labels have every control and line-separator character replaced by a space (CR/LF, and
also VT, FF, NEL, U+2028/U+2029, which Python's email package treats as line breaks and
refuses), so a log line can neither inject a header nor make a message unsendable; the
HTML body escapes every value that came from logs.

`to` and `from` are notification templates (Alertmanager renders them with the message's
data): the rendered text is the `To`/`From` header, and its addresses the envelope. A
`to` or `from` that renders no address (or `from` more than one) is a permanent failure,
as a template error is in Alertmanager. Authentication follows Alertmanager too: the
first mechanism the server offers that a credential is given for (CRAM-MD5 with
`auth_secret`, PLAIN with `auth_identity` or LOGIN with `auth_password`).
"""

from __future__ import annotations

import base64
import html
import re
import ssl
import time
from email.message import EmailMessage
from email.utils import formatdate, getaddresses, make_msgid
from typing import TYPE_CHECKING

from agent.notify.email.config import EmailConfig
from agent.notify.integration import DeliveryError, Result, redact, ssl_context
from agent.notify.notification import Notification
from agent.notify.template import Renderer, TemplateSet, template_data

if TYPE_CHECKING:
    import aiosmtplib

# Cc (C0, DEL, C1) and the Unicode line/paragraph separators: str.splitlines() breaks on
# several of them, and the email package refuses a header value that splits.
_BREAKS = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029]+")


def header_value(value: str) -> str:
    return _BREAKS.sub(" ", value).strip()


def text_body(n: Notification) -> str:
    lines = [n.title(), ""]
    for a in n.alerts:
        lines.append(f"[{a.status.upper()}] {a.annotations.get('summary') or a.name}")
        if a.annotations.get("description"):
            lines.append(a.annotations["description"])
        lines.extend(f"  {k} = {v}" for k, v in sorted(a.labels.items()))
        if a.generator_url:
            lines.append(f"  source: {a.generator_url}")
        lines.append("")
    if n.external_url:
        lines.append(f"Sent by chatwatch {n.external_url}")
    return "\n".join(lines)


def html_body(n: Notification) -> str:
    e = html.escape
    colour = "#E01E5A" if n.status == "firing" else "#2EB67D"
    parts = [
        '<!DOCTYPE html><html><body style="font-family:sans-serif">',
        f'<h2 style="color:{colour}">{e(n.title())}</h2>',
    ]
    for a in n.alerts:
        parts.append(f"<h3>[{a.status.upper()}] {e(a.annotations.get('summary') or a.name)}</h3>")
        if a.annotations.get("description"):
            parts.append(f"<p>{e(a.annotations['description'])}</p>")
        parts.append("<table>")
        parts.extend(
            f"<tr><td><b>{e(k)}</b></td><td>{e(v)}</td></tr>" for k, v in sorted(a.labels.items())
        )
        parts.append("</table>")
        if a.generator_url:
            parts.append(f'<p><a href="{e(a.generator_url)}">source</a></p>')
    parts.append("</body></html>")
    return "".join(parts)


def build_message(
    n: Notification,
    cfg: EmailConfig,
    now: float | None = None,
    templates: TemplateSet | None = None,
) -> EmailMessage:
    """The email: chatwatch's bodies, or the `html`/`text` templates when configured.

    Header values (`Subject` included) are templates too. A template that fails renders
    as chatwatch's own text, and both bodies start with a line naming the failure."""
    templates = templates or TemplateSet.default()
    render = templates.renderer(template_data(n), n.integration)
    addresses = templates.renderer(template_data(n, value=address_part), n.integration)
    msg = EmailMessage()
    msg["From"] = header_value(addresses.text("from", cfg.from_))
    msg["To"] = header_value(addresses.text("to", cfg.to))
    msg["Subject"] = header_value(n.title())
    msg["Date"] = formatdate(now if now is not None else time.time())
    msg["Message-Id"] = make_msgid(domain="chatwatch")
    msg["X-Chatwatch-Group-Key"] = header_value(n.group_key)
    for name, value in cfg.headers.items():
        name = header_value(name)
        rendered = header_value(render.text(f"headers.{name}", value))
        if not rendered and name.lower() == "subject":
            rendered = header_value(n.title())  # a failed subject: ours, never a blank one
        if name in msg:
            del msg[name]
        msg[name] = rendered
    text = render.text("text", cfg.text) if cfg.text else ""
    if not text:
        text = text_body(n)
    body_html = render.text("html", cfg.html, html=True) if cfg.html else ""
    if not body_html:
        body_html = html_body(n)
    errors = render.error_lines()
    if errors:
        text = "\n".join([*errors, "", text])
        notice = "".join(f"<p><b>{html.escape(e)}</b></p>" for e in errors)
        body_html = notice + body_html
    msg.set_content(text)
    msg.add_alternative(body_html, subtype="html")
    return msg


def envelope(
    n: Notification, cfg: EmailConfig, templates: TemplateSet | None = None
) -> tuple[str, list[str]]:
    """(sender, recipients): the addresses in the rendered `from` and `to`. Raises
    DeliveryError when a template fails or renders no usable address."""
    templates = templates or TemplateSet.default()
    render = templates.renderer(template_data(n, value=address_part), n.integration)
    sender = _addresses(render, "from", cfg.from_)
    recipients = _addresses(render, "to", cfg.to)
    if len(sender) != 1:
        raise DeliveryError(
            f"'from' must be exactly one address, rendered {len(sender)}", "client_error"
        )
    return sender[0], recipients


_ADDRESS_SEPARATORS = re.compile(r"[\s,;<>\"()\[\]:\\]")


def address_part(value: str) -> str:
    """A label or annotation value printed into `to` or `from`: text from logs, so it may
    be part of one address but never add another (no separators, quotes, brackets or
    spaces); Alertmanager prints it as it is."""
    return _ADDRESS_SEPARATORS.sub("", value)


def _addresses(render: Renderer, key: str, text: str) -> list[str]:
    rendered = render.text(key, text)
    if render.errors:
        raise DeliveryError(f"execute {key!r} template: {render.errors[-1][1]}", "client_error")
    found = [addr for _, addr in getaddresses([header_value(rendered)]) if "@" in addr]
    if not found:
        raise DeliveryError(f"{key!r} rendered no address: {rendered!r}", "client_error")
    return found


async def authenticate(smtp: aiosmtplib.SMTP, cfg: EmailConfig) -> None:
    """Alertmanager's choice of mechanism: the first one the server lists that a
    credential is given for. Raises aiosmtplib.SMTPAuthenticationError when refused,
    DeliveryError when no offered mechanism has its credential."""
    import aiosmtplib

    user = cfg.auth_username or ""
    password = cfg.auth_password.get_secret_value() if cfg.auth_password else ""
    secret = cfg.auth_secret.get_secret_value() if cfg.auth_secret else ""
    for mechanism in smtp.server_auth_methods:
        if mechanism == "cram-md5" and secret:
            await smtp.auth_crammd5(user, secret)
            return
        if mechanism == "plain" and password:
            plain = f"{cfg.auth_identity or ''}\0{user}\0{password}".encode()
            response = await smtp.execute_command(b"AUTH", b"PLAIN", base64.b64encode(plain))
            if response.code != 235:
                raise aiosmtplib.SMTPAuthenticationError(response.code, response.message)
            return
        if mechanism == "login" and password:
            await smtp.auth_login(user, password)
            return
    offered = " ".join(smtp.server_auth_methods).upper() or "none"
    raise DeliveryError(
        f"{cfg.smarthost} offers AUTH {offered}, and no credential is given for any of "
        "them (CRAM-MD5 needs auth_secret; PLAIN and LOGIN need auth_password)",
        "auth_failed",
    )


class Email:
    kind = "email"

    def __init__(
        self, receiver: str, index: int, cfg: EmailConfig, templates: TemplateSet | None = None
    ) -> None:
        self.templates = templates or TemplateSet.default()
        self.name = f"{receiver}/email[{index}]"
        self.receiver = receiver
        self.send_resolved = cfg.send_resolved
        self.min_interval = 0.0
        self.cfg = cfg
        host, _, port = cfg.smarthost.rpartition(":")
        self.host = host.strip("[]")
        self.port = int(port)
        self.tls: ssl.SSLContext = ssl_context(cfg.tls_config)
        if cfg.tls_config.server_name:
            self.server_name = cfg.tls_config.server_name
        else:
            self.server_name = self.host

    async def notify(self, notification: Notification) -> Result:
        import aiosmtplib  # lazy: start-up does not wait for it (most agents send no email)

        cfg = self.cfg
        password = cfg.auth_password.get_secret_value() if cfg.auth_password else ""
        secrets = [password, cfg.auth_secret.get_secret_value() if cfg.auth_secret else ""]
        try:
            sender, recipients = envelope(notification, cfg, self.templates)
        except DeliveryError as exc:
            return False, exc
        implicit = cfg.implicit_tls if cfg.implicit_tls is not None else self.port == 465
        smtp = aiosmtplib.SMTP(
            hostname=self.host,
            port=self.port,
            local_hostname=cfg.hello,
            timeout=cfg.timeout,
            use_tls=implicit,
            start_tls=False,
            tls_context=self.tls,
        )
        step = "connect"
        try:
            await smtp.connect()
            step = "EHLO"
            await smtp.ehlo()
            if cfg.require_tls and not implicit:
                if not smtp.supports_extension("starttls"):
                    return True, DeliveryError(
                        f"require_tls is true but {cfg.smarthost} does not offer STARTTLS",
                        "tls",
                    )
                step = "STARTTLS"
                await smtp.starttls(server_hostname=self.server_name, tls_context=self.tls)
                await smtp.ehlo()  # extensions offered over TLS (AUTH usually appears only now)
            if cfg.auth_username:
                step = "AUTH"
                if not smtp.supports_extension("auth"):
                    return True, DeliveryError(
                        f"auth_username is set but {cfg.smarthost} does not offer AUTH "
                        "(servers often offer it only after STARTTLS)",
                        "auth_failed",
                    )
                try:
                    await authenticate(smtp, cfg)
                except DeliveryError as exc:
                    return True, exc
                except aiosmtplib.SMTPAuthenticationError as exc:
                    # Alertmanager retries this too: credentials may be fixed without a restart.
                    detail = redact(exc.message, secrets)
                    return True, DeliveryError(
                        f"{cfg.smarthost} refused AUTH for user {cfg.auth_username!r}: "
                        f"{exc.code} {detail}",
                        "auth_failed",
                    )
            step = "send"
            msg = build_message(notification, cfg, templates=self.templates)
            await smtp.send_message(msg, sender=sender, recipients=recipients)
        except aiosmtplib.SMTPResponseException as exc:
            detail = redact(f"{exc.code} {exc.message}", secrets)
            permanent = 500 <= exc.code < 600 and step == "send"
            return not permanent, DeliveryError(
                f"{cfg.smarthost}: {step} failed: {detail}",
                "client_error" if permanent else "server_error",
            )
        except (aiosmtplib.SMTPTimeoutError, TimeoutError):
            return True, DeliveryError(f"{cfg.smarthost}: {step} timed out", "timeout")
        except (aiosmtplib.SMTPException, OSError) as exc:
            reason = "tls" if isinstance(exc, ssl.SSLError) else "connection"
            detail = redact(f"{type(exc).__name__}: {exc}", secrets)
            return True, DeliveryError(f"{cfg.smarthost}: {step} failed: {detail}", reason)
        finally:
            if smtp.is_connected:
                try:
                    await smtp.quit()
                except (aiosmtplib.SMTPException, OSError):
                    smtp.close()
        return False, None

    async def close(self) -> None:
        return None
