"""Run the real Pulumi program of a stack in-process under the SDK's mocks: no CLI, no cloud, no network.

The config comes from Pulumi.<stack>.yaml and is handed to the SDK exactly as the engine would hand it
(objects as JSON text), and the program is the project's own __main__.py. Each synthesis runs on its own
thread, so the SDK's per-context state (root stack, config, settings) starts fresh every time.
"""

from __future__ import annotations

import asyncio
import faulthandler
import json
import os
import runpy
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import pulumi
from pulumi.runtime import rpc, set_all_config, set_mocks
from pulumi.runtime.settings import SETTINGS, get_root_resource
from pulumi.runtime.stack import run_pulumi_func
from pulumi.runtime.sync_await import _sync_await

from mlplatform.config import load_config, namespace_values, read_stack_file
from mlplatform.plan.document import PlanDocument
from mlplatform.plan.mocks import PlatformMocks, RecordingMonitor, json_secret_keys, struct_to_plain

PROJECT = "mlplatform"
PROJECT_DIR = Path(__file__).resolve().parents[2]


# a stack synthesizes in seconds; far longer means it waits on something that never resolves
SYNTH_TIMEOUT_SECONDS = int(os.environ.get("SYNTH_TIMEOUT_SECONDS", "150"))


def engine_config(config_map: dict[str, Any]) -> tuple[dict[str, str], list[str]]:
    """Config as the engine passes it: every value a string (objects as JSON), secure values listed."""
    values, secret_keys = {}, []
    for key, value in config_map.items():
        if isinstance(value, dict) and set(value) == {"secure"}:
            values[key] = "[secure value: needs the stack's secrets provider]"
            secret_keys.append(key)
        else:
            values[key] = value if isinstance(value, str) else json.dumps(value)
    return values, secret_keys


def synthesize(
    stack: str, project_dir: Path = PROJECT_DIR, config_map: dict[str, Any] | None = None, *, preview: bool = False
) -> PlanDocument:
    """Validate the stack's config (raising ConfigError before anything registers), then run the program.

    `config_map` (fully qualified keys, as in a stack file) replaces Pulumi.<stack>.yaml when given.
    `preview`: run as the first `pulumi preview` of an empty stack does: every value a provider computes
    (endpoints, ARNs, generated names, the kubeconfig) stays unknown, and applies over them do not run.
    """
    if config_map is None:
        config_map = read_stack_file(project_dir, stack)
    cfg = load_config(namespace_values(config_map), stack)
    values, secret_keys = engine_config(config_map)
    result: dict[str, Any] = {}

    def run() -> None:
        loop = asyncio.new_event_loop()
        asyncio.set_event_loop(loop)
        result["loop"] = loop
        try:
            sso = cfg.client.sso
            refs = [(sso.client_secret.secret_id, sso.client_secret.json_key)] if sso is not None else []
            mocks = PlatformMocks(cfg.region, cfg.gcp_project, preview=preview, json_secrets=json_secret_keys(refs))
            result["monitor"] = RecordingMonitor(mocks)
            result["doc"] = _run_program(project_dir, stack, result["monitor"], values, secret_keys, preview)
        except BaseException as e:
            result["error"] = e
        finally:
            # the loop's default executor (the SDK's monitor calls) and its selector, released: left open,
            # every synthesis in a test process kept a loop and its idle executor threads
            loop.run_until_complete(loop.shutdown_default_executor())
            loop.close()

    started, cpu_started = time.perf_counter(), time.process_time()
    worker = threading.Thread(target=run, name=f"synth-{stack}", daemon=True)
    worker.start()
    worker.join(SYNTH_TIMEOUT_SECONDS)
    if worker.is_alive():
        # a synthesis takes seconds: one that does not end waits on something that never resolves. Say what,
        # instead of hanging the caller (the test suite) forever
        faulthandler.dump_traceback(all_threads=True)
        dump = _dump_stacks(stack, result.get("loop"), result.get("monitor"))
        raise TimeoutError(
            f"synthesizing {stack} did not finish within {SYNTH_TIMEOUT_SECONDS} s; stacks on stderr and in {dump}"
        )
    if "error" in result:
        raise result["error"]
    doc: PlanDocument = result["doc"]
    doc.seconds = time.perf_counter() - started
    doc.cpu_seconds = time.process_time() - cpu_started
    return doc


def _dump_stacks(stack: str, loop: asyncio.AbstractEventLoop | None, monitor: RecordingMonitor | None) -> Path:
    """What a stalled synthesis waits on, in a file that outlives captured output (CI's log may cut it), in
    STALL_DUMP_DIR or the temp dir: every thread's
    stack, every pending task of the synthesis' loop with its coroutine stack, the last registrations."""
    folder = Path(os.environ.get("STALL_DUMP_DIR") or tempfile.gettempdir()) / "mlplatform-stalls"
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{os.getpid()}-{stack}-{time.strftime('%Y%m%dT%H%M%S')}.txt"
    with path.open("w") as out:
        faulthandler.dump_traceback(file=out, all_threads=True)
        out.flush()
        tasks = list(asyncio.all_tasks(loop)) if loop is not None else []
        print(f"\n{len(tasks)} pending tasks, {threading.active_count()} threads", file=out)
        for task in tasks:
            print(f"\n{task!r}", file=out)
            task.print_stack(limit=12, file=out)
        registrations = monitor.registrations if monitor is not None else []
        print(f"\n{len(registrations)} registrations; the last 30:", file=out)
        for reg in registrations[-30:]:
            print(f"  {reg.type} {reg.name}", file=out)
    return path


def _run_program(
    project_dir: Path,
    stack: str,
    monitor: RecordingMonitor,
    values: dict[str, str],
    secret_keys: list[str],
    preview: bool = False,
) -> PlanDocument:
    set_mocks(monitor.mocks, project=PROJECT, stack=stack, preview=preview, monitor=monitor)
    # The Output tasks the SDK awaits before the program ends (wait_for_rpcs, pulumi/runtime/stack.py), and
    # their lock, this synthesis' own. MockSettings (pulumi/runtime/mocks.py @ 3.272.0) sets neither, and
    # ContextProperty.fset (pulumi/_utils.py) made the first value ever set, the import-time Settings' set,
    # every other context's default: all synthesies shared one set. A task an earlier one left there (a failed
    # Output stays by design, pulumi/output.py `_track`) belongs to a loop that no longer runs, and
    # asyncio.wait on it never returned: the test suite's intermittent stall (tests/test_synth_isolation.py).
    SETTINGS.outputs = set()
    SETTINGS.lock = threading.Lock()
    set_all_config(values, secret_keys)
    if str(project_dir) not in sys.path:
        sys.path.insert(0, str(project_dir))
    _sync_await(run_pulumi_func(lambda: runpy.run_path(str(project_dir / "__main__.py"), run_name="__main__")))
    return PlanDocument(PROJECT, stack, monitor.registrations, _stack_outputs())


def _stack_outputs() -> dict[str, Any]:
    """The program's exports, resolved, with secret values redacted the same way as resource inputs."""
    root = get_root_resource()
    exports = getattr(root, "outputs", {})
    struct = _sync_await(rpc.serialize_properties({k: pulumi.Output.from_input(v) for k, v in exports.items()}, {}))
    return struct_to_plain(struct)
