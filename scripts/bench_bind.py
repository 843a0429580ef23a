"""Benchmark (not a test), over N sandbox instances running at once: RunInstances to the first
password login over real SSH (the image cached), the memory and disk an idle instance costs, and
the time from an AssociateInstancesKeyPairs call to the first successful key login.

Started by scripts/bench-bind, which builds the release binary and passes its path."""
import glob
import os
import statistics
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "tests", "conformance"))
from sandbox import (call, key_login, logged_in, password_login, run_instances,  # noqa: E402
                     save_private_key, start_sandbox_server, wait_settled)
from support import cvm  # noqa: E402


def total_pss_kib() -> int:
    total = 0
    for path in glob.glob("/proc/[0-9]*/smaps_rollup"):
        try:
            with open(path) as f:
                for line in f:
                    if line.startswith("Pss:"):
                        total += int(line.split()[1])
                        break
        except OSError:
            pass
    return total


def pct(values, p):
    values = sorted(values)
    return values[min(len(values) - 1, int(len(values) * p))]


def main():
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 100
    srv = start_sandbox_server("--log", "warn")
    try:
        client = cvm(srv, srv.create_account())
        # The first launch installs the image from the cache; not part of the figures.
        (warm,) = run_instances(client, name="warm")
        call(client, "TerminateInstances", InstanceIds=[warm])
        before = total_pss_kib()
        ids, launch_ms = [], []
        for _ in range(min(n, 30)):
            t0 = time.monotonic()
            (iid,) = run_instances(client, name="bench")
            inst = wait_settled(client, [iid])[iid]
            while not logged_in(password_login(inst)):
                if time.monotonic() - t0 > 60:
                    raise SystemExit(f"{iid}: no login within 60 s")
            launch_ms.append((time.monotonic() - t0) * 1000)
            ids.append(iid)
        print(f"RunInstances -> first password login over ssh, {len(launch_ms)} launches one after "
              f"another (cached image): p50 {pct(launch_ms, 0.5):.0f} ms, p99 {pct(launch_ms, 0.99):.0f} ms, "
              f"max {max(launch_ms):.0f} ms")
        while len(ids) < n:
            ids += run_instances(client, count=min(100, n - len(ids)), name="bench")
        time.sleep(2)
        after = total_pss_kib()
        print(f"{n} running sandbox instances: +{(after - before) / 1024:.1f} MiB PSS in all, "
              f"{(after - before) / n:.0f} KiB per idle instance (all processes on the host: init, sshd, "
              f"slirp4netns, the server's share)")
        uppers = glob.glob(str(srv.data_dir / "sandbox" / "guests" / "*" / "disk" / "upper"))
        du = subprocess.run(["du", "-sk", *uppers], capture_output=True, text=True).stdout.split()
        disk_kib = sum(int(x) for x in du[::2])
        print(f"disk per instance after its first boot (its own upper layer): {disk_kib / max(1, len(uppers)):.0f} KiB")
        kp = call(client, "CreateKeyPair", KeyName="bench_key", ProjectId=0).KeyPair
        key_file = save_private_key(kp.PrivateKey, __import__("pathlib").Path(tempfile.mkdtemp()))
        latencies = []
        for iid in ids:
            t0 = time.monotonic()
            call(client, "AssociateInstancesKeyPairs", InstanceIds=[iid], KeyIds=[kp.KeyId], ForceStop=True)
            inst = None
            while True:
                inst = inst or wait_settled(client, [iid])[iid]
                if logged_in(key_login(inst, key_file)):
                    break
                if time.monotonic() - t0 > 60:
                    raise SystemExit(f"{iid}: no key login within 60 s")
            latencies.append(time.monotonic() - t0)
        ms = [x * 1000 for x in latencies]
        print(f"bind call -> first key login over ssh, {n} instances one after another: "
              f"p50 {pct(ms, 0.5):.0f} ms, p99 {pct(ms, 0.99):.0f} ms, "
              f"mean {statistics.mean(ms):.0f} ms, max {max(ms):.0f} ms")
    finally:
        srv.stop()
        subprocess.run(["rm", "-rf", str(srv.data_dir)])


if __name__ == "__main__":
    main()
