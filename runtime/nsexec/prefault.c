/*
 * Mapping hako-runtime's own executable into its page tables before a Go
 * command starts: one madvise(MADV_POPULATE_READ) per segment instead of a
 * page fault per page as the Go runtime and the command run for the first
 * time. The reasons and figures are internal/prefault's, which does the same
 * for the hako CLI; here it is done before the Go runtime's own start-up,
 * which is a large part of a runtime command (~8 ms of ~11 for `state`).
 *
 * The container init and the commands served before Go (delete.c, start.c)
 * do not call it: they run a small part of the binary.
 */
#define _GNU_SOURCE
#include <link.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>

#include "cside.h"

#ifndef MADV_POPULATE_READ
#define MADV_POPULATE_READ 22
#endif
#ifndef MADV_POPULATE_WRITE
#define MADV_POPULATE_WRITE 23
#endif

static int populate_main(struct dl_phdr_info *info, size_t size, void *data)
{
	uintptr_t page = (uintptr_t)sysconf(_SC_PAGESIZE), relro_end = 0;
	(void)size;
	(void)data;
	/* The start of the writable segment is made read-only after relocation: it cannot be populated for writing. */
	for (int i = 0; i < info->dlpi_phnum; i++)
		if (info->dlpi_phdr[i].p_type == PT_GNU_RELRO)
			relro_end = info->dlpi_addr + info->dlpi_phdr[i].p_vaddr + info->dlpi_phdr[i].p_memsz;
	for (int i = 0; i < info->dlpi_phnum; i++) {
		const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
		uintptr_t start, end;
		int writable = (ph->p_flags & PF_W) != 0;
		if (ph->p_type != PT_LOAD || ph->p_filesz == 0)
			continue;
		/*
		 * The file-backed part only: past p_filesz lies the BSS,
		 * anonymous memory that populating would only allocate.
		 */
		start = (info->dlpi_addr + ph->p_vaddr) & ~(page - 1);
		end = info->dlpi_addr + ph->p_vaddr + ph->p_filesz;
		if (writable) {
			end &= ~(page - 1); /* the page shared with the BSS is left to fault */
			if (relro_end > start)
				start = (relro_end + page - 1) & ~(page - 1);
		}
		if (end > start)
			madvise((void *)start, end - start, writable ? MADV_POPULATE_WRITE : MADV_POPULATE_READ);
	}
	return 1; /* the first object is the executable itself */
}

void hako_prefault_self(void)
{
	const char *off = getenv("HAKO_NOPREFAULT");
	if (off)
		return;
	dl_iterate_phdr(populate_main, NULL);
}

struct text_ranges {
	uintptr_t *starts, *ends;
	int max, n;
};

static int text_main(struct dl_phdr_info *info, size_t size, void *data)
{
	struct text_ranges *r = data;
	uintptr_t page = (uintptr_t)sysconf(_SC_PAGESIZE);
	(void)size;
	for (int i = 0; i < info->dlpi_phnum && r->n < r->max; i++) {
		const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
		/*
		 * Never-written segments only (text, read-only data): the file
		 * holds their contents. A writable one holds relocated and
		 * changed data (RELRO included, read-only after relocation).
		 */
		if (ph->p_type != PT_LOAD || (ph->p_flags & PF_W) || ph->p_filesz == 0)
			continue;
		r->starts[r->n] = (info->dlpi_addr + ph->p_vaddr) & ~(page - 1);
		r->ends[r->n] = (info->dlpi_addr + ph->p_vaddr + ph->p_filesz + page - 1) & ~(page - 1);
		r->n++;
	}
	return 1;
}

int hako_self_text(uintptr_t *starts, uintptr_t *ends, int max)
{
	struct text_ranges r = {starts, ends, max, 0};
	dl_iterate_phdr(text_main, &r);
	return r.n;
}
