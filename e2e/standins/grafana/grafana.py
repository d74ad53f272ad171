#!/usr/bin/python3
"""Stand-in for Grafana 12's server: provisioning as Grafana reads it, and the API the tests use.

- Datasources (pkg/services/provisioning/datasources): every *.yaml / *.yml of
  <provisioning>/datasources, `apiVersion: 1`, each datasource with a name and a type; at most
  one `isDefault` (Grafana refuses to start otherwise). `GET /api/datasources/uid/<uid>/health`
  runs a query against a Prometheus datasource's URL, as Grafana's health check does.
- Dashboards (pkg/services/provisioning/dashboards): providers of type `file` with
  `options.path`; every *.json there is loaded. A file that does not parse is skipped with an
  error in the log, as Grafana does.
- The admin user is `admin` with GF_SECURITY_ADMIN_PASSWORD (run.sh fills it from __FILE).
  `/api/health` and `/metrics` need no login; the rest of /api/ needs basic auth.
"""

from __future__ import annotations

import base64
import json
import os
import sys
import urllib.parse
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import yaml

sys.path.insert(0, "/opt/standin")
from standin import die

from tests.support.fake_http import PlainText
from tests.support.fake_metrics import EXPOSITIONS

PORT = 3000


def yaml_files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.glob("*") if p.suffix in (".yaml", ".yml")) if folder.is_dir() else []


def datasources(provisioning: Path) -> list[dict]:
    found: list[dict] = []
    for path in yaml_files(provisioning / "datasources"):
        config = yaml.safe_load(path.read_text()) or {}
        if config.get("apiVersion") != 1:
            die(f"Datasource provisioning error: {path}: apiVersion must be 1")
        for source in config.get("datasources") or []:
            if not source.get("name") or not source.get("type"):
                die(f"Datasource provisioning error: {path}: a datasource needs a name and a type")
            found.append(source)
    if sum(bool(s.get("isDefault")) for s in found) > 1:
        die("Datasource provisioning error: datasource.yaml config is invalid. Only one datasource per "
            "organization can be marked as default")  # fmt: skip
    return found


def dashboards(provisioning: Path) -> list[dict]:
    found: list[dict] = []
    for path in yaml_files(provisioning / "dashboards"):
        config = yaml.safe_load(path.read_text()) or {}
        if config.get("apiVersion") != 1:
            die(f"Dashboard provisioning error: {path}: apiVersion must be 1")
        for provider in config.get("providers") or []:
            folder = ((provider.get("options") or {}).get("path")) if provider.get("type") == "file" else None
            if not folder:
                die(f"Dashboard provisioning error: {path}: a file provider needs options.path")
            for board in sorted(Path(folder).glob("*.json")):
                try:
                    dashboard = json.loads(board.read_text())
                except ValueError as err:
                    print(
                        f'level=error msg="failed to load dashboard from " file={board} error={err}',
                        flush=True,
                    )
                    continue
                found.append({"uid": dashboard.get("uid"), "title": dashboard.get("title"),
                              "folderTitle": provider.get("folder", "")})  # fmt: skip
    return found


def main() -> None:
    provisioning = Path(os.environ.get("GF_PATHS_PROVISIONING", "/etc/grafana/provisioning"))
    password = os.environ.get("GF_SECURITY_ADMIN_PASSWORD", "admin")
    sources, boards = datasources(provisioning), dashboards(provisioning)
    login = "Basic " + base64.b64encode(f"admin:{password}".encode()).decode()

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args) -> None:
            pass

        def _send(self, status: int, body: object, content_type: str = "application/json") -> None:
            data = body.encode() if isinstance(body, str) else json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self) -> None:
            path = urllib.parse.urlsplit(self.path).path
            if path == "/api/health":
                return self._send(200, {"database": "ok", "version": "12.1.1"})
            if path == "/metrics":
                return self._send(200, EXPOSITIONS["grafana"], PlainText.content_type)
            if self.headers.get("Authorization") != login:
                return self._send(401, {"message": "Unauthorized"})
            if path == "/api/search":
                return self._send(200, [{**b, "type": "dash-db"} for b in boards])
            if path == "/api/datasources":
                return self._send(200, sources)
            parts = path.strip("/").split("/")
            if parts[:3] == ["api", "datasources", "uid"] and parts[4:] == ["health"]:
                return self._health(parts[3])
            return self._send(404, {"message": "Not found"})

        def _health(self, uid: str) -> None:
            source = next((s for s in sources if s.get("uid") == uid), None)
            if source is None:
                return self._send(404, {"message": "Data source not found"})
            query = urllib.parse.urlencode({"query": "1+1"})
            try:
                with urllib.request.urlopen(f"{source['url']}/api/v1/query?{query}", timeout=5) as answer:
                    json.loads(answer.read())
            except (OSError, ValueError) as err:
                return self._send(400, {"status": "ERROR", "message": f"Prometheus: {err}"})
            self._send(200, {"status": "OK", "message": "Successfully queried the Prometheus API."})

    ThreadingHTTPServer(("0.0.0.0", PORT), Handler).serve_forever()


if __name__ == "__main__":
    main()
