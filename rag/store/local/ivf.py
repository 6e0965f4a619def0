"""An IVF index with 8-bit codes, trained and written to its file in bounded memory.

The store trains and writes its IVF file (`rag.store.local.ivf_files`) from vectors it
reads from SQLite in batches, so that an ingest's memory does not grow with the index:

- `train` runs spherical k-means (Lloyd's, inner product) on a sample of the vectors that
  is read again batch by batch at each iteration: memory holds the centroids, their sums
  and one batch. The 8-bit quantizer's ranges are the per-dimension minimum and maximum
  of the sample's residuals (what FAISS's `RS_minmax` training computes), gathered in the
  last pass.
- `write` encodes the vectors batch by batch with FAISS itself (an empty copy of the
  trained index, emptied after each batch), keeps each batch's codes and ids on disk in
  list order, then writes the file FAISS reads: the trained index's own header, then
  its inverted lists, list by list, read back from those batches. Memory holds one batch
  and a count per list and batch, never the index.

The file is byte for byte what `faiss.write_index` writes for the same index with every
list in its "full" layout (a test holds the two equal), so `faiss.read_index` loads it.
"""

from __future__ import annotations

import os
import struct
import tempfile
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from numpy.typing import NDArray

ITERATIONS = 12  # k-means passes over the sample
ADD_STEP = 16  # vectors FAISS encodes per call
PART = 1024  # vectors encoded before their codes go to disk, list by list
_LISTS_TAIL = 32  # bytes FAISS writes for empty inverted lists: "ilar", nlist, code size, "sprs", 0
_NTOTAL_AT = 8  # offset of the vector count in an IVF file: fourcc, then the dimension (int32)
_NLIST_AT = 37  # offset of the list count: fourcc, d, ntotal, 2 dummies, is_trained, metric


def train(
    dimension: int,
    lists: int,
    sample: Callable[[], Iterable[NDArray[np.float32]]],
    iterations: int = ITERATIONS,
    seed: int = 0,
) -> Any:
    """An empty, trained `IndexIVFScalarQuantizer` (inner product, SQ8, residual codes)
    whose `lists` centroids are learnt from the vectors `sample()` yields, each call the
    same ones again, in batches."""
    import faiss

    centroids = _first(sample, lists, dimension, seed)
    rng = np.random.default_rng(seed)
    for _ in range(iterations):
        sums = np.zeros((lists, dimension), dtype=np.float32)
        counts = np.zeros(lists, dtype=np.int64)
        for batch in sample():
            assigned = _assign(batch, centroids)
            order = np.argsort(assigned, kind="stable")
            present, starts = np.unique(assigned[order], return_index=True)
            sums[present] += np.add.reduceat(batch[order], starts, axis=0)
            counts[present] += np.diff(np.append(starts, len(batch)))
        empty = counts == 0
        centroids = np.where(empty[:, None], centroids, sums)
        if empty.any():  # an empty list takes a perturbed copy of a busy one's centroid
            busy = rng.choice(np.flatnonzero(~empty), size=int(empty.sum()))
            noise = rng.standard_normal((len(busy), dimension)).astype(np.float32) * 1e-3
            centroids[empty] = centroids[busy] + noise
        centroids /= np.maximum(np.linalg.norm(centroids, axis=1, keepdims=True), 1e-12)
    low = np.full(dimension, np.inf, dtype=np.float32)
    high = np.full(dimension, -np.inf, dtype=np.float32)
    for batch in sample():
        residuals = batch - centroids[_assign(batch, centroids)]
        low, high = np.minimum(low, residuals.min(axis=0)), np.maximum(high, residuals.max(axis=0))

    index: Any = faiss.index_factory(dimension, f"IVF{lists},SQ8", faiss.METRIC_INNER_PRODUCT)
    faiss.downcast_index(index.quantizer).add(np.ascontiguousarray(centroids))
    faiss.copy_array_to_vector(np.concatenate([low, high - low]).astype(np.float32), index.sq.trained)
    index.is_trained = True
    return index


def write(trained: Any, batches: Iterable[tuple[Any, NDArray[np.float32]]], path: Path) -> int:
    """Write `trained` (an empty IVF index) holding the (ids, vectors) of `batches` to
    `path` (through a temporary file, flushed, renamed into place); returns the count."""
    import faiss

    ivf = faiss.extract_index_ivf(trained)
    nlist, code_size = int(ivf.nlist), int(ivf.code_size)
    scratch = faiss.clone_index(trained)
    scratch_ivf = faiss.extract_index_ivf(scratch)
    sizes: list[NDArray[np.int32]] = []  # per part: vectors in each list
    tmp = path.with_suffix(".tmp")

    def flush() -> None:
        """Move the scratch index's lists to the files, in list order, and empty it."""
        lists: Any = scratch_ivf.invlists
        held = np.fromiter((lists.list_size(n) for n in range(nlist)), dtype=np.int32, count=nlist)
        for n in np.flatnonzero(held):
            size = int(held[n])
            codes.write(faiss.rev_swig_ptr(lists.get_codes(int(n)), size * code_size).tobytes())
            ids.write(faiss.rev_swig_ptr(lists.get_ids(int(n)), size).tobytes())
        sizes.append(held)
        scratch.reset()

    with tempfile.TemporaryFile(dir=path.parent) as codes, tempfile.TemporaryFile(dir=path.parent) as ids:
        for batch_ids, matrix in batches:
            matrix = np.ascontiguousarray(matrix, dtype=np.float32)
            batch_ids = np.asarray(batch_ids, dtype=np.int64)
            # Fewer than FAISS's BLAS threshold (20) at a time: its BLAS buffers stay untouched.
            for at in range(0, len(batch_ids), ADD_STEP):
                scratch.add_with_ids(matrix[at : at + ADD_STEP], batch_ids[at : at + ADD_STEP])
            if scratch.ntotal >= PART:
                flush()
        if scratch.ntotal:
            flush()
        codes.flush()
        ids.flush()
        counts = np.zeros(nlist, dtype=np.int64)
        for held in sizes:
            counts += held
        total = int(counts.sum())
        with open(tmp, "wb") as out:
            out.write(_header(trained, total))
            out.write(b"ilar" + struct.pack("<QQ", nlist, code_size) + b"full")
            out.write(struct.pack("<Q", nlist) + counts.astype("<u8").tobytes())
            for size in _segments(sizes, nlist):
                for at, count in size:
                    out.write(os.pread(codes.fileno(), count * code_size, at * code_size))
                for at, count in size:
                    out.write(os.pread(ids.fileno(), count * 8, at * 8))
            out.flush()
            os.fsync(out.fileno())
    os.replace(tmp, path)
    return total


def trained_from(path: Path) -> Any | None:
    """The trained, empty index of an IVF file `write` wrote (its lists not read), or
    None when the file is not laid out as `write` lays it out."""
    import faiss

    size = path.stat().st_size
    with open(path, "rb") as fh:
        head = fh.read(_NLIST_AT + 8)
        if len(head) < _NLIST_AT + 8 or head[:4] != b"IwSq":
            return None
        (total,) = struct.unpack_from("<q", head, _NTOTAL_AT)
        (nlist,) = struct.unpack_from("<Q", head, _NLIST_AT)
        (dimension,) = struct.unpack_from("<i", head, 4)
        lists_at = size - _LISTS_TAIL - 8 * nlist - total * (dimension + 8)
        if lists_at <= 0:
            return None
        fh.seek(lists_at)
        if fh.read(24) != b"ilar" + struct.pack("<QQ", nlist, dimension) + b"full":
            return None
        fh.seek(0)
        prefix = bytearray(fh.read(lists_at))
    prefix[_NTOTAL_AT : _NTOTAL_AT + 8] = struct.pack("<q", 0)
    empty = b"ilar" + struct.pack("<QQ", nlist, dimension) + b"sprs" + struct.pack("<Q", 0)
    return faiss.deserialize_index(np.frombuffer(bytes(prefix) + empty, dtype=np.uint8))


def _header(trained: Any, total: int) -> bytes:
    """What FAISS writes of `trained` before its inverted lists, with `total` vectors."""
    import faiss

    serialized = faiss.serialize_index(trained).tobytes()
    tail = serialized[-_LISTS_TAIL:]
    if tail[:4] != b"ilar" or tail[20:24] != b"sprs":  # an index with vectors, or another layout
        raise ValueError("not an empty IVF index with array lists")
    head = bytearray(serialized[:-_LISTS_TAIL])
    head[_NTOTAL_AT : _NTOTAL_AT + 8] = struct.pack("<q", total)
    return bytes(head)


def _segments(sizes: list[NDArray[np.int32]], nlist: int) -> Iterator[list[tuple[int, int]]]:
    """For each list: where its vectors lie in the batches' files, as (position, count)
    in vectors, batch after batch."""
    bases = np.cumsum([0] + [int(s.sum()) for s in sizes])
    starts = [np.cumsum(s, dtype=np.int64) - s for s in sizes]
    for n in range(nlist):
        yield [(int(bases[b] + starts[b][n]), int(s[n])) for b, s in enumerate(sizes) if s[n]]


def _first(
    sample: Callable[[], Iterable[NDArray[np.float32]]], lists: int, dimension: int, seed: int
) -> NDArray[np.float32]:
    """The starting centroids: `lists` vectors of the sample (repeated if it is smaller)."""
    picked: list[NDArray[np.float32]] = []
    held = 0
    for batch in sample():
        picked.append(np.array(batch[: lists - held], dtype=np.float32))
        held += len(picked[-1])
        if held >= lists:
            break
    if not held:
        raise ValueError("no vectors to train on")
    first = np.concatenate(picked)
    if held < lists:
        rng = np.random.default_rng(seed)
        extra = first[rng.integers(0, held, lists - held)]
        first = np.concatenate([first, extra + rng.standard_normal(extra.shape).astype(np.float32) * 1e-3])
    return first.reshape(lists, dimension)


def _assign(batch: NDArray[np.float32], centroids: NDArray[np.float32]) -> NDArray[np.int64]:
    """The nearest centroid (inner product) of each vector, 256 vectors at a time."""
    return np.concatenate(
        [np.argmax(batch[i : i + 256] @ centroids.T, axis=1) for i in range(0, len(batch), 256)]
    ).astype(np.int64)
