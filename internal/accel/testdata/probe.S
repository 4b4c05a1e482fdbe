# The KVM probe guest: ProbeImage() must equal this file assembled, which
# TestProbeImageMatchesSource checks when GNU as and ld are installed:
#   as --64 -o probe.o probe.S && ld -m elf_x86_64 -Ttext=0 --oformat binary -o probe.bin probe.o
# QEMU maps a 64 KiB -bios file at 0xF0000 (and below 4 GiB); the CPU starts
# at the reset vector, the last 16 bytes. The guest walks the same road a
# Linux kernel does (real mode -> 32-bit protected mode -> 64-bit long mode
# with paging), prints a letter per stage on the debugcon port 0xe9, and
# writes 0x31 to isa-debug-exit at 0xf4: QEMU exits with (0x31<<1)|1 = 99.
.code16
.org 0
start16:
  cli
  mov $'R', %al
  out %al, $0xe9
  mov $0xF000, %ax
  mov %ax, %ds
  lgdtl gdtr
  mov %cr0, %eax
  or $1, %eax
  mov %eax, %cr0
  ljmpl $0x08, $(0xF0000 + start32)
.code32
start32:
  mov $0x10, %ax
  mov %ax, %ds
  mov %ax, %es
  mov %ax, %ss
  mov $'P', %al
  out %al, $0xe9
  # identity-map the first 2 MiB with one large page: PML4 0x1000, PDPT 0x2000, PD 0x3000
  movl $0x2003, 0x1000
  movl $0, 0x1004
  movl $0x3003, 0x2000
  movl $0, 0x2004
  movl $0x83, 0x3000
  movl $0, 0x3004
  mov %cr4, %eax
  or $0x20, %eax          # PAE
  mov %eax, %cr4
  mov $0x1000, %eax
  mov %eax, %cr3
  mov $0xC0000080, %ecx   # EFER
  rdmsr
  or $0x100, %eax         # LME
  wrmsr
  mov %cr0, %eax
  or $0x80000000, %eax    # PG
  mov %eax, %cr0
  ljmp $0x18, $(0xF0000 + start64)
.code64
start64:
  mov $'L', %al
  out %al, $0xe9
  mov $0x31, %al
  out %al, $0xf4
  hlt
  jmp .
.align 8
gdt:
  .quad 0
  .quad 0x00CF9A000000FFFF  # 0x08: 32-bit code, flat
  .quad 0x00CF92000000FFFF  # 0x10: data, flat
  .quad 0x00AF9A000000FFFF  # 0x18: 64-bit code
gdtr:
  .word gdtr - gdt - 1
  .long 0xF0000 + gdt
.code16
.org 0xFFF0
  ljmp $0xF000, $start16
.org 0x10000
