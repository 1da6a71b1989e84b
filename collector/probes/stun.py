"""STUN (RFC 5389/8489) and TURN (RFC 8656) messages, as bytes. No sockets here.

What the probes need and nothing more: Binding requests, TURN Allocate requests (the first one
without credentials, the second one with long-term credentials after the server's 401 challenge),
Refresh with LIFETIME 0 to release an allocation, and parsing of the answers (class, ERROR-CODE,
REALM, NONCE, XOR-MAPPED-ADDRESS, XOR-RELAYED-ADDRESS, LIFETIME), with MESSAGE-INTEGRITY (HMAC-SHA1)
and FINGERPRINT (CRC-32) on both sides.

Message layout (RFC 8489 section 5): a 20-byte header - 2 bytes type (the top two bits zero),
2 bytes length of the attributes, the magic cookie 0x2112A442, a 96-bit transaction id - then
type-length-value attributes, each padded to a multiple of four bytes.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import ipaddress
import os
import struct
import time
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from enum import IntEnum

MAGIC_COOKIE = 0x2112A442
HEADER_SIZE = 20
TRANSACTION_ID_SIZE = 12
FINGERPRINT_XOR = 0x5354554E
IPPROTO_UDP = 17


class StunError(ValueError):
    """Bytes that are not a (valid) STUN message, or not the answer that was expected."""


class Method(IntEnum):
    BINDING = 0x001
    ALLOCATE = 0x003
    REFRESH = 0x004
    SEND = 0x006
    DATA = 0x007
    CREATE_PERMISSION = 0x008
    CHANNEL_BIND = 0x009


class MessageClass(IntEnum):
    REQUEST = 0
    INDICATION = 1
    SUCCESS = 2
    ERROR = 3


class Attr(IntEnum):
    MAPPED_ADDRESS = 0x0001
    USERNAME = 0x0006
    MESSAGE_INTEGRITY = 0x0008
    ERROR_CODE = 0x0009
    UNKNOWN_ATTRIBUTES = 0x000A
    CHANNEL_NUMBER = 0x000C
    LIFETIME = 0x000D
    XOR_PEER_ADDRESS = 0x0012
    DATA = 0x0013
    REALM = 0x0014
    NONCE = 0x0015
    XOR_RELAYED_ADDRESS = 0x0016
    REQUESTED_ADDRESS_FAMILY = 0x0017
    EVEN_PORT = 0x0018
    REQUESTED_TRANSPORT = 0x0019
    DONT_FRAGMENT = 0x001A
    MESSAGE_INTEGRITY_SHA256 = 0x001C
    PASSWORD_ALGORITHM = 0x001D
    USERHASH = 0x001E
    XOR_MAPPED_ADDRESS = 0x0020
    RESERVATION_TOKEN = 0x0022
    PRIORITY = 0x0024
    USE_CANDIDATE = 0x0025
    PASSWORD_ALGORITHMS = 0x8002
    ALTERNATE_DOMAIN = 0x8003
    SOFTWARE = 0x8022
    ALTERNATE_SERVER = 0x8023
    FINGERPRINT = 0x8028
    ICE_CONTROLLED = 0x8029
    ICE_CONTROLLING = 0x802A


# ---- message type -------------------------------------------------------------------------------


def message_type(method: int, cls: MessageClass) -> int:
    """The 14-bit type field: method bits M0-M11 interleaved with class bits C0 (bit 4), C1 (bit 8)."""
    if not 0 <= method <= 0xFFF:
        raise ValueError(f"STUN method out of range: {method:#x}")
    c = int(cls)
    return (
        (method & 0x000F) | ((method & 0x0070) << 1) | ((method & 0x0F80) << 2) | ((c & 0b01) << 4) | ((c & 0b10) << 7)
    )


def split_message_type(value: int) -> tuple[int, MessageClass]:
    """(method, class) of a type field."""
    method = (value & 0x000F) | ((value >> 1) & 0x0070) | ((value >> 2) & 0x0F80)
    cls = ((value >> 4) & 0b01) | ((value >> 7) & 0b10)
    return method, MessageClass(cls)


def new_transaction_id() -> bytes:
    """96 random bits (RFC 8489 section 5: uniformly and randomly chosen)."""
    return os.urandom(TRANSACTION_ID_SIZE)


# ---- encoding -----------------------------------------------------------------------------------


def _pad(n: int) -> int:
    return (4 - n % 4) % 4


def _attribute(attr_type: int, value: bytes, padding: bytes = b"\x00") -> bytes:
    if len(value) > 0xFFFF:
        raise ValueError(f"attribute {attr_type:#06x} too long ({len(value)} bytes)")
    return struct.pack("!HH", attr_type, len(value)) + value + padding * _pad(len(value))


def _header(msg_type: int, length: int, transaction_id: bytes) -> bytes:
    return struct.pack("!HHI", msg_type, length, MAGIC_COOKIE) + transaction_id


def encode(
    method: int,
    cls: MessageClass,
    transaction_id: bytes,
    attributes: Iterable[tuple[int, bytes]] = (),
    *,
    integrity_key: bytes | None = None,
    fingerprint: bool = False,
    padding: bytes = b"\x00",
) -> bytes:
    """A complete message. MESSAGE-INTEGRITY (when ``integrity_key`` is given) and FINGERPRINT
    (when asked) are appended in that order, as RFC 8489 section 14.5/14.7 require.

    ``padding`` is the byte used to pad attribute values (zero; RFC 5769 uses spaces)."""
    if len(transaction_id) != TRANSACTION_ID_SIZE:
        raise ValueError("a transaction id is 12 bytes")
    msg_type = message_type(method, cls)
    body = b"".join(_attribute(t, v, padding) for t, v in attributes)
    if integrity_key is not None:
        # The HMAC covers the header (its length already counting the MESSAGE-INTEGRITY
        # attribute, 4 + 20 bytes) and every attribute before it.
        covered = _header(msg_type, len(body) + 24, transaction_id) + body
        mac = hmac.new(integrity_key, covered, hashlib.sha1).digest()
        body += _attribute(Attr.MESSAGE_INTEGRITY, mac)
    if fingerprint:
        covered = _header(msg_type, len(body) + 8, transaction_id) + body
        body += _attribute(Attr.FINGERPRINT, struct.pack("!I", fingerprint_value(covered)))
    return _header(msg_type, len(body), transaction_id) + body


def fingerprint_value(data: bytes) -> int:
    """CRC-32 of ``data`` XOR 0x5354554E (RFC 8489 section 14.7)."""
    return (binascii.crc32(data) ^ FINGERPRINT_XOR) & 0xFFFFFFFF


def encode_xor_address(address: str, port: int, transaction_id: bytes) -> bytes:
    """The value of an XOR-MAPPED/-RELAYED/-PEER-ADDRESS attribute."""
    ip = ipaddress.ip_address(address)
    xport = port ^ (MAGIC_COOKIE >> 16)
    if ip.version == 4:
        xaddr = int(ip) ^ MAGIC_COOKIE
        return struct.pack("!BBHI", 0, 0x01, xport, xaddr)
    mask = int.from_bytes(struct.pack("!I", MAGIC_COOKIE) + transaction_id, "big")
    return struct.pack("!BBH", 0, 0x02, xport) + (int(ip) ^ mask).to_bytes(16, "big")


def encode_error_code(code: int, reason: str) -> bytes:
    """The value of an ERROR-CODE attribute (class = hundreds, number = the rest)."""
    if not 300 <= code <= 699:
        raise ValueError(f"STUN error codes are 300-699, not {code}")
    return struct.pack("!HBB", 0, code // 100, code % 100) + reason.encode()


# ---- decoding -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class ErrorCode:
    code: int
    reason: str


@dataclass(frozen=True)
class Message:
    """A decoded message. ``attributes`` keeps wire order (duplicates included) with the byte
    offset of each attribute's header, for integrity checks."""

    method: int
    cls: MessageClass
    transaction_id: bytes
    attributes: tuple[tuple[int, bytes, int], ...]
    raw: bytes

    def get(self, attr_type: int) -> bytes | None:
        """The first value of an attribute (RFC 8489: later duplicates are ignored)."""
        for t, v, _ in self.attributes:
            if t == attr_type:
                return v
        return None

    def _text(self, attr_type: int) -> str | None:
        v = self.get(attr_type)
        return None if v is None else v.decode("utf-8", errors="replace")

    @property
    def error(self) -> ErrorCode | None:
        v = self.get(Attr.ERROR_CODE)
        if v is None:
            return None
        if len(v) < 4:
            raise StunError("ERROR-CODE shorter than 4 bytes")
        code = (v[2] & 0x07) * 100 + v[3]
        return ErrorCode(code, v[4:].decode("utf-8", errors="replace"))

    @property
    def realm(self) -> str | None:
        return self._text(Attr.REALM)

    @property
    def nonce(self) -> str | None:
        return self._text(Attr.NONCE)

    @property
    def software(self) -> str | None:
        return self._text(Attr.SOFTWARE)

    @property
    def username(self) -> str | None:
        return self._text(Attr.USERNAME)

    @property
    def lifetime(self) -> int | None:
        v = self.get(Attr.LIFETIME)
        if v is None:
            return None
        if len(v) != 4:
            raise StunError("LIFETIME is not 4 bytes")
        return int(struct.unpack("!I", v)[0])

    def _xor_address(self, attr_type: int) -> tuple[str, int] | None:
        v = self.get(attr_type)
        return None if v is None else decode_xor_address(v, self.transaction_id)

    @property
    def xor_mapped_address(self) -> tuple[str, int] | None:
        return self._xor_address(Attr.XOR_MAPPED_ADDRESS)

    @property
    def xor_relayed_address(self) -> tuple[str, int] | None:
        return self._xor_address(Attr.XOR_RELAYED_ADDRESS)

    @property
    def mapped_address(self) -> tuple[str, int] | None:
        """XOR-MAPPED-ADDRESS, else the RFC 3489 MAPPED-ADDRESS some old servers send."""
        xor = self.xor_mapped_address
        if xor is not None:
            return xor
        v = self.get(Attr.MAPPED_ADDRESS)
        return None if v is None else decode_address(v)

    def _offset(self, attr_type: int) -> int | None:
        for t, _, offset in self.attributes:
            if t == attr_type:
                return offset
        return None

    @property
    def has_fingerprint(self) -> bool:
        return self._offset(Attr.FINGERPRINT) is not None

    def check_integrity(self, key: bytes) -> bool:
        """True when MESSAGE-INTEGRITY is present and matches ``key``."""
        offset = self._offset(Attr.MESSAGE_INTEGRITY)
        value = self.get(Attr.MESSAGE_INTEGRITY)
        if offset is None or value is None or len(value) != 20:
            return False
        covered = bytearray(self.raw[:offset])
        struct.pack_into("!H", covered, 2, offset + 24 - HEADER_SIZE)
        expected = hmac.new(key, bytes(covered), hashlib.sha1).digest()
        return hmac.compare_digest(expected, value)


def decode_address(value: bytes) -> tuple[str, int]:
    """A plain MAPPED-ADDRESS value."""
    if len(value) < 4:
        raise StunError("address attribute shorter than 4 bytes")
    family, port = value[1], struct.unpack("!H", value[2:4])[0]
    if family == 0x01 and len(value) == 8:
        return str(ipaddress.IPv4Address(value[4:8])), port
    if family == 0x02 and len(value) == 20:
        return str(ipaddress.IPv6Address(value[4:20])), port
    raise StunError(f"bad address family {family:#x} / length {len(value)}")


def decode_xor_address(value: bytes, transaction_id: bytes) -> tuple[str, int]:
    """An XOR-*-ADDRESS value: (address, port)."""
    if len(value) < 4:
        raise StunError("address attribute shorter than 4 bytes")
    family = value[1]
    port = struct.unpack("!H", value[2:4])[0] ^ (MAGIC_COOKIE >> 16)
    if family == 0x01 and len(value) == 8:
        addr = struct.unpack("!I", value[4:8])[0] ^ MAGIC_COOKIE
        return str(ipaddress.IPv4Address(addr)), port
    if family == 0x02 and len(value) == 20:
        mask = int.from_bytes(struct.pack("!I", MAGIC_COOKIE) + transaction_id, "big")
        return str(ipaddress.IPv6Address(int.from_bytes(value[4:20], "big") ^ mask)), port
    raise StunError(f"bad address family {family:#x} / length {len(value)}")


def message_length(header: bytes) -> int:
    """Total size (header included) of the message whose first 20 bytes are ``header``;
    how a stream reader (TCP/TLS, where messages come back to back) frames messages."""
    if len(header) < HEADER_SIZE:
        raise StunError("short STUN header")
    msg_type, length, cookie = struct.unpack("!HHI", header[:8])
    if msg_type & 0xC000 or cookie != MAGIC_COOKIE or length % 4:
        raise StunError("not a STUN message (type bits, magic cookie or length)")
    return HEADER_SIZE + int(length)


def decode(data: bytes) -> Message:
    """Parse one message; raises StunError for anything malformed, including a wrong FINGERPRINT."""
    total = message_length(data)
    if len(data) != total:
        raise StunError(f"length field says {total} bytes, got {len(data)}")
    msg_type = struct.unpack("!H", data[:2])[0]
    method, cls = split_message_type(msg_type)
    transaction_id = bytes(data[8:20])
    attributes: list[tuple[int, bytes, int]] = []
    pos = HEADER_SIZE
    while pos < total:
        if pos + 4 > total:
            raise StunError("truncated attribute header")
        attr_type, length = struct.unpack("!HH", data[pos : pos + 4])
        end = pos + 4 + length
        if end > total:
            raise StunError(f"attribute {attr_type:#06x} runs past the end of the message")
        value = bytes(data[pos + 4 : end])
        if attr_type == Attr.FINGERPRINT:
            if length != 4:
                raise StunError("FINGERPRINT is not 4 bytes")
            covered = bytearray(data[:pos])
            struct.pack_into("!H", covered, 2, pos + 8 - HEADER_SIZE)
            if struct.unpack("!I", value)[0] != fingerprint_value(bytes(covered)):
                raise StunError("FINGERPRINT does not match")
        attributes.append((attr_type, value, pos))
        pos = end + _pad(length)
    if pos != total:
        raise StunError("attribute padding runs past the end of the message")
    return Message(method, cls, transaction_id, tuple(attributes), bytes(data))


def parse_response(data: bytes, transaction_id: bytes, method: int | None = None) -> Message:
    """Decode the answer to a request: a success or error response carrying ``transaction_id``
    (and, when given, of ``method``). StunError otherwise."""
    msg = decode(data)
    if msg.transaction_id != transaction_id:
        raise StunError("transaction id does not match the request")
    if msg.cls not in (MessageClass.SUCCESS, MessageClass.ERROR):
        raise StunError(f"expected a response, got a {msg.cls.name.lower()}")
    if method is not None and msg.method != method:
        raise StunError(f"expected a response to method {method:#x}, got {msg.method:#x}")
    if msg.cls is MessageClass.ERROR and msg.error is None:
        raise StunError("error response without ERROR-CODE")
    return msg


# ---- credentials --------------------------------------------------------------------------------

# RFC 3454 table B.1 ("commonly mapped to nothing") and C.1.2 (non-ASCII spaces), as SASLprep uses them.
_MAP_TO_NOTHING = frozenset(
    [0x00AD, 0x034F, 0x1806, 0x180B, 0x180C, 0x180D, 0x200B, 0x200C, 0x200D, 0x2060, 0xFEFF, *range(0xFE00, 0xFE10)]
)
_NON_ASCII_SPACE = frozenset([0x00A0, 0x1680, 0x202F, 0x205F, 0x3000, *range(0x2000, 0x200C)])


def saslprep(text: str) -> str:
    """The mapping and normalization steps of SASLprep (RFC 4013), which RFC 5389 applies to
    passwords and realms: ASCII text is returned unchanged. (Prohibited-output and
    bidirectional checks are not done: a probe only uses passwords it was given.)"""
    if text.isascii():
        return text
    mapped = "".join(" " if ord(ch) in _NON_ASCII_SPACE else ch for ch in text if ord(ch) not in _MAP_TO_NOTHING)
    return unicodedata.normalize("NFKC", mapped)


def long_term_key(username: str, realm: str, password: str) -> bytes:
    """MD5(username ":" realm ":" password): the HMAC key of long-term credentials."""
    text = f"{username}:{saslprep(realm)}:{saslprep(password)}"
    return hashlib.md5(text.encode("utf-8")).digest()


def turn_rest_credentials(secret: str, user: str, ttl_s: int, now: float | None = None) -> tuple[str, str]:
    """Time-limited credentials of the TURN REST API convention (coturn ``--use-auth-secret``):
    username ``"<unix expiry>:<user>"``, password ``base64(HMAC-SHA1(secret, username))``."""
    expiry = int(time.time() if now is None else now) + int(ttl_s)
    username = f"{expiry}:{user}" if user else str(expiry)
    mac = hmac.new(secret.encode("utf-8"), username.encode("utf-8"), hashlib.sha1).digest()
    return username, base64.b64encode(mac).decode("ascii")


@dataclass(frozen=True)
class LongTermAuth:
    """What an authenticated request carries: user name, the server's realm and nonce, and the key."""

    username: str
    realm: str
    nonce: str
    key: bytes

    @classmethod
    def from_challenge(cls, username: str, password: str, challenge: Message) -> LongTermAuth:
        """From a 401/438 error response carrying REALM and NONCE."""
        realm, nonce = challenge.realm, challenge.nonce
        if realm is None or nonce is None:
            raise StunError("the challenge carries no REALM/NONCE")
        return cls(username, realm, nonce, long_term_key(username, realm, password))

    def with_nonce(self, nonce: str) -> LongTermAuth:
        return LongTermAuth(self.username, self.realm, nonce, self.key)

    def attributes(self) -> list[tuple[int, bytes]]:
        return [
            (Attr.USERNAME, self.username.encode("utf-8")),
            (Attr.REALM, self.realm.encode("utf-8")),
            (Attr.NONCE, self.nonce.encode("utf-8")),
        ]


# ---- the requests the probes send ----------------------------------------------------------------


def _software(software: str | None) -> list[tuple[int, bytes]]:
    return [(Attr.SOFTWARE, software.encode("utf-8"))] if software else []


def binding_request(transaction_id: bytes, *, software: str | None = None, fingerprint: bool = True) -> bytes:
    """A Binding request (no authentication: public STUN needs none)."""
    return encode(Method.BINDING, MessageClass.REQUEST, transaction_id, _software(software), fingerprint=fingerprint)


def allocate_request(
    transaction_id: bytes,
    auth: LongTermAuth | None = None,
    *,
    lifetime: int | None = None,
    software: str | None = None,
    fingerprint: bool = True,
) -> bytes:
    """A TURN Allocate request for a UDP relay (REQUESTED-TRANSPORT 17). Without ``auth`` it is
    the first, unauthenticated request that draws the 401 challenge; with ``auth`` it carries
    USERNAME, REALM, NONCE and MESSAGE-INTEGRITY."""
    attrs: list[tuple[int, bytes]] = [(Attr.REQUESTED_TRANSPORT, struct.pack("!B3x", IPPROTO_UDP))]
    if lifetime is not None:
        attrs.append((Attr.LIFETIME, struct.pack("!I", lifetime)))
    attrs += _software(software)
    if auth is None:
        return encode(Method.ALLOCATE, MessageClass.REQUEST, transaction_id, attrs, fingerprint=fingerprint)
    attrs += auth.attributes()
    return encode(
        Method.ALLOCATE, MessageClass.REQUEST, transaction_id, attrs, integrity_key=auth.key, fingerprint=fingerprint
    )


def refresh_request(
    transaction_id: bytes,
    auth: LongTermAuth,
    *,
    lifetime: int = 0,
    software: str | None = None,
    fingerprint: bool = True,
) -> bytes:
    """A TURN Refresh request; LIFETIME 0 (the default) deletes the allocation."""
    attrs: list[tuple[int, bytes]] = [(Attr.LIFETIME, struct.pack("!I", lifetime)), *_software(software)]
    attrs += auth.attributes()
    return encode(
        Method.REFRESH, MessageClass.REQUEST, transaction_id, attrs, integrity_key=auth.key, fingerprint=fingerprint
    )


def error_response(
    request: Message,
    code: int,
    reason: str,
    extra: Sequence[tuple[int, bytes]] = (),
    *,
    integrity_key: bytes | None = None,
    fingerprint: bool = True,
) -> bytes:
    """An error response to ``request`` (used by tests and test doubles)."""
    attrs = [(int(Attr.ERROR_CODE), encode_error_code(code, reason)), *extra]
    return encode(
        request.method, MessageClass.ERROR, request.transaction_id, attrs,
        integrity_key=integrity_key, fingerprint=fingerprint,
    )  # fmt: skip


def success_response(
    request: Message,
    extra: Sequence[tuple[int, bytes]] = (),
    *,
    integrity_key: bytes | None = None,
    fingerprint: bool = True,
) -> bytes:
    """A success response to ``request`` (used by tests and test doubles)."""
    return encode(
        request.method, MessageClass.SUCCESS, request.transaction_id, extra,
        integrity_key=integrity_key, fingerprint=fingerprint,
    )  # fmt: skip
