#!/usr/bin/env bash
# jepsen/plot.sh RUN_DIR — latency and throughput plots of one okv-jepsen run.
#
# Reads RUN_DIR/latency.tsv (time_s latency_ms type f, one line per completed
# op, time = its invoke) and RUN_DIR/nemesis.tsv (start_s end_s nemesis
# detail, one line per fault window) and writes:
#   RUN_DIR/latency.png  every op as a point: x = invoke time, y = latency
#                        (log scale); colour = outcome (ok / fail / info),
#                        point shape = f; fault windows shaded and named
#   RUN_DIR/rate.png     completions per second, per f and outcome
# Needs gnuplot. Exit 0 done, 1 failure, 2 bad command line.
set -euo pipefail

prog="plot.sh"
[ $# -eq 1 ] || { echo "usage: $0 RUN_DIR" >&2; exit 2; }
dir="$1"
lat="$dir/latency.tsv"
nem="$dir/nemesis.tsv"
[ -f "$lat" ] || { echo "$prog: no $lat" >&2; exit 1; }
command -v gnuplot >/dev/null || { echo "$prog: gnuplot not found (apt-get install gnuplot-nox)" >&2; exit 1; }

if [ "$(grep -vc '^#' "$lat" || true)" = 0 ]; then
  echo "$prog: $lat holds no ops; nothing to plot" >&2
  exit 0
fi

title="$(basename "$(cd "$dir" && pwd)")"
if gnuplot -e 'set terminal' 2>&1 | grep -q pngcairo; then
  term="pngcairo size 1400,700 font ',10'"
else
  term="png size 1400,700"
fi

color() {
  case "$1" in
    ok) echo "#2a7fff" ;;
    fail) echo "#d62728" ;;
    *) echo "#ff9f1c" ;;
  esac
}

# Fault windows as shaded rectangles with their nemesis' name on top.
windows() {
  [ -f "$nem" ] || return 0
  awk -F'\t' '!/^#/ && NF >= 3 {
    n++
    printf "set object %d rect from first %s, graph 0 to first %s, graph 1 behind fc rgb \"#f4c7c3\" fs solid 0.5 noborder\n", n, $1, $2
    printf "set label %d \"%s\" at first %s, graph 0.98 font \",8\" front\n", n, $3, $1
  }' "$nem"
}

# Distinct (f, type) pairs present, so no series is empty.
mapfile -t series < <(awk -F'\t' '!/^#/ { print $4 "\t" $3 }' "$lat" | sort -u)

tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT

{
  echo "set terminal $term"
  echo "set output '$dir/latency.png'"
  echo "set title 'latency: $title'"
  echo "set datafile separator tab"
  echo "set xlabel 'time since start (s)'"
  echo "set ylabel 'latency (ms)'"
  echo "set logscale y"
  echo "set grid"
  echo "set key outside right top"
  windows
  printf 'plot'
  sep=" "
  pt=7
  declare -A shape=()
  for s in "${series[@]}"; do
    f="${s%%$'\t'*}" t="${s#*$'\t'}"
    if [ -z "${shape[$f]:-}" ]; then shape[$f]=$pt; pt=$(( pt == 7 ? 5 : pt == 5 ? 9 : pt == 9 ? 13 : 11 )); fi
    printf "%s'%s' using 1:(strcol(4) eq '%s' && strcol(3) eq '%s' ? \$2 : 1/0) with points pt %s ps 0.6 lc rgb '%s' title '%s %s'" \
      "$sep" "$lat" "$f" "$t" "${shape[$f]}" "$(color "$t")" "$f" "$t"
    sep=", \\"$'\n'"     "
  done
  echo
} >"$tmp/latency.gp"
gnuplot "$tmp/latency.gp"

# Throughput: completions per whole second, one file per (f, type) series,
# with the seconds without any as 0.
max_s=$(awk -F'\t' '!/^#/ && int($1) > m { m = int($1) } END { print m + 0 }' "$lat")
i=0
for s in "${series[@]}"; do
  f="${s%%$'\t'*}" t="${s#*$'\t'}"
  awk -F'\t' -v f="$f" -v t="$t" -v max="$max_s" '!/^#/ && $4 == f && $3 == t { c[int($1)]++ }
    END { for (s = 0; s <= max; s++) print s "\t" (c[s] + 0) }' "$lat" >"$tmp/rate-$i.tsv"
  i=$(( i + 1 ))
done
{
  echo "set terminal $term"
  echo "set output '$dir/rate.png'"
  echo "set title 'throughput: $title'"
  echo "set datafile separator tab"
  echo "set xlabel 'time since start (s)'"
  echo "set ylabel 'completions / s'"
  echo "set grid"
  echo "set key outside right top"
  windows
  printf 'plot'
  sep=" "
  i=0
  for s in "${series[@]}"; do
    f="${s%%$'\t'*}" t="${s#*$'\t'}"
    printf "%s'%s' using 1:2 with lines lw 1.5 lc rgb '%s' dt %s title '%s %s'" \
      "$sep" "$tmp/rate-$i.tsv" "$(color "$t")" "$(( ${#f} % 4 + 1 ))" "$f" "$t"
    sep=", \\"$'\n'"     "
    i=$(( i + 1 ))
  done
  echo
} >"$tmp/rate.gp"
gnuplot "$tmp/rate.gp"
echo "$dir/latency.png $dir/rate.png"
