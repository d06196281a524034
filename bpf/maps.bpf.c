// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/* The one definition of every map and load-time setting (see taskmeter.bpf.h). */
#define TM_DEFINE_MAPS
#include "taskmeter.bpf.h"

char LICENSE[] SEC("license") = "Dual BSD/GPL";
