#!/usr/bin/python3
"""Runs a command on a pseudo-terminal of its own, as a person at a terminal
would, and types the PIN (environment variable TYPED_PIN) whenever the
command asks for one ("...PIN...:" or "...passphrase...:" at the end of
its output), and says so on a line "(type-pin: typed the PIN)". Passes
the output through; exits with the command's status
(124 when it is silent for 60 s, 125 when it asks more than 3 times).

    TYPED_PIN=123456 type-pin.py COMMAND [ARGS...]
"""
import os
import pty
import re
import select
import signal
import sys
import time

PROMPT = re.compile(rb"(PIN|passphrase)[^\n]*:\s*$", re.IGNORECASE)


def main():
    pin = os.environ["TYPED_PIN"].encode()
    pid, fd = pty.fork()
    if pid == 0:
        os.execvp(sys.argv[1], sys.argv[1:])
    tail = b""
    answers = 0
    while True:
        ready, _, _ = select.select([fd], [], [], 60)
        if not ready:
            os.kill(pid, signal.SIGTERM)
            os.waitpid(pid, 0)
            return 124
        try:
            data = os.read(fd, 4096)
        except OSError:  # the command closed the terminal (it ended)
            break
        if not data:
            break
        sys.stdout.buffer.write(data)
        sys.stdout.flush()
        tail = (tail + data)[-400:]
        if PROMPT.search(tail):
            answers += 1
            if answers > 3:
                os.kill(pid, signal.SIGTERM)
                os.waitpid(pid, 0)
                return 125
            time.sleep(0.2)  # let it turn echo off first
            os.write(fd, pin + b"\n")
            print("\n(type-pin: typed the PIN)", flush=True)
            tail = b""
    _, status = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(status)


if __name__ == "__main__":
    sys.exit(main())
