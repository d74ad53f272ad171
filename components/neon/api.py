"""A small client for the Neon storage controller's HTTP API (facts/neon.md §3, §7.5).

Plain Python for the dynamic providers: created inside each provider call, never stored on a
provider. Transient answers (429, 503, connection refused while the controller starts) are
retried with backoff until a deadline; permanent ones raise NeonApiError with Neon's `msg`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import requests
from tenacity import (
    RetryError,
    Retrying,
    retry_if_exception_type,
    retry_if_result,
    stop_after_delay,
    stop_before_delay,
    wait_exponential,
    wait_fixed,
)

RETRIED_STATUSES = {429, 503}
# The controller passes a pageserver's 429/406/409/412/500 on as 409 "Conflict: {node} {status}:
# {status} {msg}" (storage_controller/src/service.rs passthrough_api_error).
_PASSTHROUGH = re.compile(r"Conflict: \d+ \([^)]*\) (\d{3})\b")


def pageserver_status(status: int, payload: Any) -> int:
    """The status the pageserver gave, seen through the controller's 409 wrapping."""
    match = _PASSTHROUGH.match(message(payload)) if status == 409 else None
    return int(match[1]) if match else status


def transient(status: int, payload: Any) -> bool:
    """Worth another try: the controller or pageserver is busy or starting, a create of the
    same id is in progress (pageserver 429), or no pageserver is schedulable yet (the first
    heartbeat marks a freshly registered node Active, service.rs do_tenant_create)."""
    return (
        status in RETRIED_STATUSES
        or pageserver_status(status, payload) == 429
        or (status == 409 and "Failed to schedule" in message(payload))
    )


class NeonApiError(RuntimeError):
    """The storage controller refused a request or never reached the wanted state."""

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


@dataclass
class NeonApi:
    """Requests to one storage controller, retried on transient failures until `deadline_s`."""

    base_url: str
    deadline_s: float = 300.0
    request_timeout_s: float = 35.0  # the controller itself waits up to 30 s for reconciles
    backoff_s: float = 0.5

    def __post_init__(self) -> None:
        self.session = requests.Session()

    def request(
        self, method: str, path: str, body: Any = None, ok: tuple[int, ...] = (200, 201)
    ) -> tuple[int, Any]:
        """Send until the answer is not transient; return (status, json) for any non-retried status.

        Statuses in `ok` and every answer that is not `transient` are returned to the caller,
        which decides.
        """
        retrying = Retrying(
            retry=retry_if_exception_type(_TransientError),
            wait=wait_exponential(multiplier=self.backoff_s, max=5.0),
            stop=stop_before_delay(self.deadline_s),
        )
        try:
            return retrying(self._send, method, path, body)
        except RetryError as err:
            last = err.last_attempt.exception()
            raise NeonApiError(f"gave up after {self.deadline_s:.0f}s: {last}") from None

    def _send(self, method: str, path: str, body: Any) -> tuple[int, Any]:
        try:
            response = self.session.request(
                method, f"{self.base_url.rstrip('/')}{path}", json=body, timeout=self.request_timeout_s
            )
        except requests.ConnectionError as err:
            raise _TransientError(
                f"cannot reach the storage controller at {self.base_url}: {type(err).__name__}"
            ) from None
        except requests.Timeout:
            raise _TransientError(f"{method} {path} timed out") from None
        payload = _json(response)
        if transient(response.status_code, payload):
            raise _TransientError(f"{method} {path} answered {response.status_code}: {message(payload)}")
        return response.status_code, payload

    def expect(self, method: str, path: str, body: Any = None, ok: tuple[int, ...] = (200, 201)) -> Any:
        status, payload = self.request(method, path, body, ok)
        if status not in ok:
            raise NeonApiError(f"{method} {path} answered {status}: {message(payload)}", status)
        return payload

    def wait_until_gone(self, path: str, what: str) -> None:
        """Poll GET `path` until 404: how Neon reports a finished deletion."""

        def gone() -> bool:
            status, payload = self.request("GET", path)
            if status not in (200, 404, 409):
                raise NeonApiError(
                    f"while deleting {what}: GET {path} answered {status}: {message(payload)}", status
                )
            return status == 404

        retrying = Retrying(
            retry=retry_if_result(lambda done: not done),
            wait=wait_fixed(self.backoff_s),
            stop=stop_after_delay(self.deadline_s),
        )
        try:
            retrying(gone)
        except RetryError:
            raise NeonApiError(f"{what} still exists after {self.deadline_s:.0f}s") from None


class _TransientError(Exception):
    """An answer worth another try: the controller is starting, busy or briefly unreachable."""


def _json(response: requests.Response) -> Any:
    try:
        return response.json()
    except ValueError:
        return {"msg": response.text[:300]}


def message(payload: Any) -> str:
    """Neon's error text (`{"msg": ...}`), or the body cut short."""
    if isinstance(payload, dict) and "msg" in payload:
        return str(payload["msg"])
    return str(payload)[:300]
