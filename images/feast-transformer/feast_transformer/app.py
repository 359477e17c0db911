"""The transformer's HTTP server: KServe's Open Inference Protocol (V2) in front of the predictor.

POST /v2/models/<name>/infer: the entity inputs named in the configuration are read from the request, the
feature server's POST /get-online-features is called once for all rows, and the predictor gets the request's
other inputs plus one input per feature, with `parameters.content_type: "pd"` so MLServer's MLflow runtime
decodes a DataFrame whose columns are the model's feature names (mlserver 1.7.1 codecs/pandas.py
PandasCodec.decode_request: one column per input, each input's data reshaped to (shape[0], 1)). The
predictor's answer is returned as it came.

aiohttp for both the server and the two upstream clients, not the kserve SDK: the SDK's ModelServer brings
FastAPI, uvicorn, pydantic, numpy, pandas and its own inference client to pass JSON through, and adds a
request/response model round trip per call, where the latency budget is 10 ms p99 for this hop and the
feature read together. Each upstream gets one pooled, keep-alive session and a total timeout per call.

Errors are JSON `{"error": ...}`: the feature server unreachable or slow -> 503; a request without an entity
input, or an entity Feast does not know -> 400; the predictor's own error -> 502 for its 4xx (the request it
got was built here), its 5xx as they came; the predictor unreachable -> 503, slow -> 504."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from typing import Any

import aiohttp
from aiohttp import web

from feast_transformer import __version__
from feast_transformer.config import Config

log = logging.getLogger("feast_transformer")
JSON = "application/json"
# Feast's per-value status of a value it found (ServingService.proto FieldStatus; the feature server returns the
# enum's name: feast v0.66.0 sdk/python/feast/feature_server_utils.py _STATUS_NAMES).
PRESENT = "PRESENT"
# A pooled connection is dropped before the server would close it: Gunicorn's keep-alive is the platform's
# --keep-alive-timeout 120 (components/lifecycle/feast.py), uvicorn's (MLServer, Knative's queue-proxy
# in front of it keeps longer) defaults to 5 s (uvicorn/config.py timeout_keep_alive).
FEATURE_SERVER_KEEPALIVE, PREDICTOR_KEEPALIVE = 60.0, 4.0


class HTTPError(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status, self.message = status, message


def error(status: int, message: str) -> web.Response:
    return web.Response(status=status, text=json.dumps({"error": message}), content_type=JSON)


def flat(data: Any) -> list[Any]:
    """A V2 tensor's data in row-major order (the protocol allows flat or nested lists)."""
    if not isinstance(data, list):
        return [data]
    if any(isinstance(v, list) for v in data):
        return [x for v in data for x in flat(v)]
    return data


def datatype(values: list[Any]) -> str:
    """The V2 datatype of a feature column, from the JSON values Feast returned."""
    present = [v for v in values if v is not None]
    if present and all(isinstance(v, bool) for v in present):
        return "BOOL"
    if present and all(isinstance(v, int) and not isinstance(v, bool) for v in present):
        return "INT64"
    if all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in present):
        return "FP64"
    return "BYTES"


class Transformer:
    def __init__(self, config: Config, model_name: str, predictor_url: str) -> None:
        self.config, self.model_name = config, model_name
        self.predictor_infer = f"{predictor_url}/v2/models/{model_name}/infer"
        self.predictor_metadata = f"{predictor_url}/v2/models/{model_name}"
        self.features_url = f"{config.feature_server_url}/get-online-features"
        self.columns = [config.column(f) for f in config.features]
        self.feast: aiohttp.ClientSession | None = None
        self.predictor: aiohttp.ClientSession | None = None

    async def start(self, _: web.Application) -> None:
        self.feast = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=256, keepalive_timeout=FEATURE_SERVER_KEEPALIVE),
            timeout=aiohttp.ClientTimeout(total=self.config.timeouts.feature_server),
            json_serialize=json.dumps,
        )
        self.predictor = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=256, keepalive_timeout=PREDICTOR_KEEPALIVE),
            timeout=aiohttp.ClientTimeout(total=self.config.timeouts.predictor),
        )

    async def stop(self, _: web.Application) -> None:
        for session in (self.feast, self.predictor):
            if session is not None:
                await session.close()

    # --- the V2 request -> Feast entities -> predictor request -------------------------------------------

    def entity_rows(self, inputs: list[dict[str, Any]]) -> tuple[dict[str, list[Any]], int]:
        by_name = {i.get("name"): i for i in inputs}
        missing = [name for name in self.config.entities if name not in by_name]
        if missing:
            raise HTTPError(400, f"the request has no entity input {missing}; inputs: {sorted(map(str, by_name))}")
        entities, rows = {}, None
        for name, key in self.config.entities.items():
            values = flat(by_name[name].get("data"))
            if rows is not None and len(values) != rows:
                raise HTTPError(400, f"entity inputs have different row counts ({name}: {len(values)}, not {rows})")
            if any(v is None or isinstance(v, (dict, list, bool)) for v in values):
                raise HTTPError(400, f"entity input {name} must hold integers or strings")
            entities[key], rows = values, len(values)
        if not rows:
            raise HTTPError(400, "the entity inputs hold no rows")
        return entities, rows

    async def online_features(self, entities: dict[str, list[Any]]) -> dict[str, list[Any]]:
        """Feature column -> values, one per row, from one /get-online-features call (feast v0.66.0
        sdk/python/feast/feature_server.py GetOnlineFeaturesRequest: entities, features, full_feature_names;
        the response has metadata.feature_names and, per name in the same order, results[].values/statuses)."""
        body = {"features": list(self.config.features), "entities": entities}
        if self.config.full_feature_names:
            body["full_feature_names"] = True
        assert self.feast is not None
        try:
            async with self.feast.post(self.features_url, json=body) as response:
                raw = await response.read()
                status = response.status
        except TimeoutError:
            raise HTTPError(
                503, f"feature server did not answer within {self.config.timeouts.feature_server} s"
            ) from None
        except aiohttp.ClientError as e:
            raise HTTPError(503, f"feature server unreachable at {self.config.feature_server_url}: {e}") from None
        if status != 200:
            detail = raw[:500].decode(errors="replace")
            raise HTTPError(502 if status < 500 else 503, f"feature server answered {status}: {detail}")
        try:
            doc = json.loads(raw)
            names = doc["metadata"]["feature_names"]
            results = dict(zip(names, doc["results"], strict=True))
        except (ValueError, KeyError, TypeError) as e:
            raise HTTPError(502, f"feature server's answer is not Feast's get-online-features shape: {e!r}") from None
        columns, missing = {}, {}
        for column in self.columns:
            result = results.get(column)
            if result is None:
                raise HTTPError(502, f"feature server returned no {column!r}; it returned {names}")
            statuses = result.get("statuses") or []
            for row, value in enumerate(result["values"]):
                state = statuses[row] if row < len(statuses) else PRESENT
                if value is None or state != PRESENT:
                    missing.setdefault(row, {})[column] = state
            columns[column] = result["values"]
        if missing:
            # A row with no feature at all is a key the online store does not have (Redis reports it NOT_FOUND,
            # or NULL_VALUE where the store cannot tell); a row with some is a feature without a (fresh) value.
            unknown = sorted(r for r, states in missing.items() if len(states) == len(self.columns))
            if unknown:
                keys = {k: [v[i] for i in unknown] for k, v in entities.items()}
                raise HTTPError(400, f"unknown entity: the online store has no features for {keys}")
            detail = {str({k: v[r] for k, v in entities.items()}): states for r, states in sorted(missing.items())}
            raise HTTPError(400, f"features without a value (Feast status) for {detail}")
        return columns

    def predictor_request(self, request: dict[str, Any], features: dict[str, list[Any]], rows: int) -> dict[str, Any]:
        keep = [i for i in request["inputs"] if self.config.pass_entities or i.get("name") not in self.config.entities]
        taken = {i.get("name") for i in keep} & set(features)
        if taken:
            raise HTTPError(400, f"the request already has inputs named like features: {sorted(taken)}")
        added = [
            {"name": name, "datatype": datatype(values), "shape": [rows, 1], "data": values}
            for name, values in features.items()
        ]
        out: dict[str, Any] = {
            "inputs": keep + added,
            "parameters": {**(request.get("parameters") or {}), "content_type": "pd"},
        }
        for key in ("id", "outputs"):
            if key in request:
                out[key] = request[key]
        return out

    async def call_predictor(self, body: dict[str, Any]) -> web.Response:
        assert self.predictor is not None
        try:
            async with self.predictor.post(
                self.predictor_infer, data=json.dumps(body), headers={"Content-Type": JSON}
            ) as response:
                raw = await response.read()
                status = response.status
        except TimeoutError:
            return error(504, f"predictor did not answer within {self.config.timeouts.predictor} s")
        except aiohttp.ClientError as e:
            return error(503, f"predictor unreachable at {self.predictor_infer}: {e}")
        if status == 200:
            return web.Response(body=raw, content_type=JSON)
        detail = raw[:2000].decode(errors="replace")
        return error(status if status >= 500 else 502, f"predictor answered {status}: {detail}")

    # --- handlers --------------------------------------------------------------------------------------------

    def _model(self, request: web.Request) -> str | None:
        name = request.match_info["model"]
        return None if name == self.model_name else name

    async def infer(self, request: web.Request) -> web.Response:
        other = self._model(request)
        if other is not None:
            return error(404, f"model {other} not found; this transformer serves {self.model_name}")
        try:
            body = json.loads(await request.read())
        except ValueError as e:
            return error(400, f"the request body is not JSON: {e}")
        if not isinstance(body, dict) or not isinstance(body.get("inputs"), list):
            return error(400, "a V2 inference request has an `inputs` list")
        try:
            entities, rows = self.entity_rows(body["inputs"])
            features = await self.online_features(entities)
            upstream = self.predictor_request(body, features, rows)
        except HTTPError as e:
            if e.status >= 500:
                log.warning("%s", e.message)
            return error(e.status, e.message)
        return await self.call_predictor(upstream)

    async def live(self, _: web.Request) -> web.Response:
        return web.json_response({"live": True})

    async def ready(self, _: web.Request) -> web.Response:
        return web.json_response({"ready": True})

    async def model_ready(self, request: web.Request) -> web.Response:
        other = self._model(request)
        if other is not None:
            return error(404, f"model {other} not found")
        return web.json_response({"name": self.model_name, "ready": True})

    async def model_metadata(self, request: web.Request) -> web.Response:
        """The predictor's metadata (its inputs are the features; a client sends the entity inputs)."""
        other = self._model(request)
        if other is not None:
            return error(404, f"model {other} not found")
        assert self.predictor is not None
        try:
            async with self.predictor.get(self.predictor_metadata) as response:
                return web.Response(status=response.status, body=await response.read(), content_type=JSON)
        except (TimeoutError, aiohttp.ClientError) as e:
            return error(503, f"predictor metadata unavailable: {e!r}")

    async def server_metadata(self, _: web.Request) -> web.Response:
        return web.json_response({"name": "feast-transformer", "version": __version__, "extensions": []})


def application(transformer: Transformer) -> web.Application:
    app = web.Application(client_max_size=64 * 1024 * 1024)
    app.on_startup.append(transformer.start)
    app.on_cleanup.append(transformer.stop)
    routes: list[tuple[str, str, Callable[..., Any]]] = [
        ("POST", "/v2/models/{model}/infer", transformer.infer),
        ("GET", "/v2/models/{model}/ready", transformer.model_ready),
        ("GET", "/v2/models/{model}", transformer.model_metadata),
        ("GET", "/v2/health/live", transformer.live),
        ("GET", "/v2/health/ready", transformer.ready),
        ("GET", "/v2", transformer.server_metadata),
        ("GET", "/", transformer.live),
    ]
    for method, path, handler in routes:
        app.router.add_route(method, path, handler)
    return app
