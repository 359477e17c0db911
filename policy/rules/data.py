"""The data layer's services (components/data: aws.py, gcp.py, bootstrap.py; in_cluster/ as it lands):
PostgreSQL, Redis and Kafka, managed or in the cluster."""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator

from policy.rules import resource_rule, stack_rule
from policy.rules.storage import as_list
from policy.view import Context, Resource, Stack

RDS = "aws:rds/instance:Instance"
RDS_PARAMETERS = "aws:rds/parameterGroup:ParameterGroup"
CLOUD_SQL = "gcp:sql/databaseInstance:DatabaseInstance"
CLOUD_SQL_USER = "gcp:sql/user:User"
CLOUD_SQL_DATABASE = "gcp:sql/database:Database"
CNPG_CLUSTER = "kubernetes:postgresql.cnpg.io/v1:Cluster"
ELASTICACHE = "aws:elasticache/replicationGroup:ReplicationGroup"
MEMORYSTORE = "gcp:redis/instance:Instance"
MEMORYSTORE_CLUSTER = "gcp:redis/cluster:Cluster"
MSK = "aws:msk/cluster:Cluster"
STRIMZI_KAFKA = "kubernetes:kafka.strimzi.io/v1:Kafka"
BOOTSTRAP_LABEL = "postgres-bootstrap"  # app.kubernetes.io/name of components/data/bootstrap.py's Job
SSL_MODES = frozenset({"ENCRYPTED_ONLY", "TRUSTED_CLIENT_CERTIFICATE_REQUIRED"})
MIN_BACKUP_DAYS = 14


def rds_replica(res: Resource) -> bool:
    return bool(res.get("replicateSourceDb"))


def sql_replica(res: Resource) -> bool:
    return bool(res.get("masterInstanceName"))


# -- PostgreSQL ----------------------------------------------------------------------------------------


@resource_rule("database-encrypted", "Database storage is encrypted at rest", RDS)
def database_encrypted(res: Resource, ctx: Context) -> Iterable[str]:
    """RDS encrypts storage, snapshots and replicas only when `storageEncrypted` is set at creation (RDS
    User Guide, "Encrypting Amazon RDS resources"; it cannot be turned on later). Cloud SQL always encrypts
    at rest (Cloud SQL docs, "About data encryption"), so it is not checked."""
    if res.get("storageEncrypted") is not True:
        yield "storageEncrypted is not true"


@resource_rule("database-not-public", "Databases have no public endpoint", RDS, CLOUD_SQL)
def database_not_public(res: Resource, ctx: Context) -> Iterable[str]:
    """The platform's databases are reached from the cluster only (design: private subnets; RDS
    `publiclyAccessible`, Cloud SQL `ipConfiguration.ipv4Enabled`, which gives the instance a public IP)."""
    if res.type == RDS and res.get("publiclyAccessible") is True:
        yield "publiclyAccessible is true"
    if res.type == CLOUD_SQL and res.get("settings.ipConfiguration.ipv4Enabled", True) is not False:
        yield "settings.ipConfiguration.ipv4Enabled is not false (the instance gets a public IP)"


@stack_rule("database-ssl-required", "Databases refuse connections without TLS")
def database_ssl_required(stack: Stack) -> Iterator[tuple[Resource | None, str]]:
    """Clients verify the server (README, data layer) but the server must also refuse plaintext: RDS
    PostgreSQL through its parameter group's `rds.force_ssl = 1` (RDS User Guide, "Requiring an SSL/TLS
    connection to a PostgreSQL DB instance"), Cloud SQL through `sslMode` ENCRYPTED_ONLY or
    TRUSTED_CLIENT_CERTIFICATE_REQUIRED (Cloud SQL docs, "Enforce SSL/TLS encryption"), CloudNativePG
    through a `hostnossl all all all reject` line ahead of the operator's own pg_hba rules (CloudNativePG
    docs, "PostgreSQL Configuration": pg_hba lines are inserted before the default ones)."""
    by_urn = {r.urn: r for r in stack.of_type(RDS_PARAMETERS)}
    for db in stack.of_type(RDS):
        groups = [by_urn[u] for u in db.dependencies if u in by_urn]
        params = {
            (p or {}).get("name"): str((p or {}).get("value")) for g in groups for p in as_list(g.get("parameters"))
        }
        if params.get("rds.force_ssl") != "1":
            yield db, "no parameter group of the instance sets rds.force_ssl = 1"
    for db in stack.of_type(CNPG_CLUSTER):
        rules = [" ".join(str(r).split()) for r in db.get("spec.postgresql.pg_hba") or []]
        if "hostnossl all all all reject" not in rules:
            yield db, "spec.postgresql.pg_hba does not start with `hostnossl all all all reject`"
    for db in stack.of_type(CLOUD_SQL):
        mode = db.get("settings.ipConfiguration.sslMode")
        if mode not in SSL_MODES and db.get("settings.ipConfiguration.requireSsl") is not True:
            yield db, f"settings.ipConfiguration.sslMode is {mode!r}, not one of {sorted(SSL_MODES)}"


@resource_rule("database-backups", f"Prod databases keep backups for at least {MIN_BACKUP_DAYS} days", RDS, CLOUD_SQL)
def database_backups(res: Resource, ctx: Context) -> Iterable[str]:
    """Two weeks of point-in-time recovery in prod (design: managed backups; RDS `backupRetentionPeriod` in
    days, RDS User Guide "Backup retention period"; Cloud SQL `retainedBackups` counts daily automated
    backups, Cloud SQL docs "About Cloud SQL backups"). Read replicas have no backups of their own."""
    if not ctx.prod or rds_replica(res) or sql_replica(res):
        return
    if res.type == RDS and float(res.get("backupRetentionPeriod", 0)) < MIN_BACKUP_DAYS:
        yield f"backupRetentionPeriod is {res.get('backupRetentionPeriod', 0)} days"
    if res.type == CLOUD_SQL:
        backups = res.get("settings.backupConfiguration") or {}
        kept = (backups.get("backupRetentionSettings") or {}).get("retainedBackups", 7)
        unit = (backups.get("backupRetentionSettings") or {}).get("retentionUnit", "COUNT")
        if backups.get("enabled") is not True:
            yield "settings.backupConfiguration.enabled is not true"
        elif unit != "COUNT" or float(kept) < MIN_BACKUP_DAYS:
            yield f"retains {kept} daily backups"
        if backups.get("pointInTimeRecoveryEnabled") is not True:
            yield "pointInTimeRecoveryEnabled is not true"


CNPG_CLUSTER_PATCH = "kubernetes:postgresql.cnpg.io/v1:ClusterPatch"
CNPG_SCHEDULED_BACKUP = "kubernetes:postgresql.cnpg.io/v1:ScheduledBackup"
BARMAN_OBJECT_STORE = "kubernetes:barmancloud.cnpg.io/v1:ObjectStore"
BARMAN_PLUGIN = "barman-cloud.cloudnative-pg.io"
# Barman's retention policy as the ObjectStore CRD spells it (`^[1-9][0-9]*[dwm]$`: days, weeks, months); a
# month counted as its shortest, 28 days
RETENTION = re.compile(r"^([1-9][0-9]*)([dwm])$")
RETENTION_UNIT_DAYS = {"d": 1, "w": 7, "m": 28}


def _ns_name(res: Resource) -> tuple[str, str]:
    return str(res.get("metadata.namespace") or ""), str(res.get("metadata.name") or "")


def retention_days(policy: str) -> int | None:
    """The days a Barman retention policy (`14d`, `2w`, `1m`) keeps at least; None when it is not one."""
    match = RETENTION.match(policy)
    return int(match.group(1)) * RETENTION_UNIT_DAYS[match.group(2)] if match else None


@stack_rule(
    "database-backups-in-cluster",
    f"In-cluster PostgreSQL archives WAL and backs up daily to an object store, kept {MIN_BACKUP_DAYS} days in prod",
)
def database_backups_in_cluster(stack: Stack) -> Iterator[tuple[Resource | None, str]]:
    """database-backups for a CloudNativePG Cluster (components/data/in_cluster/backups.py): its WAL archived by
    the Barman Cloud plugin (a `spec.plugins` entry with `isWALArchiver`, on the Cluster or on a server-side
    patch of it; CloudNativePG docs "CNPG-I", plugin-barman-cloud docs "Usage"), to an ObjectStore the stack
    makes, whose `retentionPolicy` keeps at least two weeks in prod (none set: Barman deletes nothing), and a
    ScheduledBackup with `method: plugin` (point-in-time recovery needs a base backup to replay WAL onto). An
    archiver naming an ObjectStore the stack does not make is an error on every stack: nothing is archived."""
    stores = {_ns_name(r): r for r in stack.of_type(BARMAN_OBJECT_STORE)}
    patches = stack.of_type(CNPG_CLUSTER_PATCH)
    schedules = stack.of_type(CNPG_SCHEDULED_BACKUP)
    for cluster in stack.of_type(CNPG_CLUSTER):
        where = _ns_name(cluster)
        entries = list(cluster.get("spec.plugins") or [])
        entries += [e for p in patches if _ns_name(p) == where for e in p.get("spec.plugins") or []]
        archivers = [e for e in entries if (e or {}).get("name") == BARMAN_PLUGIN and e.get("isWALArchiver") is True]
        if not archivers:
            if stack.prod:
                yield cluster, "no Barman Cloud plugin archives its WAL (spec.plugins, isWALArchiver: true)"
            continue
        name = str((archivers[0].get("parameters") or {}).get("barmanObjectName"))
        store = stores.get((where[0], name))
        if store is None:
            yield cluster, f"its WAL archiver names ObjectStore {name!r}, which the stack does not make"
        elif stack.prod:
            policy = store.get("spec.retentionPolicy")
            days = retention_days(str(policy)) if policy is not None else None
            if policy is not None and (days is None or days < MIN_BACKUP_DAYS):
                yield store, f"retentionPolicy {policy!r} keeps less than {MIN_BACKUP_DAYS} days"
        backed_up = [
            s
            for s in schedules
            if _ns_name(s)[0] == where[0]
            and s.get("spec.cluster.name") == where[1]
            and s.get("spec.method") == "plugin"
            and s.get("spec.pluginConfiguration.name") == BARMAN_PLUGIN
        ]
        if stack.prod and not backed_up:
            yield cluster, "no ScheduledBackup (method: plugin) takes its base backups"


@resource_rule(
    "database-deletion-protection", "Prod databases have deletion protection and a final snapshot", RDS, CLOUD_SQL
)
def database_deletion_protection(res: Resource, ctx: Context) -> Iterable[str]:
    """A prod database is deleted only on purpose, and leaves a snapshot when it is (RDS `deletionProtection`
    and `finalSnapshotIdentifier` with `skipFinalSnapshot: false`, RDS User Guide "Deleting a DB
    instance"; a read replica takes no final snapshot, so it needs deletion protection or Pulumi's protect).
    Cloud SQL: both the API's `settings.deletionProtectionEnabled` and the provider's `deletionProtection`
    (pulumi-gcp sql.DatabaseInstance)."""
    if not ctx.prod:
        return
    if res.type == RDS:
        if rds_replica(res):
            if res.get("deletionProtection") is not True and not res.protect:
                yield "read replica has neither deletionProtection nor protect"
            return
        if res.get("deletionProtection") is not True:
            yield "deletionProtection is not true"
        if res.get("skipFinalSnapshot") is not False or not res.get("finalSnapshotIdentifier"):
            yield "no final snapshot (skipFinalSnapshot must be false with a finalSnapshotIdentifier)"
    if res.type == CLOUD_SQL:
        if res.get("deletionProtection") is not True:
            yield "deletionProtection is not true"
        if not sql_replica(res) and res.get("settings.deletionProtectionEnabled") is not True:
            yield "settings.deletionProtectionEnabled is not true"


@resource_rule("database-multi-zone", "The prod primary database fails over across zones", RDS, CLOUD_SQL)
def database_multi_zone(res: Resource, ctx: Context) -> Iterable[str]:
    """HA table: PostgreSQL primary with a standby in another zone (RDS `multiAz`, RDS User Guide "Multi-AZ
    DB instance deployments"; Cloud SQL `availabilityType: REGIONAL`, Cloud SQL docs "About high
    availability")."""
    if not ctx.prod or rds_replica(res) or sql_replica(res):
        return
    if res.type == RDS and res.get("multiAz") is not True:
        yield "multiAz is not true"
    if res.type == CLOUD_SQL and res.get("settings.availabilityType") != "REGIONAL":
        yield f"settings.availabilityType is {res.get('settings.availabilityType')!r}, not REGIONAL"


@stack_rule(
    "database-per-service-isolation", "Each service has its own PostgreSQL role and database, closed to the others"
)
def database_isolation(stack: Stack) -> Iterator[tuple[Resource | None, str]]:
    """mlflow, feast, airflow and any later service must not read each other's data (components/data/
    bootstrap.py): roles and databases are made by the bootstrap Job's SQL, one run per service, each
    database owned by its role with CONNECT revoked from PUBLIC. On Cloud SQL, users and databases made
    through the API join `cloudsqlsuperuser` and are owned by it (Cloud SQL docs, "About PostgreSQL users
    and roles"), so the only API user is the admin the Job connects as, and no API database exists."""
    servers = stack.of_type(RDS, CLOUD_SQL, CNPG_CLUSTER)
    if not servers:
        return
    jobs = [r for r in stack.of_type("kubernetes:batch/v1:Job") if _pod_label(r) == BOOTSTRAP_LABEL]
    sql = [
        str(text)
        for cm in stack.of_type("kubernetes:core/v1:ConfigMap")
        for key, text in (cm.get("data") or {}).items()
        if key.endswith(".sql")
    ]
    if not jobs:
        yield servers[0], "no PostgreSQL bootstrap Job (per-service roles and databases) in the stack"
    for job in jobs:
        runs = re.findall(r"-v svc=([A-Za-z0-9_]+)", " ".join(_commands(job)))
        if not runs:
            yield job, "the bootstrap Job runs the SQL for no service"
        elif len(runs) != len(set(runs)):
            yield job, f"services share a role: {runs}"
    if jobs and not any(_isolating(text) for text in sql):
        yield jobs[0], "the bootstrap SQL does not create a database OWNER per role and REVOKE ALL ... FROM PUBLIC"
    if stack.of_type(CLOUD_SQL):
        users = stack.of_type(CLOUD_SQL_USER)
        if len(users) > 1:
            yield users[1], f"{len(users)} Cloud SQL API users: each joins cloudsqlsuperuser; only the admin may"
        for db in stack.of_type(CLOUD_SQL_DATABASE):
            yield db, "a Cloud SQL API database is owned by cloudsqlsuperuser, readable by every API user"


def _pod_label(res: Resource) -> str | None:
    return (res.get("spec.template.metadata.labels") or {}).get("app.kubernetes.io/name")


def _commands(res: Resource) -> list[str]:
    return [
        str(part)
        for c in res.get("spec.template.spec.containers") or []
        for part in as_list((c or {}).get("command")) + as_list((c or {}).get("args"))
    ]


def _isolating(sql: str) -> bool:
    text = " ".join(sql.split()).upper()
    return "CREATE DATABASE" in text and "OWNER" in text and "REVOKE ALL ON DATABASE" in text and "FROM PUBLIC" in text


# -- Redis and Kafka -----------------------------------------------------------------------------------


@resource_rule(
    "redis-encrypted", "Redis encrypts in transit and at rest", ELASTICACHE, MEMORYSTORE, MEMORYSTORE_CLUSTER
)
def redis_encrypted(res: Resource, ctx: Context) -> Iterable[str]:
    """Feature values and the AUTH token cross the network (ElastiCache `transitEncryptionEnabled` in
    `required` mode and `atRestEncryptionEnabled`, ElastiCache User Guide "Data security in Amazon
    ElastiCache"; Memorystore `transitEncryptionMode: SERVER_AUTHENTICATION`, Memorystore docs "About
    in-transit encryption"; Memorystore encrypts at rest always)."""
    if res.type == ELASTICACHE:
        if res.get("transitEncryptionEnabled") is not True or res.get("transitEncryptionMode") == "preferred":
            yield "transit encryption is not required (transitEncryptionEnabled true, mode not 'preferred')"
        if res.get("atRestEncryptionEnabled") is not True:
            yield "atRestEncryptionEnabled is not true"
    elif res.type == MEMORYSTORE and res.get("transitEncryptionMode") != "SERVER_AUTHENTICATION":
        yield f"transitEncryptionMode is {res.get('transitEncryptionMode')!r}, not SERVER_AUTHENTICATION"
    elif (
        res.type == MEMORYSTORE_CLUSTER
        and res.get("transitEncryptionMode") != "TRANSIT_ENCRYPTION_MODE_SERVER_AUTHENTICATION"
    ):
        yield f"transitEncryptionMode is {res.get('transitEncryptionMode')!r}"


@resource_rule("redis-auth", "Redis requires authentication", ELASTICACHE, MEMORYSTORE, MEMORYSTORE_CLUSTER)
def redis_auth(res: Resource, ctx: Context) -> Iterable[str]:
    """Anything in the VPC could otherwise read and overwrite online features (ElastiCache `authToken` or
    RBAC `userGroupIds`, ElastiCache User Guide "Authenticating with the Redis AUTH command"; Memorystore
    `authEnabled`, Memorystore docs "About Redis AUTH"; Memorystore Cluster IAM auth)."""
    if res.type == ELASTICACHE and not res.get("authToken") and not res.get("userGroupIds"):
        yield "neither authToken nor userGroupIds"
    elif res.type == MEMORYSTORE and res.get("authEnabled") is not True:
        yield "authEnabled is not true"
    elif res.type == MEMORYSTORE_CLUSTER and res.get("authorizationMode") != "AUTH_MODE_IAM_AUTH":
        yield f"authorizationMode is {res.get('authorizationMode')!r}"


@resource_rule("kafka-encrypted", "Kafka encrypts client and broker traffic (and at rest)", MSK, STRIMZI_KAFKA)
def kafka_encrypted(res: Resource, ctx: Context) -> Iterable[str]:
    """Events carry features and user data. MSK: `clientBroker: TLS` and `inCluster` (MSK Developer Guide,
    "Amazon MSK encryption"; MSK always encrypts at rest). Strimzi: every listener `tls: true` (Strimzi
    1.2 `GenericKafkaListener.tls`). Google's Managed Service for Apache Kafka only offers TLS and encrypts
    at rest, so it is not checked."""
    if res.type == MSK:
        transit = res.get("encryptionInfo.encryptionInTransit") or {}
        if transit.get("clientBroker", "TLS") != "TLS":
            yield f"clientBroker is {transit.get('clientBroker')!r}, not TLS"
        if transit.get("inCluster", True) is not True:
            yield "encryption between brokers (inCluster) is off"
    else:
        for listener in res.get("spec.kafka.listeners") or []:
            if (listener or {}).get("tls") is not True:
                yield f"listener {listener.get('name')!r} is not TLS"


@resource_rule("kafka-auth", "Kafka clients must authenticate", MSK, STRIMZI_KAFKA)
def kafka_auth(res: Resource, ctx: Context) -> Iterable[str]:
    """Per-client grants mean nothing without authentication (MSK `clientAuthentication` with SASL/IAM,
    SCRAM or mTLS and `unauthenticated: false`, MSK Developer Guide "Authentication and authorization";
    Strimzi listener `authentication.type` scram-sha-512 or tls). Google's managed Kafka always
    authenticates with Google credentials."""
    if res.type == MSK:
        auth = res.get("clientAuthentication") or {}
        sasl = auth.get("sasl") or {}
        if auth.get("unauthenticated") is True:
            yield "unauthenticated access is allowed"
        if not (sasl.get("iam") or sasl.get("scram") or auth.get("tls")):
            yield "no client authentication method (SASL/IAM, SCRAM or TLS)"
    else:
        for listener in res.get("spec.kafka.listeners") or []:
            kind = ((listener or {}).get("authentication") or {}).get("type")
            if kind not in ("scram-sha-512", "tls"):
                yield f"listener {listener.get('name')!r} authentication is {kind!r}"


REDIS_SERVERS = ("valkey-server", "redis-server")


@stack_rule("redis-in-cluster-tls-auth", "An in-cluster Redis or Valkey serves TLS only and requires a password")
def redis_in_cluster(stack: Stack) -> Iterator[tuple[Resource | None, str]]:
    """The in-cluster server behind the same contract as ElastiCache and Memorystore (components/data/
    in_cluster/redis.py): its configuration file disables the plaintext port (`port 0`) and listens on
    `tls-port` (Valkey docs, "TLS"), and sets a password (`requirepass`, `aclfile`, or an `include` of a
    file mounted from a Secret: Valkey docs, "Security")."""
    config_maps = {
        str(cm.get("metadata.name")): "\n".join(str(v) for v in (cm.get("data") or {}).values())
        for cm in stack.of_type("kubernetes:core/v1:ConfigMap")
    }
    for server in stack.of_type("kubernetes:apps/v1:Deployment", "kubernetes:apps/v1:StatefulSet"):
        pod = server.get("spec.template.spec") or {}
        runs = [str(p) for c in pod.get("containers") or [] for p in as_list(c.get("command")) + as_list(c.get("args"))]
        if not any(part.rsplit("/", 1)[-1] in REDIS_SERVERS for part in runs):
            continue
        mounted = [(v.get("configMap") or {}).get("name") for v in pod.get("volumes") or [] if v.get("configMap")]
        text = "\n".join(config_maps.get(str(name), "") for name in mounted)
        lines = {" ".join(line.split()[:1]): " ".join(line.split()[1:]) for line in text.splitlines() if line.strip()}
        if lines.get("port") != "0" or not lines.get("tls-port"):
            yield server, "the configuration does not set `port 0` and a `tls-port` (plaintext allowed)"
        if not ({"requirepass", "aclfile", "include"} & set(lines)):
            yield server, "the configuration sets no password (requirepass, aclfile or an included file)"
