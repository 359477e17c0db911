"""Typed, validated stack configuration."""

from mlplatform.config.errors import ConfigError, ConfigProblem
from mlplatform.config.loader import load_config, load_stack_config, namespace_values, read_stack_file
from mlplatform.config.models import (
    AirflowConfig,
    AlertReceiverConfig,
    AlertThresholds,
    Cloud,
    ClusterConfig,
    DataConfig,
    GpuPoolConfig,
    HaProfile,
    KServeConfig,
    MaintenanceWindowConfig,
    NodePoolConfig,
    PlatformConfig,
    Profile,
    PrometheusConfig,
    ServiceConfig,
    ServicesConfig,
    StorageConfig,
)

__all__ = [
    "AirflowConfig",
    "AlertReceiverConfig",
    "AlertThresholds",
    "Cloud",
    "ClusterConfig",
    "ConfigError",
    "ConfigProblem",
    "DataConfig",
    "GpuPoolConfig",
    "HaProfile",
    "KServeConfig",
    "MaintenanceWindowConfig",
    "NodePoolConfig",
    "PlatformConfig",
    "Profile",
    "PrometheusConfig",
    "ServiceConfig",
    "ServicesConfig",
    "StorageConfig",
    "load_config",
    "load_stack_config",
    "namespace_values",
    "read_stack_file",
]
