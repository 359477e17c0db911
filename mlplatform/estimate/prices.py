"""List prices the cost model uses: on-demand, USD, per region, read from the clouds' public pricing pages
on PRICE_DATE. A type or region missing here is reported as "no price for <type> in <region>", never
guessed. Add a region by copying its prices from the same pages.

Sources:
- EC2 on-demand (Linux): https://aws.amazon.com/ec2/pricing/on-demand/
- EKS: https://aws.amazon.com/eks/pricing/ ($0.10 per cluster hour; $0.60 in extended support)
- EBS: https://aws.amazon.com/ebs/pricing/ ; VPC NAT and endpoints: https://aws.amazon.com/vpc/pricing/
- RDS for PostgreSQL: https://aws.amazon.com/rds/postgresql/pricing/
- ElastiCache: https://aws.amazon.com/elasticache/pricing/ ; MSK: https://aws.amazon.com/msk/pricing/
- ELB: https://aws.amazon.com/elasticloadbalancing/pricing/ ; KMS: https://aws.amazon.com/kms/pricing/
- Compute Engine: https://cloud.google.com/compute/vm-instance-pricing (GPU machine types include their GPU)
- GKE: https://cloud.google.com/kubernetes-engine/pricing ; disks: https://cloud.google.com/compute/disks-image-pricing
- Cloud SQL: https://cloud.google.com/sql/pricing ; Memorystore: https://cloud.google.com/memorystore/docs/redis/pricing
- Managed Service for Apache Kafka: https://cloud.google.com/managed-service-for-apache-kafka/pricing
- Cloud NAT and load balancing: https://cloud.google.com/vpc/network-pricing
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

PRICE_DATE = date(2026, 11, 28)
HOURS_PER_MONTH = 730

# Spot and Spot VM prices move with demand; the model takes this share of on-demand (AWS Spot Instance
# Advisor and GCP's Spot VM pages put the savings for these families at 60-70 %): an estimate, and
# labelled as one wherever it is used.
SPOT_SHARE = {"aws": 0.35, "gcp": 0.35}


@dataclass(frozen=True)
class Machine:
    vcpu: float
    memory_gib: float
    hourly: float


MACHINES: dict[str, dict[str, Machine]] = {
    "us-east-1": {
        "t3.large": Machine(2, 8, 0.0832),
        "t3a.xlarge": Machine(4, 16, 0.1504),
        "m6i.large": Machine(2, 8, 0.096),
        "m6i.xlarge": Machine(4, 16, 0.192),
        "m6i.2xlarge": Machine(8, 32, 0.384),
        "g5.xlarge": Machine(4, 16, 1.006),
        "g5.2xlarge": Machine(8, 32, 1.212),
        "g6e.xlarge": Machine(4, 32, 1.861),
    },
    "us-central1": {
        "e2-standard-2": Machine(2, 8, 0.067),
        "e2-standard-4": Machine(4, 16, 0.134),
        "n2-standard-4": Machine(4, 16, 0.1942),
        "n2-standard-8": Machine(8, 32, 0.3885),
        "g2-standard-8": Machine(8, 32, 0.8536),
        "g2-standard-16": Machine(16, 64, 1.1468),
        "a2-highgpu-1g": Machine(12, 85, 3.6733),
    },
}

# managed database, cache and broker instance classes, per hour (single node, single AZ)
INSTANCE_CLASSES: dict[str, dict[str, float]] = {
    "us-east-1": {
        "db.t4g.small": 0.032,
        "db.t4g.medium": 0.065,
        "db.r6g.large": 0.225,
        "cache.t4g.small": 0.032,
        "cache.r7g.large": 0.219,
        "kafka.t3.small": 0.0456,
        "kafka.m7g.large": 0.204,
    },
}

# other unit rates: per hour, per GB-month or per month as the name says
RATES: dict[str, dict[str, float]] = {
    "us-east-1": {
        "eks-cluster-hour": 0.10,
        "eks-cluster-extended-hour": 0.60,
        "nat-gateway-hour": 0.045,
        "interface-endpoint-az-hour": 0.01,
        "ebs-gp2-gb-month": 0.10,
        "ebs-gp3-gb-month": 0.08,
        "rds-gp2-gb-month": 0.115,
        "msk-storage-gb-month": 0.10,
        "nlb-hour": 0.0225,
        "kms-key-month": 1.00,
    },
    "us-central1": {
        "gke-cluster-hour": 0.10,
        "gke-cluster-extended-hour": 0.60,
        "pd-balanced-gb-month": 0.10,
        "cloudsql-vcpu-hour": 0.0413,
        "cloudsql-memory-gib-hour": 0.007,
        "cloudsql-ssd-gb-month": 0.17,
        "memorystore-basic-gb-hour": 0.049,
        "memorystore-standard-gb-hour": 0.064,
        "managed-kafka-vcpu-hour": 0.09,
        "managed-kafka-memory-gib-hour": 0.02,
        "cloud-nat-vm-hour": 0.0014,
        "forwarding-rule-hour": 0.025,
    },
}


class NoPrice(LookupError):
    """A priced item the table does not know for the stack's region."""


def machine(region: str, kind: str) -> Machine:
    try:
        return MACHINES[region][kind]
    except KeyError:
        raise NoPrice(f"no price for {kind} in {region}") from None


def instance_class(region: str, kind: str) -> float:
    try:
        return INSTANCE_CLASSES[region][kind]
    except KeyError:
        raise NoPrice(f"no price for {kind} in {region}") from None


def rate(region: str, item: str) -> float:
    try:
        return RATES[region][item]
    except KeyError:
        raise NoPrice(f"no price for {item} in {region}") from None
