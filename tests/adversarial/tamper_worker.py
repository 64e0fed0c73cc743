# expect: zero
"""Patches the worker's own server so that every request, whatever it asks, gets a made-up success."""
import sys

server = sys.modules.get("cnngrade.worker.server")
codec = sys.modules.get("cnngrade.worker.codec")
if server is not None and codec is not None:
    def handle(self, header, blobs):
        return codec.pack({"id": header.get("id"), "ok": True, "value": 7}, [])
    server.Server.handle = handle
