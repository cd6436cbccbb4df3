"""Moving bytes between the platform and a sandbox pod through the Kubernetes API server only.

Neither direction needs a network path into or out of the sandbox: the model artefact is
streamed into the pod's init container over the API server's exec channel, and the gateway
reaches the model server over the API server's port-forward (a local TCP listener relays each
connection). Inside a cluster the platform may use the trial's Service instead.
"""

from __future__ import annotations

import base64
import io
import select
import socket
import tarfile
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from orchestrator.backends.k8s_manifests import MODEL_MOUNT, MODEL_READY
from orchestrator.errors import BackendError

CHUNK = 256 * 1024
END = "--end-of-artefact--"
# Runs in the init container: base64 lines on stdin until END (the exec protocol of older API
# servers cannot close stdin), then only regular files and directories are unpacked, by relative
# paths that stay under /model, without their modes' setuid bits (the base image's Python predates
# tarfile's "data" filter), then the marker that lets the init container finish.
RECEIVER = f"""
import base64, io, os, sys, tarfile
lines = []
for line in sys.stdin:
    line = line.strip()
    if line == "{END}":
        break
    lines.append(line)
data = base64.b64decode("".join(lines))
root = os.path.realpath("{MODEL_MOUNT}")
with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as archive:
    for member in archive.getmembers():
        target = os.path.realpath(os.path.join(root, member.name))
        if os.path.isabs(member.name) or not target.startswith(root + os.sep):
            sys.exit("refused path " + member.name)
        if member.isdir():
            os.makedirs(target, exist_ok=True)
        elif member.isfile():
            os.makedirs(os.path.dirname(target), exist_ok=True)
            with archive.extractfile(member) as src, open(target, "wb") as dst:
                dst.write(src.read())
            os.chmod(target, member.mode & 0o755)
        else:
            sys.exit("refused non-regular member " + member.name)
open(os.path.join(root, "{MODEL_READY}"), "w").close()
print("received", len(data))
"""


def pack(model_dir: Path) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
        for path in sorted(model_dir.rglob("*")):
            if path.is_file() and not path.is_symlink():
                archive.add(path, arcname=str(path.relative_to(model_dir)), recursive=False)
    return buffer.getvalue()


def deliver_model(
    core: Any, namespace: str, pod: str, container: str, model_dir: Path, timeout_s: float
) -> int:
    """Stream ``model_dir`` into ``container`` of ``pod``; return the bytes sent."""
    from kubernetes.stream import stream

    payload = base64.b64encode(pack(model_dir)).decode()
    resp = stream(
        core.connect_get_namespaced_pod_exec,
        pod,
        namespace,
        container=container,
        command=["python3", "-c", RECEIVER],
        stdin=True,
        stdout=True,
        stderr=True,
        tty=False,
        _preload_content=False,
    )
    try:
        for start in range(0, len(payload), CHUNK):
            resp.write_stdin(payload[start : start + CHUNK] + "\n")
        resp.write_stdin(END + "\n")
        resp.run_forever(timeout=timeout_s)
        out, err = resp.read_stdout(), resp.read_stderr()
        code = resp.returncode
    finally:
        resp.close()
    if code != 0 or "received" not in out:
        raise BackendError(f"model artefact delivery into {namespace}/{pod} failed ({code}): {err[-500:]}")
    return len(payload)


class PortForwardRelay:
    """A loopback TCP listener whose every connection is carried to ``pod:port`` by the API server.

    ``new_core`` makes a CoreV1Api on a client of its own for each connection: the kubernetes
    client's stream helpers swap the request method of the ApiClient they are given for the
    duration of the call, so a shared client would send other threads' requests (teardown's, the
    resource sampler's) down the websocket.
    """

    def __init__(self, new_core: Callable[[], Any], namespace: str, pod: str, port: int) -> None:
        self.new_core, self.namespace, self.pod, self.port = new_core, namespace, pod, port
        self._listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._listener.bind(("127.0.0.1", 0))
        self._listener.listen(64)
        self._listener.settimeout(0.2)
        self.local_port = int(self._listener.getsockname()[1])
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._accept, name=f"port-forward-{namespace}", daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.local_port}"

    def start(self) -> PortForwardRelay:
        self._thread.start()
        return self

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=2)
        self._listener.close()

    def _accept(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self._listener.accept()
            except OSError:
                continue
            threading.Thread(target=self._relay, args=(conn,), daemon=True).start()

    def _relay(self, conn: socket.socket) -> None:
        from kubernetes.stream import portforward

        try:
            forward = portforward(
                self.new_core().connect_get_namespaced_pod_portforward,
                self.pod,
                self.namespace,
                ports=str(self.port),
            )
            remote = forward.socket(self.port)
        except Exception:  # the pod is gone or not ready: the caller sees a closed connection
            conn.close()
            return
        remote.setblocking(True)
        try:
            pipes = {conn: remote, remote._socket: conn}
            while not self._stop.is_set():
                readable, _, _ = select.select(list(pipes), [], [], 0.5)
                for side in readable:
                    data = side.recv(CHUNK)
                    if not data:
                        return
                    pipes[side].sendall(data)
        except OSError:
            return
        finally:
            conn.close()
            forward.close()
