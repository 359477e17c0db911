"""`python -m feast_transformer`: the arguments KServe's controller gives a custom transformer container.

kserve v0.20.0 pkg/apis/serving/v1beta1/transformer_custom.go (CustomTransformer.GetContainer) appends,
unless the container's args already have them: `--model_name <InferenceService name>`, `--predictor_host
<name>-predictor.<namespace>` (the predictor's Service, port 80) and `--http_port 8080`
(constants.InferenceServiceDefaultHttpPort); `--workers <containerConcurrency>` when that is set; `--protocol`
in ModelMesh mode. kserve's Python SDK also takes --predictor_protocol and --predictor_use_ssl, which the
platform may pass. Unknown arguments are ignored, as the SDK's parse_known_args does."""

from __future__ import annotations

import argparse
import logging
import os
import sys

from aiohttp import web

from feast_transformer.app import Transformer, application
from feast_transformer.config import ConfigError, from_env


def arguments(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="feast_transformer")
    parser.add_argument("--model_name", required=True)
    parser.add_argument("--predictor_host", required=True)
    parser.add_argument("--http_port", type=int, default=8080)
    parser.add_argument("--predictor_protocol", default="v2")
    parser.add_argument("--protocol", default=None)  # ModelMesh's name for the same
    parser.add_argument("--predictor_use_ssl", default="false")
    parser.add_argument("--workers", type=int, default=1)  # one event loop serves; accepted, not forked
    args, _ = parser.parse_known_args(argv)
    protocol = (args.protocol or args.predictor_protocol).lower()
    if protocol != "v2":
        parser.error(f"the predictor must speak the Open Inference Protocol (v2), not {protocol}")
    return args


def predictor_url(host: str, use_ssl: str) -> str:
    if host.startswith(("http://", "https://")):
        return host.rstrip("/")
    scheme = "https" if str(use_ssl).lower() in ("1", "true", "yes") else "http"
    return f"{scheme}://{host}"


def main(argv: list[str] | None = None) -> None:
    args = arguments(sys.argv[1:] if argv is None else argv)
    logging.basicConfig(level=os.environ.get("LOG_LEVEL", "INFO"), format="%(asctime)s %(levelname)s %(message)s")
    try:
        config = from_env(os.environ)
    except ConfigError as e:
        sys.exit(f"feast-transformer: bad configuration: {e}")
    transformer = Transformer(config, args.model_name, predictor_url(args.predictor_host, args.predictor_use_ssl))
    logging.getLogger("feast_transformer").info(
        "serving %s on :%d; features %s from %s; predictor %s",
        args.model_name, args.http_port, list(config.features), config.feature_server_url, transformer.predictor_infer,
    )  # fmt: skip
    web.run_app(application(transformer), port=args.http_port, access_log=None, print=None)


if __name__ == "__main__":
    main()
