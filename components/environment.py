"""What each infra layer is given: the environment it builds in and its own section of the config, never
the whole PlatformConfig (a layer cannot come to depend on another layer's settings)."""

from __future__ import annotations

from dataclasses import dataclass

from mlplatform.config import Cloud, ClusterConfig, DataConfig, HaProfile, PlatformConfig, Profile, StorageConfig


@dataclass(frozen=True)
class Environment:
    profile: Profile
    cloud: Cloud
    region: str
    zones: tuple[str, ...]
    ha: HaProfile
    gcp_project: str | None

    @staticmethod
    def fields_of(cfg: PlatformConfig) -> dict[str, object]:
        return {
            "profile": cfg.profile,
            "cloud": cfg.cloud,
            "region": cfg.region,
            "zones": tuple(cfg.zones),
            "ha": cfg.ha,
            "gcp_project": cfg.gcp_project,
        }


@dataclass(frozen=True)
class ClusterArgs(Environment):
    cluster: ClusterConfig
    log_retention_days: int  # control-plane logs keep as long as the platform's other logs

    @classmethod
    def of(cls, cfg: PlatformConfig) -> ClusterArgs:
        return cls(**Environment.fields_of(cfg), cluster=cfg.cluster, log_retention_days=cfg.storage.log_retention_days)


@dataclass(frozen=True)
class DataArgs(Environment):
    data: DataConfig

    @classmethod
    def of(cls, cfg: PlatformConfig) -> DataArgs:
        return cls(**Environment.fields_of(cfg), data=cfg.data)


@dataclass(frozen=True)
class StorageArgs(Environment):
    storage: StorageConfig

    @classmethod
    def of(cls, cfg: PlatformConfig) -> StorageArgs:
        return cls(**Environment.fields_of(cfg), storage=cfg.storage)
