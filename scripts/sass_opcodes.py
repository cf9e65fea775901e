"""Opcode order of sm_90 kernels in a cubin, for machines without cuobjdump/nvdisasm (the build machine has none).

Hopper keeps an instruction's opcode in the low 12 bits of its first 64-bit word, so the names can be learned from
any cuobjdump -sass listing of similar code (the device script's sass phase writes one, sass_dump.txt) and then
read off a cubin built here. Prints, per kernel whose name contains PATTERN, the sequence of the instructions that
show a kernel's schedule (matrix, exp, conversion, barrier, mbarrier, copy, spill), runs of one opcode collapsed
to NAMExCOUNT. WARPGROUP.ARRIVE prints as ARRIVE and WARPGROUP.DEPBAR.LE gsb0, N as DEPBAR<N>; opcodes absent
from the listing print as ?<hex>.

Usage: python3 scripts/sass_opcodes.py LISTING.txt KERNEL.cubin PATTERN
  (cubin from: nvcc -cubin -O3 -std=c++17 -gencode=arch=compute_90a,code=sm_90a -I src/main/cuda/include ...)
"""
import re
import struct
import sys

SHOWN = {'ARRIVE', 'HGMMA', 'MUFU', 'F2FP', 'BAR', 'SYNCS', 'BRA', 'FMNMX', 'SHFL', 'LDGSTS', 'STG', 'EXIT',
         'USETMAXREG', 'STL', 'LDL'}


def learn(listing):
    names = {}
    for line in open(listing):
        m = re.match(r'\s+/\*[0-9a-f]{4,5}\*/\s+(.*?);\s+/\* (0x[0-9a-f]{16}) \*/', line)
        if m:
            mnemonic = re.sub(r'^@!?U?P\w+\s+', '', m.group(1).strip()).split()[0].split('.')[0]
            names[int(m.group(2), 16) & 0xfff] = mnemonic
    return names


def sections(path):
    data = open(path, 'rb').read()
    shoff, = struct.unpack_from('<Q', data, 0x28)
    shentsize, shnum, shstrndx = struct.unpack_from('<HHH', data, 0x3a)
    headers = [struct.unpack_from('<IIQQQQ', data, shoff + i * shentsize) for i in range(shnum)]
    strings = headers[shstrndx][4]
    out = {}
    for name, _, _, _, off, size in headers:
        out[data[strings + name:data.index(b'\0', strings + name)].decode()] = data[off:off + size]
    return out


def main():
    listing, cubin, pattern = sys.argv[1:4]
    names = learn(listing)
    for section, code in sections(cubin).items():
        if not section.startswith('.text.') or pattern not in section:
            continue
        runs = []
        for k in range(0, len(code), 16):
            w0, w1 = struct.unpack_from('<QQ', code, k)
            op = w0 & 0xfff
            name = names.get(op, '?%03x' % op)
            if name == 'WARPGROUP':
                name = 'DEPBAR%d' % ((w1 >> 8) & 0xff) if (w0 >> 40) & 0xff else 'ARRIVE'
            if not (name in SHOWN or name.startswith('DEPBAR') or name.startswith('?')):
                continue
            if runs and runs[-1][0] == name:
                runs[-1][1] += 1
            else:
                runs.append([name, 1])
        print(section[len('.text.'):], len(code) // 16, 'instructions')
        print(' '.join(f'{n}x{c}' if c > 1 else n for n, c in runs))


if __name__ == '__main__':
    main()
