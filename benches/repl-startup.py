#!/usr/bin/env python3
"""Time from process start to the first REPL prompt, in a pseudo-terminal, with no login.

    python3 benches/repl-startup.py "rf> " target/release/rulesforce repl
    python3 benches/repl-startup.py "repl> " "$(which rhai-repl)"   # for comparison

The token-flow settings below let `rulesforce repl` start without the emulator; nothing
is sent, since the REPL logs in only on the first call that needs it.
"""
import os, pty, sys, time, statistics, select
def first_prompt(argv, marker, env):
    start = time.perf_counter()
    pid, fd = pty.fork()
    if pid == 0:
        os.execve(argv[0], argv, env)
    buf = b""
    while marker not in buf:
        r, _, _ = select.select([fd], [], [], 10)
        if not r: raise SystemExit("no prompt: %r" % buf[-200:])
        try: buf += os.read(fd, 4096)
        except OSError: break
    elapsed = time.perf_counter() - start
    os.kill(pid, 9); os.waitpid(pid, 0); os.close(fd)
    return elapsed
argv = sys.argv[2:]
marker = sys.argv[1].encode()
env = {"TERM": "xterm", "HOME": "/tmp/startup-home", "PATH": "/usr/bin:/bin",
       "SF_INSTANCE_URL": "https://example.my.salesforce.com", "SF_ACCESS_TOKEN": "00Dxx!notreal"}
os.makedirs("/tmp/startup-home", exist_ok=True)
times = [first_prompt(argv, marker, env) for _ in range(20)]
print(f"{argv[0]}: median {statistics.median(times)*1000:.1f} ms, min {min(times)*1000:.1f} ms, max {max(times)*1000:.1f} ms over {len(times)} runs")
