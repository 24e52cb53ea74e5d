#!/usr/bin/env python3
"""Writes Sources/wharf/hot-functions.order: the functions of the release binary that
`wharf serve` runs while it starts, waits and takes uploads, one mangled name per line.

Release builds link with lld and `--symbol-ordering-file` (see Package.swift), which
places these functions next to each other at the start of the binary's code. The kernel
maps a program's code 64 KiB at a time around each page it touches, so the same functions
scattered across 27 MB of code cost several times their size in resident memory. Run it
through scripts/order-functions, which builds the binary and installs valgrind first.

How: the binary runs under `valgrind --tool=callgrind`, which records every function
executed; a copy without DWARF is used, since valgrind cannot read the toolchain's. Names
defined more than once (local helpers the compiler emits in many files, such as value
witnesses) are left out: the linker would move every file's copy, and most are cold.
"""

import argparse
import collections
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bench import free_port, listening, run, wait_until  # noqa: E402

FUNCTION_TYPES = set("tTwW")


def defined_functions(binary):
    """Each function symbol the binary defines, with the number of times it is defined."""
    symbols = subprocess.run(["nm", "--defined-only", binary], capture_output=True, text=True, check=True).stdout
    count = collections.Counter()
    for line in symbols.splitlines():
        fields = line.split()
        if len(fields) == 3 and fields[1] in FUNCTION_TYPES:
            count[fields[2]] += 1
    return count


def executed_functions(callgrind_output, object_name):
    """The functions callgrind saw executed in `object_name` (its file name)."""
    objects, functions = {}, {}
    current_object, executed = None, set()

    def resolve(table, value):
        # Callgrind compresses names: "(12) name" defines id 12, "(12)" refers to it.
        match = re.match(r"\((\d+)\)(?: (.*))?$", value)
        if not match:
            return value
        identifier, name = match.groups()
        if name is not None:
            table[identifier] = name
        return table.get(identifier)

    with open(callgrind_output, errors="replace") as lines:
        for line in lines:
            line = line.rstrip("\n")
            if line.startswith("ob="):
                current_object = resolve(objects, line[3:])
            elif line.startswith("cob="):
                resolve(objects, line[4:])
            elif line.startswith("fn="):
                name = resolve(functions, line[3:])
                if current_object and os.path.basename(current_object) == object_name:
                    # Recursion shows as name'2; the symbol is the same.
                    executed.add(re.sub(r"'\d+$", "", name))
            elif line.startswith("cfn="):
                resolve(functions, line[4:])
    return executed


def profile(binary, workdir, uploads):
    """Runs `wharf serve` under callgrind through start-up, uploads and an idle pause."""
    traced = f"{workdir}/wharf"
    shutil.copy(binary, traced)
    subprocess.run(["strip", "--strip-debug", traced], check=True)
    home = f"{workdir}/home"
    wharf = lambda *arguments: run([traced, *arguments, "--home", home])  # noqa: E731
    wharf("init", "--server-name", "localhost")
    wharf("partner", "add", "order")
    wharf("partner", "issue", "order")
    bundle = f"{home}/partners/order"

    port = free_port()
    output = f"{workdir}/callgrind.out"
    log = open(f"{workdir}/serve.log", "wb")
    server = subprocess.Popen(
        ["valgrind", "--tool=callgrind", "--demangle=no", f"--callgrind-out-file={output}",
         traced, "serve", "--home", home, "--listen", f"127.0.0.1:{port}",
         "--admin-listen", f"127.0.0.1:{free_port()}"],
        stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        wait_until(listening(port), "wharf serve under valgrind listens", timeout=600, process=server)
        payload = f"{workdir}/payload"
        with open(payload, "wb") as f:
            f.write(os.urandom(4096))
        curl = ["curl", "--silent", "--show-error", "--fail", "--cert", f"{bundle}/order.crt",
                "--key", f"{bundle}/order.key", "--cacert", f"{bundle}/ca.crt"]
        # A connection per upload, then several uploads on one kept-alive connection.
        for n in range(uploads):
            run([*curl, "--upload-file", payload, f"https://localhost:{port}/inbox/single-{n}.bin"], timeout=120)
        kept = []
        for n in range(uploads):
            kept += ["--upload-file", payload, f"https://localhost:{port}/inbox/kept-{n}.bin"]
        run([*curl, *kept], timeout=120)
        time.sleep(2)  # timers and the delivery worker's idle rounds
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=300)
    received = len(os.listdir(f"{home}/spool/inbox/order"))
    if received != 2 * uploads:
        sys.exit(f"the profiled server stored {received} of {2 * uploads} uploads; see {workdir}/serve.log")
    return output, os.path.basename(traced)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--wharf", required=True, help="the release binary to profile")
    parser.add_argument("--output", required=True, help="the order file to write")
    parser.add_argument("--uploads", type=int, default=5, help="uploads of each kind (default 5)")
    arguments = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="wharf-order-") as workdir:
        output, object_name = profile(arguments.wharf, workdir, arguments.uploads)
        executed = executed_functions(output, object_name)
    defined = defined_functions(arguments.wharf)
    ordered = sorted(name for name in executed if defined[name] == 1)
    with open(arguments.output, "w") as order:
        order.write("".join(f"{name}\n" for name in ordered))
    print(f"{len(ordered)} functions written to {arguments.output} "
          f"({len(executed)} executed, {len(executed) - len(ordered)} left out as unknown or defined twice)")


if __name__ == "__main__":
    main()
