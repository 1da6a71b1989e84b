"""STUN/TURN message codec: RFC 5769 test vectors, hand-built byte vectors, round trips."""

from __future__ import annotations

import base64
import hashlib
import hmac
import struct

import pytest

from collector.probes import stun
from collector.probes.stun import Attr, MessageClass, Method, StunError


def h(text: str) -> bytes:
    return bytes.fromhex("".join(text.split()))


TID_5769 = h("b7 e7 a7 01 bc 34 d6 86 fa 87 df ae")

# RFC 5769 section 2.1: Binding request, short-term credentials (key = the password itself),
# attribute values padded with spaces.
RFC5769_REQUEST = h(
    """
    00 01 00 58 21 12 a4 42 b7 e7 a7 01 bc 34 d6 86 fa 87 df ae
    80 22 00 10 53 54 55 4e 20 74 65 73 74 20 63 6c 69 65 6e 74
    00 24 00 04 6e 00 01 ff
    80 29 00 08 93 2f f9 b1 51 26 3b 36
    00 06 00 09 65 76 74 6a 3a 68 36 76 59 20 20 20
    00 08 00 14 9a ea a7 0c bf d8 cb 56 78 1e f2 b5 b2 d3 f2 49 c1 b5 71 a2
    80 28 00 04 e5 7a 3b cf
    """
)
RFC5769_PASSWORD = b"VOkJxbRl1RmTxUk/WvJxBt"

# Section 2.2: Binding success response, IPv4 (192.0.2.1 port 32853).
RFC5769_RESPONSE_V4 = h(
    """
    01 01 00 3c 21 12 a4 42 b7 e7 a7 01 bc 34 d6 86 fa 87 df ae
    80 22 00 0b 74 65 73 74 20 76 65 63 74 6f 72 20
    00 20 00 08 00 01 a1 47 e1 12 a6 43
    00 08 00 14 2b 91 f5 99 fd 9e 90 c3 8c 74 89 f9 2a f9 ba 53 f0 6b e7 d7
    80 28 00 04 c0 7d 4c 96
    """
)

# Section 2.3: Binding success response, IPv6 (2001:db8:1234:5678:11:2233:4455:6677 port 32853).
RFC5769_RESPONSE_V6 = h(
    """
    01 01 00 48 21 12 a4 42 b7 e7 a7 01 bc 34 d6 86 fa 87 df ae
    80 22 00 0b 74 65 73 74 20 76 65 63 74 6f 72 20
    00 20 00 14 00 02 a1 47 01 13 a9 fa a5 d3 f1 79 bc 25 f4 b5 be d2 b9 d9
    00 08 00 14 a3 82 95 4e 4b e6 7b f1 17 84 c9 7c 82 92 c2 75 bf e3 ed 41
    80 28 00 04 c8 fb 0b 4c
    """
)

# Section 2.4: request with long-term credentials; the user name and password are not ASCII
# (the password becomes "TheMatrIX" after SASLprep). No FINGERPRINT.
RFC5769_LONG_TERM = h(
    """
    00 01 00 60 21 12 a4 42 78 ad 34 33 c6 ad 72 c0 29 da 41 2e
    00 06 00 12 e3 83 9e e3 83 88 e3 83 aa e3 83 83 e3 82 af e3 82 b9 00 00
    00 15 00 1c 66 2f 2f 34 39 39 6b 39 35 34 64 36 4f 4c 33 34 6f 4c 39 46 53 54 76 79 36 34 73 41
    00 14 00 0b 65 78 61 6d 70 6c 65 2e 6f 72 67 00
    00 08 00 14 f6 70 24 65 6d d6 4a 3e 02 b8 e0 71 2e 85 c9 a2 8c a8 96 66
    """
)
RFC5769_USER = "\u30de\u30c8\u30ea\u30c3\u30af\u30b9"
RFC5769_LT_PASSWORD = "The\u00adM\u00aatr\u2168"


# ---- RFC 5769 -----------------------------------------------------------------------------------


def test_rfc5769_request_decodes_and_checks() -> None:
    msg = stun.decode(RFC5769_REQUEST)  # decode verifies FINGERPRINT
    assert (msg.method, msg.cls, msg.transaction_id) == (Method.BINDING, MessageClass.REQUEST, TID_5769)
    assert msg.software == "STUN test client"
    assert msg.username == "evtj:h6vY"
    assert msg.get(Attr.PRIORITY) == h("6e 00 01 ff")
    assert msg.check_integrity(RFC5769_PASSWORD)
    assert not msg.check_integrity(b"wrong")
    assert msg.has_fingerprint


def test_rfc5769_request_is_reproduced_byte_for_byte() -> None:
    attrs = [
        (Attr.SOFTWARE, b"STUN test client"),
        (Attr.PRIORITY, h("6e 00 01 ff")),
        (Attr.ICE_CONTROLLED, h("93 2f f9 b1 51 26 3b 36")),
        (Attr.USERNAME, b"evtj:h6vY"),
    ]
    out = stun.encode(
        Method.BINDING, MessageClass.REQUEST, TID_5769, attrs,
        integrity_key=RFC5769_PASSWORD, fingerprint=True, padding=b" ",
    )  # fmt: skip
    assert out == RFC5769_REQUEST


@pytest.mark.parametrize(
    ("data", "address"),
    [
        (RFC5769_RESPONSE_V4, ("192.0.2.1", 32853)),
        (RFC5769_RESPONSE_V6, ("2001:db8:1234:5678:11:2233:4455:6677", 32853)),
    ],
)
def test_rfc5769_responses(data: bytes, address: tuple[str, int]) -> None:
    msg = stun.parse_response(data, TID_5769, Method.BINDING)
    assert msg.cls is MessageClass.SUCCESS
    assert msg.software == "test vector"
    assert msg.xor_mapped_address == address
    assert msg.mapped_address == address
    assert msg.check_integrity(RFC5769_PASSWORD)
    rebuilt = stun.encode(
        Method.BINDING, MessageClass.SUCCESS, TID_5769,
        [(Attr.SOFTWARE, b"test vector"), (Attr.XOR_MAPPED_ADDRESS, stun.encode_xor_address(*address, TID_5769))],
        integrity_key=RFC5769_PASSWORD, fingerprint=True, padding=b" ",
    )  # fmt: skip
    assert rebuilt == data


def test_rfc5769_long_term_credentials() -> None:
    msg = stun.decode(RFC5769_LONG_TERM)
    assert msg.username == RFC5769_USER
    assert msg.realm == "example.org"
    assert msg.nonce == "f//499k954d6OL34oL9FSTvy64sA"
    assert not msg.has_fingerprint
    assert stun.saslprep(RFC5769_LT_PASSWORD) == "TheMatrIX"
    key = stun.long_term_key(RFC5769_USER, "example.org", RFC5769_LT_PASSWORD)
    assert key == hashlib.md5(f"{RFC5769_USER}:example.org:TheMatrIX".encode()).digest()
    assert msg.check_integrity(key)
    auth = stun.LongTermAuth(RFC5769_USER, "example.org", "f//499k954d6OL34oL9FSTvy64sA", key)
    rebuilt = stun.encode(
        Method.BINDING, MessageClass.REQUEST, msg.transaction_id,
        [(Attr.USERNAME, RFC5769_USER.encode()), (Attr.NONCE, auth.nonce.encode()), (Attr.REALM, b"example.org")],
        integrity_key=key,
    )  # fmt: skip
    assert rebuilt == RFC5769_LONG_TERM


# ---- hand-built vectors -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "cls", "value"),
    [
        (Method.BINDING, MessageClass.REQUEST, 0x0001),
        (Method.BINDING, MessageClass.INDICATION, 0x0011),
        (Method.BINDING, MessageClass.SUCCESS, 0x0101),
        (Method.BINDING, MessageClass.ERROR, 0x0111),
        (Method.ALLOCATE, MessageClass.REQUEST, 0x0003),
        (Method.ALLOCATE, MessageClass.SUCCESS, 0x0103),
        (Method.ALLOCATE, MessageClass.ERROR, 0x0113),
        (Method.REFRESH, MessageClass.REQUEST, 0x0004),
        (Method.SEND, MessageClass.INDICATION, 0x0016),
        (0xFFF, MessageClass.ERROR, 0x3FFF),
    ],
)
def test_message_type_bits(method: int, cls: MessageClass, value: int) -> None:
    assert stun.message_type(method, cls) == value
    assert stun.split_message_type(value) == (method, cls)


def test_binding_request_bytes() -> None:
    tid = bytes(range(12))
    out = stun.binding_request(tid, fingerprint=False)
    assert out == h("0001 0000 2112a442 000102030405060708090a0b")
    with_fp = stun.binding_request(tid)
    assert with_fp[:4] == h("0001 0008")
    assert with_fp[20:24] == h("8028 0004")
    crc = stun.fingerprint_value(h("0001 0008 2112a442 000102030405060708090a0b"))
    assert with_fp[24:] == struct.pack("!I", crc)
    assert stun.decode(with_fp).has_fingerprint


def test_unauthenticated_allocate_bytes() -> None:
    tid = b"\xaa" * 12
    out = stun.allocate_request(tid, fingerprint=False)
    assert out == h("0003 0008 2112a442" + "aa" * 12 + "0019 0004 11000000")


def test_authenticated_allocate_layout_and_integrity() -> None:
    tid = b"\x01" * 12
    key = stun.long_term_key("U", "R", "P")
    assert key == hashlib.md5(b"U:R:P").digest()
    auth = stun.LongTermAuth("U", "R", "n0nce", key)
    out = stun.allocate_request(tid, auth, software="icewatch")
    msg = stun.decode(out)
    assert (msg.method, msg.cls) == (Method.ALLOCATE, MessageClass.REQUEST)
    types = [t for t, _, _ in msg.attributes]
    assert types == [
        Attr.REQUESTED_TRANSPORT, Attr.SOFTWARE, Attr.USERNAME, Attr.REALM, Attr.NONCE,
        Attr.MESSAGE_INTEGRITY, Attr.FINGERPRINT,
    ]  # fmt: skip
    assert msg.get(Attr.REQUESTED_TRANSPORT) == h("11000000")
    assert (msg.username, msg.realm, msg.nonce) == ("U", "R", "n0nce")
    # MESSAGE-INTEGRITY by hand: HMAC-SHA1 over everything before it, length field pointing at
    # the end of MESSAGE-INTEGRITY (FINGERPRINT excluded).
    mi_offset = next(off for t, _, off in msg.attributes if t == Attr.MESSAGE_INTEGRITY)
    covered = bytearray(out[:mi_offset])
    covered[2:4] = struct.pack("!H", mi_offset + 24 - 20)
    assert msg.get(Attr.MESSAGE_INTEGRITY) == hmac.new(key, bytes(covered), hashlib.sha1).digest()
    assert msg.check_integrity(key)
    assert not msg.check_integrity(stun.long_term_key("U", "R", "wrong"))


def test_refresh_release() -> None:
    tid = b"\x02" * 12
    auth = stun.LongTermAuth("U", "R", "N", stun.long_term_key("U", "R", "P"))
    msg = stun.decode(stun.refresh_request(tid, auth))
    assert (msg.method, msg.cls) == (Method.REFRESH, MessageClass.REQUEST)
    assert msg.lifetime == 0
    assert msg.get(Attr.LIFETIME) == h("00000000")
    assert msg.check_integrity(auth.key)


def test_error_response_401_challenge() -> None:
    tid = b"\x03" * 12
    # ERROR-CODE 401 "Unauthorized": class 4, number 1; REALM "R", NONCE "abc".
    data = h(
        "0113 0024 2112a442" + "03" * 12
        + "0009 0010 00000401" + b"Unauthorized".hex()
        + "0014 0001 52000000"
        + "0015 0003 61626300"
    )  # fmt: skip
    msg = stun.parse_response(data, tid, Method.ALLOCATE)
    assert msg.cls is MessageClass.ERROR
    assert msg.error == stun.ErrorCode(401, "Unauthorized")
    assert (msg.realm, msg.nonce) == ("R", "abc")
    auth = stun.LongTermAuth.from_challenge("U", "P", msg)
    assert auth.key == hashlib.md5(b"U:R:P").digest()
    assert auth.with_nonce("x").nonce == "x"


@pytest.mark.parametrize("code", [300, 401, 403, 420, 437, 438, 441, 486, 508, 699])
def test_error_code_round_trip(code: int) -> None:
    req = stun.decode(stun.allocate_request(stun.new_transaction_id()))
    data = stun.error_response(req, code, "why")
    msg = stun.parse_response(data, req.transaction_id)
    assert msg.error == stun.ErrorCode(code, "why")


def test_allocate_success_addresses_round_trip() -> None:
    req = stun.decode(stun.allocate_request(stun.new_transaction_id()))
    key = stun.long_term_key("U", "R", "P")
    data = stun.success_response(
        req,
        [
            (Attr.XOR_RELAYED_ADDRESS, stun.encode_xor_address("203.0.113.5", 49152, req.transaction_id)),
            (Attr.LIFETIME, struct.pack("!I", 600)),
            (Attr.XOR_MAPPED_ADDRESS, stun.encode_xor_address("2001:db8::1", 3478, req.transaction_id)),
        ],
        integrity_key=key,
    )
    msg = stun.parse_response(data, req.transaction_id, Method.ALLOCATE)
    assert msg.xor_relayed_address == ("203.0.113.5", 49152)
    assert msg.xor_mapped_address == ("2001:db8::1", 3478)
    assert msg.lifetime == 600
    assert msg.check_integrity(key)


def test_xor_address_hand_vector() -> None:
    # 10.0.0.1 XOR 0x2112A442 = 0x2B12A443; port 3478 (0x0D96) XOR 0x2112 = 0x2C84.
    tid = bytes(12)
    assert stun.encode_xor_address("10.0.0.1", 3478, tid) == h("0001 2c84 2b12a443")
    assert stun.decode_xor_address(h("0001 2c84 2b12a443"), tid) == ("10.0.0.1", 3478)


def test_legacy_mapped_address() -> None:
    tid = bytes(12)
    data = stun.encode(Method.BINDING, MessageClass.SUCCESS, tid, [(Attr.MAPPED_ADDRESS, h("0001 0d96 c0000201"))])
    assert stun.parse_response(data, tid).mapped_address == ("192.0.2.1", 3478)


# ---- validation ---------------------------------------------------------------------------------


def test_transaction_id_must_match() -> None:
    with pytest.raises(StunError, match="transaction id"):
        stun.parse_response(RFC5769_RESPONSE_V4, b"\x00" * 12)


def test_request_is_not_a_response() -> None:
    with pytest.raises(StunError, match="expected a response"):
        stun.parse_response(RFC5769_REQUEST, TID_5769)


def test_wrong_method_is_rejected() -> None:
    with pytest.raises(StunError, match="method"):
        stun.parse_response(RFC5769_RESPONSE_V4, TID_5769, Method.ALLOCATE)


def test_error_response_needs_error_code() -> None:
    tid = bytes(12)
    data = stun.encode(Method.ALLOCATE, MessageClass.ERROR, tid)
    with pytest.raises(StunError, match="ERROR-CODE"):
        stun.parse_response(data, tid)


def test_corrupted_fingerprint() -> None:
    bad = bytearray(RFC5769_RESPONSE_V4)
    bad[30] ^= 0x01  # inside SOFTWARE
    with pytest.raises(StunError, match="FINGERPRINT"):
        stun.decode(bytes(bad))


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"\x00\x01\x00\x00",  # short header
        h("0001 0000 2112a443") + bytes(12),  # wrong cookie
        h("c001 0000 2112a442") + bytes(12),  # top bits set
        h("0001 0002 2112a442") + bytes(12) + b"\0\0",  # length not a multiple of 4
        h("0001 0004 2112a442") + bytes(12),  # shorter than the length field
        h("0001 0004 2112a442") + bytes(12) + h("8022 0008"),  # attribute past the end
        h("0001 0008 2112a442") + bytes(12) + h("8022 0005 6162636465"),  # padding past the end
    ],
)
def test_malformed(data: bytes) -> None:
    with pytest.raises(StunError):
        stun.decode(data)


def test_turn_rest_credentials() -> None:
    user, password = stun.turn_rest_credentials("S", "probe", 600, now=1_700_000_000)
    assert user == "1700000600:probe"
    assert password == base64.b64encode(hmac.new(b"S", b"1700000600:probe", hashlib.sha1).digest()).decode()
    assert stun.turn_rest_credentials("S", "", 0, now=5)[0] == "5"


def test_saslprep_leaves_ascii_alone() -> None:
    assert stun.saslprep("p\u00e4ss") == "p\u00e4ss"
    assert stun.saslprep("a\u00a0b") == "a b"
    assert stun.saslprep("Pa ss:w0rd") == "Pa ss:w0rd"
