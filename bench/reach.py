"""Reach-search benchmark on synthetic Barabási–Albert networks stored in a real SQLite file.

Prints build time and memory of ``ReachIndex.from_db``, latency percentiles of ``experts`` and
``degree_counts`` for random sources, the cost of incremental updates, and (at up to 100k members)
the same expert query answered by networkx. Run: ``python bench/reach.py [--members N ...]``.

``--memory-only`` prints, for each size, only what one process's index holds (``memory_bytes``
after a query for the 1% skill, and the process's resident memory), built with ``from_edges`` in a
fresh process: the figures ``docs/deployment.md`` extrapolates from.
"""

from __future__ import annotations

import argparse
import gc
import multiprocessing
import os
import resource
import sqlite3
import tempfile
import time
from pathlib import Path

import numpy as np
import scipy.sparse as sp
from sqlalchemy import create_engine

from marketplace.network.reach import ReachIndex

SKILL = 1
"""Held by 1% of members: the skill the targets are stated for."""
RARE_SKILL = 2
"""Held by 0.05% of members, so that fewer than k experts lie within two hops and hop 3 is searched."""
ATTACH_BY_SIZE = {100_000: 50, 1_000_000: 20}
"""Edges each new member brings: about 5M connections at 100k members, 20M at 1M."""


def barabasi_albert(members: int, attach: int, rng: np.random.Generator) -> sp.csr_array:
    """Symmetric adjacency of a Barabási–Albert-like graph, built without a Python loop.

    Batagelj–Brandes: edge ``e`` joins its new member to the endpoint held in a uniformly chosen
    earlier endpoint slot, so members are picked in proportion to their degree. A slot holding a
    copied endpoint points at an earlier slot; pointer jumping resolves all copies at once.
    Self-loops and repeated edges are dropped, so a little fewer than ``members * attach`` remain.
    """
    edges = members * attach
    chosen = (rng.random(edges) * (2 * np.arange(edges) + 1)).astype(np.int64)
    slot = chosen.copy()
    copied = np.flatnonzero(slot & 1)
    while copied.size:
        slot[copied] = chosen[slot[copied] >> 1]
        copied = copied[(slot[copied] & 1) == 1]
    new = (np.arange(edges) // attach).astype(np.int32)
    old = ((slot >> 1) // attach).astype(np.int32)
    keep = new != old
    rows = np.concatenate([new[keep], old[keep]])
    cols = np.concatenate([old[keep], new[keep]])
    graph = sp.coo_array((np.ones(rows.size, dtype=bool), (rows, cols)), shape=(members, members))
    return graph.tocsr()


def write_database(path: Path, graph: sp.csr_array, holders: dict[int, np.ndarray]) -> None:
    """Both directions of every connection, in primary-key order, as the application stores them."""
    db = sqlite3.connect(path)
    db.execute("PRAGMA journal_mode=OFF")
    db.execute("PRAGMA synchronous=OFF")
    db.execute(
        "CREATE TABLE connections (user_id INTEGER NOT NULL, peer_id INTEGER NOT NULL, PRIMARY KEY (user_id, peer_id))"
    )
    db.execute(
        "CREATE TABLE user_skills (user_id INTEGER NOT NULL, skill_id INTEGER NOT NULL,"
        " PRIMARY KEY (user_id, skill_id))"
    )
    user_ids = np.repeat(np.arange(graph.shape[0]), np.diff(graph.indptr)) + 1
    peer_ids = graph.indices + 1
    batch = 1_000_000
    for start in range(0, user_ids.size, batch):
        rows = zip(user_ids[start : start + batch].tolist(), peer_ids[start : start + batch].tolist(), strict=True)
        db.executemany("INSERT INTO connections VALUES (?, ?)", rows)
    for skill, members in holders.items():
        db.executemany("INSERT INTO user_skills VALUES (?, ?)", ((member + 1, skill) for member in members.tolist()))
    db.commit()
    db.close()


def build(path: Path) -> ReachIndex:
    engine = create_engine(f"sqlite:///{path}")
    with engine.connect() as connection:
        index = ReachIndex.from_db(connection)
    engine.dispose()
    return index


def measure_build(path: Path) -> tuple[float, int, int, int]:
    """Build time, ``memory_bytes``, RSS growth and peak RSS, run where nothing else was allocated."""
    before = resident_bytes()
    seconds, index = timed(lambda: build(path))
    gc.collect()
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    return seconds, index.memory_bytes(), resident_bytes() - before, peak


def resident_bytes() -> int:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def timed(call) -> tuple[float, object]:
    start = time.perf_counter()
    result = call()
    return time.perf_counter() - start, result


def percentiles(seconds: list[float]) -> str:
    ms = np.array(seconds) * 1000
    return f"p50 {np.percentile(ms, 50):7.2f} ms   p99 {np.percentile(ms, 99):7.2f} ms   max {ms.max():7.2f} ms"


def networkx_experts(graph, source: int, holders: set[int], k: int):
    """The same query with networkx: BFS to depth 3, filter by skill, rank like the engine.

    Returns the top ``k`` as ``(user_id, hops)`` and the distances, for checking degree counts.
    """
    import networkx as nx

    distances = nx.single_source_shortest_path_length(graph, source, cutoff=3)
    neighbours = set(graph[source])
    found = [
        (hops, -len(neighbours & set(graph[user])), user)
        for user, hops in distances.items()
        if hops and user in holders
    ]
    return [(user, hops) for hops, _, user in sorted(found)[:k]], distances


def run(members: int, attach: int, sources: int, networkx_sources: int, directory: Path, seed: int) -> None:
    rng = np.random.default_rng(seed)
    print(f"\n== {members:,} members, {attach} edges per new member ==")
    seconds, graph = timed(lambda: barabasi_albert(members, attach, rng))
    degrees = np.diff(graph.indptr)
    print(
        f"graph: {graph.nnz // 2:,} connections in {seconds:.1f} s; "
        f"degree median {np.median(degrees):.0f}, p99 {np.percentile(degrees, 99):.0f}, max {degrees.max():,}"
    )
    holders = {
        SKILL: np.sort(rng.choice(members, members // 100, replace=False)),
        RARE_SKILL: np.sort(rng.choice(members, members // 2000, replace=False)),
    }
    path = directory / f"reach-{members}.sqlite"
    seconds, _ = timed(lambda: write_database(path, graph, holders))
    print(f"sqlite: {graph.nnz:,} connection rows written in {seconds:.1f} s ({path.stat().st_size / 1e6:.0f} MB)")

    with multiprocessing.get_context("spawn").Pool(1) as fresh_process:
        seconds, memory, resident, peak = fresh_process.apply(measure_build, (path,))
    csr_bytes = graph.nnz * (4 + 1) + (members + 1) * 4  # int32 indices, bool data, int32 indptr
    print(
        f"from_db: {seconds:.2f} s; memory_bytes {memory / 2**20:.0f} MiB (CSR adjacency {csr_bytes / 2**20:.0f} MiB)"
        f"; in a fresh process RSS grew {resident / 2**20:.0f} MiB, peak RSS {peak / 2**20:.0f} MiB"
    )
    index = build(path)

    user_ids = rng.choice(members, sources, replace=False) + 1
    seconds, _ = timed(lambda: index.experts(int(user_ids[0]), [SKILL]))
    print(
        f"first query, building the skill's links: {seconds * 1000:.1f} ms; memory_bytes now "
        f"{index.memory_bytes() / 2**20:.0f} MiB"
    )
    query_seconds = time_experts(index, user_ids, SKILL, "experts(k=10)")
    index.experts(int(user_ids[0]), [RARE_SKILL])
    time_experts(index, user_ids, RARE_SKILL, "experts(k=10), rare skill")
    count_seconds = [timed(lambda user=user: index.degree_counts(user))[0] for user in user_ids.tolist()]
    print(f"degree_counts(3 hops), {sources} sources: {percentiles(count_seconds)}")

    if networkx_sources:
        compare_with_networkx(index, graph, holders[SKILL], user_ids[:networkx_sources], query_seconds)

    others = rng.choice(members, (200, 2)) + 1
    update_seconds = [timed(lambda a=a, b=b: index.add_connection(a, b))[0] for a, b in others.tolist() if a != b]
    print(f"add_connection, {len(update_seconds)} updates:     {percentiles(update_seconds)}")
    overlay_seconds = [timed(lambda user=user: index.experts(user, [SKILL], k=10))[0] for user in user_ids.tolist()]
    print(f"experts with those updates in the overlay: {percentiles(overlay_seconds)}")
    seconds, _ = timed(index.compact)
    print(f"compaction into the CSR: {seconds:.2f} s")


def time_experts(index: ReachIndex, user_ids: np.ndarray, skill: int, label: str) -> list[float]:
    seconds, deepest = [], []
    for user in user_ids.tolist():
        elapsed, found = timed(lambda user=user: index.experts(user, [skill], k=10))
        seconds.append(elapsed)
        deepest.append(max((r.hops for r in found), default=0))
    print(f"{label}, {len(user_ids)} sources: {percentiles(seconds)}")
    print(f"  answered within 2 hops: {sum(d <= 2 for d in deepest)}/{len(user_ids)}")
    return seconds


def compare_with_networkx(index: ReachIndex, graph: sp.csr_array, holders, user_ids, engine_seconds) -> None:
    import networkx as nx

    upper = sp.triu(graph).tocoo()
    seconds, nx_graph = timed(lambda: nx.Graph(zip((upper.row + 1).tolist(), (upper.col + 1).tolist(), strict=True)))
    print(f"networkx: graph built in {seconds:.1f} s")
    holder_ids = set((holders + 1).tolist())
    nx_seconds = []
    for user in user_ids.tolist():
        seconds, (expected, distances) = timed(lambda user=user: networkx_experts(nx_graph, user, holder_ids, 10))
        nx_seconds.append(seconds)
        assert [(r.user_id, r.hops) for r in index.experts(user, [SKILL], k=10)] == expected
        assert index.degree_counts(user) == tuple(sum(d == h for d in distances.values()) for h in (1, 2, 3))
    ratio = np.median(nx_seconds) / np.median(engine_seconds[: len(nx_seconds)])
    print(f"networkx experts, {len(nx_seconds)} sources:  {percentiles(nx_seconds)}")
    print(f"  same experts and degree counts; networkx median / engine median on these sources: {ratio:,.0f}x")


def measure_memory(members: int, attach: int, seed: int) -> tuple[int, int, int, int]:
    """In a fresh process: (connections, ``memory_bytes`` after one query, RSS of the process
    with only the index left, RSS before anything was built)."""
    baseline = resident_bytes()
    rng = np.random.default_rng(seed)
    graph = barabasi_albert(members, attach, rng)
    connections = graph.nnz // 2
    upper = sp.triu(graph).tocoo()
    holders = {SKILL: rng.choice(members, members // 100, replace=False) + 1}
    index = ReachIndex.from_edges(np.arange(1, members + 1), upper.row + 1, upper.col + 1, holders)
    del graph, upper
    index.experts(1, [SKILL])
    gc.collect()
    return connections, index.memory_bytes(), resident_bytes(), baseline


def memory_only(sizes: list[int], attach: int, seed: int) -> None:
    print(f"{'members':>10} {'connections':>12} {'memory_bytes':>13} {'process RSS':>12} {'bytes/connection':>17}")
    for members in sizes:
        with multiprocessing.get_context("spawn").Pool(1) as fresh_process:
            connections, memory, resident, baseline = fresh_process.apply(measure_memory, (members, attach, seed))
        print(
            f"{members:>10,} {connections:>12,} {memory / 2**20:>9.0f} MiB {resident / 2**20:>8.0f} MiB "
            f"{memory / connections:>17.1f}   (interpreter and libraries alone: {baseline / 2**20:.0f} MiB)"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--members", type=int, action="append", help="graph size (repeatable); default 100k and 1M")
    parser.add_argument("--attach", type=int, help="edges per new member (default: 50 at 100k, 20 otherwise)")
    parser.add_argument("--sources", type=int, default=200, help="random sources per query type")
    parser.add_argument("--networkx-sources", type=int, default=20, help="sources for the networkx comparison")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--memory-only", action="store_true", help="only the index's memory at each size")
    args = parser.parse_args()
    if args.memory_only:
        memory_only(args.members or [100_000, 200_000, 400_000], args.attach or 20, args.seed)
        return
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="reach-bench-") as directory:
        for members in args.members or [100_000, 1_000_000]:
            attach = args.attach or ATTACH_BY_SIZE.get(members, 20)
            networkx_sources = args.networkx_sources if members <= 100_000 else 0
            run(members, attach, args.sources, networkx_sources, Path(directory), args.seed)
    print(f"\ntotal {time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    main()
