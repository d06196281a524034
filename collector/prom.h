/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* `taskmeter prom`: the Prometheus exporter, a client of the export socket. */
#ifndef TM_PROM_H
#define TM_PROM_H

extern const char tm_prom_usage[];

/* argv[0] is "prom". Returns the exit status. */
int tm_prom_main(int argc, char **argv);

#endif /* TM_PROM_H */
