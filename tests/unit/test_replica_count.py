"""Which replicas `auto` WAIT counts: those INFO replication lists in sync, not those still loading
the primary's snapshot (an old primary rejoining after a failover)."""

from __future__ import annotations

from service.redis import in_sync_replicas


def test_only_replicas_in_sync_count() -> None:
    info = {
        "role": "master",
        "connected_slaves": 3,
        "slave0": {"ip": "10.0.0.2", "port": 6379, "state": "online", "offset": 1234, "lag": 0},
        "slave1": {"ip": "10.0.0.3", "port": 6379, "state": "wait_bgsave", "offset": 0, "lag": 0},
        "slave2": {"ip": "10.0.0.4", "port": 6379, "state": "send_bulk", "offset": 0, "lag": 1},
        "slave_read_repl_offset": 1234,  # not a replica's line
    }
    assert in_sync_replicas(info) == 1


def test_no_replica_none_counted() -> None:
    assert in_sync_replicas({"role": "master", "connected_slaves": 0}) == 0
