#!/bin/bash
# usage: cpu.sh <cmd...> ; prints CPU seconds used by each test-stack component (incl. children) during cmd
cd /work/main
pids=$(node stack/bin/bazaar.mjs status --profile test --json 2>/dev/null | python3 -c "
import json,sys; d=json.load(sys.stdin)
for c in (d if isinstance(d,list) else d.get('components',[])): print(c['name']+':'+str(c.get('pid')))")
desc() { for c in $(pgrep -P $1); do echo $c; desc $c; done; }
snap() { for np in $pids; do n=${np%%:*}; p=${np##*:}; t=0; for q in $p $(desc $p) ; do [ -r /proc/$q/stat ] && t=$((t + $(awk '{print $14+$15}' /proc/$q/stat))); done; echo "$n $t"; done; }
snap > /tmp/cpu.before
"$@"
snap > /tmp/cpu.after
join /tmp/cpu.before /tmp/cpu.after | awk '{d=($3-$2)/100; if (d>0.05) printf "%-14s %6.2f s\n", $1, d}'
