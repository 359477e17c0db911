"""Object storage: the buckets of components/storage (aws.py: S3 with its companion resources, each
depending on the bucket; gcp.py: GCS with the settings on the bucket itself)."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

from policy.rules import resource_rule, stack_rule
from policy.view import Context, Resource, Stack, json_document

S3_BUCKETS = ("aws:s3/bucket:Bucket", "aws:s3/bucketV2:BucketV2")
GCS_BUCKET = "gcp:storage/bucket:Bucket"
PUBLIC_ACCESS_BLOCK = "aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock"
BUCKET_POLICY = "aws:s3/bucketPolicy:BucketPolicy"
BUCKET_ACLS = ("aws:s3/bucketAclV2:BucketAclV2", "aws:s3/bucketAcl:BucketAcl")
ENCRYPTION = (
    "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration",
    "aws:s3/bucketServerSideEncryptionConfigurationV2:BucketServerSideEncryptionConfigurationV2",
)
VERSIONING = ("aws:s3/bucketVersioning:BucketVersioning", "aws:s3/bucketVersioningV2:BucketVersioningV2")
GCS_GRANTS = ("gcp:storage/bucketIAMMember:BucketIAMMember", "gcp:storage/bucketIAMBinding:BucketIAMBinding")
PUBLIC_BLOCK_KEYS = ("blockPublicAcls", "blockPublicPolicy", "ignorePublicAcls", "restrictPublicBuckets")
PUBLIC_ACLS = frozenset({"public-read", "public-read-write", "authenticated-read"})
PUBLIC_MEMBERS = frozenset({"allUsers", "allAuthenticatedUsers"})


def statements(document: Any) -> list[dict[str, Any]]:
    """The statements of an IAM or bucket policy document (a JSON string or a mapping)."""
    doc = json_document(document) or {}
    found = doc.get("Statement") or []
    return [s for s in ([found] if isinstance(found, dict) else found) if isinstance(s, dict)]


def as_list(value: Any) -> list[Any]:
    if value is None:
        return []
    return list(value) if isinstance(value, (list, tuple)) else [value]


def public_principal(statement: dict[str, Any]) -> bool:
    principal = statement.get("Principal")
    if principal == "*":
        return True
    return isinstance(principal, dict) and "*" in as_list(principal.get("AWS"))


@stack_rule(
    "bucket-private", "Buckets are private: S3 public access blocked, GCS public access prevented, no public grants"
)
def bucket_private(stack: Stack) -> Iterator[tuple[Resource | None, str]]:
    """A bucket holds models, datasets and logs; nothing in the design serves them publicly. S3: all four
    Block Public Access settings on the bucket (AWS S3 User Guide, "Blocking public access to your Amazon
    S3 storage"), no public canned ACL, no Allow to Principal "*". GCS: public access prevention enforced
    and uniform bucket-level access (Cloud Storage docs, "Public access prevention", "Uniform bucket-level
    access"), no grant to allUsers or allAuthenticatedUsers."""
    for bucket in stack.of_type(*S3_BUCKETS):
        blocks = stack.dependents(bucket, PUBLIC_ACCESS_BLOCK)
        if not any(all(b.get(k) is True for k in PUBLIC_BLOCK_KEYS) for b in blocks):
            yield bucket, f"no BucketPublicAccessBlock with {', '.join(PUBLIC_BLOCK_KEYS)} all true"
        acls = [bucket.get("acl")] + [a.get("acl") for a in stack.dependents(bucket, *BUCKET_ACLS)]
        if PUBLIC_ACLS & {a for a in acls if isinstance(a, str)}:
            yield bucket, f"public canned ACL {sorted(PUBLIC_ACLS & set(acls))}"
        for pol in stack.dependents(bucket, BUCKET_POLICY):
            if any(s.get("Effect") == "Allow" and public_principal(s) for s in statements(pol.get("policy"))):
                yield pol, 'bucket policy allows Principal "*"'
    for bucket in stack.of_type(GCS_BUCKET):
        if bucket.get("publicAccessPrevention") != "enforced":
            yield bucket, f"publicAccessPrevention is {bucket.get('publicAccessPrevention')!r}, not 'enforced'"
        if bucket.get("uniformBucketLevelAccess") is not True:
            yield bucket, "uniformBucketLevelAccess is not true (object ACLs could make objects public)"
    for grant in stack.of_type(*GCS_GRANTS):
        members = as_list(grant.get("member")) + as_list(grant.get("members"))
        if PUBLIC_MEMBERS & set(members):
            yield grant, f"grants {grant.get('role')} to {sorted(PUBLIC_MEMBERS & set(members))}"


@stack_rule("bucket-encrypted", "S3 buckets encrypt by default with a KMS key; GCS encrypts every object at rest")
def bucket_encrypted(stack: Stack) -> Iterator[tuple[Resource | None, str]]:
    """Default encryption with a KMS key (SSE-KMS), so reading an object also needs kms:Decrypt on the
    platform's key, which only the identities granted it hold (AWS S3 User Guide, "Using server-side
    encryption with AWS KMS keys"). GCS always encrypts data at rest (Cloud Storage docs, "Data encryption
    options"), so GCS buckets pass."""
    for bucket in stack.of_type(*S3_BUCKETS):
        configs = stack.dependents(bucket, *ENCRYPTION)
        rules = [r for c in configs for r in as_list(c.get("rules"))]
        defaults = [(r or {}).get("applyServerSideEncryptionByDefault") or {} for r in rules]
        if not any(d.get("sseAlgorithm") in ("aws:kms", "aws:kms:dsse") and d.get("kmsMasterKeyId") for d in defaults):
            yield bucket, "no server-side encryption configuration with aws:kms and a key"


@stack_rule("bucket-tls-only", "S3 bucket policies deny requests not made over TLS")
def bucket_tls_only(stack: Stack) -> Iterator[tuple[Resource | None, str]]:
    """S3 accepts plain HTTP unless the bucket policy denies `aws:SecureTransport = false` (AWS S3 User
    Guide, "Security best practices for Amazon S3": enforce encryption of data in transit). GCS serves only
    HTTPS (Cloud Storage docs, "Request endpoints"), so GCS buckets pass."""
    for bucket in stack.of_type(*S3_BUCKETS):
        docs = [s for p in stack.dependents(bucket, BUCKET_POLICY) for s in statements(p.get("policy"))]
        if not any(denies_insecure_transport(s) for s in docs):
            yield bucket, "no bucket policy statement denying s3:* when aws:SecureTransport is false"


def denies_insecure_transport(statement: dict[str, Any]) -> bool:
    condition = (statement.get("Condition") or {}).get("Bool") or {}
    actions = set(as_list(statement.get("Action")))
    return (
        statement.get("Effect") == "Deny"
        and public_principal(statement)
        and str(condition.get("aws:SecureTransport")).lower() == "false"
        and bool(actions & {"s3:*", "*"})
    )


@stack_rule("bucket-versioned", "Prod buckets keep object versions")
def bucket_versioned(stack: Stack) -> Iterator[tuple[Resource | None, str]]:
    """In prod an overwritten or deleted model or dataset must be recoverable (AWS S3 User Guide, "Retaining
    multiple versions of objects with S3 Versioning"; Cloud Storage docs, "Object Versioning"). Dev
    suspends versioning so it tears down cleanly."""
    if not stack.prod:
        return
    for bucket in stack.of_type(*S3_BUCKETS):
        states = [v.get("versioningConfiguration.status") for v in stack.dependents(bucket, *VERSIONING)]
        if "Enabled" not in states:
            yield bucket, f"versioning is {states or 'not configured'}, not Enabled"
    for bucket in stack.of_type(GCS_BUCKET):
        if bucket.get("versioning.enabled") is not True:
            yield bucket, "versioning.enabled is not true"


@resource_rule(
    "bucket-no-force-destroy", "Prod buckets are never force-destroyed with their objects", *S3_BUCKETS, GCS_BUCKET
)
def bucket_no_force_destroy(res: Resource, ctx: Context) -> Iterable[str]:
    """forceDestroy deletes every object when the bucket is deleted or replaced (pulumi-aws s3.Bucket and
    pulumi-gcp storage.Bucket `forceDestroy`); a prod bucket holds the registry's artifacts. Dev sets it so
    `pulumi destroy` finishes."""
    if ctx.prod and res.get("forceDestroy") is True:
        yield "forceDestroy is true"
