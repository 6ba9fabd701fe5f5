"""Alertmanager's API v2, the part `amtool` and Grafana use, over the notifier's state.

    GET  /api/v2/silences         filter=<matcher>...        gettableSilences
    POST /api/v2/silences         postableSilence            {"silenceID": id}
    GET  /api/v2/silence/{id}                                gettableSilence
    DELETE /api/v2/silence/{id}                              (expires it)
    GET  /api/v2/alerts           filter, silenced, inhibited, active, unprocessed, receiver
    GET  /api/v2/alerts/groups    filter, silenced, inhibited, active, receiver
    GET  /api/v2/status           cluster, versionInfo, config.original, uptime
    GET  /api/v2/receivers

Shapes, orders, defaults and error texts are Alertmanager 0.25's (api/v2/api.go and its
OpenAPI spec), checked against a real one by tests/test_notify_silences_vs_alertmanager.py.
Times are go-openapi's DateTime (milliseconds, UTC). Errors are `APIError`s: a string
payload is what Alertmanager's handlers answer (a JSON string, which amtool prints), a
{code, message} payload what its request validation answers.

The alerts are the dispatcher's: with no `alerting.route` nothing is routed and none are
listed. `config.original` is the `alerting:` section in Alertmanager's shape, every
secret shown as `<secret>`, as Alertmanager shows its own.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import orjson
import yaml

from agent import __version__
from agent.notify.config import AlertingConfig
from agent.notify.dispatcher import StoredAlert
from agent.notify.matchers import Matcher, parse_matcher
from agent.notify.mute import MuteStatus
from agent.notify.silences import Silence, SilenceError, SilenceNotFound, silence_matcher
from agent.support.configmodel import redact_data
from agent.support.duration import format_duration
from agent.support.goformat import go_quote, parse_rfc3339, rfc3339_millis

if TYPE_CHECKING:
    from agent.notify.notifier import Notifier

Query = dict[str, list[str]]

_UUID = re.compile(
    r"(?i)[0-9a-f]{8}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{12}\Z"
)  # go-openapi strfmt's IsUUID
_TRUE = ("true", "1", "yes", "ok", "y", "on", "selected", "checked", "t", "enabled")
API_VERSION = "0.25.0"
"""The Alertmanager whose API this is, shown as `versionInfo.version`: amtool compares
its own major.minor with it and warns on every command when they differ. chatwatch's own
version is in `versionInfo.revision`."""
_CHATWATCH_ONLY = {"alertmanagers", "resend_delay", "delivery", "resolve_timeout"}
_STATE_ORDER = {"active": 1, "pending": 2, "expired": 3}


class APIError(Exception):
    def __init__(self, status: int, payload: str | dict[str, Any] | None = None) -> None:
        super().__init__(status, payload)
        self.status = status
        self.payload = payload


class AlertmanagerAPI:
    def __init__(self, notifier: Notifier, started_at: float) -> None:
        self.notifier = notifier
        self.started_at = started_at

    # -- silences ------------------------------------------------------------------------

    def get_silences(self, query: Query, now: float) -> list[dict[str, Any]]:
        filters = _filters(query)
        silences = [s for s in self.notifier.silences.all() if _silence_has_matchers(s, filters)]
        return [_silence_json(s, now) for s in sorted_silences(silences, now)]

    def get_silence(self, silence_id: str, now: float) -> dict[str, Any]:
        silence = self.notifier.silences.get(_uuid(silence_id))
        if silence is None:
            raise APIError(404)
        return _silence_json(silence, now)

    def post_silence(self, body: bytes, now: float) -> dict[str, Any]:
        silence = _postable_silence(body, now)
        try:
            silence_id = self.notifier.set_silence(silence, now)
        except SilenceNotFound as exc:
            raise APIError(404, str(exc)) from None
        except SilenceError as exc:
            raise APIError(400, str(exc)) from None
        except OSError as exc:
            raise APIError(500, f"cannot save silences: {exc.strerror}") from None
        return {"silenceID": silence_id}

    def delete_silence(self, silence_id: str, now: float) -> None:
        try:
            self.notifier.expire_silence(_uuid(silence_id), now)
        except SilenceError as exc:  # not found: 500 with its text, as Alertmanager 0.25
            raise APIError(500, str(exc)) from None
        except OSError as exc:
            raise APIError(500, f"cannot save silences: {exc.strerror}") from None

    # -- alerts --------------------------------------------------------------------------

    def get_alerts(self, query: Query, now: float) -> list[dict[str, Any]]:
        keep = self._alert_filter(query, now)
        receiver = _receiver_filter(query)
        route = self.notifier.dispatcher.route
        out: dict[str, dict[str, Any]] = {}
        for group in self.notifier.dispatcher.groups.values():
            for fp, alert in group.alerts.items():
                if fp in out:
                    continue
                receivers = [r.receiver for r in route.match(alert.labels)] if route else []
                if receiver is not None and not any(receiver.match(r) for r in receivers):
                    continue
                status = keep(alert)
                if status is not None:
                    out[fp] = _alert_json(alert, status, receivers)
        return [out[fp] for fp in sorted(out)]

    def get_alert_groups(self, query: Query, now: float) -> list[dict[str, Any]]:
        keep = self._alert_filter(query, now)
        receiver = _receiver_filter(query)
        receivers: dict[str, list[str]] = {}
        picked: list[tuple[dict[str, str], str, list[tuple[StoredAlert, MuteStatus]]]] = []
        for group in self.notifier.dispatcher.groups.values():
            if receiver is not None and not receiver.match(group.receiver):
                continue
            alerts = []
            for alert in group.alerts.values():
                status = keep(alert)
                if status is not None:
                    receivers.setdefault(alert.fingerprint, []).append(group.receiver)
                    alerts.append((alert, status))
            if alerts:
                picked.append((group.labels, group.receiver, alerts))
        picked.sort(key=functools.cmp_to_key(_group_cmp))
        return [
            {
                "alerts": [
                    _alert_json(a, status, sorted(receivers[a.fingerprint]))
                    for a, status in sorted(alerts, key=lambda x: _alert_key(x[0]))
                ],
                "labels": _sorted(labels),
                "receiver": {"name": name},
            }
            for labels, name, alerts in picked
        ]

    def _alert_filter(self, query: Query, now: float) -> Callable[[StoredAlert], MuteStatus | None]:
        """Alertmanager's alertFilter: the alert's mute status if it is to be listed."""
        matchers = _filters(query)
        silenced = _bool(query, "silenced")
        inhibited = _bool(query, "inhibited")
        active = _bool(query, "active")
        # `unprocessed` is accepted and ignored, as by Alertmanager 0.25's own filter.
        mute = self.notifier.mute

        def keep(alert: StoredAlert) -> MuteStatus | None:
            if alert.resolved(now):
                return None
            status = mute.status(alert.labels, now)
            if not active and status.state == "active":
                return None
            if not silenced and status.silenced_by:
                return None
            if not inhibited and status.inhibited_by:
                return None
            return status if _labels_match(matchers, alert.labels) else None

        return keep

    # -- general -------------------------------------------------------------------------

    def get_status(self) -> dict[str, Any]:
        return {
            "cluster": {"peers": [], "status": "disabled"},
            "config": {"original": original_config(self.notifier.cfg)},
            "uptime": rfc3339_millis(self.started_at),
            "versionInfo": {
                "branch": "",
                "buildDate": "",
                "buildUser": "",
                "goVersion": "",
                "revision": f"chatwatch {__version__}",
                "version": API_VERSION,
            },
        }

    def get_receivers(self) -> list[dict[str, str]]:
        return [{"name": r.name} for r in self.notifier.cfg.receivers]


def original_config(cfg: AlertingConfig) -> str:
    """The `alerting:` section as an alertmanager.yml, secrets shown as `<secret>`."""
    dumped = cfg.model_dump(by_alias=True, exclude_none=True, exclude=_CHATWATCH_ONLY)
    given = _redacted(dumped.pop("global", {}))
    given.pop("resolve_timeout", None)
    data: dict[str, Any] = {
        "global": {"resolve_timeout": format_duration(cfg.resolve_timeout), **given}
    }
    data.update(_redacted(dumped))
    text: str = yaml.safe_dump(data, sort_keys=False, allow_unicode=True)
    return text


def _redacted(value: Any) -> Any:
    """Secrets as `<secret>` (secret fields, header values, passwords inside URLs, as
    everywhere), empty lists and maps left out as Alertmanager prints, plain YAML types."""
    return _plain(redact_data(value))


def _plain(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items() if v != [] and v != {}}
    if isinstance(value, list | tuple | set | frozenset):
        return [_plain(v) for v in value]
    if value is None or isinstance(value, str | int | float | bool):
        return value
    return str(value)


# -- request parsing -------------------------------------------------------------------


def _filters(query: Query) -> list[Matcher]:
    try:
        return [parse_matcher(text) for text in query.get("filter", [])]
    except ValueError as exc:
        raise APIError(400, str(exc)) from None


def _receiver_filter(query: Query) -> re.Pattern[str] | None:
    values = query.get("receiver")
    if not values:
        return None
    try:
        return re.compile(f"^(?:{values[0]})$")
    except re.error as exc:
        raise APIError(400, f"failed to parse receiver param: {exc}") from None


def _bool(query: Query, name: str, default: bool = True) -> bool:
    """go-openapi's swag.ConvertBool: `true`, `1`, `yes`, `on`... are true, anything else
    false (no error); absent or empty is the parameter's default."""
    values = query.get(name)
    if not values or values[0] == "":
        return default
    return values[0].lower() in _TRUE


def _uuid(silence_id: str) -> str:
    if not _UUID.match(silence_id):
        message = f"silenceID in path must be of type uuid: {go_quote(silence_id)}"
        raise APIError(422, {"code": 601, "message": message})
    return silence_id


def _postable_silence(body: bytes, now: float) -> Silence:
    """A postableSilence, validated as Alertmanager's generated server and handler do."""

    def unparsable(reason: str) -> APIError:
        message = f'parsing silence body from "" failed, because {reason}'
        return APIError(400, {"code": 400, "message": message})

    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise unparsable(str(exc)) from None
    if not isinstance(data, dict):
        raise unparsable("json: cannot unmarshal into Go value of type models.PostableSilence")
    missing = [
        f"{key} in body is required"
        for key in ("comment", "createdBy", "endsAt", "matchers", "startsAt")
        if data.get(key) is None
    ]
    for key in ("comment", "createdBy", "endsAt", "startsAt", "id"):
        if data.get(key) is not None and not isinstance(data[key], str):
            raise unparsable(f"json: cannot unmarshal into Go struct field .{key} of type string")
    raw_matchers = data.get("matchers")
    if raw_matchers is not None and not isinstance(raw_matchers, list):
        raise unparsable(
            "json: cannot unmarshal into Go struct field .matchers of type []models.Matcher"
        )
    if isinstance(raw_matchers, list):
        if not raw_matchers:
            raise APIError(
                422, {"code": 612, "message": "matchers in body should have at least 1 items"}
            )
        for i, m in enumerate(raw_matchers):
            if not isinstance(m, dict):
                raise unparsable("json: cannot unmarshal into Go value of type models.Matcher")
            for key, kind in (("isEqual", bool), ("isRegex", bool), ("name", str), ("value", str)):
                if m.get(key) is None:
                    if key != "isEqual":
                        missing.append(f"matchers.{i}.{key} in body is required")
                elif not isinstance(m[key], kind):
                    raise unparsable(
                        f"json: cannot unmarshal into Go struct field Matcher.matchers.{key}"
                        f" of type {kind.__name__}"
                    )
    if missing:
        message = (
            missing[0] if len(missing) == 1 else "validation failure list:\n" + "\n".join(missing)
        )
        raise APIError(422, {"code": 602, "message": message})
    try:
        starts_at = parse_rfc3339(data["startsAt"])
        ends_at = parse_rfc3339(data["endsAt"])
    except ValueError as exc:
        raise unparsable(str(exc)) from None
    if starts_at >= ends_at:
        raise APIError(400, "Failed to create silence: start time must be before end time")
    if ends_at < now:
        raise APIError(400, "Failed to create silence: end time can't be in the past")
    matchers = []
    try:
        for i, m in enumerate(raw_matchers or []):
            equal = m.get("isEqual", True) is not False
            op = ("=~" if equal else "!~") if m["isRegex"] else ("=" if equal else "!=")
            matchers.append(silence_matcher(i, m["name"], op, m["value"]))
    except SilenceError as exc:
        raise APIError(400, str(exc)) from None
    return Silence(
        id=data.get("id") or "",
        matchers=matchers,
        starts_at=starts_at,
        ends_at=ends_at,
        created_by=data["createdBy"],
        comment=data["comment"],
    )


# -- rendering -------------------------------------------------------------------------


def sorted_silences(silences: list[Silence], now: float) -> list[Silence]:
    """Alertmanager's SortSilences: active (ending first), pending (starting first),
    expired (most recently ended first)."""

    def key(s: Silence) -> tuple[int, float]:
        state = s.state(now)
        if state == "active":
            return (1, s.ends_at)
        if state == "pending":
            return (2, s.starts_at)
        return (3, -s.ends_at)

    return sorted(silences, key=key)


def _silence_json(s: Silence, now: float) -> dict[str, Any]:
    return {
        "id": s.id,
        "status": {"state": s.state(now)},
        "updatedAt": rfc3339_millis(s.updated_at),
        "comment": s.comment,
        "createdBy": s.created_by,
        "endsAt": rfc3339_millis(s.ends_at),
        "matchers": [
            {
                "isEqual": m.op in ("=", "=~"),
                "isRegex": m.op in ("=~", "!~"),
                "name": m.name,
                "value": m.value,
            }
            for m in s.matchers
        ],
        "startsAt": rfc3339_millis(s.starts_at),
    }


def _silence_has_matchers(s: Silence, filters: list[Matcher]) -> bool:
    """Alertmanager's CheckSilenceMatchesFilterLabels: every filter is one of the
    silence's matchers (same name, operator and value)."""
    own = {(m.name, m.op, m.value) for m in s.matchers}
    return all((f.name, f.op, f.value) in own for f in filters)


def _labels_match(matchers: list[Matcher], labels: dict[str, str]) -> bool:
    """Alertmanager's matchFilterLabels: an empty value also accepts an absent label
    (`=`/`=~`), and a negative matcher with an empty value accepts any present one."""
    for m in matchers:
        present = m.name in labels
        if m.op in ("!=", "!~"):
            if m.value == "" and present:
                continue
        elif m.value == "" and not present:
            continue
        if not m.matches(labels):
            return False
    return True


def _alert_json(a: StoredAlert, status: MuteStatus, receivers: list[str]) -> dict[str, Any]:
    out: dict[str, Any] = {
        "annotations": _sorted(a.annotations),
        "endsAt": rfc3339_millis(a.ends_at),
        "fingerprint": a.fingerprint,
        "receivers": [{"name": r} for r in receivers],
        "startsAt": rfc3339_millis(a.starts_at),
        "status": {
            "inhibitedBy": status.inhibited_by,
            "silencedBy": status.silenced_by,
            "state": status.state,
        },
        "updatedAt": rfc3339_millis(a.updated_at),
    }
    if a.generator_url:
        out["generatorURL"] = a.generator_url
    out["labels"] = _sorted(a.labels)
    return out


def _sorted(labels: dict[str, str]) -> dict[str, str]:
    """A label set as Go's encoding/json writes a map: keys in order."""
    return dict(sorted(labels.items()))


def _label_set_cmp(a: dict[str, str], b: dict[str, str]) -> int:
    """model.LabelSet.Before as a comparison: fewer labels first, then by sorted names."""
    if len(a) != len(b):
        return -1 if len(a) < len(b) else 1
    for name in sorted(a.keys() | b.keys()):
        if name not in a:
            return -1
        if name not in b:
            return 1
        if a[name] != b[name]:
            return -1 if a[name] < b[name] else 1
    return 0


def _alert_cmp(a: StoredAlert, b: StoredAlert) -> int:
    """types.AlertSlice.Less: by `job`, then `instance` (present before absent), then
    the whole label set."""
    for key in ("job", "instance"):
        if key not in a.labels and key not in b.labels:
            continue
        if key not in a.labels:
            return 1
        if key not in b.labels:
            return -1
        if a.labels[key] != b.labels[key]:
            return -1 if a.labels[key] < b.labels[key] else 1
    return _label_set_cmp(a.labels, b.labels)


_alert_key = functools.cmp_to_key(_alert_cmp)


def _group_cmp(a: tuple[dict[str, str], str, Any], b: tuple[dict[str, str], str, Any]) -> int:
    """dispatch.AlertGroups.Less: by group labels, then receiver name."""
    if a[0] == b[0]:
        return (a[1] > b[1]) - (a[1] < b[1])
    return _label_set_cmp(a[0], b[0])
