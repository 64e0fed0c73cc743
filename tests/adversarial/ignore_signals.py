# expect: zero
"""Ignores every signal it can, starts a child that does the same, and hangs while being imported."""
import os
import signal
import sys
import time

for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP, signal.SIGQUIT, signal.SIGUSR1, signal.SIGXCPU):
    signal.signal(sig, signal.SIG_IGN)
if os.fork() == 0:
    os.execv(sys.executable, [sys.executable, "-c",
                              "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); time.sleep(600)",
                              "@@MARK@@-stubborn"])
time.sleep(3600)
