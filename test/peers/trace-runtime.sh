#!/bin/sh
# Template (run.sh fills @HAKO@ and @LOG@ in a copy): logs every call of the
# runtime by a peer (time, pid, parent's command, argv), then execs the real
# hako-runtime in place, so the caller sees the same process.
{
	printf '%s pid=%s ppid=%s parent=%s\n  argv:' "$(date +%T.%N)" "$$" "$PPID" "$(tr '\0' ' ' </proc/$PPID/cmdline 2>/dev/null | cut -c1-200)"
	for a in "$@"; do printf ' %s' "$a"; done
	printf '\n'
} >>"@LOG@" 2>/dev/null
exec "@HAKO@" "$@"
