#!/usr/bin/env python3
"""Makes the EFI/Tiano compression test vectors in this folder with EDK2's own compressors.

    python3 -m venv /tmp/venv && /tmp/venv/bin/pip install uefi_firmware==1.16
    /tmp/venv/bin/python testdata/vbios/make_vectors.py

`uefi_firmware.efi_compressor.EfiCompress` / `TianoCompress` are EDK2 BaseTools'
Common/EfiCompress.c and TianoCompress.c compiled into the package. Each vector is a pair
NAME.bin (the plain bytes) and NAME.efi.cmp / NAME.tiano.cmp (the compressed stream, with its
8-byte CompSize/OrigSize header). The Rust tests decompress the streams and compare; they never
run Python. The x86 BCJ pair (bcj.bin / bcj.x86) comes from Python's own lzma (liblzma's BCJ).
"""
import lzma
import os
import random

from uefi_firmware.efi_compressor import EfiCompress, TianoCompress, EfiDecompress, TianoDecompress

HERE = os.path.dirname(os.path.abspath(__file__))


def plain_vectors():
    rnd = random.Random(6)
    text = b"".join(b"Intel(R) GOP Driver [9.0.1075] line %d\n" % (i % 37) for i in range(900))
    utf16 = "Intel(R) GOP Driver [9.0.1075]".encode("utf-16-le") * 50
    noise = bytes(rnd.getrandbits(8) for _ in range(5000))
    # Long runs (matches of 256), far matches (positions beyond 8 KiB) and incompressible data.
    mixed = text[:3000] + noise[:2000] + bytes(20000) + text[:3000] + b"\xff" * 700 + noise[2000:]
    return {
        "empty": b"",
        "one": b"A",
        "short": b"abcabcabcabcabcabc-vfiokit",
        "text": text,
        "utf16": utf16,
        "noise": noise,
        "mixed": mixed,
    }


def main():
    for name, data in plain_vectors().items():
        with open(os.path.join(HERE, name + ".bin"), "wb") as f:
            f.write(data)
        for kind, comp, decomp in (("efi", EfiCompress, EfiDecompress), ("tiano", TianoCompress, TianoDecompress)):
            stream = comp(data, len(data))
            # Check the reference round trip before committing the vector.
            assert decomp(stream, len(stream)) == data, (name, kind)
            with open(os.path.join(HERE, "%s.%s.cmp" % (name, kind)), "wb") as f:
                f.write(stream)
    # BCJ x86: liblzma's filter, recovered by compressing with [x86, lzma1] and decompressing with [lzma1] only.
    rnd = random.Random(86)
    code = bytearray()
    for i in range(4000):
        op = rnd.choice([b"\xe8", b"\xe9", b"\x90", b"\x0f\x85", b"\x48\x89"])
        code += op + bytes([rnd.choice([0, 0xff, rnd.getrandbits(8)]) for _ in range(4)])
    code = bytes(code)
    filters = [{"id": lzma.FILTER_X86}, {"id": lzma.FILTER_LZMA1}]
    packed = lzma.compress(code, format=lzma.FORMAT_RAW, filters=filters)
    filtered = lzma.decompress(packed, format=lzma.FORMAT_RAW, filters=[{"id": lzma.FILTER_LZMA1}])
    assert len(filtered) == len(code) and filtered != code
    with open(os.path.join(HERE, "bcj.bin"), "wb") as f:
        f.write(code)
    with open(os.path.join(HERE, "bcj.x86"), "wb") as f:
        f.write(filtered)
    # An EFI LZMA section body (classic 13-byte .lzma header) made by liblzma, for the lzma-rs path.
    with open(os.path.join(HERE, "text.lzma"), "wb") as f:
        f.write(lzma.compress(plain_vectors()["text"], format=lzma.FORMAT_ALONE))



def legacy_vbios():
    """A 1 KiB legacy Intel VBIOS look-alike: 55 AA, PCIR 8086:3e92 class 030000 x86, $VBT, checksum 0."""
    r = bytearray(1024)
    r[0:4] = b"\x55\xaa\x02\xe9"
    r[0x18] = 0x40
    p = 0x40
    r[p:p + 4] = b"PCIR"
    r[p + 4:p + 8] = (0x8086).to_bytes(2, "little") + (0x3E92).to_bytes(2, "little")
    r[p + 0x0A:p + 0x0C] = (0x18).to_bytes(2, "little")
    r[p + 0x0F] = 0x03
    r[p + 0x10:p + 0x12] = (2).to_bytes(2, "little")
    r[p + 0x15] = 0x80
    r[0x100:0x112] = b"$VBT SKYLAKE Intel"
    r[-1] = (-sum(r[:-1])) & 0xFF
    return bytes(r)


def section(kind, body):
    return (len(body) + 4).to_bytes(3, "little") + bytes([kind]) + body


def vbios_sections():
    """A section stream: RAW section with the VBIOS, UI section "IntelVbios" (4-byte aligned)."""
    raw = section(0x19, legacy_vbios())
    raw += b"\0" * (-len(raw) % 4)
    return raw + section(0x15, "IntelVbios".encode("utf-16-le") + b"\0\0")


def firmware_vectors():
    plain = vbios_sections()
    with open(os.path.join(HERE, "vbios_sections.bin"), "wb") as f:
        f.write(plain)
    for kind, comp, decomp in (("efi", EfiCompress, EfiDecompress), ("tiano", TianoCompress, TianoDecompress)):
        stream = comp(plain, len(plain))
        assert decomp(stream, len(stream)) == plain
        with open(os.path.join(HERE, "vbios_sections.%s.cmp" % kind), "wb") as f:
            f.write(stream)


if __name__ == "__main__":
    main()
    firmware_vectors()
