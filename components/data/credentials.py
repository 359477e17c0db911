"""Per-service database credentials: one user and one generated password per service database."""

from __future__ import annotations

import pulumi
import pulumi_random as random

from components.contracts import DatabaseCredentials

# The databases the platform's services own; each gets its own user and password. Grafana's holds its users,
# sessions and alerting state, which its replicas must share (SQLite would give each its own). JupyterHub's
# holds its users and servers: on the zone-redundant database the one hub restarts in any zone (a zonal
# volume would pin it to one).
SERVICE_DATABASES = ("mlflow", "feast", "airflow", "grafana", "jupyterhub")


def service_credentials(
    parent: pulumi.Resource, name: str, services: tuple[str, ...]
) -> dict[str, DatabaseCredentials]:
    out = {}
    for service in services:
        password = random.RandomPassword(
            f"{name}-{service}-db", length=32, special=False, opts=pulumi.ResourceOptions(parent=parent)
        )
        out[service] = DatabaseCredentials(database=service, username=service, password=password.result)
    return out
