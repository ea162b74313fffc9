"""Test handler for Updraft's process runtime: see ../README.md."""
import ctypes
import errno
import json
import os
import platform
import subprocess
import sys
import time

COUNT = 0
GROWN = []


def info(event, context):
    return {
        "request_id": context.aws_request_id,
        "deadline_ms": context.get_remaining_time_in_millis() + int(time.time() * 1000),
        "arn": context.invoked_function_arn,
        "function": context.function_name,
        "memory": int(context.memory_limit_in_mb),
        "route_key": event.get("routeKey"),
        "param": (event.get("pathParameters") or {}).get("op"),
        "count": COUNT,
        "pid": os.getpid(),
        "claims": ((event.get("requestContext") or {}).get("authorizer") or {}).get("jwt", {}).get("claims"),
        "env_home": os.environ.get("HOME"),
        "identity": identity(context),
    }


def identity(context):
    i = context.identity
    return [i.cognito_identity_id, i.cognito_identity_pool_id] if i and i.cognito_identity_id else None


def attempt(f):
    """`ok` (or the listing, for a listing), or the error's name."""
    try:
        r = f()
        return sorted(r) if isinstance(r, list) else "ok"
    except Exception as e:  # noqa: BLE001 - any refusal is the answer
        return type(e).__name__


def denied_calls():
    """What the kernel answers each system call the sandbox's seccomp filter denies: `ok`, or
    the errno's name. Each of these succeeds (or fails otherwise) for an unfiltered process."""
    libc = ctypes.CDLL(None, use_errno=True)
    keyctl = {"x86_64": 250, "aarch64": 219}.get(platform.machine())

    def call(f):
        r = f()
        return "ok" if r >= 0 else errno.errorcode.get(ctypes.get_errno(), str(ctypes.get_errno()))

    return {
        # KEYCTL_GET_KEYRING_ID of the session keyring: an id, unfiltered.
        "keyctl": call(lambda: libc.syscall(keyctl, 0, -3, 1)) if keyctl else "unknown arch",
        # 0 entries: EINVAL, unfiltered (425 on every architecture).
        "io_uring_setup": call(lambda: libc.syscall(425, 0, None)),
        # A new user namespace for this thread: allowed, unfiltered, to any user.
        "unshare_user": call(lambda: libc.unshare(0x10000000)),
    }


def cgroup_limit():
    """The memory cap of this process's cgroup (v1 or v2), or None."""
    for line in open("/proc/self/cgroup").read().splitlines():
        _, controllers, path = line.split(":", 2)
        if "memory" in controllers.split(","):
            return int(open(f"/sys/fs/cgroup/memory{path}/memory.limit_in_bytes").read())
        if controllers == "" and os.path.exists(f"/sys/fs/cgroup{path}/memory.max"):
            return int(open(f"/sys/fs/cgroup{path}/memory.max").read())
    return None


def fork_alloc():
    """A child process (out of the watchdog's sight, which follows the handler's own process)
    that takes 1 GiB: its return code (-9 when the kernel killed it at the cgroup's cap)."""
    child = subprocess.run([sys.executable, "-c", "b = b'x' * (1 << 30); print(len(b))"],
                           capture_output=True)
    return child.returncode


def memfd_fill():
    """Fills anonymous files (8 MiB each, under the largest-file limit) 1 MiB at a time up to
    512 MiB: memory that is not in the process's RSS (the watchdog cannot see it) but is in
    its cgroup."""
    chunk = b"x" * (1 << 20)
    files = []
    for _ in range(64):
        files.append(os.memfd_create("fill"))
        for _ in range(8):
            os.write(files[-1], chunk)
    return "filled"


def escape():
    """What a hostile handler tries: see ../README.md."""
    root = os.environ["LAMBDA_TASK_ROOT"]
    data_dir = os.path.normpath(os.path.join(root, "..", "..", ".."))

    def write_big():
        with open("/tmp/big", "wb") as f:
            for _ in range(64):
                f.write(b"x" * (1 << 20))

    return {
        "read_data_dir_db": attempt(lambda: open(os.path.join(data_dir, "updraft.db"), "rb").read(16)),
        "list_data_dir": attempt(lambda: os.listdir(data_dir)),
        "list_other_bundles": attempt(lambda: os.listdir(os.path.dirname(root))),
        "list_root": attempt(lambda: os.listdir("/")),
        "read_shadow": attempt(lambda: open("/etc/shadow").read(1)),
        "write_code": attempt(lambda: open(os.path.join(root, "evil.py"), "w").write("x")),
        "write_tmp": attempt(lambda: open("/tmp/small", "w").write("fine")),
        "write_tmp_past_cap": attempt(write_big),
        "signal_parent": attempt(lambda: os.kill(os.getppid(), 0)),
        "tmpdir": os.environ.get("TMPDIR"),
        "runtime_api": os.environ.get("AWS_LAMBDA_RUNTIME_API"),
        "env_keys": sorted(os.environ.keys()),
        "syscalls": denied_calls(),
        "cgroup_limit": cgroup_limit(),
        "fork_alloc": fork_alloc(),
    }


def handler(event, context):
    global COUNT
    COUNT += 1
    if isinstance(event, dict) and event.get("version") == "2.0":
        op = (event.get("pathParameters") or {}).get("op")
        if op == "hello":
            return {"statusCode": 200, "headers": {"content-type": "text/plain"}, "body": "Hello, world!"}
        if op == "error":
            raise ValueError("asked to fail")
        if op == "sleep":
            time.sleep(60)
        if op == "sleep1":
            time.sleep(1)
        if op == "alloc":
            blob = bytearray(512 << 20)
            for i in range(0, len(blob), 4096):
                blob[i] = 1
        if op == "exit":
            os._exit(3)
        if op == "big":
            return {"statusCode": 200, "body": "x" * (100 << 10)}
        if op == "grow":
            GROWN.append(b"x" * (4 << 20))  # 4 MiB more each time, in about a millisecond
        if op == "memfd":
            return {"statusCode": 200, "body": memfd_fill()}
        if op == "escape":
            return {"statusCode": 200, "body": json.dumps(escape())}
        return {"statusCode": 200, "headers": {"content-type": "application/json"},
                "body": json.dumps(info(event, context))}
    if isinstance(event, dict) and event.get("Records") and event["Records"][0].get("eventSource") == "aws:sqs":
        failures = []
        for r in event["Records"]:
            print("sqs", r["body"])
            if r["body"] == "fail":
                failures.append({"itemIdentifier": r["messageId"]})
        return {"batchItemFailures": failures}
    if isinstance(event, dict) and event.get("detail-type") == "Scheduled Event":
        print("scheduled", event["id"])
        return None
    custom = context.client_context.custom if context.client_context else None
    return {"echo": event, "request_id": context.aws_request_id, "count": COUNT, "client_context": custom}
