# shellcheck shell=bash
# Sourced by run.sh and ab.sh.

# cpus_busy SECONDS: true when the CPUs were more than 10% busy (user,
# nice, system, irq, softirq and steal time, from /proc/stat) over the next
# SECONDS.
cpus_busy() {
	local u n s i w q sq st b0 a0 b1 a1
	read -r _ u n s i w q sq st _ </proc/stat
	b0=$((u + n + s + q + sq + st)) a0=$((u + n + s + i + w + q + sq + st))
	sleep "$1"
	read -r _ u n s i w q sq st _ </proc/stat
	b1=$((u + n + s + q + sq + st)) a1=$((u + n + s + i + w + q + sq + st))
	(((b1 - b0) * 10 > a1 - a0))
}
