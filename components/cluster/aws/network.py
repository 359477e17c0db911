"""VPC for EKS: private subnets for nodes and data services, public subnets for load balancers.

NAT: one gateway for a single-zone (dev) stack, one per zone for multi-zone (a zone outage must not cut the
other zones' egress). An S3 gateway endpoint keeps bucket traffic off the NAT (cheaper, and private).
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

from components.environment import ClusterArgs
from mlplatform.config import HaProfile

VPC_CIDR = ipaddress.ip_network("10.0.0.0/16")
# Private subnets are large: the VPC CNI gives every pod a VPC address.
PRIVATE_PREFIX = 19
PUBLIC_PREFIX = 22


@dataclass(frozen=True)
class AwsNetwork:
    vpc: aws.ec2.Vpc
    public_subnets: list[aws.ec2.Subnet]
    private_subnets: list[aws.ec2.Subnet]
    private_route_tables: list[aws.ec2.RouteTable]
    nat_gateways: list[aws.ec2.NatGateway]

    @property
    def private_subnet_ids(self) -> list[pulumi.Output[str]]:
        return [s.id for s in self.private_subnets]


def subnet_cidrs(zone_count: int) -> tuple[list[str], list[str]]:
    """Private /19s from the bottom of the VPC range, public /22s from the top quarter."""
    private = list(VPC_CIDR.subnets(new_prefix=PRIVATE_PREFIX))[:zone_count]
    top_quarter = list(VPC_CIDR.subnets(new_prefix=18))[-1]
    public = list(top_quarter.subnets(new_prefix=PUBLIC_PREFIX))[:zone_count]
    return [str(c) for c in private], [str(c) for c in public]


def network(parent: pulumi.ComponentResource, name: str, cfg: ClusterArgs) -> AwsNetwork:
    child = pulumi.ResourceOptions(parent=parent)
    vpc = aws.ec2.Vpc(
        f"{name}-vpc",
        cidr_block=str(VPC_CIDR),
        enable_dns_hostnames=True,
        enable_dns_support=True,
        tags={"Name": f"{name}-vpc"},
        opts=child,
    )
    igw = aws.ec2.InternetGateway(f"{name}-igw", vpc_id=vpc.id, tags={"Name": f"{name}-igw"}, opts=child)
    public_rt = aws.ec2.RouteTable(
        f"{name}-public",
        vpc_id=vpc.id,
        routes=[aws.ec2.RouteTableRouteArgs(cidr_block="0.0.0.0/0", gateway_id=igw.id)],
        tags={"Name": f"{name}-public"},
        opts=child,
    )
    private_cidrs, public_cidrs = subnet_cidrs(len(cfg.zones))
    public, private, nats, private_rts = [], [], [], []
    per_zone_nat = cfg.ha is HaProfile.MULTI_ZONE
    for i, zone in enumerate(cfg.zones):
        pub = aws.ec2.Subnet(
            f"{name}-public-{zone}",
            vpc_id=vpc.id,
            cidr_block=public_cidrs[i],
            availability_zone=zone,
            map_public_ip_on_launch=False,
            tags={"Name": f"{name}-public-{zone}", "kubernetes.io/role/elb": "1"},
            opts=child,
        )
        aws.ec2.RouteTableAssociation(
            f"{name}-public-{zone}", subnet_id=pub.id, route_table_id=public_rt.id, opts=child
        )
        public.append(pub)
        if per_zone_nat or i == 0:
            eip = aws.ec2.Eip(f"{name}-nat-{zone}", domain="vpc", tags={"Name": f"{name}-nat-{zone}"}, opts=child)
            nats.append(
                aws.ec2.NatGateway(
                    f"{name}-nat-{zone}",
                    allocation_id=eip.id,
                    subnet_id=pub.id,
                    tags={"Name": f"{name}-nat-{zone}"},
                    opts=pulumi.ResourceOptions(parent=parent, depends_on=[igw]),
                )
            )
        priv = aws.ec2.Subnet(
            f"{name}-private-{zone}",
            vpc_id=vpc.id,
            cidr_block=private_cidrs[i],
            availability_zone=zone,
            tags={
                "Name": f"{name}-private-{zone}",
                "kubernetes.io/role/internal-elb": "1",
                "karpenter.sh/discovery": name,
            },
            opts=child,
        )
        rt = aws.ec2.RouteTable(
            f"{name}-private-{zone}",
            vpc_id=vpc.id,
            routes=[aws.ec2.RouteTableRouteArgs(cidr_block="0.0.0.0/0", nat_gateway_id=nats[-1].id)],
            tags={"Name": f"{name}-private-{zone}"},
            opts=child,
        )
        aws.ec2.RouteTableAssociation(f"{name}-private-{zone}", subnet_id=priv.id, route_table_id=rt.id, opts=child)
        private.append(priv)
        private_rts.append(rt)
    aws.ec2.VpcEndpoint(
        f"{name}-s3",
        vpc_id=vpc.id,
        service_name=f"com.amazonaws.{cfg.region}.s3",
        vpc_endpoint_type="Gateway",
        route_table_ids=[rt.id for rt in private_rts],
        tags={"Name": f"{name}-s3"},
        opts=child,
    )
    return AwsNetwork(vpc, public, private, private_rts, nats)
