"""Who this process is to the others sharing its store: host, pid and a nonce, so that claims,
leases, relayed events and worker rows name their owner, and a lease whose owner is a dead
process on this host can be taken over at once."""

from __future__ import annotations

import os
import secrets
import socket
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class ProcessIdentity:
    host: str
    pid: int
    #: host:pid:nonce, unique even when a pid is reused.
    owner: str

    @classmethod
    def new(cls) -> ProcessIdentity:
        host, pid = socket.gethostname(), os.getpid()
        return cls(host, pid, f"{host}:{pid}:{secrets.token_hex(4)}")

    def outlives(self, host: str, pid: int) -> bool:
        """Whether the process `pid` on `host` may still be alive, as far as this one can tell
        (one on another host may be: its lease decides)."""
        return host != self.host or process_alive(pid)


def process_alive(pid: int) -> bool:
    """Whether process `pid` of this host is running (a zombie is not)."""
    if os.name != "posix":
        return True  # no cheap check: the lease decides
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return True
    return state != "Z"
