"""A small client for the Neon storage controller's HTTP API (facts/neon.md §3, §7.5).

Plain Python for the dynamic providers: created inside each provider call, never stored on a
provider. Transient answers (429, 503, connection refused while the controller starts) are
retried with backoff until a deadline; permanent ones raise NeonApiError with Neon's `msg`.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import requests

RETRIED_STATUSES = {429, 503}


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

        Statuses in `ok` and all 4xx other than 429 are returned to the caller, which decides.
        """
        deadline = time.monotonic() + self.deadline_s
        delay = self.backoff_s
        last = ""
        while True:
            try:
                response = self.session.request(
                    method, f"{self.base_url.rstrip('/')}{path}", json=body, timeout=self.request_timeout_s
                )
            except requests.ConnectionError as err:
                last = f"cannot reach the storage controller at {self.base_url}: {type(err).__name__}"
            except requests.Timeout:
                last = f"{method} {path} timed out"
            else:
                if response.status_code not in RETRIED_STATUSES:
                    return response.status_code, _json(response)
                last = f"{method} {path} answered {response.status_code}: {_msg(_json(response))}"
            if time.monotonic() + delay > deadline:
                raise NeonApiError(f"gave up after {self.deadline_s:.0f}s: {last}")
            time.sleep(delay)
            delay = min(delay * 2, 5.0)

    def expect(self, method: str, path: str, body: Any = None, ok: tuple[int, ...] = (200, 201)) -> Any:
        status, payload = self.request(method, path, body, ok)
        if status not in ok:
            raise NeonApiError(f"{method} {path} answered {status}: {_msg(payload)}", status)
        return payload

    def wait_until_gone(self, path: str, what: str) -> None:
        """Poll GET `path` until 404: how Neon reports a finished deletion."""
        deadline = time.monotonic() + self.deadline_s
        while True:
            status, payload = self.request("GET", path)
            if status == 404:
                return
            if status not in (200, 409):
                raise NeonApiError(
                    f"while deleting {what}: GET {path} answered {status}: {_msg(payload)}", status
                )
            if time.monotonic() > deadline:
                raise NeonApiError(f"{what} still exists after {self.deadline_s:.0f}s")
            time.sleep(self.backoff_s)


def _json(response: requests.Response) -> Any:
    try:
        return response.json()
    except ValueError:
        return {"msg": response.text[:300]}


def _msg(payload: Any) -> str:
    if isinstance(payload, dict) and "msg" in payload:
        return str(payload["msg"])
    return str(payload)[:300]
