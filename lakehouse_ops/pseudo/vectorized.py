"""Deterministic AES-SIV (RFC 5297) over whole Arrow arrays at once: the same tokens as cipher.py, without a
Python call per value.

S2V's CMAC chain and the CTR keystream are AES on 16-byte blocks; for values of equal length every step is one
AES-ECB call over all of them (one C call for thousands of blocks) plus numpy XORs. Base64 is done with lookup
tables over fixed-width rows. Values are grouped by byte length. Re-identification recomputes S2V over the
decrypted values and refuses the batch if any token does not authenticate (fail closed).

Randomized tokens (a nonce per value) are left to cipher.py: `pseudonymize_array` handles deterministic mode, and
`reidentify_array` hands anything but deterministic tokens back to the caller's per-value path.
"""

from typing import Any, Dict, Iterator, List, Mapping, Optional, Sequence, Tuple

import numpy as np

from lakehouse_ops.pseudo.cipher import ASSOCIATED_DATA, DETERMINISTIC, KeyMaterialError, Keyring, TokenError

Rows = np.ndarray  # uint8 [N, width]: one value per row
Block = Tuple[np.ndarray, Rows]  # (positions in the array, their rows)

_B64 = np.frombuffer(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/", dtype=np.uint8)
_B64_INV = np.full(256, 255, dtype=np.uint8)
_B64_INV[_B64] = np.arange(64, dtype=np.uint8)
_MODE = DETERMINISTIC[0]


def _dbl(block: bytes) -> bytes:
    """Doubling in GF(2^128) (RFC 5297 section 2.3) of a 16-byte string."""
    value = int.from_bytes(block, "big") << 1
    if value >> 128:
        value = (value & ((1 << 128) - 1)) ^ 0x87
    return value.to_bytes(16, "big")


def _xor(a: bytes, b: bytes) -> bytes:
    return bytes(x ^ y for x, y in zip(a, b))


class _SIV:
    """AES-SIV with one fixed associated data string (deterministic mode) for one 64-byte key."""

    def __init__(self, key: bytes, ad: bytes) -> None:
        from cryptography.hazmat.primitives.ciphers import algorithms

        self._mac = algorithms.AES(key[:32])
        self._ctr = algorithms.AES(key[32:])
        zero = self._aes(self._mac, np.zeros((1, 16), np.uint8))[0].tobytes()
        self._k1 = _dbl(zero)
        self._k2 = _dbl(self._k1)
        d = self._cmac_one(bytes(16))
        self._d = _xor(_dbl(d), self._cmac_one(ad))  # S2V state after the associated data: fixed per key

    @staticmethod
    def _aes(algorithm: Any, blocks: Rows) -> Rows:
        """AES-ECB of every 16-byte row, in one call. A new encryptor each time: they are not thread-safe, and
        the service converts requests on several threads."""
        from cryptography.hazmat.primitives.ciphers import Cipher, modes

        encryptor = Cipher(algorithm, modes.ECB()).encryptor()
        return np.frombuffer(encryptor.update(np.ascontiguousarray(blocks).tobytes()), np.uint8).reshape(-1, 16)

    def _cmac_one(self, message: bytes) -> bytes:
        return bytes(self._cmac(np.frombuffer(message, np.uint8).reshape(1, -1))[0].tobytes())

    def _cmac(self, rows: Rows) -> Rows:
        """CMAC (RFC 4493) of each row of `rows` (uint8 [N, m]); [N, 16]."""
        n, m = rows.shape
        blocks = max(1, -(-m // 16))
        padded = np.zeros((n, blocks * 16), np.uint8)
        padded[:, :m] = rows
        if m and m % 16 == 0:
            padded[:, -16:] ^= np.frombuffer(self._k1, np.uint8)
        else:
            padded[:, m] = 0x80
            padded[:, -16:] ^= np.frombuffer(self._k2, np.uint8)
        state = np.zeros((n, 16), np.uint8)
        for j in range(blocks):
            state = self._aes(self._mac, state ^ padded[:, j * 16 : (j + 1) * 16])
        return state

    def _s2v(self, plain: Rows) -> Rows:
        n, m = plain.shape
        if m >= 16:
            t = plain.copy()
            t[:, m - 16 :] ^= np.frombuffer(self._d, np.uint8)
        else:
            t = np.zeros((n, 16), np.uint8)
            t[:, :m] = plain
            t[:, m] = 0x80
            t ^= np.frombuffer(_dbl(self._d), np.uint8)
        return self._cmac(t)

    def _keystream(self, siv: Rows, length: int) -> Rows:
        n = siv.shape[0]
        blocks = -(-length // 16)
        if not blocks:
            return np.zeros((n, 0), np.uint8)
        q = siv.copy()
        q[:, 8] &= 0x7F
        q[:, 12] &= 0x7F
        counters = np.repeat(q[:, None, :], blocks, axis=1)
        low = counters[:, :, 12:16].copy().view(">u4")[..., 0]
        low = (low + np.arange(blocks, dtype=np.uint32)[None, :]).astype(">u4")
        counters[:, :, 12:16] = low[..., None].view(np.uint8).reshape(n, blocks, 4)
        return self._aes(self._ctr, counters.reshape(-1, 16)).reshape(n, blocks * 16)[:, :length]

    def seal(self, plain: Rows) -> Rows:
        """[N, m] plaintexts -> [N, 16 + m] SIV || ciphertext."""
        siv = self._s2v(plain)
        return np.concatenate([siv, plain ^ self._keystream(siv, plain.shape[1])], axis=1)

    def open(self, sealed: Rows) -> Tuple[Rows, np.ndarray]:
        """[N, 16 + m] -> ([N, m] plaintexts, [N] bool: authentic)."""
        siv, body = sealed[:, :16], sealed[:, 16:]
        plain = body ^ self._keystream(siv, body.shape[1])
        return plain, np.all(self._s2v(plain) == siv, axis=1)


def _b64encode_rows(rows: Rows) -> Rows:
    """Base64 of each row of a uint8 [N, L] matrix, as a uint8 [N, 4 * ceil(L / 3)] matrix of characters."""
    n, length = rows.shape
    groups = -(-length // 3)
    padded = np.zeros((n, groups * 3), np.uint8)
    padded[:, :length] = rows
    triples = padded.reshape(n, groups, 3).astype(np.uint32)
    word = (triples[..., 0] << 16) | (triples[..., 1] << 8) | triples[..., 2]
    out = np.stack([_B64[(word >> shift) & 63] for shift in (18, 12, 6, 0)], axis=-1).reshape(n, groups * 4)
    pad = groups * 3 - length
    if pad:
        out[:, -pad:] = ord("=")
    return out


def _b64decode_rows(chars: Rows) -> Optional[Rows]:
    """Inverse of _b64encode_rows for [N, W] characters of equal padding; None if any row is not base64."""
    n, width = chars.shape
    if width % 4:
        return None
    pad = int(np.sum(chars[0, -2:] == ord("=")))
    if pad and not np.all(chars[:, width - pad :] == ord("=")):
        return None
    body = chars.copy()
    if pad:
        body[:, width - pad :] = ord("A")
    sextets = _B64_INV[body]
    if np.any(sextets == 255):
        return None
    s = sextets.reshape(n, width // 4, 4).astype(np.uint32)
    word = (s[..., 0] << 18) | (s[..., 1] << 12) | (s[..., 2] << 6) | s[..., 3]
    data = np.stack([(word >> 16) & 255, (word >> 8) & 255, word & 255], axis=-1).astype(np.uint8)
    return data.reshape(n, -1)[:, : width // 4 * 3 - pad]


def _rows_by_length(array: Any) -> Dict[int, Block]:
    """{byte length: (positions, uint8 [k, length] matrix)} of a pyarrow string array without nulls."""
    import pyarrow as pa

    array = array.cast(pa.large_string()) if array.type != pa.large_string() else array
    offsets = np.frombuffer(array.buffers()[1], np.int64)[array.offset : array.offset + len(array) + 1]
    data = np.frombuffer(array.buffers()[2], np.uint8) if array.buffers()[2] is not None else np.zeros(0, np.uint8)
    lengths = np.diff(offsets)
    out: Dict[int, Block] = {}
    for length in np.unique(lengths):
        positions = np.nonzero(lengths == length)[0]
        starts = offsets[:-1][positions]
        out[int(length)] = (positions, data[starts[:, None] + np.arange(length)[None, :]])
    return out


def _strings(rows_by_position: Sequence[Block], count: int) -> Any:
    """A pyarrow string array from [(positions, uint8 [k, L] rows)] blocks covering 0..count-1."""
    import pyarrow as pa
    import pyarrow.compute as pc

    if not rows_by_position:
        return pa.array([], pa.string())
    arrays, positions = [], []
    for where, rows in rows_by_position:
        width = rows.shape[1]
        fixed = pa.FixedSizeBinaryArray.from_buffers(
            pa.binary(width), len(where), [None, pa.py_buffer(np.ascontiguousarray(rows))]
        )
        arrays.append(fixed.cast(pa.binary()))
        positions.append(where)
    stacked = pa.concat_arrays(arrays)
    order = np.empty(count, np.int64)
    order[np.concatenate(positions)] = np.arange(count)
    return pc.take(stacked, pa.array(order)).cast(pa.string())


def _by_padding(groups: Mapping[int, Block]) -> Iterator[Block]:
    """Split equal-width groups of base64 text further by their '=' padding (0, 1 or 2 characters)."""
    for _, (positions, chars) in groups.items():
        if chars.shape[1] < 2:
            yield positions, chars
            continue
        pad = np.sum(chars[:, -2:] == ord("="), axis=1)
        for value in np.unique(pad):
            pick = pad == value
            yield positions[pick], chars[pick]


class VectorCipher:
    """Deterministic tokens for whole arrays; equal to Cipher(keyring).pseudonymize(v, True) value by value."""

    def __init__(self, keyring: Keyring) -> None:
        self.keyring = keyring
        self._siv = {v: _SIV(k, ASSOCIATED_DATA[DETERMINISTIC]) for v, k in keyring.keys.items()}

    def pseudonymize_array(self, values: Any, version: Optional[int] = None) -> Any:
        """pyarrow string array without nulls -> tokens (pyarrow string array), same order; under `version`
        (default: the keyring's current)."""
        version = self.keyring.current if version is None else version
        if version not in self._siv:
            raise KeyMaterialError("no key version %d in the keyring" % version)
        siv = self._siv[version]
        blocks: List[Block] = []
        for length, (positions, rows) in _rows_by_length(values).items():
            header = np.tile(np.array([version, _MODE], np.uint8), (rows.shape[0], 1))
            token = np.concatenate([header, siv.seal(rows)], axis=1)
            blocks.append((positions, _b64encode_rows(token)))
        return _strings(blocks, len(values))

    def reidentify_array(self, tokens: Any) -> Tuple[Any, List[int]]:
        """pyarrow string array of tokens without nulls -> (plaintexts with None where not handled here, positions
        left to the per-value path: randomized tokens or other encodings). Raises TokenError if a deterministic
        token does not authenticate."""
        import pyarrow as pa

        blocks: List[Block] = []
        others: List[int] = []
        for positions, chars in _by_padding(_rows_by_length(tokens)):
            raw = _b64decode_rows(chars)
            if raw is None or raw.shape[1] < 18:
                others.extend(positions.tolist())
                continue
            mine = (raw[:, 1] == _MODE) & np.isin(raw[:, 0], list(self._siv))
            others.extend(positions[~mine].tolist())
            for version in np.unique(raw[mine, 0]):
                pick = mine & (raw[:, 0] == version)
                plain, ok = self._siv[int(version)].open(raw[pick, 2:])
                if not np.all(ok):
                    raise TokenError(
                        "%d token(s) do not authenticate under key version %d" % (int(np.sum(~ok)), int(version))
                    )
                blocks.append((positions[pick], plain))
        if others:
            # Fill the positions left over with empty strings; the caller replaces them.
            blocks.append((np.array(sorted(others), np.int64), np.zeros((len(others), 0), np.uint8)))
        out = _strings(blocks, len(tokens)) if len(tokens) else pa.array([], pa.string())
        return out, sorted(others)
