"""The serving stack: what it installs, in which order, as whom, and where GPU models land."""

from __future__ import annotations

import itertools
import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from mlplatform.config import load_config, namespace_values, read_stack_file
from mlplatform.pins import KNATIVE_SERVING_VERSIONS
from mlplatform.plan.document import PlanDocument
from mlplatform.plan.synth import PROJECT_DIR
from tests.support.crds import plain, spec_schema
from tests.support.graph import depends, helm_release

STACKS = ["dev", "prod", "gcp-dev", "gcp-prod", "local"]  # local: the in-cluster wiring on kind
RELEASE = "kubernetes:helm.sh/v3:Release"


@pytest.mark.parametrize("stack", STACKS)
def test_install_order_each_waits_for_what_it_uses_and_nothing_else(plan, stack: str) -> None:
    doc = plan(stack)
    for earlier, later in itertools.pairwise(["istio-base", "istiod", "istio-ingressgateway"]):
        assert depends(doc, helm_release(doc, later), helm_release(doc, earlier)), (later, earlier)
    serving = doc.one("kubernetes:operator.knative.dev/v1beta1:KnativeServing")
    assert depends(doc, serving, helm_release(doc, "knative-operator"))
    for istio in ("istio-base", "istiod", "istio-ingressgateway"):  # net-istio configures Istio's gateways
        assert depends(doc, serving, helm_release(doc, istio)), istio
    assert serving.inputs["metadata"]["annotations"]["pulumi.com/waitFor"] == "condition=Ready"
    crd, controller, runtimes = (helm_release(doc, n) for n in ("kserve-crd", "kserve", "kserve-runtime-configs"))
    assert depends(doc, controller, crd) and depends(doc, controller, serving) and depends(doc, runtimes, controller)
    assert depends(doc, controller, helm_release(doc, "cert-manager"))  # its webhook certificate
    for runtime in doc.by_type("kubernetes:serving.kserve.io/v1alpha1:ServingRuntime"):
        assert depends(doc, runtime, controller)  # KServe's webhook admits it
    if doc.outputs["cloud"] == "aws":  # the NLB comes from the Load Balancer Controller
        assert depends(
            doc, helm_release(doc, "istio-ingressgateway"), helm_release(doc, "mlplatform-load-balancer-controller")
        )
    # and nothing waits for what it does not use: these start side by side, saving minutes of `up`
    independent = ["cert-manager", "istio-base", "knative-operator", "kserve-crd"]
    for a, b in itertools.permutations(independent, 2):
        assert not depends(doc, helm_release(doc, a), helm_release(doc, b)), (a, b)


@pytest.mark.parametrize("stack", STACKS)
def test_knative_serving_fits_the_cluster_and_kserve(plan, stack: str) -> None:
    doc = plan(stack)
    spec = doc.one("kubernetes:operator.knative.dev/v1beta1:KnativeServing").inputs["spec"]
    clusters = [r for r in doc.resources if r.type.endswith(("eks/cluster:Cluster", "container/cluster:Cluster"))]
    # local: no cluster resource; the stack file's kubernetesVersion (the profile's) is the cluster's minor
    k8s_minor = (
        clusters[0].inputs.get("version") or clusters[0].inputs["minMasterVersion"]
        if clusters
        else load_config(namespace_values(read_stack_file(PROJECT_DIR, stack)), stack).cluster.kubernetes_version
    )
    assert spec["version"] == KNATIVE_SERVING_VERSIONS[k8s_minor]
    features = spec["config"]["features"]
    for feature in ("kubernetes.podspec-nodeselector", "kubernetes.podspec-tolerations", "kubernetes.podspec-affinity"):
        assert features[feature] == "enabled"
    assert spec["config"]["observability"]["request-metrics-protocol"] != "none"  # off by default since 1.19
    assert spec["config"]["autoscaler"]["enable-scale-to-zero"] == "true"
    assert int(spec["high-availability"]["replicas"]) == (2 if "prod" in stack else 1)
    domain = doc.outputs["servingDomain"]
    assert spec["config"]["domain"] == {domain: ""}
    assert helm_release(doc, "kserve").inputs["values"]["kserve"]["controller"]["gateway"]["domain"] == domain


def test_knative_serving_validates_against_its_crd(plan) -> None:
    import jsonschema

    schema = spec_schema("operator.knative.dev_knativeservings.yaml", "v1beta1")
    for stack in STACKS:
        spec = plain(plan(stack).one("kubernetes:operator.knative.dev/v1beta1:KnativeServing").inputs["spec"])
        jsonschema.validate(spec, schema)
    spec["high-availability"]["replica"] = 2  # misspelt: the API server would drop it silently
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(spec, schema)


def _pool_taints(doc: PlanDocument, pool: str) -> list[dict[str, Any]]:
    effects = {"NO_SCHEDULE": "NoSchedule", "PREFER_NO_SCHEDULE": "PreferNoSchedule", "NO_EXECUTE": "NoExecute"}
    if doc.stack.startswith("gcp"):
        config = doc.one("gcp:container/nodePool:NodePool", f"mlplatform-{pool}").inputs["nodeConfig"]
        return [{**t, "effect": effects[t["effect"]]} for t in config["taints"]], config["labels"]
    group = doc.one("aws:eks/nodeGroup:NodeGroup", f"mlplatform-{pool}").inputs
    return [{**t, "effect": effects[t["effect"]]} for t in group["taints"]], group["labels"]


@pytest.mark.parametrize("stack", STACKS)
def test_gpu_runtimes_land_on_their_pools(plan, stack: str) -> None:
    doc = plan(stack)
    runtimes = {
        r.inputs["metadata"]["name"]: r.inputs["spec"]
        for r in doc.by_type("kubernetes:serving.kserve.io/v1alpha1:ServingRuntime")
    }
    assert set(doc.outputs["gpuServingRuntimes"]) == set(doc.outputs["gpuPools"])
    for pool, name in doc.outputs["gpuServingRuntimes"].items():
        spec = runtimes[name]
        taints, labels = _pool_taints(doc, pool)
        tolerations = [{k: t[k] for k in ("key", "value", "effect")} for t in spec["tolerations"]]
        assert tolerations == [{k: t[k] for k in ("key", "value", "effect")} for t in taints]
        assert spec["nodeSelector"].items() <= labels.items()
        [container] = spec["containers"]
        assert int(container["resources"]["limits"]["nvidia.com/gpu"]) >= 1
        assert not any(f["autoSelect"] for f in spec["supportedModelFormats"])  # chosen by name only


@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_serving_identity_reads_the_artifacts_bucket_only(plan, stack: str) -> None:
    doc = plan(stack)
    account = doc.one("kubernetes:core/v1:ServiceAccount", "mlplatform-kserve-model-pull-account").inputs["metadata"]
    assert (
        account["namespace"] == doc.outputs["inferenceNamespace"]
        and account["name"] == doc.outputs["inferenceServiceAccount"]
    )
    role = account["annotations"]["eks.amazonaws.com/role-arn"].rsplit("/", 1)[-1]
    policy = json.loads(doc.one("aws:iam/rolePolicy:RolePolicy", role).inputs["policy"])
    actions = {a for s in policy["Statement"] for a in s["Action"] if a.startswith("s3:")}
    assert actions and not {a for a in actions if a.startswith(("s3:Put", "s3:Delete"))}
    resources = {
        r for s in policy["Statement"] for r in ([s["Resource"]] if isinstance(s["Resource"], str) else s["Resource"])
    }
    assert all("artifacts" in r for r in resources if r.startswith("arn:aws:s3"))


@pytest.mark.parametrize("stack", STACKS)
def test_gateway_is_internal_unless_config_says_otherwise(plan, stack: str) -> None:
    values = helm_release(plan(stack), "istio-ingressgateway").inputs["values"]
    annotations = values["service"]["annotations"]
    internal = {"networking.gke.io/load-balancer-type": "Internal"} if stack.startswith("gcp") else {
        "service.beta.kubernetes.io/aws-load-balancer-scheme": "internal"
    }  # fmt: skip
    internal = {} if stack == "local" else internal  # Cloud Provider KIND reads no annotation
    assert internal.items() <= annotations.items()
    assert int(values["replicaCount"]) == (3 if "prod" in stack else 1)
    assert bool(values["podDisruptionBudget"]) == ("prod" in stack)
    assert plan(stack).outputs["inferenceIngress"]  # the load balancer's address, as the cloud reports it


def test_serving_needs_kubernetes_1_33() -> None:
    from mlplatform.config import ConfigError, load_config

    with pytest.raises(ConfigError) as info:
        load_config(
            {"profile": "dev", "cloud": "gcp", "gcpProject": "acme-ml", "cluster": {"kubernetesVersion": "1.32"}}, "t"
        )
    [problem] = [p.render() for p in info.value.problems]
    assert "cluster.kubernetesVersion >= 1.33" in problem and "services.kserve.enabled: false" in problem


@pytest.mark.parametrize("stack", STACKS)
def test_mlflow_3_models_have_a_runtime_at_the_tracking_servers_version(plan, stack: str) -> None:
    from mlplatform.podsecurity import check_pod

    doc = plan(stack)
    runtimes = {
        r.inputs["metadata"]["name"]: r.inputs["spec"]
        for r in doc.by_type("kubernetes:serving.kserve.io/v1alpha1:ServingRuntime")
    }
    spec = runtimes["mlflow-3"]
    assert {"name": "mlflow", "version": "3", "autoSelect": True, "priority": 2} in spec["supportedModelFormats"]
    assert spec["protocolVersions"] == ["v2"]  # KServe's V2 paths, transformers and graphs reach it
    server = doc.one("kubernetes:helm.sh/v4:Chart", "mlplatform-mlflow").inputs["values"]
    [container] = spec["containers"]
    # models and server on one MLflow: the runtime's image installs the server image's MLflow version
    requirements = (Path(__file__).parents[1] / "images" / "mlserver-mlflow" / "requirements.txt").read_text()
    assert f"\nmlflow=={server['image']['tag']}\n" in requirements
    env = {e["name"]: e["value"] for e in container["env"]}
    assert env["MLSERVER_MODEL_IMPLEMENTATION"] == "mlserver_mlflow.MLflowRuntime"
    # every runtime's containers pass model-serving's level (Knative adds the pod-level seccomp default)
    for name, runtime in runtimes.items():
        pod = {"securityContext": {"seccompProfile": {"type": "RuntimeDefault"}}, "containers": runtime["containers"]}
        assert check_pod(pod, "restricted", name) == []


def test_gpu_sharing_is_configured_where_each_cloud_does_it(prod: PlanDocument, gcp_prod: PlanDocument) -> None:
    """EKS: the device plugin's named time-slicing config, selected by the pool's node label; GKE: the node
    pool's own time-sharing or MIG setting. The training quota counts the GPU units pods can request."""
    group = prod.one("aws:eks/nodeGroup:NodeGroup", "mlplatform-gpu-a10g").inputs
    selector = group["labels"]["nvidia.com/device-plugin.config"]
    plugin = prod.one(RELEASE, "mlplatform-nvidia-device-plugin").inputs["values"]["config"]
    slicing = yaml.safe_load(plugin["map"][selector])["sharing"]["timeSlicing"]["resources"]
    assert slicing == [{"name": "nvidia.com/gpu", "replicas": 4}]
    assert yaml.safe_load(plugin["map"][plugin["default"]]) == {"version": "v1"}  # the other GPU pools
    assert (
        "nvidia.com/device-plugin.config"
        not in prod.one("aws:eks/nodeGroup:NodeGroup", "mlplatform-gpu-l40s").inputs["labels"]
    )
    [accel] = gcp_prod.one("gcp:container/nodePool:NodePool", "mlplatform-gpu-a100").inputs["nodeConfig"][
        "guestAccelerators"
    ]
    assert accel["gpuPartitionSize"] == "1g.5gb"
    quota = gcp_prod.one("kubernetes:core/v1:ResourceQuota", "mlplatform-training-gpu-quota").inputs["spec"]["hard"]
    assert int(quota["requests.nvidia.com/gpu"]) == 8 * 1 + 2 * 7  # l4: 8 nodes x 1; a100: 2 nodes x 7 slices


@pytest.mark.parametrize(
    "cloud,sharing,expected",
    [
        ("aws", {"strategy": "mig", "partition": "1g.5gb"}, "use time-slicing"),
        ("gcp", {"strategy": "mig", "partition": "1g.5gb"}, "nvidia-l4 offers MIG partitions: none"),
        ("gcp", {"strategy": "time-slicing", "replicas": 64}, "less than or equal to 48"),
        ("gcp", {"strategy": "time-slicing"}, "time-slicing takes replicas"),
    ],
)
def test_gpu_sharing_config_is_checked(cloud: str, sharing: dict, expected: str) -> None:
    from mlplatform.config import ConfigError, load_config

    pool = {"name": "gpu", "maxNodes": 2, "sharing": sharing}
    pool |= {"machineType": "g2-standard-8", "accelerator": "nvidia-l4"} if cloud == "gcp" else {
        "machineType": "g5.xlarge", "accelerator": "nvidia-a10g"
    }  # fmt: skip
    base = {"profile": "dev", "cloud": cloud} | ({"gcpProject": "acme-ml"} if cloud == "gcp" else {})
    with pytest.raises(ConfigError) as info:
        load_config({**base, "cluster": {"gpuPools": [pool]}}, "t")
    [problem] = [p.render() for p in info.value.problems]
    assert problem.startswith("mlplatform:cluster.gpuPools[0]") and expected in problem


def test_mlserver_metrics_annotation_matches_the_port_it_serves(dev: PlanDocument) -> None:
    [runtime] = [
        r.inputs["spec"]
        for r in dev.by_type("kubernetes:serving.kserve.io/v1alpha1:ServingRuntime")
        if r.inputs["metadata"]["name"] == "kserve-mlserver"
    ]
    env = {e["name"]: e["value"] for e in runtime["containers"][0]["env"]}
    assert runtime["annotations"]["prometheus.kserve.io/port"] == env["MLSERVER_METRICS_PORT"] == "8082"
    assert runtime["containers"][0]["image"].endswith(":1.7.1")


def test_serving_runtimes_validate_against_the_kserve_crd(plan) -> None:
    import jsonschema

    schema = spec_schema("serving.kserve.io_servingruntimes.yaml", "v1alpha1")
    for stack in STACKS:
        for runtime in plan(stack).by_type("kubernetes:serving.kserve.io/v1alpha1:ServingRuntime"):
            spec = plain(runtime.inputs["spec"])
            jsonschema.validate(spec, schema)
    spec["containers"][0]["resource"] = {}  # misspelt: the API server would drop it silently
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(spec, schema)


def test_knative_operator_does_not_share_servings_namespace(plan) -> None:
    """The operator and Serving both own config-logging and config-observability in their namespace
    (knative/operator#2014): sharing one lets an operator upgrade reset Serving's observability config."""
    for stack in ("dev", "gcp-prod"):
        doc = plan(stack)
        [operator] = [
            r for r in doc.by_type("kubernetes:helm.sh/v3:Release") if r.inputs["chart"] == "knative-operator"
        ]
        [serving] = [r for r in doc.resources if r.inputs.get("kind") == "KnativeServing"]
        assert operator.inputs["namespace"] != serving.inputs["metadata"]["namespace"]
